"""asv benchmarks of recurrent networks: an epoch on row-by-row MNIST (each cell; an LSTM on one
and two threads), and one mini-batch's BPTT gradient.

The data is the first 2,000 images of the bundled mini MNIST (``load_mini_mnist``), read as 28
steps of 28 pixels; times per epoch scale with the number of sequences (×25 for the 50,000 of
the book's MNIST training set). Compilation is never timed: ``setup`` trains a throwaway
network on a few sequences first. A fastbp without ``RecurrentNetwork`` skips these (asv
reports ``n/a``).
"""

from __future__ import annotations

import numpy as np

from .common import dataset

#: (hidden units, mini-batch size): the three configurations of the issue's speed targets.
SHAPES = ["32-10", "64-32", "128-64"]
N_SEQUENCES = 2000


def _recurrent():
    try:
        from fastbp import RecurrentNetwork
    except ImportError:
        raise NotImplementedError("this fastbp has no RecurrentNetwork") from None
    return RecurrentNetwork


def _rows(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    X, y, _, _ = dataset("mini", dtype)
    return np.ascontiguousarray(X[:N_SEQUENCES].reshape(-1, 28, 28)), y[:N_SEQUENCES]


class RecurrentEpoch:
    """One epoch of an LSTM (H units, one layer, softmax output) with SGD, η = 0.1."""

    params = (["lstm", "gru", "rnn"], SHAPES, ["float32"])
    param_names = ("cell", "shape", "dtype")
    number = 1
    repeat = (3, 10, 20.0)
    rounds = 1
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, cell: str, shape: str, dtype: str) -> None:
        RecurrentNetwork = _recurrent()
        self.X, self.y = _rows(dtype)
        hidden, self.batch = (int(v) for v in shape.split("-"))
        warm = RecurrentNetwork(28, hidden, 10, cell=cell, dtype=dtype, seed=0)
        warm.fit(self.X[: 2 * self.batch + 1], self.y[: 2 * self.batch + 1], epochs=1,
                 batch_size=self.batch, lr=0.1)  # fmt: skip
        self.net = RecurrentNetwork(28, hidden, 10, cell=cell, dtype=dtype, seed=1)

    def time_epoch(self, cell: str, shape: str, dtype: str) -> None:
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=0.1)


class RecurrentEpochThreads:
    """An LSTM epoch on one thread and on two (``fit(threads=…)``; the weights are the same).
    On a machine whose other work keeps the CPUs busy, fastbp falls back to one thread, and
    the two timings meet."""

    params = (["64-32", "128-64"], [1, 2])
    param_names = ("shape", "threads")
    number = 1
    repeat = (3, 10, 20.0)
    rounds = 1
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, shape: str, threads: int) -> None:
        RecurrentNetwork = _recurrent()
        self.X, self.y = _rows("float32")
        hidden, self.batch = (int(v) for v in shape.split("-"))
        warm = RecurrentNetwork(28, hidden, 10, seed=0)
        warm.fit(self.X[: 2 * self.batch + 1], self.y[: 2 * self.batch + 1], epochs=1,
                 batch_size=self.batch, lr=0.1, threads=threads)  # fmt: skip
        self.net = RecurrentNetwork(28, hidden, 10, seed=1)

    def time_epoch(self, shape: str, threads: int) -> None:
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=0.1, threads=threads)


class RecurrentGradient:
    """``net.gradient`` of 64 row-MNIST sequences (forward pass and BPTT)."""

    params = (["lstm"], [32, 128], ["float32", "float64"])
    param_names = ("cell", "hidden", "dtype")
    warmup_time = 0.0

    def setup(self, cell: str, hidden: int, dtype: str) -> None:
        RecurrentNetwork = _recurrent()
        X, y = _rows(dtype)
        self.X, self.y = X[:64], y[:64]
        self.net = RecurrentNetwork(28, hidden, 10, cell=cell, dtype=dtype, seed=1)
        self.net.gradient(self.X, self.y)

    def time_gradient(self, cell: str, hidden: int, dtype: str) -> None:
        self.net.gradient(self.X, self.y)
