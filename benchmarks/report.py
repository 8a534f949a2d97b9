"""``compare.py``'s report: the machine, the tables, the speed targets and the JSON file."""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from .measure import Result
from .peers.fastbp_api import has_threads_option
from .peers.threads import blas_threads
from .workload import CONFIGS, ETA, Config


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


def json_report(
    args, info, warning, gemm, bounds, results: list[Result], sweeps, predicts, checks
) -> dict[str, Any]:
    """Every time, ratio and setting of the run and the machine, as ``--json`` writes them."""
    fastbp_median = {r.config: r.median for r in results if r.system == "fastbp"}
    return {
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
