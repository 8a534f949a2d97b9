"""What every system of ``compare.py`` trains: the configurations, the data, each epoch's order."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

#: Learning rate η of every configuration (the book's chapter 1 value).
ETA = 3.0
#: Training samples of an MNIST run: the first 50,000 images, as in the book.
MNIST_TRAIN = 50_000


@dataclass(frozen=True)
class Config:
    """One model and training setting."""

    sizes: tuple[int, ...]
    batch_size: int
    dtype: str

    @property
    def label(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} b{self.batch_size} {self.dtype}"

    def epoch_flops(self, n: int) -> int:
        """FLOPs of one epoch over ``n`` samples (see compare.py's docstring)."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        p = sum(n_in * n_out for n_in, n_out in pairs)
        first = pairs[0][0] * pairs[0][1]
        per_sample = 2 * p + 2 * p + 2 * (p - first)  # forward, BP4, BP2 (no error for layer 1)
        return n * per_sample + math.ceil(n / self.batch_size) * 2 * p  # + one update per batch


CONFIGS = (
    Config((784, 30, 10), 10, "float32"),
    Config((784, 30, 10), 10, "float64"),
    Config((784, 100, 10), 100, "float32"),
    Config((784, 30, 30, 30, 30, 10), 10, "float32"),
    Config((784, 1000, 10), 100, "float32"),
)
#: The book's per-sample code runs in float64 (``np.random.randn``), so only here.
BOOK_CONFIG = CONFIGS[1]
#: fastbp's epoch with 1 and 2 threads.
THREAD_SWEEP = (CONFIGS[2], CONFIGS[0])


@dataclass
class Data:
    """Training and test data in one dtype; ``Y_train`` holds one-hot rows."""

    name: str
    X_train: Any
    y_train: Any
    Y_train: Any
    X_test: Any
    y_test: Any


def load_data(directory: str | None, dtypes: set[str]) -> tuple[dict[str, Data], str | None]:
    """Training and test data per dtype, and a warning when the bundled set stands in for MNIST.

    MNIST is read from ``directory``, else ``$FASTBP_DATA``, else the per-user cache. When none
    was named and the cache is empty, the bundled set is used; when a directory was named (flag
    or environment) and the files cannot be read, that is an error.
    """
    import numpy as np

    from fastbp.datasets import load_mini_mnist, load_mnist

    named = directory or os.environ.get("FASTBP_DATA")
    data: dict[str, Data] = {}
    warning = None
    for dtype in sorted(dtypes):
        try:
            (X, y), _, (X_test, y_test) = load_mnist(directory, split="book", dtype=dtype)
            X, y = X[:MNIST_TRAIN], y[:MNIST_TRAIN]
            name = f"MNIST ({X.shape[0]:,} training images, {X_test.shape[0]:,} test images)"
        except FileNotFoundError as exc:
            if named:
                raise SystemExit(f"error: cannot read MNIST from {named}: {exc}") from exc
            (X, y), (X_test, y_test) = load_mini_mnist(dtype=dtype)
            name = (
                f"bundled mini set ({X.shape[0]:,} training, {X_test.shape[0]:,} test images; "
                "drawn from the MNIST test split, NOT MNIST results)"
            )
            warning = (
                "WARNING: MNIST not found (no --data, FASTBP_DATA unset, per-user cache empty); "
                f"using the bundled {X.shape[0]:,}-image set. Seconds per epoch cover "
                f"{X.shape[0]:,} samples instead of {MNIST_TRAIN:,}: compare samples/s, and do "
                "not read the accuracies as MNIST accuracies."
            )
        Y = np.zeros((X.shape[0], 10), dtype=dtype)
        Y[np.arange(X.shape[0]), y] = 1
        data[dtype] = Data(name, X, y, Y, X_test, y_test)
    return data, warning


def epoch_order(seed: int, epoch: int, n: int):
    """The sample order of one epoch: a permutation by index, the same for every system.

    fastbp's ``fit(seed=s)`` draws ``np.random.default_rng(s).permutation(n)``; so does this.
    """
    import numpy as np

    return np.random.default_rng(shuffle_seed(seed, epoch)).permutation(n)


def shuffle_seed(seed: int, epoch: int) -> int:
    return 1_000 * seed + epoch
