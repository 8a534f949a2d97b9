"""What the asv benchmarks share: fastbp's import, the data, warm-up, and the thread option.

Not a benchmark module (asv finds nothing to run here).
"""

from __future__ import annotations

import inspect
import itertools
import os
import sys
from pathlib import Path

import numpy as np

#: The checkout this file lives in.
CHECKOUT = Path(__file__).resolve().parent.parent

#: Whether fastbp is imported from this checkout because it is not installed.
FROM_CHECKOUT = False
try:
    import fastbp
except ModuleNotFoundError:
    # ``asv run --python=same`` with a Python where fastbp is not installed: benchmark the
    # checkout this file lives in. Never inside an environment asv built (those set
    # ASV_ENV_DIR and have fastbp installed from the commit under test), where a failed
    # import must stay an error.
    if "ASV_ENV_DIR" in os.environ or not (CHECKOUT / "fastbp").is_dir():
        raise
    sys.path.insert(0, str(CHECKOUT))
    print(f"fastbp is not installed: importing it from {CHECKOUT}", file=sys.stderr)
    import fastbp

    FROM_CHECKOUT = True

from fastbp import Network  # noqa: E402  (after the fallback above)
from fastbp.datasets import load_mini_mnist, load_mnist  # noqa: E402

#: The directory fastbp was imported from: a child process must find the same one.
FASTBP_ROOT = str(Path(fastbp.__file__).resolve().parent.parent)

#: Seed of the initial parameters and of the shuffle.
SEED = 1
#: Learning rate η of every training benchmark (the book's chapter 1 value).
ETA = 3.0
#: Environment variable naming the directory of the MNIST files.
DATA_ENV = "FASTBP_DATA"
#: Training samples used from real MNIST: the book's 50,000.
MNIST_TRAIN = 50_000

#: Network shapes of the benchmarks: the book's two, a deep one and a wide one.
SIZES = ["784-30-10", "784-100-10", "784-30-30-30-30-10", "784-1000-10"]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

_datasets: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
_warm: set[tuple[tuple[int, ...], int, str, int | None]] = set()


def widths(sizes: str) -> tuple[int, ...]:
    """``"784-30-10"`` -> ``(784, 30, 10)``."""
    return tuple(int(n) for n in sizes.split("-"))


def dataset(data: str, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` for ``data`` in ``dtype``, cached per process.

    ``mnist``: the first 50,000 MNIST training images and the 10,000 test images, from
    ``$FASTBP_DATA``; raises ``NotImplementedError`` (asv's "skip this benchmark", shown as
    ``n/a``) when it is not set. ``mini``: the set bundled with fastbp, 8,000 training and 2,000
    test images, all from MNIST's test split.
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


def mnist_test_images(dtype: str) -> np.ndarray:
    """The 10,000 MNIST test images, from the bundled set (its two parts together)."""
    X, _, X_test, _ = dataset("mini", dtype)
    return np.concatenate([X, X_test])


def _has_threads(function) -> bool:
    return "threads" in inspect.signature(function).parameters


def use_threads(threads: int | None) -> dict[str, int]:
    """Keyword arguments giving fastbp ``threads``; call in ``setup``.

    With a fastbp that has a ``threads=`` option (on ``Network`` and ``fit``) they are
    ``{"threads": threads}``. With one that has not, Numba's thread count is set here instead
    (each asv benchmark runs in a process of its own) and they are empty. A count above Numba's
    pool raises ``NotImplementedError``: the benchmark is skipped on a machine with fewer cores.
    """
    if threads is None:
        return {}
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise NotImplementedError(f"{threads} threads: Numba has {numba.config.NUMBA_NUM_THREADS}")
    if _has_threads(Network.fit):
        return {"threads": threads}
    numba.set_num_threads(threads)
    return {}


def network(sizes: tuple[int, ...], dtype: str, threads: dict[str, int], seed: int = SEED):
    """A seeded ``Network``; ``threads`` from :func:`use_threads`."""
    kwargs = threads if _has_threads(Network) else {}
    return Network(list(sizes), seed=seed, dtype=dtype, **kwargs)


def fit_epoch(net, X, y, batch_size: int, threads: dict[str, int], seed: int = SEED) -> None:
    """One epoch of ``net.fit``, the benchmarked call."""
    net.fit(X, y, epochs=1, batch_size=batch_size, lr=ETA, seed=seed, **threads)


def _team_kernels():
    """The module that holds the team's rules: ``fastbp.kernels.team`` since the kernels
    became a package, ``fastbp._kernels`` before (``None`` where neither is importable)."""
    import importlib

    for name in ("fastbp.kernels.team", "fastbp._kernels"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _trains_on_a_team(
    sizes: tuple[int, ...], batch_size: int, threads: dict[str, int], n_samples: int
) -> bool:
    """Whether an epoch of ``n_samples`` samples trains on a team of threads (False for a
    fastbp from before teams)."""
    team_size = getattr(_team_kernels(), "team_size", None)
    expected = ["sizes", "n_samples", "batch_size", "n_threads", "extras"]
    if team_size is None or list(inspect.signature(team_size).parameters) != expected:
        return False
    import numba

    n_threads = threads.get("threads") or numba.get_num_threads()
    return team_size(list(sizes), n_samples, batch_size, n_threads, None) > 1


def _team_rows(sizes: tuple[int, ...], batch_size: int) -> int:
    """Rows enough for an epoch to train on a team (by multiply-adds, or for a fastbp from
    before that rule, by mini-batches)."""
    kernels = _team_kernels()
    if hasattr(kernels, "TEAM_MIN_EPOCH_WORK"):
        per_sample = sum(a * b for a, b in itertools.pairwise(sizes))
        return -(-kernels.TEAM_MIN_EPOCH_WORK // per_sample)
    return kernels.TEAM_MIN_STEPS * batch_size


def warm_up(
    sizes: tuple[int, ...], batch_size: int, dtype: str, threads: dict[str, int],
    n_samples: int = 50_000,
) -> None:  # fmt: skip
    """Compile (or load from Numba's cache) the training and forward kernels, untimed.

    Trains a throwaway network on two full mini-batches and a partial one (or, where an epoch
    of the timed data, ``n_samples`` rows, trains on a team of threads, on enough mini-batches
    for a team: a team calls the epoch kernel with another signature than one thread, and
    loading it from Numba's cache took about 40 ms of the first timed epoch; compiling it,
    seconds), and runs its forward pass and a batch gradient, so every kernel a benchmark
    calls is ready.
    """
    team = _trains_on_a_team(sizes, batch_size, threads, n_samples)
    key = (sizes, batch_size, dtype, threads.get("threads"), team)
    if key in _warm:
        return
    rng = np.random.default_rng(0)
    n = 2 * batch_size + 3
    if team:
        n += _team_rows(sizes, batch_size)
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    net = network(sizes, dtype, threads, seed=0)
    fit_epoch(net, X, y, batch_size, threads, seed=0)
    net.predict(X)
    net.gradients(X, y)
    _warm.add(key)
