"""asv benchmarks of training: an epoch, one mini-batch's gradient, memory, start-up, accuracy.

The model is the book's (Nielsen, chapter 1): sigmoid neurons, quadratic cost, N(0, 1) initial
parameters, mini-batch SGD with η = 3.0.

Data, named by the ``data`` parameter of the training benchmarks:

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

Compilation is never timed: ``setup`` trains a throwaway network on a few rows first (Numba
compiles, or loads its on-disk cache). asv runs ``setup`` again before every sample, so every
timed epoch starts from the same seeded network. The ``threads`` parameter is fastbp's
``threads=`` option (with a fastbp that has none, Numba's thread count).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from .common import (
    DTYPES,
    ETA,
    FASTBP_ROOT,
    FROM_CHECKOUT,
    SEED,
    SIZES,
    THREADS,
    Network,
    dataset,
    fit_epoch,
    network,
    use_threads,
    warm_up,
    widths,
)


class Epoch:
    """One epoch of ``Network(sizes).fit(X, y, epochs=1, batch_size=batch, lr=3.0)``."""

    params = (["mnist", "mini"], SIZES, [10, 100], DTYPES, THREADS)
    param_names = ("data", "sizes", "batch", "dtype", "threads")
    number = 1  # one epoch per sample; setup runs again before each
    repeat = (3, 10, 20.0)  # at least 3 samples, at most 10 or 20 s
    rounds = 1
    warmup_time = 0.0  # compilation happens in setup, there is nothing to warm
    timeout = 600.0

    def setup(self, data: str, sizes: str, batch: int, dtype: str, threads: int) -> None:
        self.X, self.y, _, _ = dataset(data, dtype)
        self.sizes, self.batch = widths(sizes), batch
        self.threads = use_threads(threads)
        warm_up(self.sizes, batch, dtype, self.threads, self.X.shape[0])
        self.net = network(self.sizes, dtype, self.threads)

    def time_epoch(self, data: str, sizes: str, batch: int, dtype: str, threads: int) -> None:
        fit_epoch(self.net, self.X, self.y, self.batch, self.threads)


class Gradients:
    """``net.gradients(X, Y)`` of one mini-batch of 10 or 100 rows (BP1-BP4, summed)."""

    params = (SIZES, [10, 100], DTYPES)
    param_names = ("sizes", "rows", "dtype")
    warmup_time = 0.0

    def setup(self, sizes: str, rows: int, dtype: str) -> None:
        X, y, _, _ = dataset("mini", dtype)
        self.X = np.ascontiguousarray(X[:rows])
        self.Y = np.zeros((rows, 10), dtype=dtype)  # one-hot rows: no label conversion timed
        self.Y[np.arange(rows), y[:rows]] = 1
        warm_up(widths(sizes), rows, dtype, {})
        self.net = network(widths(sizes), dtype, {})

    def time_gradients(self, sizes: str, rows: int, dtype: str) -> None:
        self.net.gradients(self.X, self.Y)


#: Configurations of the memory and accuracy benchmarks: name -> (sizes, batch size, dtype).
CONFIGS = {
    "784-30-10 b10 float32": ((784, 30, 10), 10, "float32"),
    "784-30-10 b10 float64": ((784, 30, 10), 10, "float64"),
    "784-100-10 b100 float32": ((784, 100, 10), 100, "float32"),
    "784-1000-10 b100 float32": ((784, 1000, 10), 100, "float32"),
}
MEMORY_CONFIGS = ["784-30-10 b10 float32", "784-1000-10 b100 float32"]


class PeakMemory:
    """Peak resident memory of the process (data, libraries and all) around a training epoch."""

    params = (["mnist", "mini"], MEMORY_CONFIGS)
    param_names = ("data", "config")
    timeout = 600.0

    def setup(self, data: str, config: str) -> None:
        sizes, self.batch, dtype = CONFIGS[config]
        self.X, self.y, _, _ = dataset(data, dtype)
        warm_up(sizes, self.batch, dtype, {}, self.X.shape[0])
        self.net = network(sizes, dtype, {})

    def peakmem_epoch(self, data: str, config: str) -> None:
        fit_epoch(self.net, self.X, self.y, self.batch, {})


def _rss_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process, in MB, from ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise NotImplementedError(f"no {field} in /proc/self/status")


class Memory:
    """What one training epoch adds to memory, beyond the data it is given.

    The peak resident memory during ``fit`` minus the resident memory just before it (the
    data, the network and the libraries already loaded), in MB. Linux only: the peak is reset
    through ``/proc/self/clear_refs``.
    """

    params = (["mnist", "mini"], MEMORY_CONFIGS)
    param_names = ("data", "config")
    unit = "MB"
    timeout = 600.0

    def setup(self, data: str, config: str) -> None:
        sizes, self.batch, dtype = CONFIGS[config]
        self.X, self.y, _, _ = dataset(data, dtype)
        warm_up(sizes, self.batch, dtype, {}, self.X.shape[0])
        self.net = network(sizes, dtype, {})

    def track_epoch_rss_increase(self, data: str, config: str) -> float:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to VmRSS
        except OSError as exc:
            raise NotImplementedError(f"cannot reset the peak resident memory: {exc}") from exc
        before = _rss_mb("VmRSS")
        fit_epoch(self.net, self.X, self.y, self.batch, {})
        return _rss_mb("VmHWM") - before


class Allocations:
    """Numba runtime allocations per mini-batch inside the compiled epoch.

    Counted (Numba's allocation statistics) over an epoch of 50 and one of 100 mini-batches of
    the bundled data: the difference over 50. 0 means no allocation per mini-batch; a fixed
    number per epoch does not count.
    """

    params = (MEMORY_CONFIGS,)
    param_names = ("config",)
    unit = "allocations"

    def setup(self, config: str) -> None:
        try:
            from numba.core.runtime import _nrt_python, rtsys

            _nrt_python.memsys_enable_stats()
        except (ImportError, AttributeError) as exc:
            raise NotImplementedError(f"Numba's allocation statistics: {exc}") from exc
        self.stats = rtsys.get_allocation_stats
        sizes, self.batch, dtype = CONFIGS[config]
        self.X, self.y, _, _ = dataset("mini", dtype)
        warm_up(sizes, self.batch, dtype, {}, 100 * self.batch)  # the epochs counted below
        self.net = network(sizes, dtype, {})

    def track_allocations_per_minibatch(self, config: str) -> float:
        counts = []
        for batches in (50, 100):
            n = batches * self.batch
            start = self.stats().alloc
            fit_epoch(self.net, self.X[:n], self.y[:n], self.batch, {})
            counts.append(self.stats().alloc - start)
        return (counts[1] - counts[0]) / 50


#: A first ``fit`` of ``{n}`` rows in a fresh process.
_FIRST_FIT_OF = textwrap.dedent(
    """
    import numpy as np
    from fastbp import Network
    rng = np.random.default_rng(0)
    X = rng.random(({n}, 784), dtype=np.float32)
    y = rng.integers(0, 10, {n})
    Network([784, 30, 10], seed=0).fit(X, y, epochs=1, batch_size=10, lr=3.0)
    """
)
#: A few rows: 3 mini-batches, one thread.
_FIRST_FIT = _FIRST_FIT_OF.format(n=23)
#: 256 mini-batches of 10: with two or more cores, an epoch trained on a team of threads
#: (``_kernels.train_epoch_columns`` with ``team = 2``; ``_FIRST_FIT`` trains on one).
_FIRST_TEAM_FIT = _FIRST_FIT_OF.format(n=2560)


class StartUp:
    """Import fastbp and train a first time in a fresh process.

    ``timeraw_first_fit``: with Numba's on-disk cache warm (``setup_cache`` fills it), the
    time a user waits at every start. ``timeraw_first_fit_cold``: with an empty cache (a new
    ``NUMBA_CACHE_DIR``), what the first start after an install or a change costs: compiling
    every kernel the first call needs. Both for a few rows (``_FIRST_FIT``), and the
    ``team_`` pair for an epoch long enough to train on a team of threads
    (``_FIRST_TEAM_FIT``; on one core it is the same one-thread epoch). ``timeraw_cli_train``
    and ``timeraw_cli_train_cold``: the README's first command, ``fastbp train``, warm and
    cold (``benchmarks/cold_start.py`` gives its CPU time and what it compiles);
    ``timeraw_cli_info_cold``: ``fastbp info``, which compiles nothing.
    """

    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 300.0

    def setup_cache(self) -> None:
        # Fill Numba's on-disk cache in a child process, as a first run would.
        import subprocess
        import sys

        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        for script in (_FIRST_FIT, _FIRST_TEAM_FIT, _CLI.format(args=["train"])):
            subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)

    def timeraw_first_fit(self) -> tuple[str, str]:
        return _FIRST_FIT, _path_setup()

    def timeraw_first_fit_cold(self) -> tuple[str, str]:
        return _FIRST_FIT, _path_setup() + _EMPTY_CACHE

    def timeraw_first_team_fit(self) -> tuple[str, str]:
        return _FIRST_TEAM_FIT, _path_setup()

    def timeraw_first_team_fit_cold(self) -> tuple[str, str]:
        return _FIRST_TEAM_FIT, _path_setup() + _EMPTY_CACHE

    def timeraw_cli_train(self) -> tuple[str, str]:
        return _CLI.format(args=["train"]), _path_setup()

    def timeraw_cli_train_cold(self) -> tuple[str, str]:
        return _CLI.format(args=["train"]), _path_setup() + _EMPTY_CACHE

    def timeraw_cli_info_cold(self) -> tuple[str, str]:
        return _CLI.format(args=["info"]), _path_setup() + _EMPTY_CACHE

    timeraw_first_fit_cold.repeat = (1, 3, 60.0)
    timeraw_first_team_fit_cold.repeat = (1, 3, 60.0)
    timeraw_cli_train_cold.repeat = (1, 3, 60.0)


#: The README's first command, ``fastbp train`` (five epochs on the bundled mini MNIST; its
#: output is discarded), or ``fastbp info``, in a fresh process.
_CLI = textwrap.dedent(
    """
    import contextlib, io
    from fastbp.cli import main
    with contextlib.redirect_stdout(io.StringIO()):
        main({args!r})
    """
)


#: Set-up code that gives a child process an empty Numba cache.
_EMPTY_CACHE = textwrap.dedent(
    """
    import os, tempfile
    _cache = tempfile.TemporaryDirectory()  # removed when the process exits
    os.environ["NUMBA_CACHE_DIR"] = _cache.name
    """
)


def _pythonpath() -> str:
    """``PYTHONPATH`` for a child process that must import the same fastbp."""
    paths = [FASTBP_ROOT] if FROM_CHECKOUT else []
    return os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])


def _path_setup() -> str:
    """Code that lets a child process import fastbp from the checkout when it is not installed."""
    return f"import sys\nsys.path.insert(0, {FASTBP_ROOT!r})\n" if FROM_CHECKOUT else ""


#: The networks whose accuracy is tracked: sizes, batch size, dtype, initialisation. Each learns
#: in its one epoch (784-100-10 with the book's N(0, 1) weights and η = 3 saturates: at batch
#: 100 it stayed at chance level, 0.0925 on mini, a figure that would hide any regression;
#: with N(0, 1/n_in) weights, ``network2.py``'s, it learns).
ACCURACY_CONFIGS = {
    "784-30-10 b10 float32": ((784, 30, 10), 10, "float32", "gaussian"),
    "784-30-10 b10 float64": ((784, 30, 10), 10, "float64", "gaussian"),
    "784-100-10 b10 float32 scaled": ((784, 100, 10), 10, "float32", "scaled"),
}


class Accuracy:
    """Test-set accuracy after one epoch from the seeded initial network.

    On ``mnist`` it is the accuracy on the 10,000 MNIST test images; on ``mini`` on the
    2,000-image test part of the bundled set (not an MNIST result).
    """

    params = (["mnist", "mini"], list(ACCURACY_CONFIGS))
    param_names = ("data", "config")
    unit = "fraction"
    timeout = 600.0

    def setup(self, data: str, config: str) -> None:
        sizes, self.batch, dtype, init = ACCURACY_CONFIGS[config]
        self.X, self.y, self.X_test, self.y_test = dataset(data, dtype)
        self.net = Network(list(sizes), seed=SEED, dtype=dtype, init=init)

    def track_test_accuracy(self, data: str, config: str) -> float:
        fit_epoch(self.net, self.X, self.y, self.batch, {})
        return self.net.accuracy(self.X_test, self.y_test)


class GpuEpoch:
    """One epoch on an NVIDIA GPU, ``Network(sizes, device="cuda")``, data already on the GPU
    (the ``seconds`` of the second epoch of a two-epoch ``fit``; the first compiles). Skipped
    (``n/a``) without a GPU, and on Numba's CUDA simulator."""

    params = (["mnist", "mini"], [("784-30-10", 10), ("784-1000-10", 1000)])
    param_names = ("data", "sizes_batch")
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, data: str, sizes_batch: tuple[str, int]) -> None:
        import numba

        try:
            from numba import cuda
        except ImportError:
            raise NotImplementedError("Numba's CUDA target is not installed") from None
        if numba.config.ENABLE_CUDASIM or not cuda.is_available():
            raise NotImplementedError("no CUDA GPU")
        self.X, self.y, _, _ = dataset(data, "float32")

    def track_epoch_seconds(self, data: str, sizes_batch: tuple[str, int]) -> float:
        sizes, batch = sizes_batch
        net = Network(list(widths(sizes)), seed=SEED, device="cuda")
        history = net.fit(self.X, self.y, epochs=2, batch_size=batch, lr=ETA, seed=SEED)
        return history["seconds"][1]

    track_epoch_seconds.unit = "seconds"
