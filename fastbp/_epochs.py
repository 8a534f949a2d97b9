"""How a feed-forward ``Network`` runs one compiled epoch, for ``fastbp.training.Trainer``.

``CpuEpochs`` holds one ``fit``'s buffers and chooses, epoch by epoch, how to run it: the
general step with an optimiser (``kernels.train_epoch_general``), SGD fused into BP3/BP4 with
layer 1 in rows (``kernels.train_epoch``) or in columns (``kernels.train_epoch_columns``), on
one thread, on Numba's threads, or on a team of threads (``train_in_team``). ``GpuEpochs`` runs
it with the ``@cuda.jit`` kernels (``fastbp._cuda``). Both give the trainer ``run``,
``outputs`` and ``probe_gradient``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _threads, kernels
from ._fpmode import subnormals_flushed
from .registry import OPTIMIZERS

if TYPE_CHECKING:
    from .network import Network
    from .training import FitOptions


def cuda_module() -> Any:
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


def hyper_parameters(options: FitOptions, dtype: np.dtype) -> kernels.Hyper:
    """The optimisers' hyper-parameters as the kernels read them (``kernels.Hyper``)."""
    beta1, beta2 = options.betas
    values = (options.momentum, beta1, beta2, options.eps, options.rho)
    return kernels.Hyper(*(dtype.type(v) for v in values))


def clip_limits(options: FitOptions, dtype: np.dtype) -> np.ndarray:
    """``(clip_norm, clip_value)``, 0 for none."""
    return np.array([options.clip_norm or 0.0, options.clip_value or 0.0], dtype=dtype)


class CpuEpochs:
    """The compiled epochs of one ``fit`` of ``net`` on ``(X, Y)`` on the CPU."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, options: FitOptions) -> None:
        self.net, self.X, self.Y = net, X, Y
        self.batch_size = options.batch_size
        self.threads = net.threads if options.threads is None else options.threads
        # None, not 0, for no dropout: the compiler then leaves those branches out.
        self.dropout = net.dtype.type(options.dropout) if options.dropout > 0 else None
        self.general = options.general
        self.ws = net._workspace(min(self.batch_size, X.shape[0]))
        # Layer 1 in columns (``kernels.uses_columns``): its buffers, for the whole fit.
        self.columns = None
        if not self.general and kernels.uses_columns(net.sizes, net._extras):
            self.columns = kernels.column_buffers(net.sizes, self.ws.own.size, net.dtype)
            self.wide = None if kernels.narrow_after_first(net.sizes) else True
        if self.general:
            self.grad = np.empty_like(net.params)
            self.code = OPTIMIZERS[options.optimizer].code
            self.hyper = hyper_parameters(options, net.dtype)
            self.clip = clip_limits(options, net.dtype)

    def run(
        self, order: np.ndarray, mask_seed: int, eta: Any, l2: Any, l1: Any,
        state: np.ndarray | None, t0: int, backup: np.ndarray, state_backup: np.ndarray,
    ) -> tuple[int, int, int]:  # fmt: skip
        """One compiled epoch: ``(steps, first non-finite mini-batch, its first non-finite
        layer)``, the last two -1 when all is finite (always, without ``backup``)."""
        net = self.net
        n = self.X.shape[0]
        n_threads = _threads.threads_for(self.threads)
        threads_from = kernels.threading_threshold(net.sizes, self.batch_size, n_threads)
        args = (net.params, net._model, self.X, self.Y, order, self.batch_size, eta, l2, l1,
                self.dropout, mask_seed, self.ws)  # fmt: skip
        team = 1
        if self.columns is not None and not backup.size:
            # (a replay is bitwise the same on one thread)
            team = kernels.team_size(net.sizes, n, self.batch_size, n_threads, net._extras)
        if team > 1:
            flags = self.columns[2]
            flags[:] = 0
            start = time.perf_counter_ns()
            with subnormals_flushed():
                waited = train_in_team(team, (team, *args, None, self.columns, backup.ravel(),
                                              self.wide))  # fmt: skip
            took_over = bool(flags[kernels.LINE * kernels.TOOK_OVER])
            _threads.record_team(took_over, waited, time.perf_counter_ns() - start)
            return 0, -1, -1
        watch = threads_from is not None  # Numba's threads: did they wait for CPUs?
        with _threads.threads(n_threads, watch=watch), subnormals_flushed():
            if self.general:
                return kernels.train_epoch_general(
                    *args, self.grad, state, self.code, self.hyper, self.clip, t0, threads_from,
                    backup.ravel(), state_backup, net._extras,
                )  # fmt: skip
            if self.columns is None:
                failed, layer = kernels.train_epoch(
                    *args, threads_from, backup.ravel(), net._extras
                )
                return 0, failed, layer
            failed, layer = kernels.train_epoch_columns(
                1, *args, threads_from, self.columns, backup.ravel(), self.wide
            )
            return 0, failed, layer

    def outputs(self, X: np.ndarray) -> np.ndarray:
        return self.net._feedforward(X)

    def probe_gradient(self, rows: int) -> np.ndarray:
        return self.net._gradient_sum(self.X[:rows], self.Y[:rows])


class GpuEpochs:
    """The epochs of one ``fit`` of ``net`` on the GPU: the data crosses to it once, here."""

    def __init__(
        self, net: Network, gpu: Any, X: np.ndarray, Y: np.ndarray, options: FitOptions
    ) -> None:
        self.net = net
        self.trainer = gpu.Trainer(net.params, net._model, X, Y, options.batch_size,
                                   options.general)  # fmt: skip
        self.general = options.general
        self.code = OPTIMIZERS[options.optimizer].code
        # The GPU's kernels read them from an array, in the order of ``kernels.Hyper``.
        self.hyper = np.array(hyper_parameters(options, net.dtype), dtype=net.dtype)
        self.clip = clip_limits(options, net.dtype)

    def run(
        self, order: np.ndarray, mask_seed: int, eta: Any, l2: Any, l1: Any,
        state: np.ndarray | None, t0: int, backup: np.ndarray, state_backup: np.ndarray,
    ) -> tuple[int, int, int]:  # fmt: skip
        return self.trainer.epoch(
            self.net.params, state if self.general else None, order, self.code, eta,
            self.hyper, l2, l1, self.clip, t0, check=backup.size > 0,
        )  # fmt: skip

    def outputs(self, X: np.ndarray) -> np.ndarray:
        return self.trainer.feedforward(self.net.params, X)

    def probe_gradient(self, rows: int) -> np.ndarray:
        return self.trainer.gradient_sum(self.net.params, rows)


def train_in_team(team: int, args: tuple) -> int:
    """Run ``kernels.train_epoch_columns(*args)`` on ``team`` threads at once: this one and
    ``team − 1`` helpers (``Helper``; the kernel releases the GIL); the members meet through
    ``args``' counters. Returns the nanoseconds the members waited for a CPU (Linux; 0
    elsewhere).

    Ctrl-C is held back until every member has ended (``interrupts_deferred``): a member
    left running would go on writing the weights after ``fit`` had rolled them back."""
    waits = [0] * team

    def member(i: int) -> None:
        before = _threads.thread_cpu_wait_ns()
        kernels.train_epoch_columns(*args)
        waits[i] = _threads.thread_cpu_wait_ns() - before

    with interrupts_deferred():
        if _helpers_lock.acquire(blocking=False):
            try:
                helpers = _helpers(team - 1)
                for i, helper in enumerate(helpers, start=1):
                    helper.start(partial(member, i))
                member(0)
                for helper in helpers:
                    helper.wait()
            finally:
                _helpers_lock.release()
        else:  # another thread's team has the helpers: this one starts its own
            others = [threading.Thread(target=member, args=(i,)) for i in range(1, team)]
            for thread in others:
                thread.start()
            member(0)
            for thread in others:
                thread.join()
    return sum(waits)


class Helper:
    """A thread that runs one team member's share of an epoch at a time, and sleeps between
    them. It stays for the life of the process: a new thread for every epoch cost tens of µs,
    and the scheduler often started it on the CPU of the thread that made it, where the two
    members shared a CPU for the first milliseconds of the epoch."""

    def __init__(self) -> None:
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._job: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, daemon=True, name="fastbp-team").start()

    def _run(self) -> None:
        while True:
            self._go.acquire()
            try:
                self._job()
            except BaseException as exc:  # handed to the thread that waits
                self._error = exc
            finally:
                self._done.release()

    def start(self, job: Any) -> None:
        """Run ``job()`` on this thread."""
        self._job = job
        self._go.release()

    def wait(self) -> None:
        """Wait until the job has ended; raise what it raised."""
        self._done.acquire()
        error, self._error = self._error, None
        if error is not None:
            raise error


_helpers_list: list[Helper] = []
_helpers_pid = os.getpid()
_helpers_lock = threading.Lock()


def _helpers(count: int) -> list[Helper]:
    """``count`` helpers (made on first use; a forked child makes its own)."""
    global _helpers_list, _helpers_pid
    if _helpers_pid != os.getpid():
        _helpers_list, _helpers_pid = [], os.getpid()
    while len(_helpers_list) < count:
        _helpers_list.append(Helper())
    return _helpers_list[:count]


@contextmanager
def interrupts_deferred() -> Iterator[None]:
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
