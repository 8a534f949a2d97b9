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
    The book's equations written with NumPy (``peers/numpy_matrix.py``), each mini-batch as one
    matrix (rows are samples): ``Z = A @ W.T + b``, ``A = σ(Z)``; BP1 ``Δᴸ = (Aᴸ − Y) ⊙ σ'(Zᴸ)``;
    BP2 ``Δˡ = (Δˡ⁺¹ @ Wˡ⁺¹) ⊙ σ'(Zˡ)``; BP3 ``∂C/∂bˡ = Σ rows of Δˡ``; BP4 ``∂C/∂Wˡ = Δˡᵀ @ Aˡ⁻¹``;
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

Code
----
This file is the command line and the order of the run; its parts, in ``benchmarks/``:
``workload.py`` (the configurations, the data, each epoch's sample order), ``peers/`` (one module
per system, and ``peers/threads.py``: the peers' imports and threads), ``gemm_rate.py`` (the
single-thread GEMM rate), ``measure.py`` (the timed rounds, the thread sweep, ``predict``) and
``report.py`` (the machine, the tables, the targets, the JSON file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python benchmarks/compare.py): its parts are a package
    sys.path.append(str(Path(__file__).resolve().parent.parent))

# The parts import NumPy, Numba, JAX and fastbp inside their functions, never at the top: JAX must
# be imported in a window where the process may use only one CPU (see import_jax).

from benchmarks.gemm_rate import GEMM_N, gemm_rates
from benchmarks.measure import Result, measure_predict, run_config, thread_sweep
from benchmarks.peers import SYSTEMS
from benchmarks.peers.fastbp_api import has_threads_option, import_fastbp
from benchmarks.peers.sklearn_mlp import SKLEARN_ETA
from benchmarks.peers.threads import blas_threads, import_jax, openblas_libraries, optional_module
from benchmarks.report import (
    json_report,
    machine_info,
    print_config_table,
    print_machine,
    print_predict,
    print_targets,
    print_thread_sweep,
    targets,
    thread_settings,
)
from benchmarks.workload import CONFIGS, ETA, MNIST_TRAIN, THREAD_SWEEP, load_data

__all__ = ["CONFIGS", "ETA", "MNIST_TRAIN", "main", "parse_args"]


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
        payload = json_report(args, info, warning, gemm, bounds, results, sweeps, predicts, checks)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
