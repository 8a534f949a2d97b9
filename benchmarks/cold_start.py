"""The first hour's waits: ``fastbp train`` (the README's first command) and ``fastbp info``
with an empty Numba cache (cold: everything compiled) and a warm one, wall and CPU time.

How to reproduce
----------------
From the repository root::

    python benchmarks/cold_start.py                      # this checkout, 3 runs of each
    python benchmarks/cold_start.py --repeats 5 --checkout ../main --checkout .

Each run is a fresh process, ``python -m fastbp train`` (or ``info``) in the checkout's
directory, so that it imports that checkout's fastbp. Cold: ``NUMBA_CACHE_DIR`` is a new empty
directory; warm: a directory that one cold run filled. With several ``--checkout`` the runs
alternate between them, so that each sees the same phases of a shared machine. The table gives
medians of wall time and of CPU time (user + system, the child's ``getrusage``): on a busy
machine wall time also counts waiting for a CPU, CPU time does not. ``--breakdown`` runs one
more cold ``train`` per checkout and lists every top-level compilation with the CPU seconds it
took (Numba's ``numba:compile`` events); ``--repeats 0`` gives only that.
Speed is not part of the tests; this is for README and a change's closing note.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

#: A child that runs the CLI and reports each top-level compilation on stderr.
_BREAKDOWN = textwrap.dedent(
    """
    import sys, time
    import numba.core.event as ev

    # The process's CPU time at each event (wall time, on a busy machine, counts the waits
    # for a CPU too).
    class Listener(ev.Listener):
        def __init__(self):
            self.buffer = []

        def on_start(self, event):
            self.buffer.append((time.process_time(), event))

        def on_end(self, event):
            self.buffer.append((time.process_time(), event))

    listener = Listener()
    ev.register("numba:compile", listener)
    from fastbp.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    starts = []
    for ts, event in listener.buffer:
        if event.is_start:
            starts.append(ts)
            continue
        began = starts.pop()
        if not starts:
            func = getattr(event.data["dispatcher"], "py_func", None)
            name = f"{func.__module__}.{func.__qualname__}" if func else "?"
            print(f"compiled {ts - began:7.2f} s CPU  {name}", file=sys.stderr)
    """
)


def run(checkout: Path, command: list[str], cache: str, code: str | None = None) -> tuple:
    """``(wall, cpu, stderr)`` of one child process."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(checkout)}
    argv = [sys.executable, "-c", code, *command] if code else [sys.executable, "-m", "fastbp"]
    if not code:
        argv += command
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # In the checkout: ``python -m``/``-c`` put the working directory first on sys.path.
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=checkout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", type=Path, help="default: this one")
    parser.add_argument("--repeats", type=int, default=3, help="0: only --breakdown")
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkout or [Path(__file__).resolve().parent.parent]]
    cases = [("train", "cold"), ("train", "warm"), ("info", "cold"), ("info", "warm")]
    times: dict = {(c, *case): [] for c in checkouts for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        warm = {c: f"{tmp}/warm{i}" for i, c in enumerate(checkouts)}
        for c in checkouts if args.repeats else []:  # fill the warm caches
            run(c, ["train"], warm[c])
        for r in range(args.repeats):
            for c in checkouts:
                for command, state in cases:
                    cache = tempfile.mkdtemp(dir=tmp) if state == "cold" else warm[c]
                    times[(c, command, state)].append(run(c, [command], cache)[:2])
            print(f"repeat {r + 1} of {args.repeats} done", file=sys.stderr)
        if args.repeats:
            print(f"medians of {args.repeats} runs, seconds ({os.cpu_count()} CPUs)")
            print(f"{'checkout':<24} {'command':<14} {'cache':<6} {'wall':>7} {'CPU':>7}")
        for (c, command, state), values in times.items() if args.repeats else ():
            wall = statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            print(f"{str(c)[-24:]:<24} fastbp {command:<7} {state:<6} {wall:7.2f} {cpu:7.2f}")
        if args.breakdown:
            for c in checkouts:
                cache = tempfile.mkdtemp(dir=tmp)
                wall, cpu, err = run(c, ["train"], cache, code=_BREAKDOWN)
                print(f"\n{c}: cold fastbp train, wall {wall:.2f} s, CPU {cpu:.2f} s")
                print("\n".join(line for line in err.splitlines() if line.startswith("compiled")))


if __name__ == "__main__":
    main()
