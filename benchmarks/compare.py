"""Seconds per training epoch: fastbp beside the book's NumPy code, NumPy, PyTorch, JAX and sklearn.

How to reproduce
----------------
From the repository root, with the four MNIST IDX files (gzipped or not) in ``DIR``::

    FASTBP_DATA=DIR PYTHONPATH=. python benchmarks/compare.py
    PYTHONPATH=. python benchmarks/compare.py --data DIR --repeats 5 --json out.json

Without MNIST (no ``--data``, no ``FASTBP_DATA``, nothing in the per-user cache) it falls back to
the 8,000 training images bundled with fastbp and says so: seconds per epoch then cover 8,000
samples, not 50,000, so compare samples per second, not seconds, with an MNIST run.

What is measured
----------------
Five configurations of the book's model (Nielsen, *Neural Networks and Deep Learning*, ch. 1-2:
sigmoid neurons, quadratic cost, N(0, 1) initial weights and biases, mini-batch SGD, η = 3.0):

1. ``[784, 30, 10]``, mini-batch 10, float32;
2. ``[784, 30, 10]``, mini-batch 10, float64;
3. ``[784, 100, 10]``, mini-batch 100, float32;
4. ``[784, 30, 30, 30, 30, 10]``, mini-batch 10, float32 (deep);
5. ``[784, 1000, 10]``, mini-batch 100, float32 (wide).

For each, every system trains ``--repeats`` consecutive epochs over the 50,000 MNIST training
images (the book's split); each epoch is timed with ``time.perf_counter`` around the whole call
(for fastbp the public ``Network.fit``, argument checks included) and the median is reported,
with samples per second, the ratio *system time / fastbp time* (above 1: fastbp is faster) and
*CPU time / wall time* of the epoch (about 1 for a single-threaded system). The systems take
turns epoch by epoch (in a rotating order), so a slow spell of a shared machine does not fall
on one system only, and each timed call starts after a rest of ``--pause`` seconds (0.3), so
that worker threads a system left spinning (OpenBLAS and OpenMP workers spin for a while after
a call) do not run into the next system's time. Compilation and other first-call costs are
paid before timing (a warm-up on a few rows; JAX compiles its epoch ahead of time). fastbp,
the NumPy systems, PyTorch and JAX start from the same parameters and visit the samples in the
same order, so they train the same model: their test accuracies after the epochs agree closely
(they differ only by rounding).

The FLOP lower bound of an epoch counts, per sample, 2P for the forward pass, 2P for the weight
gradients and 2P less the first layer's share for propagating the error back, where
P = Σ n_in·n_out; plus 2P per mini-batch for the update. It is divided by this machine's
single-thread GEMM rate, measured in the same run (``numpy.matmul`` of two 2048 × 2048 matrices
of the configuration's dtype, best of 6, in a child process whose BLAS has one thread).

Also measured: fastbp's epoch with 1 and 2 threads (``threads=``; with a fastbp that has no such
option, Numba's thread count is set around the call) on configurations 3 and 1, and ``predict``
on the 10,000 MNIST test images against the NumPy forward pass of the same network (median
of 5 samples per round, at least 3 rounds, each sample at least 20 ms of repeated calls).
A last section checks the speed targets, each as a ratio (or time) from this run.

Systems
-------
``fastbp``
    ``Network(sizes, seed=..., dtype=...).fit(X, y, epochs=1, batch_size=..., lr=3.0, seed=...)``,
    with fastbp's default thread count unless ``--fastbp-threads`` is given.
``book`` (configuration 2 only: the book's code is float64)
    The algorithm of the book's ``network.py``: data as a list of ``(x, y)`` column-vector pairs,
    ``backprop`` one sample at a time, gradients summed over the mini-batch in Python lists.
    It is slow, so each timed epoch covers the first ``--book-samples`` (default 5,000) samples
    of the epoch's order, and its time is scaled to the full epoch (the table says so).
``numpy``
    The book's equations written with NumPy in this file, each mini-batch as one matrix (rows are
    samples): ``Z = A @ W.T + b``, ``A = σ(Z)``; BP1 ``Δᴸ = (Aᴸ − Y) ⊙ σ'(Zᴸ)``; BP2
    ``Δˡ = (Δˡ⁺¹ @ Wˡ⁺¹) ⊙ σ'(Zˡ)``; BP3 ``∂C/∂bˡ = Σ rows of Δˡ``; BP4 ``∂C/∂Wˡ = Δˡᵀ @ Aˡ⁻¹``;
    then ``θ ← θ − (η/m) ∂C/∂θ``. ``σ'(Z)`` is computed as ``A ⊙ (1 − A)``.
``torch`` (only if importable; never installed by this script)
    As a PyTorch user writes it: ``nn.Sequential`` of ``nn.Linear`` and ``nn.Sigmoid``, autograd,
    ``torch.optim.SGD(lr=3.0)``, loss ``0.5 * ((out - y) ** 2).sum() / m`` (so the step is the
    book's), mini-batches sliced from a permutation by index (no DataLoader), CPU, eager.
``jax`` (only if importable; never installed by this script)
    The whole epoch is one ``jax.jit`` function: ``jax.lax.scan`` over the mini-batches, each
    step ``jax.grad`` of the same loss and the SGD update; the rows of each mini-batch are
    gathered by index inside the scan. float64 through ``jax_enable_x64`` (switched on for the
    float64 configuration only). A last partial mini-batch is dropped (there is none when the
    batch size divides the number of samples, as for 50,000 and 8,000 at batch 10 and 100).
``sklearn`` (only if importable; never installed by this script)
    ``MLPClassifier(solver="sgd", activation="logistic", momentum=0, alpha=0, ...)``, one
    ``partial_fit`` (one epoch) per timed call; a related but different model (softmax output
    with log-loss, Glorot initialisation, its own sample order), timed for reference.

Threads: by default (``--threads 1``) every peer runs on one thread: NumPy's BLAS is set to one
thread through OpenBLAS's C API (this also covers the ``book``, ``numpy`` and ``sklearn``
systems), PyTorch with ``torch.set_num_threads(1)``, JAX by creating its CPU client while the
process may use one CPU only (``os.sched_setaffinity``, Linux), so that XLA sizes its thread
pool to one thread (JAX 0.10 ignores ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``: it still
ran on both cores of a 2-core machine). fastbp is left at its own default unless
``--fastbp-threads`` is given: this script never sets environment variables that Numba would
read. ``--threads 0`` leaves every peer at its library default (``--threads N`` above 1
leaves JAX at its default, all CPUs). The cpu/wall
column shows what each system really used.

Read the numbers as medians and ratios from one run on one machine: on a shared machine the
absolute times vary from run to run by tens of percent, the ratios much less.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import inspect
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# NumPy, Numba, JAX and fastbp are imported inside the functions below, not at the top: JAX must
# be imported in a window where the process may use only one CPU (see import_jax).

#: Learning rate η of every configuration (the book's chapter 1 value).
ETA = 3.0
#: Training samples of an MNIST run: the first 50,000 images, as in the book.
MNIST_TRAIN = 50_000
#: Learning rate for sklearn's MLPClassifier (softmax + log-loss: η = 3.0 is too large for it).
SKLEARN_ETA = 0.5
#: Side of the square matrices of the GEMM-rate measurement.
GEMM_N = 2048
#: Environment of the child process that measures the single-thread GEMM rate.
ONE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


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
        """FLOPs of one epoch over ``n`` samples (see the module docstring)."""
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
SYSTEMS = ("fastbp", "book", "numpy", "torch", "jax", "sklearn")


@dataclass
class Data:
    """Training and test data in one dtype; ``Y_train`` holds one-hot rows."""

    name: str
    X_train: Any
    y_train: Any
    Y_train: Any
    X_test: Any
    y_test: Any


@dataclass
class Result:
    """Per-epoch times and the final test accuracy of one system on one configuration.

    ``seconds`` are per full epoch of ``n_samples``; for a system that timed a subset of each
    epoch (``book``) they are scaled from ``timed_samples`` to ``n_samples``.
    """

    system: str
    config: str
    n_samples: int
    timed_samples: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_per_wall(self) -> float:
        return sum(self.cpu_seconds) / sum(self.seconds)


# --- command line and environment --------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seconds per training epoch: fastbp beside NumPy, PyTorch and JAX.",
        epilog="Configurations: "
        + "; ".join(f"{i} = {c.label}" for i, c in enumerate(CONFIGS, 1))
        + ". See the docstring at the top of this file for what is measured and how.",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="directory of the MNIST IDX files (default: $FASTBP_DATA, then the per-user "
        "cache; without either, the bundled 8,000-image set, with a warning)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="epochs timed per system and configuration; the median is reported (default 3)",
    )
    parser.add_argument(
        "--json",
        "--epochs-json",
        dest="json",
        metavar="FILE",
        help="also write every time, ratio and the machine to FILE as JSON",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of init and shuffles (1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads of the peers: NumPy's BLAS, PyTorch, JAX (default 1; 0 leaves library "
        "defaults; JAX can only be set to 1)",
    )
    parser.add_argument(
        "--fastbp-threads",
        type=int,
        default=None,
        metavar="N",
        help="fastbp's threads= in the main tables (default: fastbp's own default)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all); fastbp is always run",
    )
    parser.add_argument(
        "--configs",
        default=",".join(str(i) for i in range(1, len(CONFIGS) + 1)),
        help="comma-separated configuration numbers (default: all; listed below)",
    )
    parser.add_argument(
        "--book-samples",
        type=int,
        default=5_000,
        metavar="N",
        help="samples of each timed epoch of the book's per-sample code, scaled to the full "
        "epoch (default 5,000)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.3,
        metavar="S",
        help="seconds of rest before each timed call, so that threads a system left spinning "
        "(OpenBLAS and OpenMP workers spin for a while after a call) never run into the next "
        "system's time (default 0.3)",
    )
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the thread sweep and the predict timing",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be 0 or more")
    if args.fastbp_threads is not None and args.fastbp_threads < 1:
        parser.error("--fastbp-threads must be at least 1")
    if args.pause < 0:
        parser.error("--pause must be 0 or more")
    if args.book_samples < 1:
        parser.error("--book-samples must be at least 1")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {', '.join(unknown)} (known: {', '.join(SYSTEMS)})")
    args.systems = ["fastbp", *(s for s in SYSTEMS[1:] if s in systems)]
    try:
        numbers = sorted({int(s) for s in args.configs.split(",") if s.strip()})
    except ValueError:
        parser.error("--configs: expected comma-separated numbers")
    if not numbers or not all(1 <= i <= len(CONFIGS) for i in numbers):
        parser.error(f"--configs: numbers from 1 to {len(CONFIGS)}")
    args.configs = [CONFIGS[i - 1] for i in numbers]
    return args


def import_jax(threads: int):
    """JAX with its CPU client created (or ``None``), and how many threads it has, in words.

    With ``threads == 1`` the client is created while this thread may run on one CPU only:
    XLA sizes its thread pool by the CPUs it may use, and its threads keep that affinity.
    """
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    one_cpu = threads == 1 and saved is not None and len(saved) > 1
    if one_cpu:
        os.sched_setaffinity(0, {min(saved)})
    try:
        jax = optional_module("jax")
        if jax is not None:
            jax.jit(lambda x: x + 1)(jax.numpy.zeros(1)).block_until_ready()  # creates the client
    finally:
        if one_cpu:
            os.sched_setaffinity(0, saved)
    if jax is None:
        return None, "not installed"
    if one_cpu or (saved is not None and len(saved) == 1):
        return jax, "1 (XLA's CPU client created while the process could use one CPU)"
    return jax, "its default (XLA's thread pool over all usable CPUs)"


def openblas_libraries() -> dict[str, str]:
    """The OpenBLAS libraries loaded in this process: ``{"numpy" | "scipy" | "other": path}``.

    NumPy's and SciPy's wheels each bundle their own copy (in ``numpy.libs`` and
    ``scipy.libs``); read from ``/proc/self/maps`` (Linux), empty elsewhere.
    """
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        path = line.split()[-1]
        if "openblas" not in Path(path).name.lower():
            continue
        owner = next((o for o in ("numpy", "scipy") if f"{o}.libs" in path), "other")
        found.setdefault(owner, path)
    return found


def blas_threads(path: str, threads: int | None = None) -> int | None:
    """Set (when ``threads`` is given) and return the thread count of the OpenBLAS at ``path``."""
    lib = ctypes.CDLL(path)  # already loaded: the same library, not a second copy
    names = (
        "scipy_openblas{}_num_threads64_",
        "scipy_openblas{}_num_threads",
        "openblas{}_num_threads",
    )
    for name in names:
        try:
            setter, getter = getattr(lib, name.format("_set")), getattr(lib, name.format("_get"))
        except AttributeError:
            continue
        getter.restype = ctypes.c_int
        if threads is not None:
            setter(ctypes.c_int(threads))
        return int(getter())
    return None


def import_fastbp():
    """Import fastbp, from the checkout this file lives in when it is not installed."""
    try:
        return importlib.import_module("fastbp")
    except ModuleNotFoundError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        return importlib.import_module("fastbp")


def optional_module(name: str):
    """The module ``name``, or ``None`` when it is not installed (never installs anything)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# --- fastbp's thread option, with or without ``threads=`` --------------------------------------


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


def median_call_seconds(calls: dict[str, Any], rounds: int, pause: float) -> dict[str, float]:
    """Median seconds per call of each function.

    In each of ``rounds`` rounds every function in turn (in a rotating order) rests ``pause``
    seconds, then gives 5 samples; a sample repeats the call enough times to last 20 ms.
    """
    loops = {name: max(1, math.ceil(0.02 / timed(call)[0])) for name, call in calls.items()}
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            time.sleep(pause)
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(loops[name]):
                    calls[name]()
                samples[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def fastbp_predict(net, X, threads: int | None = None):
    """``net.predict(X)`` for a network made by ``fastbp_network(..., threads)``."""
    from fastbp import Network

    with numba_threads(threads, Network):
        return net.predict(X)


# --- data ----------------------------------------------------------------------------------------


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


def sigmoid(z):
    import numpy as np

    with np.errstate(over="ignore"):  # exp(-z) → inf for z ≪ 0 gives σ = 0, as it should
        return 1 / (1 + np.exp(-z))


def numpy_forward(weights, biases, a):
    """The network's output for the rows of ``a``, in NumPy: ``A = σ(A @ Wᵀ + b)`` per layer."""
    for w, b in zip(weights, biases, strict=True):
        a = sigmoid(a @ w.T + b)
    return a


# --- the systems ---------------------------------------------------------------------------------


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


class BookTrainer:
    """The book's ``network.py``: per-sample backprop on column vectors, in Python lists.

    ``update_mini_batch`` and ``backprop`` follow the book's code line by line (Nielsen,
    chapter 1), with the same starting parameters and sample order as the other systems. Each
    epoch trains on the first ``samples`` samples of the epoch's order.
    """

    name = "book"

    def __init__(self, config: Config, data: Data, seed: int, weights, biases, samples: int):
        import numpy as np

        self.config, self.data, self.seed = config, data, seed
        self.samples = min(samples, data.X_train.shape[0])
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.biases = [np.array(b, dtype=np.float64).reshape(-1, 1) for b in biases]
        self.num_layers = len(weights) + 1
        # The book's data: a list of (x, y) pairs of column vectors.
        self.training_data = [
            (x.reshape(-1, 1), y.reshape(-1, 1))
            for x, y in zip(data.X_train, data.Y_train, strict=True)
        ]
        saved = [w.copy() for w in self.weights], [b.copy() for b in self.biases]
        self.update_mini_batch(self.training_data[: config.batch_size], ETA)  # warm-up
        self.weights, self.biases = saved

    def epoch(self, epoch: int) -> None:
        order = epoch_order(self.seed, epoch, len(self.training_data))[: self.samples]
        training_data = [self.training_data[i] for i in order]  # the book's random.shuffle
        m = self.config.batch_size
        mini_batches = [training_data[k : k + m] for k in range(0, len(training_data), m)]
        for mini_batch in mini_batches:
            self.update_mini_batch(mini_batch, ETA)

    def update_mini_batch(self, mini_batch, eta):
        import numpy as np

        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b, strict=True)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w, strict=True)]
        self.weights = [
            w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w, strict=True)
        ]
        self.biases = [
            b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b, strict=True)
        ]

    def backprop(self, x, y):
        import numpy as np

        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights, strict=True):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            sp = sigmoid(zs[-l]) * (1 - sigmoid(zs[-l]))
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    def accuracy(self) -> float:
        import numpy as np

        weights = self.weights
        out = numpy_forward(weights, [b.ravel() for b in self.biases], self.data.X_test)
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))


class NumpyTrainer:
    """The book's equations in plain NumPy, a mini-batch as one matrix."""

    name = "numpy"

    def __init__(self, config: Config, data: Data, seed: int, weights, biases) -> None:
        self.config, self.data, self.seed = config, data, seed
        self.weights = [w.copy() for w in weights]  # (n_out, n_in), the book's orientation
        self.biases = [b.copy() for b in biases]
        # Warm-up: one mini-batch step on copies (first-call costs of BLAS and the allocator).
        saved = [w.copy() for w in self.weights], [b.copy() for b in self.biases]
        self.train(self.data.X_train[:64], self.data.Y_train[:64], range(64))
        self.weights, self.biases = saved

    def train(self, X, Y, order) -> None:
        """One pass of mini-batch SGD over the rows of ``X`` in ``order``."""
        import numpy as np

        order = np.asarray(order)
        batch = self.config.batch_size
        W, B = self.weights, self.biases
        L = len(W)  # layers with parameters
        for start in range(0, order.shape[0], batch):
            rows = order[start : start + batch]
            m = rows.shape[0]
            A = [X[rows]]  # A[l]: activations of layer l, one row per sample
            for w, b in zip(W, B, strict=True):
                A.append(sigmoid(A[-1] @ w.T + b))  # Z = A @ Wᵀ + b, A = σ(Z)
            a = A[-1]
            delta = (a - Y[rows]) * a * (1 - a)  # BP1, with σ'(Z) = A ⊙ (1 − A)
            grad_w, grad_b = [None] * L, [None] * L
            for l in range(L - 1, -1, -1):
                grad_b[l] = delta.sum(axis=0)  # BP3
                grad_w[l] = delta.T @ A[l]  # BP4
                if l:
                    delta = (delta @ W[l]) * A[l] * (1 - A[l])  # BP2
            step = ETA / m
            for w, b, gw, gb in zip(W, B, grad_w, grad_b, strict=True):
                w -= step * gw
                b -= step * gb

    def epoch(self, epoch: int) -> None:
        n = self.data.X_train.shape[0]
        self.train(self.data.X_train, self.data.Y_train, epoch_order(self.seed, epoch, n))

    def accuracy(self) -> float:
        import numpy as np

        out = numpy_forward(self.weights, self.biases, self.data.X_test)
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))


class TorchTrainer:
    """PyTorch as its users write it: nn.Sequential, autograd and torch.optim.SGD, eager, CPU."""

    name = "torch"

    def __init__(self, torch, config: Config, data: Data, seed: int, weights, biases) -> None:
        self.torch, self.config, self.data, self.seed = torch, config, data, seed
        self.X = torch.from_numpy(data.X_train)
        self.Y = torch.from_numpy(data.Y_train)
        self.model = self.make_model(weights, biases)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=ETA)
        warm = self.make_model(weights, biases)  # warm-up on a throwaway copy
        self.train(warm, torch.optim.SGD(warm.parameters(), lr=ETA), torch.arange(64))

    def make_model(self, weights, biases):
        torch, nn = self.torch, self.torch.nn
        layers = []
        for w in weights:
            layers += [nn.Linear(w.shape[1], w.shape[0]), nn.Sigmoid()]
        model = nn.Sequential(*layers).to(getattr(torch, self.config.dtype))
        with torch.no_grad():  # the same initial parameters as fastbp
            for linear, w, b in zip(model[::2], weights, biases, strict=True):
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
        return model

    def train(self, model, optimizer, order) -> None:
        """One pass of mini-batch SGD over the training rows in ``order``."""
        batch = self.config.batch_size
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            xb, yb = self.X[idx], self.Y[idx]
            optimizer.zero_grad()
            loss = 0.5 * ((model(xb) - yb) ** 2).sum() / len(idx)  # the book's C, mean over m
            loss.backward()
            optimizer.step()

    def epoch(self, epoch: int) -> None:
        n = self.data.X_train.shape[0]
        order = self.torch.from_numpy(epoch_order(self.seed, epoch, n))
        self.train(self.model, self.optimizer, order)

    def accuracy(self) -> float:
        torch = self.torch
        with torch.no_grad():
            out = self.model(torch.from_numpy(self.data.X_test))
            labels = torch.from_numpy(self.data.y_test)
            return float((out.argmax(dim=1) == labels).double().mean())


def jax_functions(jax):
    """The jitted epoch and forward pass, as a JAX user writes them."""
    jnp = jax.numpy

    def forward(params, x):
        for w, b in params:
            x = jax.nn.sigmoid(x @ w.T + b)
        return x

    def loss(params, x, y):  # the book's quadratic cost, mean over the mini-batch
        return 0.5 * jnp.sum((forward(params, x) - y) ** 2) / x.shape[0]

    def train_epoch(params, X, Y, batches):
        """SGD over the mini-batches, ``batches[k]`` holding the row indices of batch k."""

        def step(params, rows):
            grads = jax.grad(loss)(params, X[rows], Y[rows])
            return jax.tree.map(lambda p, g: p - ETA * g, params, grads), None

        params, _ = jax.lax.scan(step, params, batches)
        return params

    return jax.jit(train_epoch), jax.jit(forward)


class JaxTrainer:
    """The whole epoch under ``jax.jit`` + ``jax.lax.scan``; a last partial batch is dropped."""

    name = "jax"

    def __init__(self, jax, config: Config, data: Data, seed: int, weights, biases) -> None:
        import numpy as np

        self.jax, self.config, self.data, self.seed = jax, config, data, seed
        self.x64_before = bool(jax.config.jax_enable_x64)
        jax.config.update("jax_enable_x64", config.dtype == "float64")
        jnp = jax.numpy
        self.X, self.Y = jnp.asarray(data.X_train), jnp.asarray(data.Y_train)
        self.params = [
            (jnp.asarray(w), jnp.asarray(b)) for w, b in zip(weights, biases, strict=True)
        ]
        n, m = data.X_train.shape[0], config.batch_size
        self.n_batches, self.dropped = divmod(n, m)
        train_epoch, self.forward = jax_functions(jax)
        # Compile ahead of time for these shapes, so that no timed epoch includes compilation.
        batches = jnp.zeros((self.n_batches, m), dtype=np.int32)
        self.train_epoch = train_epoch.lower(self.params, self.X, self.Y, batches).compile()
        self.forward(self.params, jnp.asarray(data.X_test[:10])).block_until_ready()

    def epoch(self, epoch: int) -> None:
        import numpy as np

        order = epoch_order(self.seed, epoch, self.data.X_train.shape[0]).astype(np.int32)
        m = self.config.batch_size
        batches = self.jax.numpy.asarray(order[: self.n_batches * m].reshape(-1, m))
        self.params = self.train_epoch(self.params, self.X, self.Y, batches)
        self.jax.block_until_ready(self.params)

    def accuracy(self) -> float:
        import numpy as np

        dtype = str(self.params[0][0].dtype)
        if dtype != self.config.dtype:
            raise RuntimeError(f"jax trained in {dtype}, not {self.config.dtype}")
        out = np.asarray(self.forward(self.params, self.jax.numpy.asarray(self.data.X_test)))
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))

    def close(self) -> None:
        self.jax.config.update("jax_enable_x64", self.x64_before)


class SklearnTrainer:
    """sklearn's MLPClassifier with plain SGD: a related model, timed for reference."""

    name = "sklearn"

    def __init__(self, neural_network, config: Config, data: Data, seed: int) -> None:
        import numpy as np

        self.config, self.data = config, data
        self.classes = np.arange(10)

        def make():
            return neural_network.MLPClassifier(
                hidden_layer_sizes=config.sizes[1:-1], activation="logistic", solver="sgd",
                batch_size=config.batch_size, learning_rate="constant",
                learning_rate_init=SKLEARN_ETA, momentum=0.0, nesterovs_momentum=False,
                alpha=0.0, max_iter=1, shuffle=True,
                # An instance, not an int: an int would re-seed every partial_fit, so every
                # epoch would visit the samples in the same order.
                random_state=np.random.RandomState(seed),
            )  # fmt: skip

        rows = 2 * config.batch_size + 3  # warm-up: a few mini-batches on a throwaway model
        make().partial_fit(data.X_train[:rows], data.y_train[:rows], classes=self.classes)
        self.model = make()

    def epoch(self, epoch: int) -> None:
        # partial_fit with an SGD solver is one pass over the data (sklearn's "iteration").
        if epoch == 0:
            self.model.partial_fit(self.data.X_train, self.data.y_train, classes=self.classes)
        else:
            self.model.partial_fit(self.data.X_train, self.data.y_train)

    def accuracy(self) -> float:
        return float(self.model.score(self.data.X_test, self.data.y_test))


# --- the machine's GEMM rate -----------------------------------------------------------------

GEMM_CODE = """
import json, os, sys, time
if hasattr(os, "sched_setaffinity"):  # the whole process on one CPU: one thread for BLAS and XLA
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import numpy as np
n, with_jax = int(sys.argv[1]), sys.argv[2] == "1"
rates = {"numpy": {}, "jax": {}}
for dtype in ("float32", "float64"):
    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    c = np.empty_like(a)
    best = float("inf")
    for _ in range(6):
        start = time.perf_counter()
        np.matmul(a, a, out=c)
        best = min(best, time.perf_counter() - start)
    rates["numpy"][dtype] = 2 * n**3 / best / 1e9
if with_jax:
    import jax
    jax.config.update("jax_enable_x64", True)
    f = jax.jit(lambda a: a @ a)
    for dtype in ("float32", "float64"):
        a = jax.numpy.asarray(np.random.default_rng(0).random((n, n)).astype(dtype))
        best = float("inf")
        for _ in range(6):
            start = time.perf_counter()
            f(a).block_until_ready()
            best = min(best, time.perf_counter() - start)
        rates["jax"][dtype] = 2 * n**3 / best / 1e9
print(json.dumps(rates))
"""


def gemm_rates(with_jax: bool) -> dict[str, dict[str, float]]:
    """Single-thread GEMM rates in GFLOP/s, ``{"numpy": {dtype: rate}, "jax": {...}}``.

    Measured in a child process pinned to one CPU, with BLAS's thread variables at 1, so the
    measurement never depends on this process's thread settings.
    The first of the 6 products warms up; the best time counts.
    """
    env = {**os.environ, **ONE_THREAD_ENV}
    out = subprocess.run(
        [sys.executable, "-c", GEMM_CODE, str(GEMM_N), "1" if with_jax else "0"],
        capture_output=True, text=True, check=True, env=env, timeout=600,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


# --- running -------------------------------------------------------------------------------------


def timed(function, *args) -> tuple[float, float]:
    """Wall and CPU (all threads of this process) seconds of ``function(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def make_trainers(config: Config, data: Data, args, peers: dict[str, Any]) -> list[Any]:
    fastbp = FastbpTrainer(config, data, args.seed, args.fastbp_threads)
    weights, biases = fastbp.initial_parameters()
    trainers: list[Any] = [fastbp]
    if "book" in args.systems and config == BOOK_CONFIG:
        trainers.append(BookTrainer(config, data, args.seed, weights, biases, args.book_samples))
    if "numpy" in args.systems:
        trainers.append(NumpyTrainer(config, data, args.seed, weights, biases))
    if peers.get("torch") is not None:
        trainers.append(TorchTrainer(peers["torch"], config, data, args.seed, weights, biases))
    if peers.get("jax") is not None:
        trainers.append(JaxTrainer(peers["jax"], config, data, args.seed, weights, biases))
    if peers.get("sklearn") is not None:
        trainers.append(SklearnTrainer(peers["sklearn"], config, data, args.seed))
    return trainers


def run_rounds(trainers: list[Any], args, results: dict[str, Result]) -> None:
    """``args.repeats`` epochs of every trainer, taking turns in a rotating order."""
    for epoch in range(args.repeats):
        turn = epoch % len(trainers)
        for trainer in trainers[turn:] + trainers[:turn]:
            time.sleep(args.pause)
            wall, cpu = timed(trainer.epoch, epoch)
            result = results[trainer.name]
            scale = result.n_samples / result.timed_samples
            result.seconds.append(wall * scale)
            result.cpu_seconds.append(cpu * scale)


def run_config(config: Config, data: Data, args, peers: dict[str, Any]) -> list[Result]:
    """Time ``args.repeats`` epochs of every system, taking turns, then score each."""
    trainers = make_trainers(config, data, args, peers)
    n = data.X_train.shape[0]
    results = {t.name: Result(t.name, config.label, n, getattr(t, "samples", n)) for t in trainers}
    try:
        run_rounds(trainers, args, results)
        for trainer in trainers:
            results[trainer.name].accuracy = trainer.accuracy()
    finally:
        for trainer in trainers:
            if hasattr(trainer, "close"):
                trainer.close()
    results["fastbp"].extra["kernel_seconds"] = trainers[0].kernel_seconds
    for trainer in trainers:
        if trainer.name == "jax":
            results["jax"].extra["dropped_samples"] = trainer.dropped
    return list(results.values())


def thread_sweep(config: Config, data: Data, args) -> dict[str, Any]:
    """fastbp's epoch with 1 thread, 2 threads and its default, taking turns."""
    variants = {"1": 1, "2": 2, "default": None}
    trainers = {}
    for label, threads in variants.items():
        trainer = FastbpTrainer(config, data, args.seed, threads)
        trainer.name = label
        trainers[label] = trainer
    n = data.X_train.shape[0]
    results = {label: Result(label, config.label, n, n) for label in variants}
    run_rounds(list(trainers.values()), args, results)
    one, two, default = (results[k].median for k in variants)
    return {
        "config": config.label,
        "seconds": {k: r.seconds for k, r in results.items()},
        "median_seconds": {k: r.median for k, r in results.items()},
        "cpu_per_wall": {k: r.cpu_per_wall for k, r in results.items()},
        "speedup_2_over_1": one / two,
        "speedup_default_over_1": one / default,
    }


def read_seconds(X, threads: int | None, repeats: int) -> float:
    """Median seconds to read every value of ``X`` once on Numba's threads (``threads``, else
    its default): a parallel sum, the least time any ``predict`` that reads its input can
    take on this machine."""
    import numba
    import numpy as np

    @numba.njit(parallel=True, fastmath=True)
    def row_sums(x, out):
        for k in numba.prange(x.shape[0]):
            out[k] = x[k].sum()

    out = np.empty(X.shape[0], dtype=X.dtype)
    saved = numba.get_num_threads()
    numba.set_num_threads(threads or saved)
    try:
        row_sums(X, out)  # compile
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            row_sums(X, out)
            samples.append(time.perf_counter() - start)
    finally:
        numba.set_num_threads(saved)
    return statistics.median(samples)


def measure_predict(config: Config, data: Data, args, gemm: dict[str, float]) -> dict[str, Any]:
    """``predict`` on the test images: fastbp (default and 1 thread) against NumPy's forward,
    and the least time a forward pass can take here: the larger of reading the images once
    (``read_seconds``) and its multiply-adds at the single-thread GEMM rate (``gemm``) on
    fastbp's threads."""
    import numba
    import numpy as np

    X = data.X_test
    nets = {
        "fastbp": fastbp_network(config.sizes, args.seed, config.dtype, args.fastbp_threads),
        "fastbp 1 thread": fastbp_network(config.sizes, args.seed, config.dtype, 1),
    }
    weights, biases = nets["fastbp"].weights, nets["fastbp"].biases

    def numpy_predict():
        return numpy_forward(weights, biases, X).argmax(axis=1)

    calls = {
        "fastbp": lambda: fastbp_predict(nets["fastbp"], X, args.fastbp_threads),
        "fastbp 1 thread": lambda: fastbp_predict(nets["fastbp 1 thread"], X, 1),
        "numpy": numpy_predict,
    }
    reference = numpy_predict()
    for name, call in calls.items():
        agree = float(np.mean(call() == reference))  # warm-up, and a check
        if agree < 0.99:
            raise RuntimeError(f"predict: {name} agrees with NumPy on only {agree:.1%} of rows")
    median = median_call_seconds(calls, max(3, args.repeats), args.pause)
    threads = args.fastbp_threads or numba.get_num_threads()
    flops = 2 * X.shape[0] * sum(a * b for a, b in itertools.pairwise(config.sizes))
    read = read_seconds(X, args.fastbp_threads, max(5, args.repeats))
    bound = max(read, flops / (gemm[config.dtype] * 1e9 * threads))
    return {
        "config": f"{'-'.join(map(str, config.sizes))} {config.dtype}",
        "rows": X.shape[0],
        "median_seconds": median,
        "numpy_over_fastbp": median["numpy"] / median["fastbp"],
        "numpy_over_fastbp_1_thread": median["numpy"] / median["fastbp 1 thread"],
        "read_seconds": read,
        "bound_seconds": bound,
        "numpy_over_bound": median["numpy"] / bound,
    }


# --- reporting -----------------------------------------------------------------------------------


def cpu_model() -> str:
    """The processor's name: lscpu's "Model name", else /proc/cpuinfo, else platform."""
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def blas_name(module) -> str:
    """Name and version of the BLAS a NumPy or SciPy build links, from ``show_config``."""
    try:
        config = module.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older versions have no mode="dicts"; this is only informative
        return "unknown"


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        return rev or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info(args, peers: dict[str, Any], threads: dict[str, str]) -> dict[str, Any]:
    import numba
    import numpy as np

    import fastbp

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "fastbp": f"{fastbp.__version__} ({git_revision(Path(__file__).resolve().parent.parent)})",
        "numpy": f"{np.__version__} (BLAS: {blas_name(np)})",
        "numba": f"{numba.__version__} (threading layer pool: {numba.config.NUMBA_NUM_THREADS})",
    }
    for name, module in peers.items():
        if module is None:
            info[name] = "not installed"
        else:
            info[name] = importlib.import_module(name.split(".")[0]).__version__
    info["threads"] = threads
    return info


def thread_settings(
    args, peers: dict[str, Any], blas: dict[str, str], jax_threads: str
) -> dict[str, str]:
    """What each system runs on, for the header (after the settings were made)."""
    import numba

    from fastbp import Network

    def blas_count(owner: str) -> str:
        count = blas_threads(blas[owner]) if owner in blas else None
        return "unknown" if count is None else str(count)

    option = "threads=" if has_threads_option(Network.fit) else "numba.set_num_threads"
    fastbp = (
        f"{args.fastbp_threads} (via {option})"
        if args.fastbp_threads is not None
        else f"its default (Numba {numba.get_num_threads()}; fastbp calls no BLAS)"
    )
    settings = {"fastbp": fastbp, "numpy BLAS": blas_count("numpy")}
    if peers.get("torch") is not None:
        settings["torch"] = str(peers["torch"].get_num_threads())
    if peers.get("jax") is not None:
        settings["jax"] = jax_threads
    return settings


def print_machine(info: dict[str, Any], args) -> None:
    print("Machine")
    for key, value in info.items():
        if key == "threads":
            continue
        print(f"  {key:<13} {value}")
    print(f"  {'repeats':<13} {args.repeats} epochs per system and configuration (median shown)")
    print("Threads" + ("" if args.threads != 1 else " (peers on one thread: --threads 1)"))
    for key, value in info["threads"].items():
        print(f"  {key:<13} {value}")
    print()


def print_config_table(
    config: Config, results: list[Result], repeats: int, gemm: dict[str, float]
) -> dict[str, Any]:
    """The table of one configuration; returns its FLOP-bound figures."""
    rows = [r for r in results if r.config == config.label]
    fastbp = next(r for r in rows if r.system == "fastbp")
    n = fastbp.n_samples
    flops = config.epoch_flops(n)
    rate = gemm[config.dtype]
    bound = flops / (rate * 1e9)
    print(
        f"{config.label}: {n:,} samples per epoch; FLOP bound {bound:.4f} s "
        f"({flops / 1e9:.2f} GFLOP at {rate:.1f} GFLOP/s)"
    )
    header = (
        f"  {'system':<11} {'s/epoch':>9} {'min':>8} {'max':>8} {'samples/s':>11} "
        f"{'vs fastbp':>10} {'cpu/wall':>9} {f'test acc ({repeats} ep)':>17}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in rows:
        name = r.system + ("*" if r.timed_samples != r.n_samples else "")
        print(
            f"  {name:<11} {r.median:>9.4f} {min(r.seconds):>8.4f} {max(r.seconds):>8.4f} "
            f"{r.n_samples / r.median:>11,.0f} {r.median / fastbp.median:>9.2f}x "
            f"{r.cpu_per_wall:>9.2f} {r.accuracy:>17.4f}"
        )
    print(
        f"  {'FLOP bound':<11} {bound:>9.4f} {'':>8} {'':>8} {n / bound:>11,.0f} "
        f"{bound / fastbp.median:>9.2f}x"
    )
    threads = (
        f"; it kept {fastbp.cpu_per_wall:.1f} cores busy, the bound is for one"
        if fastbp.cpu_per_wall > 1.2
        else ""
    )
    print(
        f"  fastbp takes {fastbp.median / bound:.2f}x the FLOP bound "
        f"({flops / fastbp.median / 1e9:.1f} GFLOP/s{threads})."
    )
    for r in rows:
        if r.timed_samples != r.n_samples:
            print(
                f"  * {r.system}: each epoch timed on {r.timed_samples:,} samples and scaled to "
                f"{r.n_samples:,}; its accuracy is after {repeats} x {r.timed_samples:,} samples."
            )
        if r.extra.get("dropped_samples"):
            print(f"  {r.system}: dropped a last partial batch of {r.extra['dropped_samples']}.")
    if fastbp.extra.get("kernel_seconds"):
        kernel = statistics.median(fastbp.extra["kernel_seconds"])
        print(
            f"  fastbp: {kernel:.4f} s of the {fastbp.median:.4f} s is the compiled epoch (fit's "
            "own timing); the rest is fit()'s argument checks, one-hot targets and shuffle."
        )
    print()
    return {
        "flops": flops,
        "gemm_gflops": rate,
        "bound_seconds": bound,
        "fastbp_over_bound": fastbp.median / bound,
    }


def print_thread_sweep(sweeps: list[dict[str, Any]], has_option: bool) -> None:
    how = "threads=" if has_option else "numba.set_num_threads around fit (no threads= yet)"
    print(f"fastbp threads (s/epoch, median; set with {how})")
    header = (
        f"  {'config':<30} {'1 thread':>9} {'2 threads':>10} {'default':>9} "
        f"{'1T / 2T':>8} {'1T / default':>13}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for s in sweeps:
        m = s["median_seconds"]
        print(
            f"  {s['config']:<30} {m['1']:>9.4f} {m['2']:>10.4f} {m['default']:>9.4f} "
            f"{s['speedup_2_over_1']:>7.2f}x {s['speedup_default_over_1']:>12.2f}x"
        )
    print()


def print_predict(predicts: list[dict[str, Any]]) -> None:
    rows = predicts[0]["rows"] if predicts else 0
    print(f"predict on {rows:,} test images (s, median; NumPy's BLAS as set above)")
    header = (
        f"  {'network':<28} {'fastbp':>9} {'fastbp 1T':>10} {'numpy':>9} "
        f"{'numpy/fastbp':>13} {'numpy/fastbp 1T':>16} {'bound':>9} {'numpy/bound':>12}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for p in predicts:
        m = p["median_seconds"]
        print(
            f"  {p['config']:<28} {m['fastbp']:>9.5f} {m['fastbp 1 thread']:>10.5f} "
            f"{m['numpy']:>9.5f} {p['numpy_over_fastbp']:>12.2f}x "
            f"{p['numpy_over_fastbp_1_thread']:>15.2f}x {p['bound_seconds']:>9.5f} "
            f"{p['numpy_over_bound']:>11.2f}x"
        )
    print(
        "  bound = the larger of reading the images once on fastbp's threads (a parallel sum)\n"
        "  and their multiply-adds at the single-thread GEMM rate times fastbp's threads;\n"
        "  numpy/bound is the most any predict could beat NumPy by on this machine."
    )
    print()


def targets(results: list[Result], bounds: dict[str, Any], sweeps, predicts) -> list[dict]:
    """The speed targets, each as a ratio from this run (absent when its inputs were not run)."""
    median = {(r.config, r.system): r.median for r in results}
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, op: str, limit: float, unit: str = "x") -> None:
        if value is not None:
            ok = value <= limit if op == "<=" else value >= limit
            checks.append({"target": name, "value": value, "op": op, "limit": limit,
                           "unit": unit, "met": ok})  # fmt: skip

    def ratio(config: Config, peer: str) -> float | None:
        a, b = median.get((config.label, peer)), median.get((config.label, "fastbp"))
        return None if a is None or b is None else a / b

    small32, small64, wide100, deep, wide1000 = CONFIGS
    check(f"{small32.label}: s/epoch", median.get((small32.label, "fastbp")), "<=", 0.05, "s")
    check(f"{small32.label}: jax / fastbp", ratio(small32, "jax"), ">=", 4)
    check(f"{small32.label}: numpy / fastbp", ratio(small32, "numpy"), ">=", 7)
    f32, f64 = median.get((small32.label, "fastbp")), median.get((small64.label, "fastbp"))
    check("784-30-10 b10: float64 / float32", f64 / f32 if f32 and f64 else None, "<=", 2)
    if wide100.label in bounds:
        check(f"{wide100.label}: fastbp / FLOP bound",
              bounds[wide100.label]["fastbp_over_bound"], "<=", 1.5)  # fmt: skip
    check(f"{deep.label}: jax / fastbp", ratio(deep, "jax"), ">=", 3)
    check(f"{wide1000.label}: jax / fastbp", ratio(wide1000, "jax"), ">=", 3)
    for s in sweeps:
        if s["config"] == wide100.label:
            if wide100.label in bounds:  # the bound is a single-thread one: fastbp on 1 thread
                one_thread = s["median_seconds"]["1"] / bounds[wide100.label]["bound_seconds"]
                check(f"{wide100.label}: fastbp 1 thread / FLOP bound", one_thread, "<=", 1.5)
            check(f"{s['config']}: 1 thread / 2 threads", s["speedup_2_over_1"], ">=", 1.6)
        if s["config"] == small32.label:
            check(f"{s['config']}: 1 thread / default", s["speedup_default_over_1"], ">=", 1.0)
    for p in predicts:
        check(f"predict {p['config']}: numpy / fastbp", p["numpy_over_fastbp"], ">=", 5)
    return checks


def print_targets(checks: list[dict[str, Any]]) -> None:
    print("Targets (ratios from this run; fastbp at its default threads unless named)")
    for c in checks:
        value = f"{c['value']:.3f} s" if c["unit"] == "s" else f"{c['value']:.3f}x"
        limit = f"{c['limit']:g} s" if c["unit"] == "s" else f"{c['limit']:g}x"
        print(
            f"  {'met ' if c['met'] else 'MISS'}  {c['target']:<54} {value:>9}  {c['op']} {limit}"
        )
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import_fastbp()
    # NumPy's BLAS starts its worker threads when it loads: before the one-CPU window of
    # import_jax, so that they keep every CPU.
    import numpy  # noqa: F401

    jax, jax_threads = import_jax(args.threads) if "jax" in args.systems else (None, "")

    blas = openblas_libraries()
    blas_note = None
    if args.threads > 0:
        if "numpy" in blas:
            blas_threads(blas["numpy"], args.threads)
        else:
            blas_note = (
                "note: could not find NumPy's own OpenBLAS to set its threads; set "
                "OPENBLAS_NUM_THREADS for the NumPy-based systems"
            )

    peers: dict[str, Any] = {}
    if "torch" in args.systems:
        peers["torch"] = optional_module("torch")
        if peers["torch"] is not None and args.threads > 0:
            peers["torch"].set_num_threads(args.threads)
    if "jax" in args.systems:
        peers["jax"] = jax
    if "sklearn" in args.systems:
        peers["sklearn"] = optional_module("sklearn.neural_network")

    from fastbp import Network

    data, warning = load_data(args.data, {c.dtype for c in args.configs} | {"float32"})
    info = machine_info(args, peers, thread_settings(args, peers, blas, jax_threads))
    info["data"] = data["float32"].name
    print(__doc__.strip().splitlines()[0])
    print()
    if warning:
        print(warning)
        print()
    print_machine(info, args)
    for note in [blas_note] if blas_note else []:
        print(note)
    for name, module in peers.items():
        if module is None:
            print(f"{name}: not installed (skipped; this script never installs it)")
    print()

    print("measuring the single-thread GEMM rate ...", flush=True)
    gemm = gemm_rates(with_jax=peers.get("jax") is not None)
    for library, rates in gemm.items():
        if rates:
            print(
                f"  {library:<6} {GEMM_N}x{GEMM_N} matmul, 1 thread: "
                + ", ".join(f"{d} {r:.1f} GFLOP/s" for d, r in rates.items())
            )
    print("  (the FLOP bounds below use NumPy's rate)")
    print()

    results: list[Result] = []
    for config in args.configs:
        print(f"timing {config.label} ...", flush=True)
        results.extend(run_config(config, data[config.dtype], args, peers))
    sweeps, predicts = [], []
    if not args.no_extras:
        for config in THREAD_SWEEP:
            print(f"timing fastbp's threads on {config.label} ...", flush=True)
            sweeps.append(thread_sweep(config, data[config.dtype], args))
        print("timing predict ...", flush=True)
        networks = {(c.sizes, c.dtype): c for c in args.configs}  # the batch size plays no part
        for config in networks.values():
            predicts.append(measure_predict(config, data[config.dtype], args, gemm["numpy"]))
    print()

    bounds = {}
    for config in args.configs:
        bounds[config.label] = print_config_table(config, results, args.repeats, gemm["numpy"])
    print(
        "vs fastbp = the system's median s/epoch / fastbp's (above 1: fastbp is faster); "
        "cpu/wall = CPU time of the process / wall time (about the threads in use)."
    )
    if any(r.system == "sklearn" for r in results):
        print(
            f"sklearn trains a different model (softmax + log-loss, Glorot init, "
            f"learning_rate_init={SKLEARN_ETA}): its accuracy is not comparable, its time is."
        )
    print()
    if sweeps:
        print_thread_sweep(sweeps, has_threads_option(Network.fit))
    if predicts:
        print_predict(predicts)
    checks = targets(results, bounds, sweeps, predicts)
    print_targets(checks)

    if args.json:
        fastbp_median = {r.config: r.median for r in results if r.system == "fastbp"}
        payload = {
            "machine": info,
            "warning": warning,
            "eta": ETA,
            "seed": args.seed,
            "peer_threads": args.threads,
            "fastbp_threads": args.fastbp_threads,
            "gemm_gflops_one_thread": gemm,
            "configs": {
                c.label: {
                    "sizes": c.sizes,
                    "batch_size": c.batch_size,
                    "dtype": c.dtype,
                    **bounds[c.label],
                }
                for c in args.configs
            },
            "results": [
                {
                    "system": r.system,
                    "config": r.config,
                    "n_samples": r.n_samples,
                    "timed_samples": r.timed_samples,
                    "seconds": r.seconds,
                    "median_seconds": r.median,
                    "samples_per_second": r.n_samples / r.median,
                    "ratio_to_fastbp": r.median / fastbp_median[r.config],
                    "cpu_per_wall": r.cpu_per_wall,
                    "test_accuracy": r.accuracy,
                    **r.extra,
                }
                for r in results
            ],
            "thread_sweep": sweeps,
            "predict": predicts,
            "targets": checks,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
