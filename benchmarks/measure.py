"""``compare.py``'s timings: the systems' epochs in turns, fastbp's threads, ``predict``."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from .peers import make_trainers
from .peers.fastbp_api import FastbpTrainer, fastbp_network, fastbp_predict
from .peers.numpy_matrix import numpy_forward
from .workload import Config, Data


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


def timed(function, *args) -> tuple[float, float]:
    """Wall and CPU (all threads of this process) seconds of ``function(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


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
