"""The training loop every model shares, and the options that drive it.

``Trainer`` runs epochs of mini-batch training for any model that follows ``Trainable``: the
order of the samples and its random generator, scoring and history, the learning-rate schedule
and early stopping, callbacks and progress lines, checkpoints and resuming, the guard against
non-finite parameters (with the replay that names the mini-batch) and the roll-back on Ctrl-C.
The model supplies what only it knows: its parameters and other state, how to run one
compiled epoch over an order (``Trainable._epochs``) and how to score its outputs.

``FitOptions`` holds every option of ``fit``, validated once. Its fields are the options that
decide what a run computes, except those marked ``run=True`` in their metadata (how the run is
carried out: its length, files, printing, threads). A checkpoint records the others
(``FitOptions.fingerprint``), and resuming refuses a call whose options differ from them: a new
option is covered by being a field, with nothing else to keep in step.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import _storage
from ._checks import (
    _all_finite,
    _check_positive_int,
    _check_rate,
    _check_threads,
)
from .diagnostics import CollapseWarning, GradientWarning, diagnose_collapse, record_gradient_norms
from .progress import epoch_line, progress_bar
from .registry import OPTIMIZERS

#: Most scored rows the collapse test of a ``fit`` reads (``diagnose_collapse``).
COLLAPSE_PROBE = 1000

#: Most compiled calls an epoch is run as for ``fit(batch_progress=True)``'s bar.
BATCH_PROGRESS_PARTS = 50


class StopTraining(Exception):
    """Raised by a ``fit`` callback to end training after the epoch it was called for (the
    epoch counts: it is in the history, and in the checkpoint if one is written). Returning
    ``False`` from the callback does the same."""


def _check_verbose(value: Any, name: str) -> bool | str:
    if isinstance(value, str) and value == "book":
        return value
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected True, False or 'book', got {value!r}")
    return bool(value)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


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


def _check_choice(value: Any, name: str, choices: Any) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def _check_seed(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a non-negative integer or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative integer or None, got {value}")
    return int(value)


def _check_betas(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair (β₁, β₂) of numbers in [0, 1), got {value!r}")
    return (_check_fraction(value[0], name), _check_fraction(value[1], name))


def _optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: None if value is None else check(value, name)


def _check_callback(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name}: expected a callable or None, got {value!r}")
    return value


def _check_path(value: Any, name: str) -> Any:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name}: expected a path or None, got {value!r}")
    return value


def _check_output(value: Any, name: str) -> Any:
    """A path a run writes (a checkpoint): checked before training, so that a typo in it
    does not lose the epochs trained before the first write."""
    value = _check_path(value, name)
    if value is not None:
        _storage.output_target(value, name)
    return value


def _meta(check: Callable[[Any, str], Any], *, run: bool = False) -> dict[str, Any]:
    """A field's metadata: its check, and whether it leaves what a run computes alone."""
    return {"check": check, "run": run}


@dataclass(frozen=True)
class FitOptions:
    """Every option of ``fit``, validated (see ``Network.fit`` for each one's meaning).

    Build it with ``FitOptions.validated(**options)``, which checks each value, converts it to
    a plain Python value, and names the option in the error it raises (by the caller's
    spelling of it: ``SGD``'s ``eta`` for ``lr``).
    """

    epochs: int = field(
        default=None,
        metadata=_meta(lambda v, n: _check_positive_int(v, n, allow_zero=True), run=True),
    )
    threads: int | None = field(default=None, metadata=_meta(_check_threads, run=True))
    batch_size: int = field(default=None, metadata=_meta(_check_positive_int))
    lr: float = field(default=None, metadata=_meta(_check_rate))
    shuffle: bool = field(default=True, metadata=_meta(_check_bool))
    seed: int | None = field(default=None, metadata=_meta(_check_seed))
    lmbda: float = field(default=0.0, metadata=_meta(_check_penalty))
    l1: float = field(default=0.0, metadata=_meta(_check_penalty))
    dropout: float = field(default=0.0, metadata=_meta(_check_fraction))
    optimizer: str = field(
        default="sgd", metadata=_meta(lambda v, n: _check_choice(v, n, OPTIMIZERS))
    )
    momentum: float = field(default=0.9, metadata=_meta(_check_fraction))
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_meta(_check_betas))
    eps: float = field(default=1e-8, metadata=_meta(_check_rate))
    rho: float = field(default=0.99, metadata=_meta(_check_fraction))
    clip_norm: float | None = field(default=None, metadata=_meta(_optional(_check_rate)))
    clip_value: float | None = field(default=None, metadata=_meta(_optional(_check_rate)))
    monitor_training: bool = field(default=False, metadata=_meta(_check_bool))
    monitor_gradients: bool = field(default=False, metadata=_meta(_check_bool))
    callback: Callable[..., Any] | None = field(
        default=None, metadata=_meta(_check_callback, run=True)
    )
    schedule: str = field(
        default="constant", metadata=_meta(lambda v, n: _check_choice(v, n, ("constant", "halve")))
    )
    patience: int = field(default=10, metadata=_meta(_check_positive_int))
    max_halvings: int = field(default=7, metadata=_meta(_check_positive_int))
    early_stopping: int | None = field(default=None, metadata=_meta(_optional(_check_positive_int)))
    checkpoint: str | os.PathLike[str] | None = field(
        default=None, metadata=_meta(_check_output, run=True)
    )
    checkpoint_every: int = field(default=1, metadata=_meta(_check_positive_int, run=True))
    resume: str | os.PathLike[str] | None = field(
        default=None, metadata=_meta(_check_path, run=True)
    )
    verbose: bool | str = field(default=False, metadata=_meta(_check_verbose, run=True))
    batch_progress: bool = field(default=False, metadata=_meta(_check_bool, run=True))

    @classmethod
    def validated(cls, spelling: Mapping[str, str] | None = None, **options: Any) -> FitOptions:
        """Options checked and converted, each error naming the option as ``spelling`` spells
        it (by default, its field name)."""
        spelling = spelling or {}
        unknown = set(options) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unexpected option(s): {', '.join(sorted(unknown))}")
        values = {}
        for f in dataclasses.fields(cls):
            value = options.get(f.name, f.default)
            values[f.name] = f.metadata["check"](value, spelling.get(f.name, f.name))
        return cls(**values)

    @property
    def general(self) -> bool:
        """Whether the step needs a gradient buffer (an optimiser other than SGD, or
        clipping), rather than SGD fused into BP3/BP4."""
        return self.optimizer != "sgd" or self.clip_norm is not None or self.clip_value is not None

    def fingerprint(self) -> dict[str, Any]:
        """The options that decide what a run computes, as JSON values."""
        return {
            f.name: _json_value(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not f.metadata.get("run")
        }


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Trainable(Protocol):
    """What ``Trainer`` needs of a model (``Network`` is one)."""

    #: The flat parameter buffer the epochs train in place.
    params: np.ndarray
    dtype: np.dtype

    def _training_state(self) -> dict[str, np.ndarray]:
        """Arrays other than ``params`` that an epoch changes (rolled back with them, saved in
        checkpoints), by name."""

    def _epochs(self, X: np.ndarray, Y: np.ndarray, options: FitOptions) -> Any:
        """An epoch runner for this fit: ``run(order, mask_seed, eta, l2, l1, state, steps,
        backup, state_backup) -> (steps, failed, layer)``, ``outputs(X)`` and
        ``probe_gradient(rows)``."""

    def _score(self, out: np.ndarray, Y: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """The mean cost (without penalties) and the number of correct classes of outputs."""

    def _penalty(self, lmbda: float, l1: float, n: int) -> float:
        """The penalties' part of the cost over ``n`` samples."""

    def _speeds(self, grad: np.ndarray) -> dict[str, np.ndarray]:
        """Per-layer gradient norms of a gradient laid out like ``params``."""

    def _spec(self) -> dict[str, Any]:
        """The model's architecture, as JSON, to match a checkpoint with its model."""


@dataclass
class ScoreSet:
    """Data scored after every epoch: inputs, target rows and class labels."""

    prefix: str
    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray


class Trainer:
    """Trains ``model`` on ``(X, Y)`` with ``options``; ``run()`` returns the history.

    ``X`` and ``Y`` are the model's validated arrays (``Y`` as target rows), ``scored`` the
    data sets scored after each epoch, ``rng`` the generator of the order of the samples (and
    of the dropout masks' seeds), ``x_name`` the name to blame for non-finite inputs and
    ``lr_name`` for a rate the model's dtype cannot hold.
    """

    def __init__(
        self, model: Trainable, X: np.ndarray, Y: np.ndarray, options: FitOptions,
        scored: list[ScoreSet], rng: np.random.Generator, x_name: str = "X",
        lr_name: str = "lr",
    ) -> None:  # fmt: skip
        self.model, self.X, self.Y, self.options = model, X, Y, options
        self.scored, self.rng, self.x_name = scored, rng, x_name
        dtype = model.dtype
        n = X.shape[0]
        with np.errstate(over="ignore"):  # the ValueError below, not numpy's cast warning
            eta = dtype.type(options.lr)
        if not np.isfinite(eta):
            raise ValueError(
                f"{lr_name}: {options.lr} overflows {dtype.name}; expected a smaller rate"
            )
        self.eta = eta
        self.l2 = dtype.type(options.lmbda / n)
        self.l1 = dtype.type(options.l1 / n)
        #: The rate as a Python float (``eta`` is the model's dtype's): what the history shows.
        self.lr = float(options.lr)
        self.history: dict[str, list] = {"epoch": [], "seconds": [], "lr": []}
        for s in scored:
            self.history.update({f"{s.prefix}_cost": [], f"{s.prefix}_accuracy": []})
            self.history[f"{s.prefix}_correct"] = []
        if scored and (options.lmbda or options.l1):
            self.history["penalty"] = []
        if options.monitor_gradients:
            self.history.update(grad_norm_b=[], grad_norm_w=[])
        self.best_accuracy, self.best_epoch, self.halvings = -1.0, -1, 0
        self.best_params: np.ndarray | None = None
        #: The first scored set and its outputs after the last epoch this call trained.
        self.last_scored: tuple[ScoreSet, np.ndarray] | None = None
        self.first_epoch = 0
        self.bar: Any = None
        self.batch_bar: Any = None
        self.fingerprint = {
            "n": n, "scored": [s.prefix for s in scored], **options.fingerprint(),
        }  # fmt: skip

    # --- checkpoints -----------------------------------------------------------------------

    def _optimizer(self) -> tuple[str, np.ndarray, int] | None:
        return getattr(self.model, "_optimizer", None)

    def save_checkpoint(self, next_epoch: int) -> None:
        optimizer = self._optimizer()
        loop = {
            "fingerprint": self.fingerprint, "next_epoch": next_epoch, "history": self.history,
            "rng": self.rng.bit_generator.state, "eta": float(self.eta), "lr": self.lr,
            "best_accuracy": self.best_accuracy, "best_epoch": self.best_epoch,
            "halvings": self.halvings,
            "optimizer": None if optimizer is None else optimizer[0],
            "steps": 0 if optimizer is None else int(optimizer[2]),
        }  # fmt: skip
        arrays = {"params": self.model.params, **self.model._training_state()}
        if optimizer is not None:
            arrays["optimizer_state"] = optimizer[1]
        if self.best_params is not None:
            arrays["best_params"] = self.best_params
        _storage.save_checkpoint(self.options.checkpoint, self.model._spec(), loop, arrays)

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Take up the run that wrote the checkpoint ``path`` (same model, data and options).
        The whole file is checked before anything is applied: a checkpoint that fails a check
        raises ``ValueError`` naming it and leaves the model and the generator as they were."""
        model = self.model
        loop, arrays = _storage.load_checkpoint(path, model._spec(), model.params)
        if not isinstance(loop, dict):
            raise _bad_checkpoint(path, "no training-loop state")
        differ = _differences(loop.get("fingerprint"), self.fingerprint)
        if differ:
            raise ValueError(
                f"resume: {path} was written by a fit call with other data or options "
                f"({'; '.join(differ)})"
            )
        state = _checked_loop(path, loop, arrays, self.history, model, self.rng)
        model.params[...] = arrays["params"]
        for name, array in model._training_state().items():
            if name in arrays:
                array[...] = arrays[name]
        if state["optimizer"] is not None:
            slots = np.ascontiguousarray(arrays["optimizer_state"])
            model._optimizer = (state["optimizer"], slots, state["steps"])
        self.rng.bit_generator.state = state["rng"]
        self.history = state["history"]
        self.first_epoch = state["next_epoch"]
        self.eta = model.dtype.type(state["eta"])
        self.lr = state["lr"]
        self.best_accuracy, self.best_epoch = state["best_accuracy"], state["best_epoch"]
        self.halvings = state["halvings"]
        best = arrays.get("best_params")
        self.best_params = None if best is None else np.ascontiguousarray(best)

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> dict[str, list]:
        model, options = self.model, self.options
        n = self.X.shape[0]
        if options.resume is not None:
            self.resume(options.resume)
        general = options.general
        if general:
            optimizer = model._optimizer
            if optimizer is None or optimizer[0] != options.optimizer:
                slots = np.zeros((2, model.params.size), model.dtype)
                model._optimizer = (options.optimizer, slots, 0)
        epochs = model._epochs(self.X, self.Y, options)
        state_arrays = model._training_state()
        no_backup = np.empty((0, 0), dtype=model.dtype)
        steps = model._optimizer[2] if general else 0
        order = np.arange(n, dtype=np.int64)
        history = self.history
        probe = min(n, 1000)
        self.bar = progress_bar(options.epochs) if options.verbose is True else None
        if self.bar is not None:
            self.bar.update(self.first_epoch)
        if options.batch_progress:
            self.batch_bar = progress_bar(-(-n // options.batch_size), "batch")
        try:
            self.loop(epochs, state_arrays, no_backup, steps, order, probe)
        finally:
            for bar in (self.batch_bar, self.bar):
                if bar is not None:
                    bar.close()
        if self.best_params is not None:
            model.params[...] = self.best_params
            history["best_epoch"] = [self.best_epoch]
        if self.last_scored is not None and self.best_params is None:
            self.warn_of_collapse(*self.last_scored)
        return history

    def loop(
        self, epochs: Any, state_arrays: dict[str, np.ndarray], no_backup: np.ndarray,
        steps: int, order: np.ndarray, probe: int,
    ) -> None:  # fmt: skip
        """The epochs, from ``first_epoch`` on, until ``options.epochs`` or a stop."""
        model, options, rng, history = self.model, self.options, self.rng, self.history
        X, n, general = self.X, self.X.shape[0], self.options.general
        for epoch in range(self.first_epoch, options.epochs):
            rng_before = rng.bit_generator.state
            last_good = model.params.copy()
            last_good_state = {k: v.copy() for k, v in state_arrays.items()}
            state = None
            if general:
                name, state, steps = model._optimizer
                last_good_slots = state.copy()
            steps_before = steps
            start = time.perf_counter()
            recorded = False
            n_recorded = len(history["epoch"])
            try:
                if options.shuffle:
                    order = rng.permutation(n).astype(np.int64)
                mask_seed = int(rng.integers(2**31)) if options.dropout > 0 else 0
                if self.batch_bar is None:
                    steps, _, _ = epochs.run(
                        order, mask_seed, self.eta, self.l2, self.l1, state, steps, no_backup,
                        no_backup,
                    )  # fmt: skip
                else:
                    steps = self.run_in_parts(epochs, order, mask_seed, state, steps, no_backup)
                seconds = time.perf_counter() - start
                if not _all_finite(model.params):
                    model.params[...] = last_good
                    for k, v in state_arrays.items():
                        v[...] = last_good_state[k]
                    if general:
                        state[...] = last_good_slots
                    if not _all_finite(X):
                        rng.bit_generator.state = rng_before  # as if the call never ran
                        raise ValueError(
                            f"{self.x_name}: contains NaN or infinity; expected finite values"
                        )
                    # Replay the epoch (same order, same masks) checking every step, to name
                    # the mini-batch and keep the parameters from just before it.
                    steps, failed, layer = epochs.run(
                        order, mask_seed, self.eta, self.l2, self.l1, state, steps_before,
                        np.empty_like(model.params),
                        np.empty_like(state) if general else no_backup,
                    )  # fmt: skip
                    if general:
                        model._optimizer = (name, state, int(steps))
                    raise FloatingPointError(
                        f"epoch {epoch}, mini-batch {failed}, layer {layer}: training produced "
                        f"non-finite parameters (lr={options.lr} may be too large); the "
                        "parameters are the last finite ones, from before that mini-batch"
                    )
                if general:
                    model._optimizer = (name, state, int(steps))
                history["epoch"].append(epoch)
                history["seconds"].append(seconds)
                history["lr"].append(self.lr)
                for s in self.scored:
                    # The data term alone, for every set alike; the penalty (that of the
                    # objective trained, over the n training samples) is recorded apart.
                    out = epochs.outputs(s.X)
                    if s is self.scored[0]:
                        self.last_scored = (s, out)
                    cost, correct = model._score(out, s.Y, s.labels)
                    history[f"{s.prefix}_cost"].append(float(cost))
                    history[f"{s.prefix}_correct"].append(correct)
                    history[f"{s.prefix}_accuracy"].append(correct / s.X.shape[0])
                if "penalty" in history:
                    history["penalty"].append(model._penalty(options.lmbda, options.l1, n))
                if options.monitor_gradients:
                    norms = model._speeds(epochs.probe_gradient(probe) / probe)
                    problem = record_gradient_norms(history, norms)
                    if problem is not None:
                        warnings.warn(f"epoch {epoch}: {problem}", GradientWarning, stacklevel=3)
                recorded = True
            except KeyboardInterrupt:
                # An epoch is one compiled call, so Ctrl-C lands between calls. Leave the
                # model consistent with the history: roll back an epoch not yet recorded.
                if not recorded:
                    model.params[...] = last_good
                    for k, v in state_arrays.items():
                        v[...] = last_good_state[k]
                    if general:
                        state[...] = last_good_slots
                        model._optimizer = (name, state, steps_before)
                    rng.bit_generator.state = rng_before
                    for values in history.values():
                        del values[n_recorded:]
                if options.checkpoint is not None:
                    self.save_checkpoint(epoch + recorded)
                raise
            if self.after_epoch(epoch):
                break

    def run_in_parts(
        self, epochs: Any, order: np.ndarray, mask_seed: int, state: np.ndarray | None,
        steps: int, no_backup: np.ndarray,
    ) -> int:  # fmt: skip
        """An epoch as up to ``BATCH_PROGRESS_PARTS`` compiled calls over whole mini-batches,
        moving the bar over the mini-batches after each: the same steps in the same order, so
        the same parameters as one call, but for dropout, whose masks are drawn from a seed
        per part (``mask_seed + part``) rather than one per epoch."""
        bar, size = self.batch_bar, self.options.batch_size
        n = order.shape[0]
        batches = -(-n // size)
        per_part = -(-batches // BATCH_PROGRESS_PARTS) * size
        bar.reset(total=batches)
        for part, start in enumerate(range(0, n, per_part)):
            chunk = order[start : start + per_part]
            steps, _, _ = epochs.run(
                chunk, (mask_seed + part) % 2**31, self.eta, self.l2, self.l1, state, steps,
                no_backup, no_backup,
            )  # fmt: skip
            bar.update(-(-chunk.shape[0] // size))
        return steps

    def warn_of_collapse(self, scored: ScoreSet, out: np.ndarray) -> None:
        """Warn (``CollapseWarning``) when training ended at chance with saturated neurons,
        pointing at the rate and the initialisation (the book's chapter 3 advice). It reads
        the outputs the last epoch scored (on ``COLLAPSE_PROBE`` rows at most), so it costs
        no computation, and runs only where a fit scores data (``validation_data``,
        ``monitor_training``; the command line always does)."""
        rows = slice(0, COLLAPSE_PROBE)
        out, X = out[rows], scored.X[rows]
        problem = diagnose_collapse(out, self.model._classes(out), scored.labels[rows], X)
        if problem is None:
            return
        advice = f"try a smaller learning rate (lr={self.options.lr} here)"
        if getattr(self.model, "init", None) == "gaussian":
            advice += " and initial weights scaled to each layer's inputs (init='scaled')"
        warnings.warn(f"{problem}; {advice}", CollapseWarning, stacklevel=5)

    def after_epoch(self, epoch: int) -> bool:
        """The callback, the progress line, the schedule, early stopping and the checkpoint
        after epoch ``epoch``; returns whether training stops."""
        options, history = self.options, self.history
        validation = next((s for s in self.scored if s.prefix == "val"), None)
        stop = False
        if options.callback is not None:
            try:
                stop = options.callback(self.model, epoch, history) is False
            except StopTraining:
                stop = True
        if options.verbose == "book":  # SGD's: the book's line
            line = f"Epoch {epoch}"
            if validation is not None:
                line += f": {history['val_correct'][-1]} / {validation.X.shape[0]}"
            else:
                line += " complete"
            print(line, flush=True)
        elif options.verbose:
            n_val = 0 if validation is None else validation.X.shape[0]
            line = epoch_line(history, -1, self.X.shape[0], n_val)
            if self.bar is not None:
                self.bar.write(line)
                self.bar.update(1)
            else:
                print(line, flush=True)
        if validation is not None:
            if history["val_accuracy"][-1] > self.best_accuracy:
                self.best_accuracy, self.best_epoch = history["val_accuracy"][-1], epoch
                if options.early_stopping is not None:
                    self.best_params = self.model.params.copy()
            stale = epoch - self.best_epoch
            if options.early_stopping is not None and stale >= options.early_stopping:
                stop = True
            if options.schedule == "halve" and stale > 0 and stale % options.patience == 0:
                self.halvings += 1
                self.eta = self.model.dtype.type(self.eta / 2)
                self.lr /= 2
                stop = stop or self.halvings == options.max_halvings
        every = options.checkpoint_every
        if options.checkpoint is not None and ((epoch + 1) % every == 0 or stop):
            self.save_checkpoint(epoch + 1)
        return stop


def _bad_checkpoint(path: Any, what: str) -> ValueError:
    return ValueError(f"{path}: not a valid fastbp checkpoint: {what}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_loop(
    path: Any, loop: dict[str, Any], arrays: dict[str, np.ndarray], fresh: dict[str, list],
    model: Trainable, rng: np.random.Generator,
) -> dict[str, Any]:  # fmt: skip
    """A checkpoint's loop state and arrays, every field checked against what this fit would
    write (``fresh`` is its empty history); raises ``ValueError`` naming the file and field."""
    fail = functools.partial(_bad_checkpoint, path)
    next_epoch = loop.get("next_epoch")
    if not _is_int(next_epoch) or next_epoch < 0:
        raise fail(f"'next_epoch' is {next_epoch!r}, expected a non-negative integer")
    history = loop.get("history")
    if not isinstance(history, dict) or not set(fresh) <= set(history) <= {*fresh, "best_epoch"}:
        raise fail(f"'history' is not the history of this fit (expected keys {sorted(fresh)})")
    lengths = {len(v) if isinstance(v, list) else -1 for k, v in history.items() if k in fresh}
    if len(lengths) != 1 or lengths.pop() > next_epoch:
        raise fail("'history' has lists of unequal lengths, or more epochs than 'next_epoch'")
    eta = loop.get("eta")
    if not _is_number(eta) or not np.isfinite(eta) or eta <= 0:
        raise fail(f"'eta' is {eta!r}, expected a positive number")
    lr = loop.get("lr", eta)  # the rate as given (checkpoints before 0.2 have 'eta' alone)
    if not _is_number(lr) or not np.isfinite(lr) or lr <= 0:
        raise fail(f"'lr' is {lr!r}, expected a positive number")
    best_accuracy, best_epoch, halvings = (
        loop.get("best_accuracy"), loop.get("best_epoch"), loop.get("halvings"),
    )  # fmt: skip
    if not (_is_number(best_accuracy) and _is_int(best_epoch) and -1 <= best_epoch < next_epoch):
        raise fail("'best_accuracy' or 'best_epoch' is not a number of this run")
    if not _is_int(halvings) or halvings < 0:
        raise fail(f"'halvings' is {halvings!r}, expected a non-negative integer")
    optimizer, steps = loop.get("optimizer"), loop.get("steps")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise fail(f"unknown optimizer {optimizer!r}")
    if not _is_int(steps) or steps < 0:
        raise fail(f"'steps' is {steps!r}, expected a non-negative integer")
    probe = np.random.Generator(type(rng.bit_generator)())
    try:
        probe.bit_generator.state = loop.get("rng")
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise fail(f"'rng' is not a state of {type(rng.bit_generator).__name__} ({exc})") from None
    params = model.params
    expected = {"params": params, **model._training_state()}
    if optimizer is not None:
        expected["optimizer_state"] = np.empty((2, params.size), params.dtype)
    if "best_params" in arrays:
        expected["best_params"] = params
    if set(arrays) != set(expected):
        raise fail(f"expected the arrays {sorted(expected)}, found {sorted(arrays)}")
    for name, like in expected.items():
        array = arrays[name]
        if array.dtype != like.dtype or array.shape != like.shape:
            raise fail(
                f"{name!r} has dtype {array.dtype} and shape {array.shape}, expected "
                f"{like.dtype} and {like.shape}"
            )
        if not _all_finite(np.ascontiguousarray(array)):
            raise fail(f"{name!r} contains NaN or infinity")
    if "bn_stats" in arrays and (arrays["bn_stats"][1] < 0).any():
        raise fail("a batch-norm running variance is negative")
    return {
        "next_epoch": next_epoch, "history": history, "eta": eta, "halvings": halvings,
        "best_accuracy": best_accuracy, "best_epoch": best_epoch, "optimizer": optimizer,
        "steps": steps, "rng": probe.bit_generator.state, "lr": float(lr),
    }  # fmt: skip


#: The options a checkpoint of format 1 recorded (it was resumed on those alone).
_FORMAT_1_OPTIONS = (
    "n", "batch_size", "lr", "optimizer", "lmbda", "l1", "dropout", "shuffle", "seed", "scored",
)  # fmt: skip


def _differences(theirs: Any, mine: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's fingerprint and this call's, in words."""
    if not isinstance(theirs, dict):
        return ["the checkpoint records none"]
    keys = mine if set(theirs) != set(_FORMAT_1_OPTIONS) else _FORMAT_1_OPTIONS
    return [
        f"{key}={theirs.get(key)!r} there, {mine[key]!r} here"
        for key in keys
        if theirs.get(key) != mine[key]
    ]
