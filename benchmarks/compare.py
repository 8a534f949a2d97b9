"""Seconds per training epoch: fastbp against plain NumPy and, if installed, PyTorch and sklearn.

How to reproduce
----------------
From the repository root, with the four MNIST IDX files (gzipped or not) in ``DIR``::

    FASTBP_DATA=DIR PYTHONPATH=. python benchmarks/compare.py
    PYTHONPATH=. python benchmarks/compare.py --data DIR --repeats 5 --epochs-json out.json

Without MNIST (no ``--data``, no ``FASTBP_DATA``, nothing in the per-user cache) it falls back to
the 8,000 training images bundled with fastbp and says so: seconds per epoch then cover 8,000
samples, not 50,000, so compare samples per second, not seconds, with an MNIST run.

What is measured
----------------
Three configurations of the book's model (Nielsen, *Neural Networks and Deep Learning*, ch. 1-2:
sigmoid neurons, quadratic cost, N(0, 1) initial weights and biases, mini-batch SGD, η = 3.0):

* ``[784, 30, 10]``, mini-batch 10, float32 and float64;
* ``[784, 100, 10]``, mini-batch 100, float32.

For each, every system trains ``--repeats`` consecutive epochs over the 50,000 MNIST training
images (the book's split); the time of each epoch is taken with ``time.perf_counter`` around the
whole call (for fastbp the public ``Network.fit``, argument checks included), and the median is
reported, with samples per second and the ratio *system time / fastbp time* (above 1: fastbp is
faster). The systems take turns epoch by epoch (in a rotating order), so a slow spell of a shared
machine does not fall on one system only. Compilation and other first-call costs are paid in an
untimed warm-up on a few rows. After its epochs each system's accuracy on the test set is
printed: fastbp, NumPy and PyTorch start from the same parameters and visit the samples in the
same order, so they train the same model and their accuracies agree closely (they differ only
by rounding). sklearn's ``MLPClassifier`` is a different model (softmax output with log-loss,
Glorot initialisation, its own sample order) timed for reference at the same sizes.

Systems
-------
``fastbp``
    ``Network(sizes, seed=..., dtype=...).fit(X, y, epochs=1, batch_size=..., lr=3.0, seed=...)``.
``numpy``
    The book's equations written with NumPy in this file, each mini-batch as one matrix (rows are
    samples): ``Z = A @ W.T + b``, ``A = σ(Z)``; BP1 ``Δᴸ = (Aᴸ − Y) ⊙ σ'(Zᴸ)``; BP2
    ``Δˡ = (Δˡ⁺¹ @ Wˡ⁺¹) ⊙ σ'(Zˡ)``; BP3 ``∂C/∂bˡ = Σ rows of Δˡ``; BP4 ``∂C/∂Wˡ = Δˡᵀ @ Aˡ⁻¹``;
    then ``θ ← θ − (η/m) ∂C/∂θ``. ``σ'(Z)`` is computed as ``A ⊙ (1 − A)``.
``torch`` (only if importable; never installed by this script)
    The same equations with PyTorch CPU tensors, eager mode, manual gradients.
``sklearn`` (only if importable; never installed by this script)
    ``MLPClassifier(solver="sgd", activation="logistic", momentum=0, alpha=0, ...)``, one
    ``partial_fit`` (one epoch) per timed call.

Threads: by default (``--threads 1``) every library runs on one thread (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` are set before NumPy is
imported; ``torch.set_num_threads(1)``). fastbp's training loop is single-threaded either way.
``--threads 0`` leaves every library at its default.

Read the numbers as medians and ratios from one run on one machine: on a shared machine the
absolute times vary from run to run by tens of percent, the ratios much less.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# NumPy, Numba and fastbp are imported inside the functions below, not here: the thread
# settings (environment variables read when the BLAS library loads) must come first.

#: Learning rate η of every configuration (the book's chapter 1 value).
ETA = 3.0
#: Training samples of an MNIST run: the first 50,000 images, as in the book.
MNIST_TRAIN = 50_000
#: Learning rate for sklearn's MLPClassifier (softmax + log-loss: η = 3.0 is too large for it).
SKLEARN_ETA = 0.5
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


@dataclass(frozen=True)
class Config:
    """One model and training setting."""

    sizes: tuple[int, ...]
    batch_size: int
    dtype: str

    @property
    def label(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} b{self.batch_size} {self.dtype}"


CONFIGS = (
    Config((784, 30, 10), 10, "float32"),
    Config((784, 30, 10), 10, "float64"),
    Config((784, 100, 10), 100, "float32"),
)
SYSTEMS = ("fastbp", "numpy", "torch", "sklearn")


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
    """Per-epoch times and the final test accuracy of one system on one configuration."""

    system: str
    config: str
    n_samples: int
    seconds: list[float] = field(default_factory=list)
    accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


# --- command line and environment --------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seconds per training epoch: fastbp against plain NumPy and optional peers.",
        epilog="See the docstring at the top of this file for what is measured and how.",
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
        "--epochs-json",
        metavar="FILE",
        help="also write every epoch's time, the accuracies and the machine to FILE as JSON",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of init and shuffles (1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for BLAS, Numba and PyTorch (default 1; 0 leaves library defaults)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all); fastbp is always run",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be 0 or more")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {', '.join(unknown)} (known: {', '.join(SYSTEMS)})")
    args.systems = ["fastbp", *(s for s in SYSTEMS[1:] if s in systems)]
    return args


def limit_threads(threads: int) -> None:
    """Set the thread-count variables; must run before NumPy (and its BLAS) is imported."""
    if threads > 0:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)


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


# --- the systems ---------------------------------------------------------------------------------


class FastbpTrainer:
    """fastbp through its public API: one ``Network.fit`` call per epoch."""

    name = "fastbp"

    def __init__(self, config: Config, data: Data, seed: int) -> None:
        from fastbp import Network

        self.config, self.data, self.seed = config, data, seed
        # Compile (or load from Numba's cache) for this dtype, on a throwaway network.
        warm = Network(list(config.sizes), seed=seed, dtype=config.dtype)
        rows = 2 * config.batch_size + 3
        warm.fit(
            data.X_train[:rows], data.y_train[:rows], epochs=1,
            batch_size=config.batch_size, lr=ETA, seed=0,
        )  # fmt: skip
        warm.accuracy(data.X_test[:100], data.y_test[:100])
        self.net = Network(list(config.sizes), seed=seed, dtype=config.dtype)
        self.kernel_seconds: list[float] = []

    def initial_parameters(self):
        """Copies of the initial ``(weights, biases)``, for the systems that share them."""
        return [w.copy() for w in self.net.weights], [b.copy() for b in self.net.biases]

    def epoch(self, epoch: int) -> None:
        history = self.net.fit(
            self.data.X_train, self.data.y_train, epochs=1, batch_size=self.config.batch_size,
            lr=ETA, seed=shuffle_seed(self.seed, epoch),
        )  # fmt: skip
        self.kernel_seconds.append(history["seconds"][0])

    def accuracy(self) -> float:
        return self.net.accuracy(self.data.X_test, self.data.y_test)


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

    @staticmethod
    def sigmoid(z):
        import numpy as np

        return 1 / (1 + np.exp(-z))

    def train(self, X, Y, order) -> None:
        """One pass of mini-batch SGD over the rows of ``X`` in ``order``."""
        import numpy as np

        order = np.asarray(order)
        batch = self.config.batch_size
        W, B = self.weights, self.biases
        L = len(W)  # layers with parameters
        with np.errstate(over="ignore"):  # exp(-z) → inf for z ≪ 0 gives σ = 0, as it should
            for start in range(0, order.shape[0], batch):
                rows = order[start : start + batch]
                m = rows.shape[0]
                A = [X[rows]]  # A[l]: activations of layer l, one row per sample
                for w, b in zip(W, B, strict=True):
                    A.append(self.sigmoid(A[-1] @ w.T + b))  # Z = A @ Wᵀ + b, A = σ(Z)
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

        a = self.data.X_test
        with np.errstate(over="ignore"):
            for w, b in zip(self.weights, self.biases, strict=True):
                a = self.sigmoid(a @ w.T + b)
        return float(np.mean(a.argmax(axis=1) == self.data.y_test))


class TorchTrainer:
    """The same equations with PyTorch CPU tensors: eager mode, manual gradients."""

    name = "torch"

    def __init__(self, torch, config: Config, data: Data, seed: int, weights, biases) -> None:
        self.torch, self.config, self.data, self.seed = torch, config, data, seed
        self.X = torch.from_numpy(data.X_train)
        self.Y = torch.from_numpy(data.Y_train)
        self.weights = [torch.from_numpy(w.copy()) for w in weights]
        self.biases = [torch.from_numpy(b.copy()) for b in biases]
        saved = [w.clone() for w in self.weights], [b.clone() for b in self.biases]
        self.train(torch.arange(64))
        self.weights, self.biases = saved

    def train(self, order) -> None:
        """One pass of mini-batch SGD over the rows of the training set in ``order``."""
        torch = self.torch
        batch = self.config.batch_size
        W, B = self.weights, self.biases
        L = len(W)
        with torch.no_grad():
            for start in range(0, order.shape[0], batch):
                rows = order[start : start + batch]
                m = rows.shape[0]
                A = [self.X.index_select(0, rows)]
                for w, b in zip(W, B, strict=True):
                    A.append(torch.sigmoid(torch.addmm(b, A[-1], w.t())))
                a = A[-1]
                delta = (a - self.Y.index_select(0, rows)) * a * (1 - a)  # BP1
                grad_w, grad_b = [None] * L, [None] * L
                for l in range(L - 1, -1, -1):
                    grad_b[l] = delta.sum(dim=0)  # BP3
                    grad_w[l] = delta.t() @ A[l]  # BP4
                    if l:
                        delta = (delta @ W[l]) * A[l] * (1 - A[l])  # BP2
                step = ETA / m
                for w, b, gw, gb in zip(W, B, grad_w, grad_b, strict=True):
                    w.sub_(gw, alpha=step)
                    b.sub_(gb, alpha=step)

    def epoch(self, epoch: int) -> None:
        n = self.data.X_train.shape[0]
        self.train(self.torch.from_numpy(epoch_order(self.seed, epoch, n)))

    def accuracy(self) -> float:
        torch = self.torch
        with torch.no_grad():
            a = torch.from_numpy(self.data.X_test)
            for w, b in zip(self.weights, self.biases, strict=True):
                a = torch.sigmoid(torch.addmm(b, a, w.t()))
            labels = torch.from_numpy(self.data.y_test)
            return float((a.argmax(dim=1) == labels).double().mean())


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


# --- running -------------------------------------------------------------------------------------


def make_trainers(config: Config, data: Data, args, peers: dict[str, Any]) -> list[Any]:
    fastbp = FastbpTrainer(config, data, args.seed)
    weights, biases = fastbp.initial_parameters()
    trainers: list[Any] = [fastbp]
    if "numpy" in args.systems:
        trainers.append(NumpyTrainer(config, data, args.seed, weights, biases))
    if peers.get("torch") is not None:
        trainers.append(TorchTrainer(peers["torch"], config, data, args.seed, weights, biases))
    if peers.get("sklearn") is not None:
        trainers.append(SklearnTrainer(peers["sklearn"], config, data, args.seed))
    return trainers


def run_config(config: Config, data: Data, args, peers: dict[str, Any]) -> list[Result]:
    """Time ``args.repeats`` epochs of every system, taking turns, then score each."""
    trainers = make_trainers(config, data, args, peers)
    n = data.X_train.shape[0]
    results = {t.name: Result(t.name, config.label, n) for t in trainers}
    for epoch in range(args.repeats):
        turn = epoch % len(trainers)
        for trainer in trainers[turn:] + trainers[:turn]:
            start = time.perf_counter()
            trainer.epoch(epoch)
            results[trainer.name].seconds.append(time.perf_counter() - start)
    for trainer in trainers:
        results[trainer.name].accuracy = trainer.accuracy()
    results["fastbp"].extra["kernel_seconds"] = trainers[0].kernel_seconds
    return list(results.values())


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


def machine_info(args, peers: dict[str, Any]) -> dict[str, Any]:
    import numba
    import numpy as np
    import scipy

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
        "scipy": f"{scipy.__version__} (BLAS: {blas_name(scipy)}, used by Numba's np.dot)",
        "numba": f"{numba.__version__} (threads: {numba.get_num_threads()})",
        "thread_env": {name: os.environ.get(name, "unset") for name in THREAD_VARIABLES},
    }
    for name, module in peers.items():
        if module is None:
            info[name] = "not installed"
        elif name == "torch":
            info[name] = f"{module.__version__} (threads: {module.get_num_threads()})"
        else:
            info[name] = importlib.import_module(name.split(".")[0]).__version__
    return info


def print_machine(info: dict[str, Any], args) -> None:
    print("Machine")
    for key, value in info.items():
        if key == "thread_env":
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"  {key:<13} {value}")
    print(f"  {'repeats':<13} {args.repeats} epochs per system and configuration (median shown)")
    print()


def print_table(results: list[Result], repeats: int) -> None:
    """One row per system and configuration, and fastbp's own overhead per configuration."""
    fastbp_median = {r.config: r.median for r in results if r.system == "fastbp"}
    header = (
        f"{'system':<8} {'config':<24} {'s/epoch':>9} {'min':>8} {'max':>8} "
        f"{'samples/s':>11} {'vs fastbp':>10} {f'test acc ({repeats} ep)':>17}"
    )
    print(header)
    print("-" * len(header))
    config_order = [c.label for c in CONFIGS]
    for config in config_order:
        for r in (r for r in results if r.config == config):
            ratio = r.median / fastbp_median[config]
            print(
                f"{r.system:<8} {r.config:<24} {r.median:>9.3f} {min(r.seconds):>8.3f} "
                f"{max(r.seconds):>8.3f} {r.n_samples / r.median:>11,.0f} "
                f"{ratio:>9.2f}x {r.accuracy:>17.4f}"
            )
        print()
    print("vs fastbp = system's median s/epoch / fastbp's (above 1: fastbp is faster).")
    for r in results:
        if r.system == "fastbp":
            kernel = statistics.median(r.extra["kernel_seconds"])
            print(
                f"fastbp {r.config}: {kernel:.3f} s of the {r.median:.3f} s median is the compiled "
                f"epoch; the rest is fit()'s argument checks, one-hot targets and shuffle."
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    import_fastbp()

    peers: dict[str, Any] = {}
    if "torch" in args.systems:
        peers["torch"] = optional_module("torch")
        if peers["torch"] is not None and args.threads > 0:
            peers["torch"].set_num_threads(args.threads)
    if "sklearn" in args.systems:
        peers["sklearn"] = optional_module("sklearn.neural_network")

    data, warning = load_data(args.data, {c.dtype for c in CONFIGS})
    info = machine_info(args, peers)
    info["data"] = data["float32"].name
    print(__doc__.strip().splitlines()[0])
    print()
    if warning:
        print(warning)
        print()
    print_machine(info, args)
    for name, module in peers.items():
        if module is None:
            print(f"{name}: not installed (skipped; this script never installs it)")
    if peers:
        print()

    results: list[Result] = []
    for config in CONFIGS:
        print(f"timing {config.label} ...", flush=True)
        results.extend(run_config(config, data[config.dtype], args, peers))
    print()
    print_table(results, args.repeats)
    if any(r.system == "sklearn" for r in results):
        print(
            f"sklearn trains a different model (softmax + log-loss, Glorot init, "
            f"learning_rate_init={SKLEARN_ETA}): its accuracy is not comparable, its time is."
        )

    if args.epochs_json:
        payload = {
            "machine": info,
            "warning": warning,
            "eta": ETA,
            "seed": args.seed,
            "threads": args.threads,
            "results": [
                {
                    "system": r.system,
                    "config": r.config,
                    "n_samples": r.n_samples,
                    "seconds": r.seconds,
                    "median_seconds": r.median,
                    "samples_per_second": r.n_samples / r.median,
                    "ratio_to_fastbp": r.median
                    / next(
                        f.median for f in results if f.system == "fastbp" and f.config == r.config
                    ),
                    "test_accuracy": r.accuracy,
                    **r.extra,
                }
                for r in results
            ],
        }
        Path(args.epochs_json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.epochs_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
