"""``RecurrentNetwork``: an Elman RNN, an LSTM or a GRU, trained by backpropagation through time.

The second model on the shared trainer (``fastbp.training.Trainer``): the network holds its
architecture and its one flat parameter buffer (``RecurrentLayout`` says where each layer
sits), validates every input once, and hands the compiled kernels of
``fastbp.kernels.recurrent`` plain C-contiguous arrays. The optimisers, clipping, penalties,
schedules, early stopping, checkpoints and the non-finite guard are the trainer's and the
shared kernels'.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numba
import numpy as np

from . import _storage, _threads, kernels
from ._checks import _as_float_array, _asarray, _check_dtype, _check_targets
from ._epochs import clip_limits, hyper_parameters
from ._fpmode import subnormals_flushed
from .costs import COSTS
from .kernels.recurrent import GRU, LSTM, RNN, RecurrentModel, RecurrentWork
from .registry import ACTIVATIONS, OPTIMIZERS
from .training import FitOptions, ScoreSet, Trainer, _check_choice

__all__ = ["CELLS", "RecurrentLayout", "RecurrentNetwork"]

#: Cell name → (kernel code, gates).
CELLS: dict[str, tuple[int, int]] = {"rnn": (RNN, 1), "lstm": (LSTM, 4), "gru": (GRU, 3)}

#: Output activation → its matched cost (whose output error is ``a − y``).
_OUTPUTS = {"softmax": "log_likelihood", "sigmoid": "cross_entropy", "linear": "quadratic"}

#: Largest mini-batch the inference and gradient calls run at once.
_BLOCK = 256

#: Fewest samples of a mini-batch per thread: a thread's share is computed 4 rows at a time
#: (``kernels.accumulate_product``), and a smaller share does not repay the threads' meetings.
_ROWS_PER_THREAD = 4

#: Compiled calls a training epoch is split into, so that contention met early in an epoch
#: moves the rest of it to one thread (``fastbp._threads.Contention``).
_CALLS_PER_EPOCH = 8


@dataclass(frozen=True)
class RecurrentLayout:
    """Where a recurrent network's parameters sit in its flat buffer.

    ``widths`` is ``(d, H₁, …, H_L, n_out)``. Recurrent layer ``l`` (0-based) holds its ``W``
    (``(n_in + H, G·H)``, row ``j`` for input ``j`` of ``[xₜ, hₜ₋₁]``), its ``b`` (``G·H``)
    and, for the GRU, ``b_hn`` (``H``); the output layer its ``V`` (``(H_L, n_out)``) and
    ``c``. Gates in PyTorch's order: LSTM ``i, f, g, o``; GRU ``r, z, n``.
    """

    widths: tuple[int, ...]
    cell: str

    @property
    def gates(self) -> int:
        return CELLS[self.cell][1]

    @property
    def layers(self) -> int:
        return len(self.widths) - 2

    def count(self, l: int) -> int:
        """Parameters of recurrent layer ``l`` (``l == layers``: the output layer)."""
        if l == self.layers:
            return self.widths[-2] * self.widths[-1] + self.widths[-1]
        n_in, h = self.widths[l], self.widths[l + 1]
        return (n_in + h) * self.gates * h + self.gates * h + (h if self.cell == "gru" else 0)

    @cached_property
    def offsets(self) -> np.ndarray:
        counts = [self.count(l) for l in range(self.layers + 1)]
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def views(self, flat: np.ndarray, l: int) -> dict[str, np.ndarray]:
        """Layer ``l``'s views: ``W``, ``b`` (and ``b_hn``), or the output's ``V``, ``c``."""
        start = int(self.offsets[l])
        if l == self.layers:
            h, n_out = self.widths[-2], self.widths[-1]
            return {
                "V": flat[start : start + h * n_out].reshape(h, n_out),
                "c": flat[start + h * n_out : start + h * n_out + n_out],
            }
        n_in, h = self.widths[l], self.widths[l + 1]
        gh = self.gates * h
        size = (n_in + h) * gh
        out = {
            "W": flat[start : start + size].reshape(n_in + h, gh),
            "b": flat[start + size : start + size + gh],
        }
        if self.cell == "gru":
            out["b_hn"] = flat[start + size + gh : start + size + gh + h]
        return out

    def weight_mask(self) -> np.ndarray:
        """1 where the penalties apply (``W`` and ``V``), else 0."""
        mask = np.zeros(self.size)
        for l in range(self.layers + 1):
            key = "V" if l == self.layers else "W"
            self.views(mask, l)[key][...] = 1
        return mask


def _check_width(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class RecurrentNetwork:
    """A recurrent network: stacked recurrent layers and an output layer, trained by BPTT.

    Parameters
    ----------
    n_inputs : int
        Features per step, ``d``. Inputs are sequences of shape ``(n, T, d)``.
    hidden : int or sequence of int
        Units per recurrent layer, bottom first: ``64`` or ``[64, 64]``.
    n_outputs : int
        Output units (classes, or regression targets).
    cell : {"rnn", "lstm", "gru"}
        Elman's ``hₜ = tanh(W [xₜ, hₜ₋₁] + b)``, the LSTM or the GRU (README: "Recurrent
        networks").
    output : {"softmax", "linear", "sigmoid"}
        The output activation; the cost is its matched one: log-likelihood, quadratic
        ``½‖a − y‖²``, cross-entropy.
    many_to_many : bool
        An output at every step (targets ``(n, T)`` labels or ``(n, T, n_out)``), rather than
        from each sequence's last state (targets ``(n,)`` or ``(n, n_out)``). The cost of a
        sequence is the sum over its steps.
    bptt : int or None
        Truncated BPTT: the δ recursion is cut between steps ``t − 1`` and ``t`` whenever ``t``
        is a multiple of ``bptt`` (the forward pass is not). None: the full recursion.
    forget_bias : float
        The LSTM's initial forget-gate bias (1: Jozefowicz et al. 2015).
    chrono : int or None
        The chrono initialisation (Tallec & Ollivier 2018) for dependencies of up to
        ``chrono`` steps, for the LSTM and the GRU: each unit's forget-gate bias is drawn as
        ``log u``, ``u ~ U(1, chrono − 1)``, and its input-gate bias is ``−log u`` (the GRU:
        its update gate's bias is ``log u``), so that at initialisation the units keep their
        state for about ``u`` steps, spread from 1 to ``chrono``, rather than
        ``1/(1 − σ(1)) ≈ 4``. None: every forget gate starts at ``forget_bias``.
    seed, dtype
        The generator of the initial parameters (and of the order of the samples), and the
        floating type of everything. Parameters start as PyTorch's do: U(−1/√H, 1/√H), with
        ``V`` and ``c`` U(−1/√H_L, 1/√H_L).

    Training epochs run on ``fit(threads=…)`` threads (by default the CPUs this process may
    use, at most one per 4 samples of a mini-batch; one while other work keeps the CPUs
    busy); the weights do not depend on the thread count.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: int | Sequence[int],
        n_outputs: int,
        *,
        cell: str = "lstm",
        output: str = "softmax",
        many_to_many: bool = False,
        bptt: int | None = None,
        forget_bias: float = 1.0,
        chrono: int | None = None,
        seed: int | None = None,
        dtype: str = "float32",
    ) -> None:
        d = _check_width(n_inputs, "n_inputs")
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = [hidden]
        if isinstance(hidden, str) or not isinstance(hidden, Sequence) or not hidden:
            raise ValueError(
                f"hidden: expected a width or a non-empty list of widths, got {hidden!r}"
            )
        hs = [_check_width(h, f"hidden[{i}]") for i, h in enumerate(hidden)]
        n_out = _check_width(n_outputs, "n_outputs")
        self.cell = _check_choice(cell, "cell", CELLS)
        self.output = _check_choice(output, "output", _OUTPUTS)
        self.cost = COSTS[_OUTPUTS[self.output]]
        if not isinstance(many_to_many, bool | np.bool_):
            raise TypeError(f"many_to_many: expected True or False, got {many_to_many!r}")
        self.many_to_many = bool(many_to_many)
        if bptt is not None:
            bptt = _check_width(bptt, "bptt")
        self.bptt = bptt
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) or not (
            np.isfinite(forget_bias)
        ):  # fmt: skip
            raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
        self.forget_bias = float(forget_bias)
        if chrono is not None:
            chrono = _check_width(chrono, "chrono")
            if chrono < 3:
                raise ValueError(f"chrono: expected at least 3 steps, got {chrono}")
            if self.cell == "rnn":
                raise ValueError(
                    "chrono: the chrono initialisation needs gates (cell 'lstm' or 'gru')"
                )
            if self.forget_bias != 1.0:
                raise ValueError("chrono: give either chrono or forget_bias, not both")
        self.chrono = chrono
        self.dtype = np.dtype(_check_dtype(dtype))
        self.widths = (d, *hs, n_out)
        self.layout = RecurrentLayout(self.widths, self.cell)
        self.params = np.empty(self.layout.size, dtype=self.dtype)
        #: Per recurrent layer (then the output layer): views into ``params``.
        self.layers = [self.layout.views(self.params, l) for l in range(len(hs) + 1)]
        self._rng = np.random.default_rng(seed)
        for l, views in enumerate(self.layers):
            bound = 1 / np.sqrt(self.widths[l + 1] if l < len(hs) else self.widths[-2])
            for view in views.values():
                view[...] = self._rng.uniform(-bound, bound, view.shape)
            if l < len(hs):
                self._gate_biases(views["b"], self.widths[l + 1])
        self._model = RecurrentModel(
            np.int64(CELLS[self.cell][0]),
            np.array(self.widths, dtype=np.int64),
            self.layout.offsets,
            np.int64(ACTIVATIONS[self.output].code),
            self.many_to_many,
            np.int64(bptt or 0),
        )
        #: ``(optimiser name, state (2, params.size), steps taken)`` once one has been used.
        self._optimizer: tuple[str, np.ndarray, int] | None = None
        self._lengths: dict[int, np.ndarray] = {}

    def _gate_biases(self, b: np.ndarray, h: int) -> None:
        """Set the remembering gates' initial biases: the LSTM's forget gate (columns ``h``
        to ``2h``, and with ``chrono`` its input gate, ``0`` to ``h``), the GRU's update gate
        (``h`` to ``2h``) with ``chrono``."""
        if self.chrono is not None:
            keep = np.log(self._rng.uniform(1.0, self.chrono - 1.0, h))
            b[h : 2 * h] = keep
            if self.cell == "lstm":
                b[:h] = -keep
        elif self.cell == "lstm":
            b[h : 2 * h] = self.forget_bias

    def __repr__(self) -> str:
        hidden = list(self.widths[1:-1])
        return (
            f"RecurrentNetwork({self.widths[0]}, {hidden}, {self.widths[-1]}, cell={self.cell!r}, "
            f"output={self.output!r}, many_to_many={self.many_to_many}, "
            f"dtype='{self.dtype.name}', parameters={self.params.size})"
        )

    # --- input checking ------------------------------------------------------------------

    def _inputs(self, X: Any, name: str = "X") -> np.ndarray:
        arr = _as_float_array(X, name, self.dtype.type)
        d = self.widths[0]
        if arr.ndim != 3 or arr.shape[2] != d:
            raise ValueError(
                f"{name}: expected a 3-D array of shape (n_sequences, n_steps, {d}), "
                f"got shape {arr.shape}"
            )
        if arr.shape[1] == 0:
            raise ValueError(f"{name}: expected sequences of at least one step, got {arr.shape}")
        return arr

    def _check_lengths(self, lengths: Any, X: np.ndarray, name: str = "lengths") -> np.ndarray:
        n, T = X.shape[:2]
        if lengths is None:
            return np.full(n, T, dtype=np.int64)
        arr = _asarray(lengths, name)
        if arr.shape != (n,):
            raise ValueError(
                f"{name}: expected one length per sequence, shape ({n},), got {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
        if arr.min() < 1 or arr.max() > T:
            raise ValueError(f"{name}: expected lengths from 1 to {T} (the steps of X), got "
                             f"{arr.min()} to {arr.max()}")  # fmt: skip
        return np.ascontiguousarray(arr, dtype=np.int64)

    def _targets(self, y: Any, X: np.ndarray, name: str = "y") -> np.ndarray:
        """Targets as ``(n, S, n_out)``: ``S = T`` many-to-many, else 1."""
        n, T = X.shape[:2]
        n_out = self.widths[-1]
        arr = _asarray(y, name)
        if not self.many_to_many:
            return _check_targets(arr, n, n_out, self.dtype.type, name).reshape(n, 1, n_out)
        if arr.ndim >= 2 and arr.shape[:2] == (n, T):
            flat = arr.reshape(n * T, *arr.shape[2:])
            return _check_targets(flat, n * T, n_out, self.dtype.type, name).reshape(n, T, n_out)
        raise ValueError(f"{name}: expected targets of shape ({n}, {T}) or ({n}, {T}, {n_out}), "
                         f"got {arr.shape}")  # fmt: skip

    def _work(self, rows: int, T: int, norms: bool = True) -> RecurrentWork:
        """Work buffers for the kernels; every kernel call starts from one, so the threading
        layer is started here (``_threads.start_threading_layer``)."""
        _threads.start_threading_layer()
        L = len(self.widths) - 2
        hm = max(self.widths[1:-1])
        a = 1 if self.cell == "rnn" else 4
        z = self.dtype
        n_out = self.widths[-1]
        dzh = (T, rows, 4 * hm) if self.cell == "gru" else (0, 0, 0)
        return RecurrentWork(
            np.zeros((T, rows, self.widths[0]), z), np.zeros((L, T + 1, rows, hm), z),
            np.zeros((L, T + 1, rows, hm), z), np.zeros((L, T, rows, a * hm), z),
            np.zeros((rows, 3 * hm), z), np.zeros((T if self.many_to_many else 1, rows, n_out), z),
            np.zeros((T, rows, hm), z), np.zeros((T, rows, hm), z), np.zeros((rows, hm), z),
            np.zeros((rows, hm), z), np.zeros((T, rows, 4 * hm), z), np.zeros(dzh, z),
            np.zeros((rows, n_out), z), np.zeros(rows, np.int64), np.zeros((rows, hm), z),
            np.zeros(rows, np.int64), np.zeros((L, T) if norms else (0, 0), z),
            np.zeros_like(self.params),
        )  # fmt: skip

    # --- inference -----------------------------------------------------------------------

    def _outputs(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        S = X.shape[1] if self.many_to_many else 1
        out = np.empty((X.shape[0], S, self.widths[-1]), dtype=self.dtype)
        ws = self._work(min(_BLOCK, X.shape[0]), X.shape[1])
        with subnormals_flushed():
            kernels.predict_sequences(self.params, self._model, X, lengths, ws, out)
        return out

    def feedforward(self, X: Any, lengths: Any = None) -> np.ndarray:
        """The outputs: ``(n, n_out)`` from each sequence's last step, or ``(n, T, n_out)``
        many-to-many (padding steps included: ignore them)."""
        X = self._inputs(X)
        out = self._outputs(X, self._check_lengths(lengths, X))
        return out if self.many_to_many else out[:, 0]

    def predict(self, X: Any, lengths: Any = None) -> np.ndarray:
        """The class of each sequence (or step): the index of the largest output."""
        return np.argmax(self.feedforward(X, lengths), axis=-1)

    def cost_of(self, X: Any, y: Any, lengths: Any = None) -> float:
        """The mean cost ``C = (1/n) Σₓ Σₜ Cₓ,ₜ`` (without penalties)."""
        X = self._inputs(X)
        lengths = self._check_lengths(lengths, X)
        Y = self._targets(y, X)
        return self._cost(self._outputs(X, lengths), Y, lengths)

    def _cost(self, out: np.ndarray, Y: np.ndarray, lengths: np.ndarray) -> float:
        per = self.cost.fn(out.astype(np.float64), Y.astype(np.float64))  # (n, S)
        if self.many_to_many:
            per = per * (np.arange(out.shape[1]) < lengths[:, None])
        return float(per.sum() / out.shape[0])

    # --- gradients -----------------------------------------------------------------------

    def _gradient(
        self, X: np.ndarray, Y: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(Σₓ ∇Cₓ, Σₓ ‖∂Cₓ/∂hₜ‖² per layer and step)`` over all of ``X``, ``_BLOCK``
        sequences at a time (the work buffers keep every step's values of a block)."""
        n = X.shape[0]
        ws = self._work(min(n, _BLOCK), X.shape[1])
        grad = np.empty_like(self.params)
        total = np.zeros_like(self.params)
        norms = np.zeros(ws.norms.shape)
        rows = np.arange(n, dtype=np.int64)
        with subnormals_flushed():
            for start in range(0, n, _BLOCK):
                m = min(_BLOCK, n - start)
                kernels.sequence_gradient(self.params, self._model, X, Y, lengths,
                                          rows[start : start + m], m, ws, grad, 1)  # fmt: skip
                total += grad
                norms += ws.norms
        return total, norms

    def gradient(self, X: Any, y: Any, lengths: Any = None) -> np.ndarray:
        """The mean cost's gradient ``(1/n) Σₓ ∇Cₓ``, laid out like ``params``."""
        X = self._inputs(X)
        lengths = self._check_lengths(lengths, X)
        grad, _ = self._gradient(X, self._targets(y, X), lengths)
        return grad / X.shape[0]

    def gradient_norms(self, X: Any, y: Any, lengths: Any = None) -> np.ndarray:
        """``‖∂C/∂hₜ‖`` of the mean cost ``C`` over ``X``, for every recurrent layer and step:
        an array ``(layers, T)`` (the recurrent twin of the per-layer speeds of chapter 5;
        the total derivative, through the outputs and the steps after ``t``)."""
        X = self._inputs(X)
        lengths = self._check_lengths(lengths, X)
        _, norms = self._gradient(X, self._targets(y, X), lengths)
        return np.sqrt(norms) / X.shape[0]

    # --- training ------------------------------------------------------------------------

    def fit(
        self, X: Any, y: Any, *, epochs: int, batch_size: int, lr: float,
        lengths: Any = None, validation_data: tuple[Any, ...] | None = None, **options: Any,
    ) -> dict[str, list]:  # fmt: skip
        """Train by mini-batch gradient descent with BPTT; one compiled call per epoch.

        ``X`` is ``(n, T, d)``, ``y`` the targets (see ``many_to_many``), ``lengths`` each
        sequence's steps (the rest is padding, ignored by the cost and the gradients);
        ``validation_data`` is ``(X, y)`` or ``(X, y, lengths)``. The other options are
        ``Network.fit``'s (``optimizer``, ``momentum``, ``betas``, ``eps``, ``rho``, ``lmbda``,
        ``l1``, ``clip_norm``, ``clip_value``, ``schedule``, ``early_stopping``,
        ``checkpoint``, ``resume``, ``seed``, ``shuffle``, ``monitor_training``,
        ``monitor_gradients``, ``callback``, ``verbose``) and behave the same, on the same
        ``fastbp.training.Trainer``; ``dropout`` is not implemented for recurrent layers.
        Returns the history.
        """
        opts = FitOptions.validated(epochs=epochs, batch_size=batch_size, lr=lr, **options)
        if opts.dropout > 0:
            raise ValueError("dropout: not implemented for recurrent networks; expected 0")
        X = self._inputs(X)
        lengths = self._check_lengths(lengths, X)
        Y = self._targets(y, X)
        scored = []
        self._lengths = {id(X): lengths}
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data: expected (X, y) or (X, y, lengths)")
            Xv = self._inputs(validation_data[0], "validation_data")
            lv = self._check_lengths(
                validation_data[2] if len(validation_data) == 3 else None, Xv, "validation_data"
            )
            Yv = self._targets(validation_data[1], Xv, "validation_data")
            self._lengths[id(Xv)] = lv
            scored.append(ScoreSet("val", Xv, Yv, np.argmax(Yv, axis=-1)))
        if (opts.schedule == "halve" or opts.early_stopping is not None) and not scored:
            raise ValueError(
                "validation_data: the 'halve' schedule and early stopping need validation data"
            )
        if opts.monitor_training:
            scored.append(ScoreSet("train", X, Y, np.argmax(Y, axis=-1)))
        rng = self._rng if opts.seed is None else np.random.default_rng(opts.seed)
        try:
            return Trainer(self, X, Y, opts, scored, rng).run()
        finally:
            self._lengths = {}

    # The Trainable protocol (fastbp.training).

    def _training_state(self) -> dict[str, np.ndarray]:
        return {}

    def _epochs(self, X: np.ndarray, Y: np.ndarray, options: FitOptions) -> _RecurrentEpochs:
        return _RecurrentEpochs(self, X, Y, self._lengths[id(X)], options)

    def _score(self, out: np.ndarray, Y: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        # ``out`` is ``_RecurrentEpochs.outputs``': (n, n_out), or (n, T, n_out) with NaN at
        # padding.
        out = out.reshape(out.shape[0], -1, out.shape[-1])
        labels = labels.reshape(out.shape[0], -1)
        lengths = np.sum(~np.isnan(out[:, :, 0]), axis=1) if self.many_to_many else None
        out = np.nan_to_num(out)
        cost = self._cost(out, Y, lengths)
        if self.output != "softmax":
            return cost, 0
        hits = np.argmax(out, axis=-1) == labels  # (n, S)
        if self.many_to_many:  # a sequence is right when every one of its steps is
            hits = hits | (np.arange(out.shape[1]) >= lengths[:, None])
        return cost, int(hits.all(axis=1).sum())

    def _classes(self, out: np.ndarray) -> np.ndarray:
        """The class of each output row (the index of its largest value)."""
        return np.argmax(out, axis=-1)

    def _penalty(self, lmbda: float, l1: float, n: int) -> float:
        w = self.params[self.layout.weight_mask() > 0].astype(np.float64)
        return float(lmbda / (2 * n) * np.sum(w * w) + l1 / n * np.sum(np.abs(w)))

    def _speeds(self, grad: np.ndarray) -> dict[str, np.ndarray]:
        weights, biases = [], []
        for l in range(len(self.layers)):
            views = self.layout.views(grad.astype(np.float64), l)
            w = views.pop("W", None)
            w = views.pop("V") if w is None else w
            weights.append(np.linalg.norm(w))
            biases.append(np.linalg.norm(np.concatenate(list(views.values()))))
        return {"bias": np.array(biases), "weight": np.array(weights)}

    def _spec(self) -> dict[str, Any]:
        return {
            "model": "recurrent",
            "widths": list(self.widths),
            "cell": self.cell,
            "output": self.output,
            "many_to_many": self.many_to_many,
            "bptt": self.bptt,
            "dtype": self.dtype.name,
        }

    # --- files ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to ``path`` atomically (``fastbp._storage``; never pickled)."""
        _storage.save_model(path, self._spec(), {"params": self.params})

    def to_onnx(self, path: str | os.PathLike[str]) -> None:
        """Write the prediction path to ``path`` as an ONNX model, atomically
        (``fastbp.onnx_recurrent``; needs ``pip install "fastbp[onnx]"``): input ``input``
        ``(N, T, d)`` of full-length sequences; outputs ``output`` (``feedforward``) and
        ``label`` (``predict``), in the network's dtype and int64."""
        from . import onnx_recurrent

        onnx_recurrent.export(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RecurrentNetwork:
        """Read a network written by ``save``; a file that fails a check raises
        ``ValueError`` naming it and what is wrong."""
        fail = _storage.model_error
        header, arrays = _storage.read_model(path, ())
        if header.get("model") != "recurrent":
            raise fail(path, "not a recurrent network (load it with fastbp.Network.load)")
        widths = header.get("widths")
        if not isinstance(widths, list) or len(widths) < 3:
            raise fail(path, "header field 'widths' is missing or of the wrong type")
        try:
            net = cls(
                widths[0], widths[1:-1], widths[-1], cell=header.get("cell"),
                output=header.get("output"), many_to_many=header.get("many_to_many"),
                bptt=header.get("bptt"), dtype=header.get("dtype"),
            )  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise fail(path, f"bad architecture ({exc})") from None
        params = arrays["params"]
        if params.dtype != net.dtype or params.shape != net.params.shape:
            raise fail(path, "the parameters do not match the architecture")
        if _storage.digest([params]) != header.get("sha256"):
            raise fail(path, "the parameters do not match their SHA-256 (corrupted)")
        if not np.isfinite(params).all():
            raise fail(path, "the parameters contain NaN or infinity")
        net.params[...] = params
        return net


class _RecurrentEpochs:
    """The compiled epochs of one ``fit`` of a ``RecurrentNetwork``, for the trainer."""

    def __init__(self, net: RecurrentNetwork, X: np.ndarray, Y: np.ndarray,
                 lengths: np.ndarray, options: FitOptions) -> None:  # fmt: skip
        self.net, self.X, self.Y, self.lengths = net, X, Y, lengths
        self.batch_size = min(options.batch_size, X.shape[0])
        self.ws = net._work(self.batch_size, X.shape[1], norms=False)
        self.grad = np.empty_like(net.params)
        self.code = OPTIMIZERS[options.optimizer].code
        self.hyper = hyper_parameters(options, net.dtype)
        self.clip = clip_limits(options, net.dtype)
        self.no_state = np.zeros((2, 0), dtype=net.dtype)
        self.threads = options.threads

    def parts(self) -> int:
        """Threads for this fit's epochs: ``fastbp._threads.threads_for`` (the CPUs, or one
        while other work keeps them busy), at most one per ``_ROWS_PER_THREAD`` samples."""
        n = _threads.threads_for(self.threads)
        return max(1, min(n, numba.config.NUMBA_NUM_THREADS, self.batch_size // _ROWS_PER_THREAD))

    def run(
        self, order: np.ndarray, mask_seed: int, eta: Any, l2: Any, l1: Any,
        state: np.ndarray | None, t0: int, backup: np.ndarray, state_backup: np.ndarray,
    ) -> tuple[int, int, int]:  # fmt: skip
        """The epoch in ``_CALLS_PER_EPOCH`` compiled calls over whole mini-batches (the same
        steps in the same order as one call, so the same parameters), the threads chosen
        before each: threads that met contention in two calls in a row send the rest of the
        epoch to one thread, not only the next epoch."""
        net = self.net
        if state is None:
            state = self.no_state
        if state_backup.size == 0:
            state_backup = self.no_state
        size = self.batch_size
        batches = -(-order.shape[0] // size)
        per_call = -(-batches // _CALLS_PER_EPOCH) * size
        steps = t0
        for start in range(0, order.shape[0], per_call):
            parts = self.parts()
            with _threads.threads(parts, watch=parts > 1), subnormals_flushed():
                steps, failed, layer = kernels.train_epoch_recurrent(
                    net.params, net._model, self.X, self.Y, self.lengths,
                    order[start : start + per_call], size, eta, l2, l1, self.grad, state,
                    self.code, self.hyper, self.clip, steps, backup.ravel(), state_backup,
                    self.ws, parts,
                )  # fmt: skip
            if failed >= 0:
                return int(steps), int(failed) + start // size, int(layer)
        return int(steps), -1, -1

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_out)``, or many-to-many ``(n, T, n_out)`` with NaN at the padding."""
        lengths = self.net._lengths.get(id(X))
        if lengths is None:
            lengths = np.full(X.shape[0], X.shape[1], dtype=np.int64)
        out = self.net._outputs(X, lengths)
        if not self.net.many_to_many:
            return out[:, 0]
        out[np.arange(out.shape[1]) >= lengths[:, None]] = np.nan
        return out

    def probe_gradient(self, rows: int) -> np.ndarray:
        grad, _ = self.net._gradient(self.X[:rows], self.Y[:rows], self.lengths[:rows])
        return grad
