"""The ``Network`` class: a feed-forward network's architecture, parameters, inference and
gradients, over the compiled kernels of ``fastbp.kernels``.

The model is the book's (Nielsen, *Neural Networks and Deep Learning*, chapters 1–2):
sigmoid neurons, ``a = σ(w a' + b)``, the quadratic cost ``C = 1/(2n) Σₓ ‖y(x) − aᴸ(x)‖²``,
N(0, 1) initial weights and biases, and mini-batch stochastic gradient descent.

Every public method checks its arguments and converts them once (dtype, memory order), then
hands plain C-contiguous arrays to the kernels. A call that fails validation raises before
any kernel runs, so the parameters are left exactly as they were. Training runs on the loop
every model shares, ``fastbp.training.Trainer``; ``fastbp._epochs`` runs this network's
compiled epochs for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import _storage, _threads, kernels, pretraining
from ._checks import (
    _all_finite,
    _as_float_array,
    _asarray,
    _check_class_labels,
    _check_dtype,
    _check_memory,
    _check_rate,
    _check_sizes,
    _check_targets,
    _check_threads,
    _scaled_pixels,
    _unpack_pairs,
)
from ._epochs import CpuEpochs, GpuEpochs, cuda_module
from ._fpmode import subnormals_flushed
from .costs import COSTS
from .diagnostics import GradientWarning, diagnose_gradients
from .layout import PROJECTED, Layout
from .registry import ACTIVATIONS, INITIALISATIONS, OPTIMIZERS
from .training import FitOptions, ScoreSet, Trainer, _check_choice, _check_penalty, _check_seed

__all__ = ["ACTIVATIONS", "INITIALISATIONS", "OPTIMIZERS", "GradientWarning", "Network",
           "diagnose_gradients"]  # fmt: skip

#: Largest number of slices ``gradients`` splits a batch into (each has its own buffer).
_MAX_SLICES = 8

#: The arrays a model file holds beside ``params``.
_STATE_ARRAYS = ("bn_stats",)

#: How ``SGD`` spells ``fit``'s options (its errors name them so).
_SGD_SPELLING = {"batch_size": "mini_batch_size", "lr": "eta"}


def _name(value: Any) -> Any:
    """A toolbox name as the registries spell it: ``"leaky-relu"`` is ``"leaky_relu"``."""
    return value.replace("-", "_") if isinstance(value, str) else value


def _norms(nabla_b: list[np.ndarray], nabla_w: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "bias": np.array([np.linalg.norm(b.astype(np.float64)) for b in nabla_b]),
        "weight": np.array([np.linalg.norm(w.astype(np.float64)) for w in nabla_w]),
    }


class Network:
    """A feed-forward network of sigmoid neurons trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input first: ``Network([784, 30, 10])`` has 784 inputs, one hidden
        layer of 30 and 10 outputs.
    seed : int or None
        Seed of the generator (``np.random.default_rng``) that draws the initial parameters
        and, unless ``fit`` is given its own seed, the order of the samples in each epoch.
    dtype : {"float32", "float64"}
        Floating type of the parameters and of every computation.
    activation, output, cost, init, bias_init, alpha
        The book's toolbox: see the README's table (hidden activations, output activation,
        cost, initialisation of weights and biases, the leaky ReLU's slope or the ELU's scale).
    batch_norm : bool
        Batch-normalise every hidden layer's weighted input over the mini-batch, with a
        learnt scale ``γ`` and shift ``β`` (in ``params``, as ``gammas`` and ``betas``);
        predictions use running statistics gathered in training.
    residual : bool or sequence of bool
        Residual connections: a hidden layer ``l`` with one adds its input to its output,
        ``aˡ = f(zˡ) + aˡ⁻¹`` (``+ P aˡ⁻¹``, with a learnt projection ``P`` in ``params``,
        where the widths differ), so the gradient reaches the layers below undiminished.
        ``True`` gives one to every hidden layer but the first (whose input is the data); a
        sequence sets them one per hidden layer.
    threads : int or None
        Most threads for this network's compiled calls (Numba's thread count is set for the
        call and restored after it); None: as many as the CPUs this process may use, or
        ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS`` if set (``fastbp._threads``). While other
        processes keep the CPUs busy, the calls run on one thread. Results are bitwise the
        same whatever the thread count.
    device : {"cpu", "cuda"}
        Where ``fit``, ``predict``, ``evaluate``, ``gradients`` and ``gradient_norms`` compute:
        the CPU kernels of ``fastbp.kernels``, or the ``@cuda.jit`` kernels of
        ``fastbp._cuda`` on an NVIDIA GPU (``pip install "fastbp[cuda]"``; see ``to``).

    Attributes
    ----------
    weights : list of ndarray
        ``weights[l]`` has shape ``(sizes[l + 1], sizes[l])``, the book's orientation.
    biases : list of ndarray
        ``biases[l]`` has shape ``(sizes[l + 1],)``; the input layer has none.
    params : ndarray
        The flat buffer that ``weights`` and ``biases`` are views into: layer by layer, its
        weights row by row, then its biases.

    Weights and biases are drawn from N(0, 1), biases first, as in the book's ``network.py``
    (always in float64, then rounded to ``dtype``, so float32 and float64 networks of one
    seed start from the same numbers).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str | Sequence[str] = "sigmoid",
        output: str | None = None,
        cost: str = "quadratic",
        init: str = "gaussian",
        bias_init: str | None = None,
        alpha: float | None = None,
        residual: bool | Sequence[bool] = False,
        batch_norm: bool = False,
        seed: int | None = None,
        dtype: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.sizes = _check_sizes(sizes)
        self.dtype = np.dtype(_check_dtype(dtype))
        seed = _check_seed(seed, "seed")
        self.threads = _check_threads(threads)
        # Every name is accepted with hyphens too: "log-likelihood", "leaky-relu".
        cost, output, init, bias_init = (_name(v) for v in (cost, output, init, bias_init))
        activation = _name(activation) if isinstance(activation, str) else activation
        if not isinstance(activation, str) and isinstance(activation, Sequence):
            activation = [_name(a) for a in activation]
        self.cost = COSTS[_check_choice(cost, "cost", COSTS)]
        default_output = "softmax" if cost == "log_likelihood" else "sigmoid"
        output = _check_choice(default_output if output is None else output, "output", ACTIVATIONS)
        n_hidden = len(self.sizes) - 2
        if not isinstance(activation, str | Sequence):
            raise TypeError(
                f"activation: expected a name or a sequence of names, got {activation!r}"
            )
        hidden = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(
                f"activation: expected one name or {n_hidden} (one per hidden layer), "
                f"got {len(hidden)}"
            )
        for i, name in enumerate(hidden):
            _check_choice(name, f"activation[{i}]" if n_hidden > 1 else "activation", ACTIVATIONS)
            if ACTIVATIONS[name].output_only:
                raise ValueError(f"activation: {name!r} is for the output layer only")
        if cost == "cross_entropy" and output != "sigmoid":
            raise ValueError(f"output: the cross-entropy cost needs 'sigmoid', got {output!r}")
        if cost == "log_likelihood" and output != "softmax":
            raise ValueError(f"output: the log-likelihood cost needs 'softmax', got {output!r}")
        self.activations = (*hidden, output)
        if alpha is not None:
            alpha = _check_rate(alpha, "alpha")
        self.alpha = alpha
        alphas = [
            alpha if alpha is not None else ACTIVATIONS[name].alpha for name in self.activations
        ]
        # Residual connections, per hidden layer after the first: aˡ = f(zˡ) + aˡ⁻¹ where the
        # widths match, aˡ = f(zˡ) + P aˡ⁻¹ (a learnt projection P) where they do not.
        if isinstance(residual, bool | np.bool_):
            skips = [bool(residual) and l > 1 for l in range(1, n_hidden + 1)]
        else:
            skips = list(residual)
            if len(skips) != n_hidden or not all(isinstance(r, bool | np.bool_) for r in skips):
                raise ValueError(
                    f"residual: expected True/False or {n_hidden} booleans (one per hidden layer)"
                )
            if skips and skips[0]:
                raise ValueError(
                    "residual[0]: the first hidden layer's input is the data, not a hidden layer; "
                    "it cannot have a residual connection"
                )
        self.residual = tuple(bool(r) for r in skips)
        if not isinstance(batch_norm, bool | np.bool_):
            raise TypeError(f"batch_norm: expected True or False, got {batch_norm!r}")
        self.batch_norm = bool(batch_norm) and n_hidden > 0
        self.init = _check_choice(init, "init", INITIALISATIONS)
        if bias_init is None:
            bias_init = INITIALISATIONS[init].bias
        self.bias_init = _check_choice(bias_init, "bias_init", ("gaussian", "zeros"))

        self._rng = np.random.default_rng(seed)
        #: Held while the network trains (``fit``, ``SGD``, ``pretrain``): a second training
        #: call, from any thread, is refused rather than left to interleave with the first.
        self._training = threading.Lock()
        self.layout = Layout.of(self.sizes, self.residual, self.batch_norm)
        layout = self.layout
        _check_memory(layout.size * self.dtype.itemsize, f"sizes: {list(self.sizes)}")
        #: Running mean and variance of each batch-normalised neuron (used by predictions).
        self._bn_stats = np.zeros((2, int(layout.units[-1])), dtype=self.dtype)
        self._bn_stats[1] = 1
        acts = [-1, *(ACTIVATIONS[name].code for name in self.activations)]
        self._model = kernels.Model(
            np.array(self.sizes, dtype=np.int64),
            layout.offsets,
            layout.units,
            np.array(acts, dtype=np.int64),
            np.array([0.0, *alphas], dtype=self.dtype),
            np.int64(self.cost.code),
            np.array([0, *layout.skips], dtype=np.int64),
            np.array([False, *layout.batch_norm], dtype=np.bool_),
            self._bn_stats,
        )
        self._extras = kernels.has_extras(self._model)
        self.params = np.empty(layout.size, dtype=self.dtype)
        self.weights, self.biases = self._views(self.params)
        #: ``(optimiser name, state (2, params.size), steps taken)`` once one has been used.
        self._optimizer: tuple[str, np.ndarray, int] | None = None
        # Biases first, then weights, all standard normal and in float64, as network.py draws
        # them; then scaled. One seed gives the same numbers in float32 and float64.
        initial_biases = [self._rng.standard_normal(n) for n in self.sizes[1:]]
        std = INITIALISATIONS[init].std
        initial_weights = [
            self._rng.standard_normal((n_out, n_in)) * std(n_in, n_out)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]
        for b, w, b0, w0 in zip(
            self.biases, self.weights, initial_biases, initial_weights, strict=True
        ):
            b[...] = b0 if self.bias_init == "gaussian" else 0.0
            w[...] = w0
        #: Projections ``P`` of the residual connections between unequal widths, by layer
        #: index (1-based), views into ``params``; drawn N(0, 1/n_in).
        self.projections = {}
        for l, kind in enumerate(layout.skips, start=1):
            if kind == PROJECTED:
                view = layout.projection(self.params, l)
                view[...] = self._rng.standard_normal(view.shape) / np.sqrt(view.shape[1])
                self.projections[l] = view
        #: ``γ`` and ``β`` of each batch-normalised (hidden) layer, views into ``params``.
        self.gammas = [layout.gamma(self.params, l) for l in range(1, len(self.sizes) - 1)]
        self.betas = [layout.beta(self.params, l) for l in range(1, len(self.sizes) - 1)]
        if not self.batch_norm:
            self.gammas, self.betas = [], []
        for gamma, beta in zip(self.gammas, self.betas, strict=True):
            gamma[...] = 1
            beta[...] = 0
        self.device = "cpu"
        self.to(device)

    # --- copies and pickles ------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` and ``copy`` take (scikit-learn's estimators and joblib pickle
        networks): all but the training lock and the views into ``params``, which a copy
        would hold as arrays of their own."""
        state = self.__dict__.copy()
        for name in ("_training", "weights", "biases", "projections", "gammas", "betas"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._training = threading.Lock()
        layout = self.layout
        self.weights, self.biases = self._views(self.params)
        self.projections = {
            l: layout.projection(self.params, l)
            for l, kind in enumerate(layout.skips, start=1)
            if kind == PROJECTED
        }
        hidden = range(1, len(self.sizes) - 1)
        self.gammas = [layout.gamma(self.params, l) for l in hidden] if self.batch_norm else []
        self.betas = [layout.beta(self.params, l) for l in hidden] if self.batch_norm else []

    # --- device ------------------------------------------------------------------------

    def to(self, device: str) -> Network:
        """Compute on ``device`` from now on: ``"cpu"`` or ``"cuda"`` (an NVIDIA GPU). Returns
        the network itself.

        ``params`` stays the one copy of the parameters that save, load, ``weights`` and
        ``biases`` see, so moving is exact both ways. On ``"cuda"`` a ``fit`` call copies the
        data, the parameters and the optimiser's state to the GPU once and runs every
        mini-batch there; ``params`` receives the parameters after each epoch. Raises
        ``RuntimeError`` saying what is missing when this machine cannot run CUDA kernels,
        and ``ValueError`` for what the GPU kernels do not implement (batch normalisation,
        residual connections).
        """
        device = _check_choice(device, "device", ("cpu", "cuda"))
        if device == "cuda":
            if self.batch_norm or any(self.residual):
                feature = "batch_norm" if self.batch_norm else "residual"
                raise ValueError(
                    f"device: {feature} is not implemented by the CUDA kernels; "
                    "use device='cpu' for this network"
                )
            cuda_module()
        self.device = device
        return self

    def _gpu(self) -> Any:
        """The CUDA kernels' module when this network computes on the GPU, else None."""
        return cuda_module() if self.device == "cuda" else None

    # --- structure ---------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        """Number of layers, the input layer included (the book's ``num_layers``)."""
        return len(self.sizes)

    def __repr__(self) -> str:
        arch = ", ".join(str(n) for n in self.sizes)
        hidden = sorted(set(self.activations[:-1]))
        activation = repr(hidden[0]) if len(hidden) == 1 else repr(list(self.activations[:-1]))
        skips = f"residual={list(self.residual)}, " if any(self.residual) else ""
        skips += "batch_norm=True, " if self.batch_norm else ""
        skips += "device='cuda', " if self.device == "cuda" else ""
        options = f"init='{self.init}', "
        if self.bias_init != INITIALISATIONS[self.init].bias:
            options += f"bias_init='{self.bias_init}', "
        if self.alpha is not None:
            options += f"alpha={self.alpha}, "
        return (
            f"Network([{arch}], activation={activation}, output='{self.activations[-1]}', "
            f"cost='{self.cost.name}', {options}{skips}dtype='{self.dtype.name}', "
            f"parameters={self.params.size})"
        )

    def summary(self) -> str:
        """A table of the layers (width, activation, residual connection, batch norm,
        parameters per layer) and the network's options, for ``print(net.summary())``."""
        rows = [("layer", "neurons", "activation", "residual", "batch norm", "parameters")]
        rows.append(("0 (input)", str(self.sizes[0]), "", "", "", "0"))
        for l in range(1, self.num_layers):
            skip = self.layout.skips[l - 1]
            residual = {0: "", 1: "identity", 2: "projected"}[int(skip)]
            rows.append((
                str(l), str(self.sizes[l]), self.activations[l - 1], residual,
                "yes" if self.layout.batch_norm[l - 1] else "", f"{self.layout.count(l):,}",
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows]  # fmt: skip
        lines.insert(1, "-" * len(lines[0]))
        alpha = "" if self.alpha is None else f", alpha {self.alpha}"
        lines += [
            f"total parameters: {self.params.size:,}",
            f"cost {self.cost.name}, init {self.init} (biases {self.bias_init}){alpha}, "
            f"dtype {self.dtype.name}, device {self.device}, threads {self.threads or 'auto'}",
        ]
        return "\n".join(lines)

    def _spec(self) -> dict[str, Any]:
        """The architecture, as the JSON of model files and checkpoints."""
        return {
            "sizes": list(self.sizes),
            "activations": list(self.activations),
            "cost": self.cost.name,
            "alpha": self.alpha,
            "residual": list(self.residual),
            "batch_norm": self.batch_norm,
            "dtype": self.dtype.name,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to ``path`` atomically (``fastbp._storage``: an ``.npz`` archive of
        the parameters and a JSON header; loading it never runs code). Only a regular file is
        replaced (a directory, a device such as ``/dev/null`` or a pipe is refused); a save to
        a symbolic link writes the file it points to; a new file gets the mode the umask
        allows, a replaced file keeps its mode."""
        arrays = {"params": self.params, "bn_stats": self._bn_stats}
        _storage.save_model(path, self._spec(), arrays)

    def to_onnx(self, path: str | os.PathLike[str]) -> None:
        """Write the network's prediction path to ``path`` as an ONNX model, atomically
        (``fastbp.onnx_export``; needs ``pip install "fastbp[onnx]"``). Its input ``input``
        takes rows of ``sizes[0]`` values; its outputs are ``output`` (``feedforward``) and
        ``label`` (``predict``), in the network's dtype and int64."""
        from . import onnx_export

        onnx_export.export(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """Read a network written by ``save``; every field is checked first, and a file that
        fails a check raises ``ValueError`` naming it and what is wrong."""
        fail = _storage.model_error
        header, arrays = _storage.read_model(path, _STATE_ARRAYS)
        for key, kind in (("sizes", list), ("activations", list), ("cost", str), ("dtype", str)):
            if not isinstance(header.get(key), kind):
                raise fail(path, f"header field {key!r} is missing or of the wrong type")
        alpha = header.get("alpha")
        if alpha is not None and not isinstance(alpha, int | float):
            raise fail(path, "header field 'alpha' is of the wrong type")
        activations = header["activations"]
        if len(activations) != len(header["sizes"]) - 1:
            raise fail(path, "one activation per layer expected")
        params = arrays["params"]
        stats = arrays.get("bn_stats")
        # The declared architecture against the stored arrays, before anything is allocated.
        try:
            sizes = _check_sizes(header["sizes"])
            residual = header.get("residual", False)
            if isinstance(residual, bool):
                residual = [residual and l > 1 for l in range(1, len(sizes) - 1)]
            if not isinstance(residual, list) or len(residual) != len(sizes) - 2:
                raise ValueError("residual: expected one flag per hidden layer")
            batch_norm = header.get("batch_norm", False)
            if not isinstance(batch_norm, bool):
                raise ValueError("batch_norm: expected true or false")
            expected = Layout.of(sizes, tuple(bool(r) for r in residual), batch_norm).size
        except (ValueError, TypeError) as exc:
            raise fail(path, f"bad architecture ({exc})") from None
        if params.ndim != 1 or params.size != expected:
            raise fail(
                path,
                f"parameters of shape {params.shape} do not match the architecture: the header "
                f"declares sizes {list(sizes)}, which have {expected} parameters",
            )
        if stats is not None and stats.shape != (2, sum(sizes[1:])):
            raise fail(path, "the batch-norm statistics do not match the architecture")
        try:
            net = cls(
                header["sizes"],
                activation=activations[:-1],
                output=activations[-1],
                cost=header["cost"],
                alpha=alpha,
                residual=header.get("residual", False),
                batch_norm=header.get("batch_norm", False),
                dtype=header["dtype"],
            )
        except (ValueError, TypeError) as exc:
            raise fail(path, f"bad architecture ({exc})") from None
        if params.dtype != net.dtype or params.shape != net.params.shape:
            raise fail(
                path,
                f"parameters of dtype {params.dtype} and shape {params.shape} do not match the "
                f"architecture ({net.dtype.name}, ({net.params.size},))",
            )
        if stats is None:  # older files: before batch norm
            stats = net._bn_stats
        if stats.dtype != net.dtype or stats.shape != net._bn_stats.shape:
            raise fail(path, "the batch-norm statistics do not match the architecture")
        if _storage.digest([params, stats]) != header.get("sha256"):
            raise fail(path, "the parameters do not match their SHA-256 (corrupted)")
        if not (np.isfinite(params).all() and np.isfinite(stats).all()):
            raise fail(path, "the parameters contain NaN or infinity")
        if (stats[1] < 0).any():
            raise fail(path, "a batch-norm running variance is negative")
        net.params[...] = params
        net._bn_stats[...] = stats
        return net

    @contextmanager
    def _exclusive(self, what: str) -> Iterator[None]:
        """Run the block as the network's only training call, or raise ``RuntimeError``."""
        if not self._training.acquire(blocking=False):
            raise RuntimeError(
                f"{what}: this network is already being trained (by another thread, or by a "
                "callback of its own fit); train one network in one call at a time, or train "
                "copies (Network.load of a saved file)"
            )
        try:
            yield
        finally:
            self._training.release()

    def _check_trainable(self) -> None:
        if "step" in self.activations:
            raise ValueError(
                "activation: 'step' has no useful derivative (it is 0 wherever it exists), so a "
                "network with step neurons cannot be trained by backpropagation; train a single "
                "fastbp.Perceptron by the perceptron rule instead"
            )

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer ``(weights, biases)`` views into a buffer laid out like ``params``."""
        layers = range(1, self.num_layers)
        return (
            [self.layout.weights(flat, l) for l in layers],
            [self.layout.biases(flat, l) for l in layers],
        )

    def _workspace(self, rows: int) -> tuple[np.ndarray, ...]:
        """Work buffers of the kernels for mini-batches of up to ``rows`` samples."""
        # The kernel's Python source run by the interpreter: it only allocates, and calling it
        # compiled would add a second to the first fit's compile time.
        return kernels.workspace.py_func(self._model[0], self.layout.units, rows, self.params)

    # --- input checking ----------------------------------------------------------------

    def _inputs(self, X: Any, name: str = "X", *, check_finite: bool = True) -> np.ndarray:
        """``X`` as a C-contiguous ``(n, sizes[0])`` array of the network's dtype."""
        arr = _scaled_pixels(_asarray(X, name), self.dtype.type)  # uint8: x / 255
        arr = _as_float_array(arr, name, self.dtype.type, check_finite=check_finite)
        n_in = self.sizes[0]
        if arr.ndim != 2 or arr.shape[1] != n_in:
            raise ValueError(
                f"{name}: expected a 2-D array of shape (n_samples, {n_in}), got shape {arr.shape}"
            )
        return arr

    def _targets(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Targets as ``(n, sizes[-1])`` rows: from integer class labels or from rows."""
        return _check_targets(y, n, self.sizes[-1], self.dtype.type, name)

    def _class_labels(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Class labels from integer labels or from one-hot (or score) rows."""
        return _check_class_labels(y, n, self.sizes[-1], self.dtype.type, name)

    # --- forward ------------------------------------------------------------------------

    def feedforward(self, a: Any) -> np.ndarray:
        """Output of the network, ``aᴸ``, for one sample or a batch.

        Parameters
        ----------
        a : array_like
            One sample as a vector of ``sizes[0]`` values or as the book's column
            ``(sizes[0], 1)``, or a batch of shape ``(n_samples, sizes[0])``.

        Returns
        -------
        ndarray
            The same form as the input: a vector, a column, or ``(n_samples, sizes[-1])``.
        """
        arr = _asarray(a, "a")
        n_in = self.sizes[0]
        if arr.ndim == 1:
            return self._feedforward(
                self._inputs(arr.reshape(1, -1), "a", check_finite=False), "a"
            )[0]
        if arr.ndim == 2 and arr.shape[1] != n_in and arr.shape == (n_in, 1):
            X = self._inputs(arr.reshape(1, -1), "a", check_finite=False)
            return self._feedforward(X, "a").reshape(-1, 1)
        return self._feedforward(self._inputs(arr, "a", check_finite=False), "a")

    def _feedforward(self, X: np.ndarray, name: str = "X") -> np.ndarray:
        """Outputs for the rows of ``X``, which must be finite (``name`` is the argument to
        blame): the kernel flags the blocks whose ``z¹`` is not, as any non-finite input makes
        it, and only then is ``X`` itself checked."""
        gpu = self._gpu()
        if gpu is not None:
            if not _all_finite(X):
                raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
            return gpu.feedforward(self.params, self._model, X)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        finite = np.empty(-(-X.shape[0] // kernels.FEEDFORWARD_ROWS), dtype=np.bool_)
        wt, wide = None, True
        if kernels.uses_columns(self.sizes, self._extras):
            wt = kernels.column_buffers(self.sizes, 0, self.dtype)[0]
            kernels.rows_to_columns(self.weights[0], wt, 0, self.sizes[0])
            if kernels.narrow_after_first(self.sizes):  # compile only the narrow kernels
                wide = None
        with _threads.threads(self.threads), subnormals_flushed():
            kernels.feedforward(self.params, self._model, X, out, finite, self._extras, wt, wide)
        if not finite.all() and not _all_finite(X):
            raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
        return out

    def predict(self, X: Any) -> np.ndarray | int:
        """Class index of each row of ``X``: the most active output neuron.

        A network with a single output neuron predicts 1 where its output exceeds 0.5. One
        sample, a vector of ``sizes[0]`` values (or the book's column), gives one ``int``,
        as ``feedforward`` gives one output vector.
        """
        arr = _asarray(X, "X")
        column = arr.ndim == 2 and arr.shape[1] != self.sizes[0] and arr.shape == (self.sizes[0], 1)
        if arr.ndim == 1 or column:
            return int(self._predict(self._inputs(arr.reshape(1, -1), check_finite=False), "X")[0])
        return self._predict(self._inputs(arr, check_finite=False), "X")

    def _predict(self, X: np.ndarray, name: str) -> np.ndarray:
        return self._classes(self._feedforward(X, name))

    def _classes(self, out: np.ndarray) -> np.ndarray:
        """Class index of each row of outputs ``out``: its most active neuron, or 1 where a
        single output exceeds 0.5."""
        if self.sizes[-1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        classes = np.empty(out.shape[0], dtype=np.int64)
        kernels.argmax_rows(out, classes)
        return classes

    def accuracy(self, X: Any, y: Any) -> float:
        """Fraction of the rows of ``X`` whose predicted class is ``y`` (labels or one-hot)."""
        X = self._inputs(X, check_finite=False)
        labels = self._class_labels(y, X.shape[0])
        return float(np.mean(self._predict(X, "X") == labels))

    def evaluate(self, test_data: Any) -> int:
        """Number of test inputs classified correctly, as the book's ``evaluate``.

        ``test_data`` is the book's list of ``(x, y)`` pairs, ``y`` an integer label (or a
        one-hot column), or a pair of arrays ``(X, y)``.
        """
        X, y = _unpack_pairs(test_data, self.sizes[0], "test_data")
        X = self._inputs(X, "test_data", check_finite=False)
        labels = self._class_labels(y, X.shape[0], "test_data")
        return int(np.sum(self._predict(X, "test_data") == labels))

    def total_cost(self, X: Any, y: Any, lmbda: float = 0.0, l1: float = 0.0) -> float:
        """The network's cost over the rows of ``X``, as the book's ``total_cost``:
        ``C = (1/n) Σₓ Cₓ + (λ/2n) Σ w² + (λ₁/n) Σ |w|``, where ``Cₓ`` is ``self.cost.fn``
        (quadratic ``½‖y − aᴸ‖²`` by default)."""
        X = self._inputs(X, check_finite=False)
        Y = self._targets(y, X.shape[0])
        lmbda, l1 = _check_penalty(lmbda, "lmbda"), _check_penalty(l1, "l1")
        return self._mean_cost(self._feedforward(X), Y) + self._penalty(lmbda, l1, X.shape[0])

    def _mean_cost(self, out: np.ndarray, Y: np.ndarray) -> float:
        return float(np.mean(self.cost.fn(out, Y)))

    def _penalty(self, lmbda: float, l1: float, n: int) -> float:
        """The regularisation terms of the book's ``total_cost``: ``(λ/2n)Σw² + (λ₁/n)Σ|w|``."""
        if not lmbda and not l1:
            return 0.0
        w = np.concatenate([w.ravel() for w in self.weights]).astype(np.float64)
        return float(0.5 * lmbda / n * np.sum(w * w) + l1 / n * np.sum(np.abs(w)))

    # --- gradients ----------------------------------------------------------------------

    def backprop(self, x: Any, y: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradient of the cost of one sample, ``Cₓ = ½ ‖y − aᴸ‖²``, by backpropagation.

        Parameters
        ----------
        x : array_like
            One input: a vector of ``sizes[0]`` values or a column ``(sizes[0], 1)``.
        y : array_like or int
            Its target: a vector or column of ``sizes[-1]`` values, or a class label.

        Returns
        -------
        nabla_b, nabla_w : list of ndarray
            ``∂Cₓ/∂bˡ`` and ``∂Cₓ/∂wˡ``, shaped like ``biases`` and ``weights``.
        """
        x = _asarray(x, "x")
        if x.shape not in ((self.sizes[0],), (self.sizes[0], 1)):
            raise ValueError(
                f"x: expected one sample, a vector of {self.sizes[0]} values or a column "
                f"({self.sizes[0]}, 1), got shape {x.shape}"
            )
        x = self._inputs(x.reshape(1, -1), "x")
        y = _asarray(y, "y")
        y = self._targets(y.reshape(1) if y.ndim == 0 else y.reshape(1, -1), 1, "y")
        return self.gradients(x, y)

    def gradients(self, X: Any, Y: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradient of the network's cost averaged over a batch: ``(1/n) Σₓ ∇Cₓ``.

        ``Y`` holds targets as rows or integer class labels. Returns ``(nabla_b, nabla_w)``
        shaped like ``biases`` and ``weights``. The batch is summed in up to 8 slices in
        parallel, each into its own buffer, then the slices are added in order: the result
        does not depend on the number of threads.
        """
        self._check_trainable()
        X = self._inputs(X)
        Y = self._targets(Y, X.shape[0], "Y")
        grad = self._gradient_sum(X, Y) / X.shape[0]
        nabla_w, nabla_b = self._views(grad)
        return [b.copy() for b in nabla_b], [w.copy() for w in nabla_w]

    def pretrain(
        self,
        X: Any,
        *,
        epochs: int = 1,
        batch_size: int = 10,
        lr: float = 0.05,
        seed: int | None = None,
    ) -> list[dict[str, list]]:
        """Greedy layer-wise pre-training of the hidden layers as autoencoders.

        For each hidden layer ``l`` in turn, an autoencoder ``[n_{l-1}, n_l, n_{l-1}]`` whose
        encoder starts from the layer's current weights learns to reconstruct the layer's input
        (``X`` for the first, the previous layers' activations after them), and its encoder is
        copied into the layer. The decoder is a sigmoid layer with the cross-entropy cost when
        the inputs lie in [0, 1] (pixels, sigmoid activations), else a linear layer with the
        quadratic cost. The output layer is left alone: fine-tune the whole network with
        ``fit`` afterwards. Returns each autoencoder's history, whose ``train_cost`` is its
        reconstruction cost per epoch (``fastbp.pretraining``).
        """
        options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
        with self._exclusive("pretrain"):
            return pretraining.pretrain(self, X, **options)

    def gradient_norms(self, X: Any, Y: Any) -> dict[str, np.ndarray]:
        """Per-layer gradient health on a batch: ``‖∂C/∂bˡ‖`` and ``‖∂C/∂wˡ‖``.

        ``‖∂C/∂bˡ‖`` is the book's chapter 5 measure of how fast layer ``l`` learns. Returns
        ``{"bias": array, "weight": array}``, one entry per layer (input excluded), computed
        by the compiled kernels as ``gradients`` (same validation). In a batch-normalised layer
        the bias has no effect (the mean is subtracted); its shift ``β`` takes the bias's part,
        so ``‖∂C/∂β‖`` is reported as that layer's speed.
        """
        self._check_trainable()
        X = self._inputs(X)
        return self._speeds(self._gradient_sum(X, self._targets(Y, X.shape[0], "Y")) / len(X))

    def _speeds(self, grad: np.ndarray) -> dict[str, np.ndarray]:
        nabla_w, nabla_b = self._views(grad)
        if self.batch_norm:
            for l in range(1, len(self.sizes) - 1):
                nabla_b[l - 1] = self.layout.beta(grad, l)  # ∂C/∂β
        return _norms(nabla_b, nabla_w)

    def _gradient_sum(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``Σₓ ∇Cₓ`` over the rows of ``X``: in parallel slices, or, with batch norm (whose
        statistics are the whole batch's), in one serial pass; or on the GPU."""
        gpu = self._gpu()
        if gpu is not None:
            return gpu.gradient_sum(self.params, self._model, X, Y)
        if self.batch_norm:
            grad = np.zeros_like(self.params)
            rows = np.arange(X.shape[0], dtype=np.int64)
            ws = self._workspace(X.shape[0])
            with subnormals_flushed():
                kernels.backward_pass(
                    self.params, self._model, X, Y, rows, ws, grad, None, self._extras
                )
            return grad
        n = X.shape[0]
        block = kernels.BLOCK_ROWS
        n_slices = min(_MAX_SLICES, -(-n // block))
        per_slice = -(-n // (n_slices * block)) * block
        slices = np.minimum(np.arange(n_slices + 1, dtype=np.int64) * per_slice, n)
        grads = np.empty((n_slices, self.params.size), dtype=self.dtype)
        with _threads.threads(self.threads):
            kernels.batch_gradient(self.params, self._model, X, Y, slices, grads, self._extras)
        total = grads[0].copy()
        for g in grads[1:]:
            total += g
        return total

    def _trace(
        self, X: Any, Y: Any, dropout: float = 0.0, seed: int = 0
    ) -> dict[str, list[np.ndarray]]:
        """Every ``zˡ``, ``aˡ`` and ``δˡ`` and the summed gradient of one batch, for tests
        (with ``dropout``, the masks drawn after seeding Numba's generator with ``seed``)."""
        self._check_trainable()
        X = self._inputs(X)
        Y = self._targets(Y, X.shape[0], "Y")
        m = X.shape[0]
        ws = self._workspace(m)
        grad = np.zeros_like(self.params)
        rows = np.arange(m, dtype=np.int64)
        kernels.seed_generator(seed)
        p = self.dtype.type(dropout) if dropout > 0 else None
        with subnormals_flushed():
            kernels.backward_pass(self.params, self._model, X, Y, rows, ws, grad, p, self._extras)
        zbuf, abuf, dbuf = ws[:3]

        def per_layer(buf: np.ndarray) -> list[np.ndarray]:
            units = self.layout.units
            cap = buf.size // int(units[-1])
            return [
                buf[cap * units[l - 1] : cap * units[l - 1] + m * n].reshape(m, n).copy()
                for l, n in enumerate(self.sizes[1:], start=1)
            ]

        nabla_w, nabla_b = self._views(grad)
        return {
            "zs": per_layer(zbuf),
            "activations": per_layer(abuf),
            "deltas": per_layer(dbuf),
            "nabla_b": [b.copy() for b in nabla_b],
            "nabla_w": [w.copy() for w in nabla_w],
            "grad": grad,
        }

    # --- what the trainer asks of a model (``fastbp.training.Trainable``) -----------------

    def _training_state(self) -> dict[str, np.ndarray]:
        return {"bn_stats": self._bn_stats}

    def _epochs(self, X: np.ndarray, Y: np.ndarray, options: FitOptions) -> Any:
        gpu = self._gpu()
        return (
            CpuEpochs(self, X, Y, options) if gpu is None else GpuEpochs(self, gpu, X, Y, options)
        )

    def _score(self, out: np.ndarray, Y: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        return self._mean_cost(out, Y), int(np.sum(self._classes(out) == labels))

    # --- training -----------------------------------------------------------------------

    def SGD(
        self,
        training_data: Any,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data: Any = None,
        lmbda: float = 0.0,
        **options: Any,
    ) -> dict[str, list]:
        """Mini-batch stochastic gradient descent, with the book's call shape.

        ``training_data`` is the book's list of ``(x, y)`` pairs (column vectors, one-hot
        ``y``) or a pair of arrays ``(X, Y)``; ``test_data`` likewise, with integer labels.
        With ``test_data`` each epoch prints ``Epoch j: k / n``, as the book's code does.
        ``lmbda`` is the book's L2 parameter; every other option of ``fit`` (``optimizer``,
        ``dropout``, ``clip_norm``, ``schedule``, ...) is accepted by name. Returns the
        history, as ``fit`` does.
        """
        X, Y = _unpack_pairs(training_data, self.sizes[0], "training_data")
        validation = None
        if test_data is not None:
            validation = _unpack_pairs(test_data, self.sizes[0], "test_data")
        options.setdefault("verbose", "book")
        settings = dict(epochs=epochs, batch_size=mini_batch_size, lr=eta, lmbda=lmbda)
        return self._train(
            X, Y, validation, ("training_data", "test_data"), _SGD_SPELLING,
            {**settings, **options},
        )  # fmt: skip

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int,
        batch_size: int,
        lr: float | None = None,
        eta: float | None = None,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        lmbda: float = 0.0,
        l1: float = 0.0,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        rho: float = 0.99,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        monitor_training: bool = False,
        monitor_gradients: bool = False,
        callback: Callable[[Network, int, dict[str, list]], Any] | None = None,
        schedule: str = "constant",
        patience: int = 10,
        max_halvings: int = 7,
        early_stopping: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: str | os.PathLike[str] | None = None,
        verbose: bool | str = False,
        batch_progress: bool = False,
        threads: int | None = None,
    ) -> dict[str, list]:
        """Train by mini-batch SGD on the network's cost; one compiled call per epoch.

        Parameters
        ----------
        X : array_like, shape (n_samples, sizes[0])
        y : array_like
            Integer class labels ``(n_samples,)`` or target rows ``(n_samples, sizes[-1])``.
        epochs : int
            Passes over the data (0 trains nothing).
        batch_size : int
            Samples per mini-batch ``m``; a last, smaller mini-batch is trained on too.
        lr : float
            Learning rate ``η``: each step is ``θ ← θ − (η/m) Σₓ ∇Cₓ``. ``eta``, the book's
            name (``SGD``'s), is accepted for it; give one of the two.
        validation_data : (X_val, y_val), optional
            Scored after every epoch (cost and accuracy, in the history).
        shuffle : bool
            Visit the samples in a new random order each epoch (by index; the data is not
            copied).
        seed : int, optional
            Seed of the shuffling; by default the network's own generator is used.
        lmbda : float
            L2 regularisation ``λ`` (the book's chapter 3): each step is
            ``w ← (1 − ηλ/n) w − (η/m) Σₓ ∂Cₓ/∂w`` with ``n`` training samples; biases are not
            decayed. The reported costs include ``(λ/2n) Σ w²``.
        l1 : float
            L1 regularisation ``λ₁``: ``w ← w − (ηλ₁/n) sgn(w) − (η/m) Σₓ ∂Cₓ/∂w``; the
            reported costs include ``(λ₁/n) Σ |w|``.
        dropout : float
            Probability of dropping each hidden neuron in each mini-batch (the book's chapter
            3, with inverted scaling: kept neurons are scaled by ``1/(1 − p)``, so nothing
            changes at prediction). The masks are drawn from a seed taken from the shuffling
            generator, so a seed reproduces them.
        optimizer : {"sgd", "momentum", "nesterov", "adam"}
            The step taken with the mini-batch's mean gradient ``g`` (see
            ``fastbp.kernels.optimizer_step``): plain SGD, the book's momentum
            ``v ← μv − ηg, w ← w + v``, Nesterov momentum, or Adam. The optimiser's state
            lives beside the parameters and carries over between ``fit`` calls with the same
            optimiser. With an optimiser other than SGD, L2/L1 act through the gradient
            (``g + (λ/n) w``), which for SGD is the same step as the decay above.
        momentum : float
            ``μ`` of momentum and Nesterov, in [0, 1).
        betas, eps : Adam's ``β₁``, ``β₂`` (each in [0, 1)) and ``ε`` (> 0).
        clip_norm, clip_value : float, optional
            Clip each mini-batch's gradient to this global L2 norm (over all parameters) and/or
            each component to ``[−clip_value, clip_value]``, before the step.
        monitor_gradients : bool
            After each epoch, record ``gradient_norms`` on the first 1,000 training samples
            (``grad_norm_b``, ``grad_norm_w``: one list of per-layer norms per epoch) and warn
            (``GradientWarning``) when ``diagnose_gradients`` finds vanishing or exploding
            gradients.
        monitor_training : bool
            Also score the training data after each epoch (``train_cost``,
            ``train_accuracy``; one forward pass over it).
        callback : callable, optional
            ``callback(net, epoch, history)`` after each epoch's scores are recorded. It stops
            training by returning ``False`` (``None``, or anything else, goes on) or by raising
            ``fastbp.StopTraining``; the epoch it was called for counts.
        schedule : {"constant", "halve"}
            ``"halve"`` is the book's chapter 3 schedule: halve ``η`` whenever the validation
            accuracy has not improved for ``patience`` epochs, and stop once it has been halved
            ``max_halvings`` times (7: ``η`` down to ``η₀/128``). Needs ``validation_data``;
            the history's ``lr`` records the rate of each epoch.
        early_stopping : int, optional
            Stop when the validation accuracy has not improved for this many epochs, and
            restore the parameters of the best epoch. Needs ``validation_data``.
        checkpoint : path, optional
            After every ``checkpoint_every`` epochs, write the whole training state
            (parameters, optimiser state, generator state, epoch, history, schedule)
            atomically to this file. The path is checked before the first epoch (its
            directory must exist; only a regular file is replaced).
        resume : path, optional
            Continue from a checkpoint written by a ``fit`` call with the same data and
            options: training goes on at the epoch after the checkpoint's, up to ``epochs``
            in all, and ends with bitwise the same parameters and history (but for the
            ``seconds``) as an uninterrupted run. A KeyboardInterrupt (Ctrl-C) takes effect at
            the end of the running epoch (an epoch is one compiled call): that epoch is rolled
            back, a checkpoint is written if ``checkpoint`` is set, and the interrupt is
            re-raised. The whole checkpoint is checked before any of it is applied: a
            damaged or crafted one raises ``ValueError`` naming the file and leaves the
            network as it was.
        verbose : bool or "book"
            ``True``: print the line per epoch of ``fastbp train`` (costs, penalty, validation
            accuracy, time, samples/s; ``fastbp.progress.epoch_line``), under a progress bar
            over the epochs on stderr when it is a terminal and tqdm is installed
            (``pip install "fastbp[progress]"``). ``"book"``: the book's ``Epoch j: k / n``
            (``SGD``'s default).
        batch_progress : bool
            A progress bar over each epoch's mini-batches, for long epochs (on stderr when it
            is a terminal and tqdm is installed; beside ``verbose``'s over the epochs): the
            epoch then runs as up to 50 compiled calls (``training.BATCH_PROGRESS_PARTS``)
            instead of one, with the same result but for ``dropout``, whose masks are then
            drawn from a seed per call (still reproducible by the seed).
        threads : int, optional
            Most threads for this call (by default the network's ``threads``; None: the
            CPUs this process may use, or ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS`` if set;
            see ``fastbp._threads``). A network whose first layer has rows of 64 inputs or
            more and most of its multiply-adds (``kernels.TEAM_MIN_FIRST_SHARE``) trains an
            epoch of ``kernels.TEAM_MIN_EPOCH_WORK`` multiply-adds or more on a team of
            threads that stays together for the whole epoch (``kernels.team_size``,
            ``train_epoch_columns``). Otherwise a mini-batch's larger matrix products (from
            ``kernels.PARALLEL_MIN_WORK`` multiply-adds) are shared out over Numba's
            threads, and smaller ones stay on one thread, which is faster there. While
            other processes keep the CPUs busy, epochs run on one thread (a team that
            stalls finishes its epoch on one). The result is bitwise the same whatever the
            thread count. On ``device="cuda"`` the GPU's threads are used instead (and
            ``dropout`` is refused).

        Returns
        -------
        dict of lists
            ``epoch``, ``seconds`` (training time), ``lr`` (the rate of each epoch), with
            validation data ``val_cost``, ``val_accuracy`` and ``val_correct``, and with
            ``monitor_training`` the same three with ``train_``. Every value is a Python
            ``float`` or ``int``. The costs are the data term alone, ``(1/n) Σₓ Cₓ`` over the
            set scored, so training and validation costs compare directly; with ``lmbda`` or
            ``l1`` (and a set scored), ``penalty`` records the regularisation term of the
            objective trained, ``(λ/2n) Σ w² + (λ₁/n) Σ |w|`` with ``n`` the number of
            training samples (add it to ``train_cost`` for the book's ``total_cost``).

        Raises
        ------
        FloatingPointError
            If an epoch produced non-finite parameters; they are restored to their values
            before that epoch.
        RuntimeError
            If the network is already training (a ``fit`` in another thread, or this
            ``fit``'s own callback): one training call per network at a time.

        Warns
        -----
        CollapseWarning
            If training ended at chance with outputs that no longer depend on the input
            (``fastbp.diagnose_collapse``, on the scored data: ``validation_data`` or, with
            ``monitor_training``, the training data): the rate is too large for the
            initialisation.
        """
        if eta is not None and lr is not None:
            raise TypeError("eta: the book's name of lr; give the learning rate once")
        if eta is None and lr is None:
            raise TypeError("lr: missing; give the learning rate as lr (or eta)")
        lr_name = "lr" if eta is None else "eta"
        lr = lr if eta is None else eta
        options = {k: v for k, v in locals().items() if k not in ("self", "X", "y", "lr_name")}
        del options["eta"]
        validation = options.pop("validation_data")
        return self._train(X, y, validation, ("X", "validation_data"), {"lr": lr_name}, options)

    def _train(
        self, X: Any, y: Any, validation: Any, names: tuple[str, str],
        spelling: dict[str, str], options: dict[str, Any],
    ) -> dict[str, list]:  # fmt: skip
        """Validate everything, then train on ``fastbp.training.Trainer``. ``names`` are the
        caller's names of the data and of the validation data, ``spelling`` its names of the
        options (``SGD``'s)."""
        x_name, val_name = names
        self._check_trainable()
        # X's NaN/infinity check is left to the epoch: any non-finite input makes the weights
        # it meets non-finite (∞·0 and NaN·c are NaN), which the trainer's guard catches; only
        # then is X scanned, to blame it. That saves a pass over the data per call.
        X = self._inputs(X, x_name, check_finite=False)
        Y = self._targets(y, X.shape[0], "y" if x_name == "X" else x_name)
        opts = FitOptions.validated(spelling, **options)
        if opts.epochs == 0 and not _all_finite(X):  # no epoch will find it
            raise ValueError(f"{x_name}: contains NaN or infinity; expected finite values")
        scored = []
        if validation is not None:
            if not isinstance(validation, tuple | list) or len(validation) != 2:
                raise TypeError(f"{val_name}: expected a pair (X, y)")
            X_val = self._inputs(validation[0], val_name)
            Y_val = self._targets(validation[1], X_val.shape[0], val_name)
            labels = self._class_labels(validation[1], X_val.shape[0], val_name)
            scored.append(ScoreSet("val", X_val, Y_val, labels))
        if (opts.schedule == "halve" or opts.early_stopping is not None) and not scored:
            raise ValueError(
                f"{val_name}: the 'halve' schedule and early stopping need validation data"
            )
        if opts.monitor_training:
            scored.append(ScoreSet("train", X, Y, self._class_labels(y, X.shape[0], "y")))
        if self._gpu() is not None and opts.dropout > 0:
            raise ValueError("dropout: not implemented by the CUDA kernels; use device='cpu'")
        rng = self._rng if opts.seed is None else np.random.default_rng(opts.seed)
        trainer = Trainer(self, X, Y, opts, scored, rng, x_name, spelling.get("lr", "lr"))
        with self._exclusive("fit" if x_name == "X" else "SGD"):
            return trainer.run()
