"""Stress loop for issue 23: the first simulator launch of ``weighted_input``, in fresh processes.

CI once got wrong values in the first 4 × 4 tile of
``test_weighted_input_and_activation[sigmoid-float64]`` under ``NUMBA_ENABLE_CUDASIM=1``. The
cause is a race in Numba's CUDA simulator, not in the kernel: the threads of a launch's first
block can each create their own ``cuda.shared.array`` (see
``tests.test_cuda.serialise_simulator_shared_arrays``, the tests' workaround). This script
counts how often it happens::

    python tests/stress_cudasim.py                   # with the tests' workaround: expect 0 wrong
    python tests/stress_cudasim.py --unpatched       # the simulator as installed: the bug

Each run is a fresh Python process with ``NUMBA_ENABLE_CUDASIM=1`` that imports
``tests.test_cuda`` (as pytest does: its switch interval, 0.1 ms, and its workaround, which
``--unpatched`` takes off again), then launches ``_cuda.weighted_input`` once on the failing
test's data (6 samples × 9 neurons from 7 inputs, float64, sigmoid) and compares ``z`` with
NumPy. The runs go one at a time, first on their own ("idle"), then beside a busy loop that this
script starts on the same CPU as the run and stops at the end of the phase ("busy"): at most two
processes of this script at once, on one CPU in the busy phase.

The race needs a thread switch inside a window of a few bytecodes, so it is rare and its rate
depends on the machine's load: ``--widen S`` releases the GIL for ``S`` seconds inside that
window (in ``numpy.empty`` when a simulator thread calls it, which the simulator and the
workaround both do there), so that without the workaround most first launches fail and with it
none may. ``--count-allocations`` counts the shared arrays the first block created (2 when each
was created once) to show that every wrong result came with a duplicated array; like
``--widen`` it adds a Python call inside the window. A run that does not get as far as the
launch (the checkout does not import, say) is counted apart, not as wrong. Exits 1 if any run
computed a wrong value or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys, threading, time

import numpy as np

import tests.test_cuda  # the test module's switch interval and workaround
from numba.cuda.simulator import kernel, kernelapi

from fastbp import _cuda
from fastbp import network as network_module
from numba import cuda

options = json.loads(sys.argv[1])
if options["unpatched"]:
    kernelapi.FakeCUDAShared.array = kernelapi.FakeCUDAShared.array.__wrapped__
if options["switch_interval"]:
    sys.setswitchinterval(options["switch_interval"])
created = []
if options["widen"] is not None or options["count_allocations"]:
    # The simulator (and the workaround) create a static shared array with np.empty, between
    # the lookup and the store; no other code of a kernel thread calls it in weighted_input.
    real_empty = np.empty

    def empty(*args, **kwargs):
        if isinstance(threading.current_thread(), kernel.BlockThread):
            created.append(args[0])
            if options["widen"] is not None:
                time.sleep(options["widen"])
        return real_empty(*args, **kwargs)

    np.empty = empty

# The failing test's data, as in test_weighted_input_and_activation[sigmoid-float64].
rng = np.random.default_rng(1)
w, b, a_in = rng.normal(size=(9, 7)), rng.normal(size=9), 3 * rng.normal(size=(6, 7))
z, a, da = (cuda.device_array((6, 9), dtype=np.float64) for _ in range(3))
kind = network_module.ACTIVATIONS["sigmoid"].code
args = (cuda.to_device(w), cuda.to_device(b), cuda.to_device(a_in), z, a, da, kind,
        np.float64(0.3))
start = time.perf_counter()
_cuda.weighted_input[_cuda._tiles(9, 6)](*args)
seconds = time.perf_counter() - start
wrong = ~np.isclose(z.copy_to_host(), a_in @ w.T + b, rtol=1e-12, atol=1e-12)
tile = _cuda.TILE
print(json.dumps({
    "wrong": int(wrong.sum()),
    "outside_first_tile": bool(wrong[tile:].any() or wrong[:, tile:].any()),
    "positions": np.argwhere(wrong).tolist(),
    "allocations": len(created) if options["count_allocations"] else None,
    "seconds": seconds,
}))
"""


def _pinned(cpu: int | None):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_child(options: dict, cpu: int | None) -> dict:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(options)],
        cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=_pinned(cpu),
    )  # fmt: skip
    if done.returncode != 0:  # e.g. the checkout does not import: not a result
        return {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def phase(name: str, runs: int, options: dict, busy_cpu: int | None, verbose: bool) -> dict:
    """``runs`` fresh processes one after the other; beside a busy loop on ``busy_cpu`` (the
    runs pinned to the same CPU) unless it is None."""
    busy = None
    if busy_cpu is not None:
        busy = subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], preexec_fn=_pinned(busy_cpu)
        )
    counts = {"phase": name, "runs": 0, "wrong": 0, "outside_first_tile": 0, "duplicated": 0}
    counts["errors"] = 0
    start = time.perf_counter()
    try:
        for _ in range(runs):
            result = run_child(options, busy_cpu)
            if "error" in result:
                counts["errors"] += 1
                print(f"  {name}: a run failed: {result['error'][0]}")
                continue
            counts["runs"] += 1
            if result["wrong"]:
                counts["wrong"] += 1
                counts["outside_first_tile"] += result["outside_first_tile"]
                if verbose:
                    print(f"  {name}: {result['wrong']} wrong at {result['positions']}")
            if result["allocations"] is not None and result["allocations"] > 2:
                counts["duplicated"] += 1
                if not result["wrong"] and verbose:
                    print(f"  {name}: {result['allocations']} shared arrays, right values")
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait()
    counts["seconds"] = round(time.perf_counter() - start, 1)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=100, help="runs per phase (100)")
    parser.add_argument("--rounds", type=int, default=1, help="idle + busy rounds (1)")
    parser.add_argument(
        "--unpatched", action="store_true", help="take the tests' workaround off (the bug)"
    )
    parser.add_argument(
        "--widen", type=float, default=None, metavar="S",
        help="release the GIL for S seconds inside the simulator's lookup-or-create window",
    )  # fmt: skip
    parser.add_argument(
        "--count-allocations", action="store_true",
        help="count the shared arrays the first block created (2 when each was created once)",
    )  # fmt: skip
    parser.add_argument(
        "--switch-interval", type=float, default=None, metavar="S",
        help="sys.setswitchinterval in the runs (default: the test module's, 1e-4)",
    )  # fmt: skip
    parser.add_argument("--phases", default="idle,busy", help="idle, busy or both (idle,busy)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each wrong run")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    if not set(phases) <= {"idle", "busy"}:
        parser.error(f"--phases: idle, busy or idle,busy, not {args.phases!r}")
    options = {
        "unpatched": args.unpatched,
        "widen": args.widen,
        "count_allocations": args.count_allocations,
        "switch_interval": args.switch_interval,
    }
    cpu = max(os.sched_getaffinity(0))
    print(f"options: {json.dumps(options)}; busy phase: a busy loop and the runs on CPU {cpu}")
    totals = {"runs": 0, "wrong": 0, "errors": 0}
    for r in range(args.rounds):
        for name in phases:
            counts = phase(name, args.runs, options, cpu if name == "busy" else None, args.verbose)
            totals["runs"] += counts["runs"]
            totals["wrong"] += counts["wrong"]
            totals["errors"] += counts["errors"]
            print(f"round {r + 1}: {json.dumps(counts)}", flush=True)
    print(
        f"total: {totals['wrong']} wrong in {totals['runs']} first launches"
        + (f" ({totals['errors']} runs failed to run)" if totals["errors"] else "")
    )
    return 1 if totals["wrong"] or totals["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
