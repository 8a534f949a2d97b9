"""asv benchmarks: one training epoch, a batch forward pass, and accuracy after one epoch.

The model is the book's (Nielsen, chapter 1): ``Network([784, 30, 10])`` trained by
mini-batch SGD with batch 10 and η = 3.0, and the wider ``[784, 100, 10]`` at batch 100.

Data, named by the ``data`` parameter of every training benchmark:

``mnist``
    The real MNIST training set, its first 50,000 images (the book's split), read from the
    directory in the environment variable ``FASTBP_DATA``. When ``FASTBP_DATA`` is unset the
    variant is skipped (asv reports it as ``n/a``), so a result labelled ``mnist`` always
    comes from real MNIST.
``mini``
    The 8,000-image training part of the data set bundled with fastbp
    (``fastbp.datasets.load_mini_mnist``), which is drawn from MNIST's *test* split. Times per
    epoch on it are not comparable with MNIST ones (6.25 times fewer samples); compare
    samples per second instead. Accuracies on it are not MNIST results.

Numba compiles the kernels (or loads them from its on-disk cache) in ``setup``, by training a
throwaway network on a few rows, so no timing includes compilation. Every timed epoch starts
from the same freshly initialised network (``setup`` runs again before each sample), with
fixed seeds for the initial parameters and for the order of the samples.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

try:
    from fastbp import Network
    from fastbp.datasets import load_mini_mnist, load_mnist
except ModuleNotFoundError:
    # ``asv run --python=same`` with a Python where fastbp is not installed: benchmark the
    # checkout this file lives in. Never inside an environment asv built (those set
    # ASV_ENV_DIR and have fastbp installed from the commit under test), where a failed
    # import must stay an error.
    _checkout = Path(__file__).resolve().parent.parent
    if "ASV_ENV_DIR" in os.environ or not (_checkout / "fastbp").is_dir():
        raise
    sys.path.insert(0, str(_checkout))
    print(f"fastbp is not installed: importing it from {_checkout}", file=sys.stderr)
    from fastbp import Network
    from fastbp.datasets import load_mini_mnist, load_mnist

#: Seed of the initial parameters and of the shuffle.
SEED = 1
#: Learning rate η of every training benchmark (the book's chapter 1 value).
ETA = 3.0
#: Environment variable naming the directory of the MNIST files.
DATA_ENV = "FASTBP_DATA"
#: Training samples used from real MNIST: the book's 50,000.
MNIST_TRAIN = 50_000

_datasets: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
_compiled: set[tuple[tuple[int, ...], int, str]] = set()


def dataset(data: str, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` for ``data`` in ``dtype``, cached per process.

    Raises ``NotImplementedError`` (asv's "skip this benchmark") for ``data="mnist"`` when
    ``FASTBP_DATA`` is not set.
    """
    key = (data, dtype)
    if key not in _datasets:
        if data == "mnist":
            directory = os.environ.get(DATA_ENV)
            if not directory:
                raise NotImplementedError(
                    f"set {DATA_ENV} to the directory of the MNIST files to run the mnist variant"
                )
            (X, y), _, (X_test, y_test) = load_mnist(directory, split="book", dtype=dtype)
            X, y = X[:MNIST_TRAIN], y[:MNIST_TRAIN]
        elif data == "mini":
            (X, y), (X_test, y_test) = load_mini_mnist(dtype=dtype)
        else:
            raise ValueError(f"unknown data set {data!r}")
        _datasets[key] = (X, y, X_test, y_test)
    return _datasets[key]


def compile_kernels(sizes: tuple[int, ...], batch_size: int, dtype: str) -> None:
    """Compile (or load from Numba's cache) the training and forward kernels, untimed."""
    key = (tuple(sizes), batch_size, dtype)
    if key in _compiled:
        return
    rng = np.random.default_rng(0)
    n = 2 * batch_size + 3  # two full mini-batches and a partial one
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    net = Network(list(sizes), seed=0, dtype=dtype)
    net.fit(X, y, epochs=1, batch_size=batch_size, lr=ETA, seed=0)
    net.feedforward(X)
    _compiled.add(key)


class _Epoch:
    """One epoch of ``Network(SIZES).fit(..., batch_size=BATCH, lr=3.0)``: shared machinery."""

    SIZES: tuple[int, ...] = ()
    BATCH = 0

    number = 1  # one epoch per sample; setup runs again before each
    repeat = (3, 10, 60.0)  # at least 3 samples, at most 10 or 60 s
    warmup_time = 0.0  # compilation happens in setup, there is nothing to warm
    timeout = 600.0

    def _setup(self, data: str, dtype: str) -> None:
        self.X, self.y, self.X_test, self.y_test = dataset(data, dtype)
        compile_kernels(self.SIZES, self.BATCH, dtype)
        self.net = Network(list(self.SIZES), seed=SEED, dtype=dtype)

    def _epoch(self) -> None:
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.BATCH, lr=ETA, seed=SEED)


class EpochSmall(_Epoch):
    """One epoch of ``Network([784, 30, 10])``, batch 10, η = 3.0 (the book's chapter 1 run)."""

    SIZES = (784, 30, 10)
    BATCH = 10
    params = (["mnist", "mini"], ["float32", "float64"])
    param_names = ("data", "dtype")

    def setup(self, data: str, dtype: str) -> None:
        self._setup(data, dtype)

    def time_epoch(self, data: str, dtype: str) -> None:
        self._epoch()


class EpochWide(_Epoch):
    """One epoch of ``Network([784, 100, 10])``, batch 100, η = 3.0, float32."""

    SIZES = (784, 100, 10)
    BATCH = 100
    params = (["mnist", "mini"],)
    param_names = ("data",)

    def setup(self, data: str) -> None:
        self._setup(data, "float32")

    def time_epoch(self, data: str) -> None:
        self._epoch()


#: Configurations of ``Accuracy``: name -> (sizes, batch size, dtype).
CONFIGS = {
    "784-30-10 b10 float32": ((784, 30, 10), 10, "float32"),
    "784-30-10 b10 float64": ((784, 30, 10), 10, "float64"),
    "784-100-10 b100 float32": ((784, 100, 10), 100, "float32"),
}


class Accuracy:
    """Test-set accuracy after one epoch from the seeded initial network.

    On ``mnist`` it is the accuracy on the 10,000 MNIST test images; on ``mini`` on the
    2,000-image test part of the bundled set (not an MNIST result).
    """

    params = (["mnist", "mini"], list(CONFIGS))
    param_names = ("data", "config")
    unit = "fraction"
    timeout = 600.0

    def setup(self, data: str, config: str) -> None:
        sizes, self.batch, dtype = CONFIGS[config]
        self.X, self.y, self.X_test, self.y_test = dataset(data, dtype)
        self.net = Network(list(sizes), seed=SEED, dtype=dtype)

    def track_test_accuracy(self, data: str, config: str) -> float:
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=ETA, seed=SEED)
        return self.net.accuracy(self.X_test, self.y_test)


class Feedforward:
    """``feedforward`` of 10,000 samples (the bundled MNIST test images; timing only).

    The contents of the images do not change the work, so this uses the bundled data always.
    """

    params = (["784-30-10", "784-100-10"], ["float32", "float64"])
    param_names = ("sizes", "dtype")
    warmup_time = 0.0

    def setup(self, sizes: str, dtype: str) -> None:
        widths = tuple(int(n) for n in sizes.split("-"))
        X, _, X_test, _ = dataset("mini", dtype)
        self.X = np.concatenate([X, X_test])  # all 10,000 bundled images
        compile_kernels(widths, 10, dtype)
        self.net = Network(list(widths), seed=SEED, dtype=dtype)

    def time_feedforward(self, sizes: str, dtype: str) -> None:
        self.net.feedforward(self.X)
