"""``fastbp`` through its public API, ``Network.fit`` as a user calls it, one epoch per call.

``threads=`` is passed where the fastbp at hand has it, else Numba's thread count is set around
the call (so that older revisions can be timed too)."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from pathlib import Path

from ..workload import ETA, Config, Data, shuffle_seed


def import_fastbp():
    """Import fastbp, from the checkout this file lives in when it is not installed."""
    try:
        return importlib.import_module("fastbp")
    except ModuleNotFoundError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        return importlib.import_module("fastbp")


def has_threads_option(function) -> bool:
    return "threads" in inspect.signature(function).parameters


def fastbp_network(sizes, seed: int, dtype: str, threads: int | None = None):
    """``Network(sizes, seed=seed, dtype=dtype, threads=threads)``; ``threads`` only if known."""
    from fastbp import Network

    kwargs = {"threads": threads} if threads is not None and has_threads_option(Network) else {}
    return Network(list(sizes), seed=seed, dtype=dtype, **kwargs)


@contextlib.contextmanager
def numba_threads(threads: int | None, function):
    """Numba's thread count around a call, for a fastbp whose ``function`` has no ``threads=``."""
    if threads is None or has_threads_option(function):
        yield
        return
    import numba

    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(saved)


def fastbp_fit(net, X, y, *, batch_size: int, seed: int, threads: int | None = None):
    """One epoch of ``net.fit``, passing ``threads=`` when fastbp has it."""
    from fastbp import Network

    kwargs = {"threads": threads} if threads is not None and has_threads_option(Network.fit) else {}
    with numba_threads(threads, Network.fit):
        return net.fit(X, y, epochs=1, batch_size=batch_size, lr=ETA, seed=seed, **kwargs)


def fastbp_predict(net, X, threads: int | None = None):
    """``net.predict(X)`` for a network made by ``fastbp_network(..., threads)``."""
    from fastbp import Network

    with numba_threads(threads, Network):
        return net.predict(X)


class FastbpTrainer:
    """fastbp through its public API: one ``Network.fit`` call per epoch."""

    name = "fastbp"

    def __init__(self, config: Config, data: Data, seed: int, threads: int | None = None) -> None:
        self.config, self.data, self.seed, self.threads = config, data, seed, threads
        # Compile (or load from Numba's cache) for this dtype, on a throwaway network.
        warm = fastbp_network(config.sizes, seed, config.dtype, threads)
        rows = 2 * config.batch_size + 3
        fastbp_fit(
            warm, data.X_train[:rows], data.y_train[:rows], batch_size=config.batch_size,
            seed=0, threads=threads,
        )  # fmt: skip
        warm.accuracy(data.X_test[:100], data.y_test[:100])
        self.net = fastbp_network(config.sizes, seed, config.dtype, threads)
        self.kernel_seconds: list[float] = []

    def initial_parameters(self):
        """Copies of the initial ``(weights, biases)``, for the systems that share them."""
        return [w.copy() for w in self.net.weights], [b.copy() for b in self.net.biases]

    def epoch(self, epoch: int) -> None:
        history = fastbp_fit(
            self.net, self.data.X_train, self.data.y_train, batch_size=self.config.batch_size,
            seed=shuffle_seed(self.seed, epoch), threads=self.threads,
        )  # fmt: skip
        if "seconds" in history:
            self.kernel_seconds.append(history["seconds"][0])

    def accuracy(self) -> float:
        return self.net.accuracy(self.data.X_test, self.data.y_test)
