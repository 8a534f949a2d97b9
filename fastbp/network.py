"""The ``Network`` class: state and validation over the compiled kernels in ``_kernels``.

The model is the book's (Nielsen, *Neural Networks and Deep Learning*, chapters 1–2):
sigmoid neurons, ``a = σ(w a' + b)``, the quadratic cost ``C = 1/(2n) Σₓ ‖y(x) − aᴸ(x)‖²``,
N(0, 1) initial weights and biases, and mini-batch stochastic gradient descent.

Every public method checks its arguments and converts them once (dtype, memory order), then
hands plain C-contiguous arrays to the kernels. A call that fails validation raises before
any kernel runs, so the parameters are left exactly as they were.
"""

from __future__ import annotations

import importlib.util
import numbers
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from . import _kernels, _threads, files
from ._checks import (
    _all_finite,
    _as_float_array,
    _asarray,
    _check_dtype,
    _check_positive_int,
    _check_rate,
    _check_sizes,
    _check_threads,
)
from ._fpmode import subnormals_flushed
from .costs import COSTS

#: Largest number of slices ``gradients`` splits a batch into (each has its own buffer).
_MAX_SLICES = 8

#: Activation functions by name (``fastbp._kernels`` computes them by code).
ACTIVATIONS = {
    "sigmoid": _kernels.SIGMOID,
    "tanh": _kernels.TANH,
    "relu": _kernels.RELU,
    "leaky_relu": _kernels.LEAKY_RELU,
    "elu": _kernels.ELU,
    "linear": _kernels.LINEAR,
    "softmax": _kernels.SOFTMAX,
    "step": _kernels.STEP,
}
#: ``alpha`` when none is given: the leaky ReLU's slope below 0, the ELU's scale.
_DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}
#: Standard deviation of the initial weights of a layer with ``n_in`` inputs, ``n_out`` outputs.
INITIALISATIONS = {
    "gaussian": lambda n_in, n_out: 1.0,  # the book's network.py
    "scaled": lambda n_in, n_out: 1.0 / np.sqrt(n_in),  # the book's network2.py
    "glorot": lambda n_in, n_out: np.sqrt(2.0 / (n_in + n_out)),
    "he": lambda n_in, n_out: np.sqrt(2.0 / n_in),
}


def _check_penalty(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a non-negative finite number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative finite number, got {value}")
    return float(value)


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value}")
    return float(value)


#: Optimisers by name (``fastbp._kernels.optimizer_step`` computes them by code).
OPTIMIZERS = {
    "sgd": _kernels.SGD,
    "momentum": _kernels.MOMENTUM,
    "nesterov": _kernels.NESTEROV,
    "adam": _kernels.ADAM,
}


#: The first layer learning this many times slower than the last (the ratio of their
#: ``‖∂C/∂b‖``, the book's speeds of learning) is reported as vanishing gradients. The book's
#: [784, 30, 30, 30, 10] sigmoid network shows about 24.
VANISHING_RATIO = 10.0
#: The first layer's ``‖∂C/∂b‖`` this many times the last's, or a norm growing this many times
#: from one epoch to the next, is reported as exploding gradients.
EXPLODING_RATIO = 100.0


class GradientWarning(RuntimeWarning):
    """Vanishing or exploding gradients, reported by ``fit(monitor_gradients=True)``."""


def _norms(nabla_b: list[np.ndarray], nabla_w: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "bias": np.array([np.linalg.norm(b.astype(np.float64)) for b in nabla_b]),
        "weight": np.array([np.linalg.norm(w.astype(np.float64)) for w in nabla_w]),
    }


def diagnose_gradients(
    norms: dict[str, np.ndarray], previous: dict[str, np.ndarray] | None = None
) -> str | None:
    """A diagnosis of per-layer gradient norms (``Network.gradient_norms``), or None.

    - vanishing: the first layer's ``‖∂C/∂b‖`` is under ``1/VANISHING_RATIO`` of the last's;
    - exploding: it is over ``EXPLODING_RATIO`` times the last's, or any layer's norm grew
      more than ``EXPLODING_RATIO`` times since ``previous`` (the epoch before), or a norm is
      not finite.
    The message gives the numbers.
    """
    b = norms["bias"]
    if not (np.isfinite(b).all() and np.isfinite(norms["weight"]).all()):
        return f"exploding gradients: non-finite norms {b.tolist()}"
    if len(b) >= 2 and b[-1] > 0:
        ratio = b[0] / b[-1]
        speeds = ", ".join(f"{v:.3g}" for v in b)
        if ratio < 1 / VANISHING_RATIO:
            return (
                f"vanishing gradients: the first layer learns {1 / ratio:.3g} times slower than "
                f"the last (‖∂C/∂b‖ per layer: {speeds})"
            )
        if ratio > EXPLODING_RATIO:
            return (
                f"exploding gradients: the first layer's gradient is {ratio:.3g} times the "
                f"last's (‖∂C/∂b‖ per layer: {speeds})"
            )
    if previous is not None:
        growth = np.max(b / np.maximum(previous["bias"], np.finfo(np.float64).tiny))
        if growth > EXPLODING_RATIO:
            return f"exploding gradients: a layer's ‖∂C/∂b‖ grew {growth:.3g} times in one epoch"
    return None


def _record_gradient_norms(history: dict[str, list], norms: dict[str, np.ndarray]) -> str | None:
    """Append an epoch's per-layer gradient norms to ``history`` and return what
    ``diagnose_gradients`` finds, comparing with the epoch before."""
    previous = None
    if history["grad_norm_b"]:
        previous = {"bias": np.array(history["grad_norm_b"][-1])}
    history["grad_norm_b"].append(norms["bias"].tolist())
    history["grad_norm_w"].append(norms["weight"].tolist())
    return diagnose_gradients(norms, previous)


def _check_choice(value: Any, name: str, choices: Any) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def _cuda_kernels() -> Any:
    """``fastbp._cuda``, imported on first use, or a ``RuntimeError`` that says what this
    machine lacks to run CUDA kernels."""
    try:
        from numba import cuda
    except ImportError as exc:  # a Numba without its CUDA target, and no numba-cuda
        raise RuntimeError(
            f"device='cuda': Numba's CUDA target cannot be imported ({exc}); install it with "
            "pip install 'fastbp[cuda]'"
        ) from exc
    if not cuda.is_available():
        hint = "" if importlib.util.find_spec("numba_cuda") else (
            "; the GPU support is installed with pip install 'fastbp[cuda]'"
        )  # fmt: skip
        raise RuntimeError(
            "device='cuda': no usable NVIDIA GPU (numba.cuda.is_available() is False: no GPU, "
            f"or no NVIDIA driver){hint}. NUMBA_ENABLE_CUDASIM=1, set before Numba is "
            "imported, runs the CUDA kernels on Numba's simulator instead (slow: for tests)"
        )
    from . import _cuda

    return _cuda


def _train_in_team(team: int, args: tuple) -> int:
    """Run ``_kernels.train_epoch_columns(*args)`` on ``team`` threads at once: this one and
    ``team − 1`` started for the epoch (the kernel releases the GIL). Starting a thread costs
    tens of microseconds, once per epoch; the members meet through ``args``' counters.
    Returns the nanoseconds the members waited for a CPU (Linux; 0 elsewhere).

    Ctrl-C is held back until every member has ended (``_interrupts_deferred``): a member
    left running would go on writing the weights after ``fit`` had rolled them back."""
    waits = [0] * team

    def member(i: int) -> None:
        before = _threads.thread_cpu_wait_ns()
        _kernels.train_epoch_columns(*args)
        waits[i] = _threads.thread_cpu_wait_ns() - before

    others = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(1, team)]
    with _interrupts_deferred():
        for thread in others:
            thread.start()
        member(0)
        for thread in others:
            thread.join()
    return sum(waits)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) back until the block has ended, then act on it as the handler
    that was set would have (``KeyboardInterrupt`` by default). Python acts on signals only in
    the main thread, so elsewhere there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, received[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)


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
        Threads for this network's compiled calls (Numba's thread count is set for the call
        and restored after it); None uses Numba's current setting. Results are bitwise the
        same whatever the thread count.
    device : {"cpu", "cuda"}
        Where ``fit``, ``predict``, ``evaluate``, ``gradients`` and ``gradient_norms`` compute:
        the CPU kernels of ``fastbp._kernels``, or the ``@cuda.jit`` kernels of
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
        self.threads = _check_threads(threads)
        if isinstance(cost, str):
            cost = cost.replace("-", "_")  # "log-likelihood" and "cross-entropy" too
        self.cost = COSTS[_check_choice(cost, "cost", COSTS)]
        default_output = "softmax" if cost == "log_likelihood" else "sigmoid"
        output = _check_choice(default_output if output is None else output, "output", ACTIVATIONS)
        n_hidden = len(self.sizes) - 2
        hidden = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(
                f"activation: expected one name or {n_hidden} (one per hidden layer), "
                f"got {len(hidden)}"
            )
        for i, name in enumerate(hidden):
            _check_choice(name, f"activation[{i}]" if n_hidden > 1 else "activation", ACTIVATIONS)
            if name == "softmax":
                raise ValueError("activation: 'softmax' is for the output layer only")
        if cost == "cross_entropy" and output != "sigmoid":
            raise ValueError(f"output: the cross-entropy cost needs 'sigmoid', got {output!r}")
        if cost == "log_likelihood" and output != "softmax":
            raise ValueError(f"output: the log-likelihood cost needs 'softmax', got {output!r}")
        self.activations = (*hidden, output)
        if alpha is not None:
            alpha = _check_rate(alpha, "alpha")
        self.alpha = alpha
        alphas = [
            alpha if alpha is not None else _DEFAULT_ALPHA.get(name, 0.0)
            for name in self.activations
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
            bias_init = "gaussian" if init in ("gaussian", "scaled") else "zeros"
        self.bias_init = _check_choice(bias_init, "bias_init", ("gaussian", "zeros"))

        self._rng = np.random.default_rng(seed)
        layers = range(1, len(self.sizes))
        self._sizes = np.array(self.sizes, dtype=np.int64)
        bn = [self.batch_norm and l < len(self.sizes) - 1 for l in layers]
        # 0: no skip, 1: identity skip, 2: projected skip (its P follows the biases).
        skip_kinds = [
            0 if l > n_hidden or not self.residual[l - 1]
            else (1 if self.sizes[l] == self.sizes[l - 1] else 2)
            for l in layers
        ]  # fmt: skip
        counts = [
            self.sizes[l] * self.sizes[l - 1] * (2 if skip_kinds[l - 1] == 2 else 1)
            + self.sizes[l] * (3 if bn[l - 1] else 1)
            for l in layers
        ]
        self._offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._units = np.concatenate(([0], np.cumsum(self.sizes[1:]))).astype(np.int64)
        #: Running mean and variance of each batch-normalised neuron (used by predictions).
        self._bn_stats = np.zeros((2, int(self._units[-1])), dtype=self.dtype)
        self._bn_stats[1] = 1
        acts = np.array([-1, *(ACTIVATIONS[name] for name in self.activations)], dtype=np.int64)
        self._model = (
            self._sizes,
            self._offsets,
            self._units,
            acts,
            np.array([0.0, *alphas], dtype=self.dtype),
            np.int64(self.cost.code),
            np.array([0, *skip_kinds], dtype=np.int64),
            np.array([False, *bn], dtype=np.bool_),
            self._bn_stats,
        )
        self._extras = _kernels.has_extras(self._model)
        self.params = np.empty(int(self._offsets[-1]), dtype=self.dtype)
        self.weights, self.biases = self._views(self.params)
        #: ``(optimiser name, state (2, params.size), steps taken)`` once one has been used.
        self._optimizer: tuple[str, np.ndarray, int] | None = None
        # Biases first, then weights, all standard normal and in float64, as network.py draws
        # them; then scaled. One seed gives the same numbers in float32 and float64.
        initial_biases = [self._rng.standard_normal(n) for n in self.sizes[1:]]
        initial_weights = [
            self._rng.standard_normal((n_out, n_in)) * INITIALISATIONS[init](n_in, n_out)
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
        for l, kind in enumerate(skip_kinds, start=1):
            if kind == 2:
                n_out, n_in = self.sizes[l], self.sizes[l - 1]
                start = int(self._offsets[l - 1]) + n_out * n_in + n_out
                view = self.params[start : start + n_out * n_in].reshape(n_out, n_in)
                view[...] = self._rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
                self.projections[l] = view
        #: ``γ`` and ``β`` of each batch-normalised (hidden) layer, views into ``params``.
        self.gammas, self.betas = [], []
        for l in range(1, len(self.sizes) - 1 if self.batch_norm else 1):
            end, n = int(self._offsets[l]), self.sizes[l]
            self.gammas.append(self.params[end - 2 * n : end - n])
            self.betas.append(self.params[end - n : end])
            self.gammas[-1][...] = 1
            self.betas[-1][...] = 0
        self.device = "cpu"
        self.to(device)

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
            _cuda_kernels()
        self.device = device
        return self

    def _gpu(self) -> Any:
        """The CUDA kernels' module when this network computes on the GPU, else None."""
        return _cuda_kernels() if self.device == "cuda" else None

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
        return (
            f"Network([{arch}], activation={activation}, output='{self.activations[-1]}', "
            f"cost='{self.cost.name}', {skips}dtype='{self.dtype.name}', "
            f"parameters={self.params.size})"
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to ``path`` atomically (``fastbp.files``: an ``.npz`` archive of
        the parameters and a JSON header; loading it never runs code)."""
        files.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """Read a network written by ``save``; every field is checked first, and a file that
        fails a check raises ``ValueError`` naming it and what is wrong."""
        return files.load(path)

    def _check_trainable(self) -> None:
        if "step" in self.activations:
            raise ValueError(
                "activation: 'step' has no useful derivative (it is 0 wherever it exists), so a "
                "network with step neurons cannot be trained by backpropagation; train a single "
                "fastbp.Perceptron by the perceptron rule instead"
            )

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer ``(weights, biases)`` views into a buffer laid out like ``params``."""
        weights, biases = [], []
        for l in range(1, self.num_layers):
            n_out, n_in = self.sizes[l], self.sizes[l - 1]
            start = self._offsets[l - 1]
            weights.append(flat[start : start + n_out * n_in].reshape(n_out, n_in))
            biases.append(flat[start + n_out * n_in : start + n_out * n_in + n_out])
        return weights, biases

    def _workspace(self, rows: int) -> tuple[np.ndarray, ...]:
        """Work buffers of the kernels for mini-batches of up to ``rows`` samples."""
        # The kernel's Python source run by the interpreter: it only allocates, and calling it
        # compiled would add a second to the first fit's compile time.
        return _kernels.workspace.py_func(self._sizes, self._units, rows, self.params)

    # --- input checking ----------------------------------------------------------------

    def _inputs(self, X: Any, name: str = "X", *, check_finite: bool = True) -> np.ndarray:
        """``X`` as a C-contiguous ``(n, sizes[0])`` array of the network's dtype."""
        arr = _as_float_array(X, name, self.dtype.type, check_finite=check_finite)
        n_in = self.sizes[0]
        if arr.ndim != 2 or arr.shape[1] != n_in:
            raise ValueError(
                f"{name}: expected a 2-D array of shape (n_samples, {n_in}), got shape {arr.shape}"
            )
        return arr

    def _targets(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Targets as ``(n, sizes[-1])`` rows: from integer class labels or from rows."""
        arr = _asarray(y, name)
        n_out = self.sizes[-1]
        if arr.ndim == 1 and n_out > 1:
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(
                    f"{name}: expected integer class labels in [0, {n_out}) or rows of width "
                    f"{n_out}, got a 1-D array of dtype {arr.dtype}"
                )
            labels = self._labels(arr, name)
            if labels.shape[0] != n:
                raise ValueError(
                    f"{name}: expected {n} labels, one per sample of X, got {labels.shape[0]}"
                )
            targets = np.zeros((n, n_out), dtype=self.dtype)
            targets[np.arange(n), labels] = 1
            return targets
        out = _as_float_array(arr, name, self.dtype.type)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        if out.ndim != 2 or out.shape[1] != n_out:
            raise ValueError(
                f"{name}: expected targets of shape (n_samples, {n_out}) or integer class "
                f"labels, got shape {out.shape}"
            )
        if out.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows, one per sample of X, got {out.shape[0]}")
        return out

    def _labels(self, y: Any, name: str = "y") -> np.ndarray:
        """Integer class labels in ``[0, n_classes)`` as an int64 array."""
        arr = np.asarray(y)
        n_classes = max(self.sizes[-1], 2)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"{name}: expected a non-empty 1-D array of class labels, got {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= n_classes:
            raise ValueError(
                f"{name}: expected class labels in [0, {n_classes}), "
                f"got values from {arr.min()} to {arr.max()}"
            )
        return arr.astype(np.int64)

    def _class_labels(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Class labels from integer labels or from one-hot (or score) rows."""
        arr = _asarray(y, name)
        if arr.ndim == 2:
            return (
                self._targets(arr, n, name).argmax(axis=1)
                if self.sizes[-1] > 1
                else (self._targets(arr, n, name)[:, 0] > 0.5).astype(np.int64)
            )
        labels = self._labels(arr, name)
        if labels.shape[0] != n:
            raise ValueError(
                f"{name}: expected {n} labels, one per sample of X, got {labels.shape[0]}"
            )
        return labels

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
        finite = np.empty(-(-X.shape[0] // _kernels.FEEDFORWARD_ROWS), dtype=np.bool_)
        wt = None
        if _kernels.uses_columns(self.sizes, self._extras):
            wt = _kernels.column_buffers(self.sizes, 0, self.dtype)[0]
            _kernels.rows_to_columns(self.weights[0], wt, 0, self.sizes[0])
        with _threads.threads(self.threads), subnormals_flushed():
            _kernels.feedforward(self.params, self._model, X, out, finite, self._extras, wt)
        if not finite.all() and not _all_finite(X):
            raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Class index of each row of ``X``: the most active output neuron.

        A network with a single output neuron predicts 1 where its output exceeds 0.5.
        """
        return self._predict(self._inputs(X, check_finite=False), "X")

    def _predict(self, X: np.ndarray, name: str) -> np.ndarray:
        return self._classes(self._feedforward(X, name))

    def _classes(self, out: np.ndarray) -> np.ndarray:
        """Class index of each row of outputs ``out``: its most active neuron, or 1 where a
        single output exceeds 0.5."""
        if self.sizes[-1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        classes = np.empty(out.shape[0], dtype=np.int64)
        _kernels.argmax_rows(out, classes)
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
        X, y = self._unpack(test_data, "test_data")
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

    def _record_score(
        self, history: dict[str, list], prefix: str, out: np.ndarray, Y: np.ndarray,
        labels: np.ndarray, lmbda: float, l1: float,
    ) -> None:  # fmt: skip
        """Append the cost and accuracy of outputs ``out`` (targets ``Y``, class ``labels``) to
        ``history``'s ``{prefix}_cost``, ``_correct`` and ``_accuracy``."""
        correct = int(np.sum(self._classes(out) == labels))
        history[f"{prefix}_cost"].append(
            self._mean_cost(out, Y) + self._penalty(lmbda, l1, out.shape[0])
        )
        history[f"{prefix}_correct"].append(correct)
        history[f"{prefix}_accuracy"].append(correct / out.shape[0])

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
        reconstruction cost per epoch.
        """
        self._check_trainable()
        if self.batch_norm:
            raise ValueError("batch_norm: pre-training is for networks without batch norm")
        inputs = self._inputs(X)
        histories = []
        for l in range(1, len(self.sizes) - 1):
            in_unit = bool(inputs.min() >= 0 and inputs.max() <= 1)
            autoencoder = Network(
                [self.sizes[l - 1], self.sizes[l], self.sizes[l - 1]],
                activation=self.activations[l - 1],
                output="sigmoid" if in_unit else "linear",
                cost="cross_entropy" if in_unit else "quadratic",
                init="scaled",
                alpha=self.alpha,
                dtype=self.dtype.name,
                seed=seed,
                threads=self.threads,
                device=self.device,
            )
            autoencoder.weights[0][...] = self.weights[l - 1]
            autoencoder.biases[0][...] = self.biases[l - 1]
            history = autoencoder.fit(
                inputs, inputs, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                monitor_training=True,
            )  # fmt: skip
            histories.append(history)
            self.weights[l - 1][...] = autoencoder.weights[0]
            self.biases[l - 1][...] = autoencoder.biases[0]
            encoder = Network(
                self.sizes[l - 1 : l + 1], activation=[], output=self.activations[l - 1],
                alpha=self.alpha, dtype=self.dtype.name, threads=self.threads,
                device=self.device,
            )  # fmt: skip
            encoder.params[...] = autoencoder.params[: encoder.params.size]
            inputs = encoder.feedforward(inputs)
        return histories

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
            for l in range(len(self.sizes) - 2):
                end, n = int(self._offsets[l + 1]), self.sizes[l + 1]
                nabla_b[l] = grad[end - n : end]  # ∂C/∂β
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
                _kernels.backward_pass(
                    self.params, self._model, X, Y, rows, ws, grad, None, self._extras
                )
            return grad
        n = X.shape[0]
        block = _kernels.BLOCK_ROWS
        n_slices = min(_MAX_SLICES, -(-n // block))
        per_slice = -(-n // (n_slices * block)) * block
        slices = np.minimum(np.arange(n_slices + 1, dtype=np.int64) * per_slice, n)
        grads = np.empty((n_slices, self.params.size), dtype=self.dtype)
        with _threads.threads(self.threads):
            _kernels.batch_gradient(self.params, self._model, X, Y, slices, grads, self._extras)
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
        _kernels.seed_generator(seed)
        p = self.dtype.type(dropout) if dropout > 0 else None
        with subnormals_flushed():
            _kernels.backward_pass(self.params, self._model, X, Y, rows, ws, grad, p, self._extras)
        zbuf, abuf, dbuf = ws[:3]

        def per_layer(buf: np.ndarray) -> list[np.ndarray]:
            cap = buf.size // int(self._units[-1])
            return [
                buf[cap * self._units[l - 1] : cap * self._units[l - 1] + m * n]
                .reshape(m, n)
                .copy()
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

    # --- training -----------------------------------------------------------------------

    def _unpack(self, data: Any, name: str) -> tuple[Any, Any]:
        """``(X, Y)`` from a pair of arrays or from the book's list of ``(x, y)`` pairs.

        A tuple ``(X, Y)`` whose ``X`` is an ndarray is a pair of arrays (its shape is checked
        later); anything else is read as a sequence of ``(x, y)`` samples.
        """
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
            return data
        try:
            pairs = list(data)
        except TypeError:
            raise TypeError(
                f"{name}: expected a pair of arrays (X, y) or a list of (x, y) pairs, "
                f"got {type(data).__name__}"
            ) from None
        if not pairs:
            raise ValueError(f"{name}: expected at least one sample, got none")
        if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
            raise TypeError(f"{name}: expected a pair of arrays (X, y) or a list of (x, y) pairs")
        xs = [_asarray(x, name).reshape(-1) for x, _ in pairs]
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"{name}: every x must have {self.sizes[0]} values")
        ys = [_asarray(y, name) for _, y in pairs]
        if all(y.ndim == 0 for y in ys):
            Y = np.stack(ys)
            if not np.issubdtype(Y.dtype, np.integer):
                raise TypeError(f"{name}: expected integer class labels, got dtype {Y.dtype}")
        else:
            if len({y.size for y in ys}) != 1:
                raise ValueError(f"{name}: every y must have the same number of values")
            Y = np.stack([y.reshape(-1) for y in ys])
        return np.stack(xs), Y

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
        X, Y = self._unpack(training_data, "training_data")
        validation = None if test_data is None else self._unpack(test_data, "test_data")
        return self.fit(
            X,
            Y,
            epochs=epochs,
            batch_size=mini_batch_size,
            lr=eta,
            validation_data=validation,
            verbose=options.pop("verbose", True),
            lmbda=lmbda,
            _names=("training_data", "mini_batch_size", "eta", "test_data"),
            **options,
        )

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
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
        verbose: bool = False,
        threads: int | None = None,
        _names: tuple[str, str, str, str] = ("X", "batch_size", "lr", "validation_data"),
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
            Learning rate ``η``: each step is ``θ ← θ − (η/m) Σₓ ∇Cₓ``.
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
            ``fastbp._kernels.optimizer_step``): plain SGD, the book's momentum
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
            ``callback(net, epoch, history)`` after each epoch's scores are recorded.
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
            atomically to this file.
        resume : path, optional
            Continue from a checkpoint written by a ``fit`` call with the same data and
            options: training goes on at the epoch after the checkpoint's, up to ``epochs``
            in all, and ends with bitwise the same parameters and history (but for the
            ``seconds``) as an uninterrupted run. A KeyboardInterrupt (Ctrl-C) takes effect at
            the end of the running epoch (an epoch is one compiled call): that epoch is rolled
            back, a checkpoint is written if ``checkpoint`` is set, and the interrupt is
            re-raised.
        verbose : bool
            Print one line per epoch (``Epoch j: k / n`` with validation data).
        threads : int, optional
            Most threads for this call (by default the network's ``threads``; None: the
            CPUs this process may use, or ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS`` if set;
            see ``fastbp._threads``). A network whose first layer has rows of 64 inputs or
            more and most of its multiply-adds (``_kernels.TEAM_MIN_FIRST_SHARE``) trains an
            epoch of ``_kernels.TEAM_MIN_EPOCH_WORK`` multiply-adds or more on a team of
            threads that stays together for the whole epoch (``_kernels.team_size``,
            ``train_epoch_columns``). Otherwise a mini-batch's larger matrix products (from
            ``_kernels.PARALLEL_MIN_WORK`` multiply-adds) are shared out over Numba's
            threads, and smaller ones stay on one thread, which is faster there. While
            other processes keep the CPUs busy, epochs run on one thread (a team that
            stalls finishes its epoch on one). The result is bitwise the same whatever the
            thread count. On ``device="cuda"`` the GPU's threads are used instead (and
            ``dropout`` is refused).

        Returns
        -------
        dict of lists
            ``epoch``, ``seconds`` (training time), with validation data ``val_cost``,
            ``val_accuracy`` and ``val_correct``, and with ``monitor_training`` the same three
            with ``train_``.

        Raises
        ------
        FloatingPointError
            If an epoch produced non-finite parameters; they are restored to their values
            before that epoch.
        """
        x_name, batch_name, lr_name, val_name = _names
        self._check_trainable()
        # X's NaN/infinity check is left to the epoch: any non-finite input makes the weights
        # it meets non-finite (∞·0 and NaN·c are NaN), which the guard below catches; only then
        # is X scanned, to blame it. That saves a pass over the data per call.
        X = self._inputs(X, x_name, check_finite=False)
        Y = self._targets(y, X.shape[0], "y" if x_name == "X" else x_name)
        epochs = _check_positive_int(epochs, "epochs", allow_zero=True)
        threads = _check_threads(threads)
        threads = self.threads if threads is None else threads
        if epochs == 0 and not _all_finite(X):  # no epoch will find it
            raise ValueError(f"{x_name}: contains NaN or infinity; expected finite values")
        batch_size = _check_positive_int(batch_size, batch_name)
        eta = _check_rate(lr, lr_name)
        with np.errstate(over="ignore"):  # the ValueError below, not numpy's cast warning
            eta_cast = self.dtype.type(eta)
        if not np.isfinite(eta_cast):
            raise ValueError(
                f"{lr_name}: {eta} overflows {self.dtype.name}; expected a smaller rate"
            )
        eta = eta_cast
        l2 = self.dtype.type(_check_penalty(lmbda, "lmbda") / X.shape[0])
        l1_over_n = self.dtype.type(_check_penalty(l1, "l1") / X.shape[0])
        dropout = self.dtype.type(_check_fraction(dropout, "dropout"))
        optimizer = _check_choice(optimizer, "optimizer", OPTIMIZERS)
        mu = _check_fraction(momentum, "momentum")
        beta1 = _check_fraction(betas[0] if isinstance(betas, tuple | list) else betas, "betas")
        beta2 = _check_fraction(betas[1] if isinstance(betas, tuple | list) else betas, "betas")
        eps = _check_rate(eps, "eps")
        clip = np.array(
            [
                0.0 if clip_norm is None else _check_rate(clip_norm, "clip_norm"),
                0.0 if clip_value is None else _check_rate(clip_value, "clip_value"),
            ],
            dtype=self.dtype,
        )
        general = optimizer != "sgd" or clip.any()
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable or None, got {callback!r}")
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError(f"{val_name}: expected a pair (X, y)")
            X_val = self._inputs(validation_data[0], val_name)
            Y_val = self._targets(validation_data[1], X_val.shape[0], val_name)
            labels_val = self._class_labels(validation_data[1], X_val.shape[0], val_name)
        schedule = _check_choice(schedule, "schedule", ("constant", "halve"))
        patience = _check_positive_int(patience, "patience")
        max_halvings = _check_positive_int(max_halvings, "max_halvings")
        if early_stopping is not None:
            early_stopping = _check_positive_int(early_stopping, "early_stopping")
        if (schedule == "halve" or early_stopping is not None) and validation_data is None:
            raise ValueError(
                f"{val_name}: the 'halve' schedule and early stopping need validation data"
            )
        checkpoint_every = _check_positive_int(checkpoint_every, "checkpoint_every")
        rng = self._rng if seed is None else np.random.default_rng(seed)
        gpu = self._gpu()
        if gpu is not None and dropout > 0:
            raise ValueError("dropout: not implemented by the CUDA kernels; use device='cpu'")

        n = X.shape[0]
        hyper = np.array([mu, beta1, beta2, eps], dtype=self.dtype)
        if gpu is not None:  # the data crosses to the GPU once, here
            trainer = gpu.Trainer(self.params, self._model, X, Y, batch_size, general)
            outputs = partial(trainer.feedforward, self.params)
            probe_gradient = partial(trainer.gradient_sum, self.params)
        else:
            ws = self._workspace(min(batch_size, n))
            outputs = self._feedforward

            def probe_gradient(rows: int) -> np.ndarray:
                return self._gradient_sum(X[:rows], Y[:rows])

        # Layer 1 in columns (``_kernels.uses_columns``): its buffers, for the whole fit.
        columns = None
        if gpu is None and not general and _kernels.uses_columns(self.sizes, self._extras):
            columns = _kernels.column_buffers(self.sizes, ws[4].size, self.dtype)
            wide = None if _kernels.narrow_after_first(self.sizes) else True

        if general:
            grad = np.empty_like(self.params)
            if self._optimizer is None or self._optimizer[0] != optimizer:
                self._optimizer = (optimizer, np.zeros((2, self.params.size), self.dtype), 0)
        order = np.arange(n, dtype=np.int64)
        history: dict[str, list] = {"epoch": [], "seconds": [], "lr": []}
        best_accuracy, best_epoch, best_params, halvings = -1.0, -1, None, 0
        scored = []
        if validation_data is not None:
            scored.append(("val", X_val, Y_val, labels_val))
        if monitor_training:
            scored.append(("train", X, Y, self._class_labels(y, X.shape[0], "y")))
        for prefix, *_ in scored:
            history.update(
                {f"{prefix}_cost": [], f"{prefix}_accuracy": [], f"{prefix}_correct": []}
            )
        if monitor_gradients:
            history.update(grad_norm_b=[], grad_norm_w=[])
            probe = min(n, 1000)
        # What must match for a checkpoint to be resumed by this call.
        fingerprint = {
            "n": n, "batch_size": batch_size, "lr": float(lr), "optimizer": optimizer,
            "lmbda": float(lmbda), "l1": float(l1), "dropout": float(dropout),
            "shuffle": bool(shuffle), "seed": seed, "scored": [p for p, *_ in scored],
        }  # fmt: skip
        first_epoch = 0
        if resume is not None:
            loop, arrays = files.load_checkpoint(resume, self)
            if loop.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"resume: {resume} was written by a fit call with other data or options "
                    f"({loop.get('fingerprint')}), not {fingerprint}"
                )
            self.params[...] = arrays["params"]
            if "bn_stats" in arrays:
                self._bn_stats[...] = arrays["bn_stats"]
            if "optimizer_state" in arrays:
                self._optimizer = (loop["optimizer"], arrays["optimizer_state"], loop["steps"])
            rng.bit_generator.state = loop["rng"]
            history = loop["history"]
            first_epoch = loop["next_epoch"]
            eta = self.dtype.type(loop["eta"])
            best_accuracy, best_epoch, halvings = (
                loop["best_accuracy"], loop["best_epoch"], loop["halvings"]
            )  # fmt: skip
            best_params = arrays.get("best_params")

        def save_checkpoint(next_epoch: int) -> None:
            loop = {
                "fingerprint": fingerprint, "next_epoch": next_epoch, "history": history,
                "rng": rng.bit_generator.state, "eta": float(eta),
                "best_accuracy": best_accuracy, "best_epoch": best_epoch, "halvings": halvings,
                "optimizer": None if self._optimizer is None else self._optimizer[0],
                "steps": 0 if self._optimizer is None else int(self._optimizer[2]),
            }  # fmt: skip
            files.save_checkpoint(checkpoint, self, loop, best_params)

        no_backup = np.empty((0, 0), dtype=self.dtype)
        steps = 0 if not general else self._optimizer[2]

        def run_epoch(order, mask_seed, t0, backup, state_backup):
            """One compiled epoch: ``(steps, first non-finite mini-batch, its first non-finite
            layer)``, the last two -1 when all is finite (always, without ``backup``)."""
            if gpu is not None:
                return trainer.epoch(
                    self.params, state if general else None, order, OPTIMIZERS[optimizer], eta,
                    hyper, l2, l1_over_n, clip, t0, check=backup.size > 0,
                )  # fmt: skip
            # None, not 0, for no dropout and for no threads: the compiler then leaves those
            # branches out (each costs compile time, not run time).
            p = dropout if dropout > 0 else None
            n_threads = _threads.threads_for(threads)
            threads_from = _kernels.threading_threshold(self.sizes, batch_size, n_threads)
            args = (self.params, self._model, X, Y, order, batch_size, eta, l2, l1_over_n,
                    p, mask_seed, ws)  # fmt: skip
            team = 1
            if not general and columns is not None and not backup.size:
                # (a replay is bitwise the same on one thread)
                team = _kernels.team_size(self.sizes, n, batch_size, n_threads, self._extras)
            if team > 1:
                flags = columns[2]
                flags[:] = 0
                start = time.perf_counter_ns()
                with subnormals_flushed():
                    waited = _train_in_team(
                        team, (team, *args, None, columns, backup.ravel(), wide)
                    )
                took_over = bool(flags[_kernels.LINE * _kernels.TOOK_OVER])
                _threads.record_team(took_over, waited, time.perf_counter_ns() - start)
                return 0, -1, -1
            watch = threads_from is not None  # Numba's threads: did they wait for CPUs?
            with _threads.threads(n_threads, watch=watch), subnormals_flushed():
                if general:
                    return _kernels.train_epoch_general(
                        self.params, self._model, X, Y, order, batch_size, eta, l2, l1_over_n,
                        p, mask_seed, ws, grad, state, OPTIMIZERS[name], hyper, clip, t0,
                        threads_from, backup.ravel(), state_backup, self._extras,
                    )  # fmt: skip
                if columns is None:
                    failed, layer = _kernels.train_epoch(
                        *args, threads_from, backup.ravel(), self._extras
                    )
                    return 0, failed, layer
                failed, layer = _kernels.train_epoch_columns(
                    1, *args, threads_from, columns, backup.ravel(), wide
                )
                return 0, failed, layer

        for epoch in range(first_epoch, epochs):
            rng_before = rng.bit_generator.state
            if shuffle:
                order = rng.permutation(n).astype(np.int64)
            mask_seed = int(rng.integers(2**31)) if dropout > 0 else 0
            last_good = self.params.copy()
            last_good_stats = self._bn_stats.copy()
            if general:
                name, state, steps = self._optimizer
                last_good_state = state.copy()
            steps_before = steps
            start = time.perf_counter()
            recorded = False
            n_recorded = len(history["epoch"])
            try:
                steps, _, _ = run_epoch(order, mask_seed, steps, no_backup, no_backup)
                seconds = time.perf_counter() - start
                if not _all_finite(self.params):
                    self.params[...] = last_good
                    self._bn_stats[...] = last_good_stats
                    if general:
                        state[...] = last_good_state
                    if not _all_finite(X):
                        raise ValueError(
                            f"{x_name}: contains NaN or infinity; expected finite values"
                        )
                    # Replay the epoch (same order, same masks) checking every step, to name
                    # the mini-batch and keep the parameters from just before it.
                    steps, failed, layer = run_epoch(
                        order, mask_seed, steps_before, np.empty_like(self.params),
                        np.empty_like(state) if general else no_backup,
                    )  # fmt: skip
                    if general:
                        self._optimizer = (name, state, int(steps))
                    raise FloatingPointError(
                        f"epoch {epoch}, mini-batch {failed}, layer {layer}: training produced "
                        "non-finite "
                        f"parameters (lr={lr} may be too large); the parameters are the last "
                        "finite ones, from before that mini-batch"
                    )
                if general:
                    self._optimizer = (name, state, int(steps))
                history["epoch"].append(epoch)
                history["seconds"].append(seconds)
                history["lr"].append(float(eta))
                for prefix, X_s, Y_s, labels_s in scored:
                    self._record_score(history, prefix, outputs(X_s), Y_s, labels_s, lmbda, l1)
                if monitor_gradients:
                    norms = self._speeds(probe_gradient(probe) / probe)
                    problem = _record_gradient_norms(history, norms)
                    if problem is not None:
                        warnings.warn(f"epoch {epoch}: {problem}", GradientWarning, stacklevel=2)
                recorded = True
            except KeyboardInterrupt:
                # An epoch is one compiled call, so Ctrl-C lands between calls. Leave the
                # network consistent with the history: roll back an epoch not yet recorded.
                if not recorded:
                    self.params[...] = last_good
                    self._bn_stats[...] = last_good_stats
                    if general:
                        state[...] = last_good_state
                        self._optimizer = (name, state, steps_before)
                    rng.bit_generator.state = rng_before
                    for values in history.values():
                        del values[n_recorded:]
                if checkpoint is not None:
                    save_checkpoint(epoch + recorded)
                raise
            line = f"Epoch {epoch}"
            if validation_data is not None:
                line += f": {history['val_correct'][-1]} / {X_val.shape[0]}"
            else:
                line += " complete"
            if callback is not None:
                callback(self, epoch, history)
            if verbose:
                print(line, flush=True)
            stop = False
            if validation_data is not None:
                if history["val_accuracy"][-1] > best_accuracy:
                    best_accuracy, best_epoch = history["val_accuracy"][-1], epoch
                    if early_stopping is not None:
                        best_params = self.params.copy()
                stale = epoch - best_epoch
                stop = early_stopping is not None and stale >= early_stopping
                if schedule == "halve" and stale > 0 and stale % patience == 0:
                    halvings += 1
                    eta = self.dtype.type(eta / 2)
                    stop = stop or halvings == max_halvings
            if checkpoint is not None and ((epoch + 1) % checkpoint_every == 0 or stop):
                save_checkpoint(epoch + 1)
            if stop:
                break
        if best_params is not None:
            self.params[...] = best_params
            history["best_epoch"] = [best_epoch]
        return history
