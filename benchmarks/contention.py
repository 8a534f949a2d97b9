"""fastbp on a busy machine: epochs on the default threads beside one thread, with 0, 1, 2 other
busy processes, and several training processes at once.

How to reproduce
----------------
From the repository root, with the MNIST IDX files in ``DIR``::

    FASTBP_DATA=DIR PYTHONPATH=. python benchmarks/contention.py
    PYTHONPATH=. python benchmarks/contention.py --data DIR --loads 0,1,2 --repeats 5

What is measured
----------------
For each load (``--loads``: that many busy processes, each a ``while True: pass`` loop that this
script starts before the load's epochs and stops after them) and each configuration of
``compare.py`` (``--configs``), epochs of ``Network.fit`` on the first 50,000 MNIST training
images with ``threads=1`` and with fastbp's default alternate (in turns, so that both see the
same phases of the machine), after a warm-up of both; the table gives each one's median seconds
per epoch and default / one thread (above 1: the default is slower). Before them, ``--settle``
epochs of the default at the new load are timed apart: in them the default finds out about the
load (two epochs of a team that stalls, then one thread), and the table lists them too. The
loads run in the order given, so the default's memory of contention (``fastbp._threads``)
carries from one to the next, as it would in a user's process.

Then ``--processes`` (N) processes train a network each (the first configuration), at once, on
this N-CPU machine, as a search's worker processes would: their total epochs per second
against N times one process alone, on one thread and on the default threads. One process
alone on the default threads has all N CPUs, which N processes cannot each have: against it
the ratio is at most one thread's speed over the default's. Speed is not part of the tests;
this is for a change's closing note.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.compare import CONFIGS, ETA, MNIST_TRAIN

#: The program of a busy process.
BUSY = "while True: pass"

#: A training process for the many-processes measurement: loads the data, warms up, says
#: "ready", waits for a line on stdin, trains ``epochs`` epochs and prints their seconds.
WORKER = f"""
import sys, time
from fastbp import Network
from fastbp.datasets import load_mnist
sizes, batch, epochs = [int(s) for s in sys.argv[1].split("-")], int(sys.argv[2]), int(sys.argv[3])
(X, y), _ = load_mnist(sys.argv[4])
X, y = X[:{MNIST_TRAIN}], y[:{MNIST_TRAIN}]
net = Network(sizes, seed=1, threads=int(sys.argv[5]) or None)
net.fit(X[:3000], y[:3000], epochs=1, batch_size=batch, lr={ETA})
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
net.fit(X, y, epochs=epochs, batch_size=batch, lr={ETA})
print(time.perf_counter() - start, flush=True)
"""


def start_busy(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def epoch_seconds(net, X, y, batch_size: int, threads: int | None, seed: int) -> float:
    start = time.perf_counter()
    net.fit(X, y, epochs=1, batch_size=batch_size, lr=ETA, seed=seed, threads=threads)
    return time.perf_counter() - start


def measure_load(load: int, configs, data, repeats: int, settle: int) -> list[tuple]:
    """Median seconds per epoch on one thread and the default, per configuration, with
    ``load`` busy processes running, after ``settle`` untimed epochs of the default (and one
    of one thread): the default's first epochs at a new load are its adaptation to it, which
    the table reports apart."""
    from fastbp import Network, _threads

    rows = []
    busy = start_busy(load)
    try:
        time.sleep(0.5)  # the busy processes are running
        for config in configs:
            X, y = data[config.dtype]
            net = Network(list(config.sizes), seed=1, dtype=config.dtype)
            first = [epoch_seconds(net, X, y, config.batch_size, None, 1000 + i)
                     for i in range(settle)]  # fmt: skip
            epoch_seconds(net, X, y, config.batch_size, 1, 999)
            times: dict[int | None, list[float]] = {1: [], None: []}
            for repeat in range(repeats):
                order = (1, None) if repeat % 2 == 0 else (None, 1)
                for threads in order:
                    seconds = epoch_seconds(net, X, y, config.batch_size, threads, repeat)
                    times[threads].append(seconds)
            one, default = np.median(times[1]), np.median(times[None])
            settling = ", ".join(f"{s:.4f}" for s in first)
            seen = getattr(getattr(_threads, "CONTENTION", None), "seen", "?")
            rows.append((load, config.label, one, default, default / one, settling))
            print(
                f"load {load}  {config.label:<30} 1 thread {one:8.4f} s   default "
                f"{default:8.4f} s   default / 1 thread {default / one:5.2f}   "
                f"(the default's first epochs at this load: {settling} s; contention seen "
                f"{seen} times so far)",
                flush=True,
            )
    finally:
        stop(busy)
    return rows


def many_processes(count: int, config, directory: str, epochs: int, threads: int | None):
    """Epochs per second of one training process alone, and of ``count`` at once, each on
    ``threads`` threads (None: the default)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["-".join(map(str, config.sizes)), str(config.batch_size), str(epochs), directory]
    args.append(str(threads or 0))

    def run(n: int) -> float:
        command = [sys.executable, "-c", WORKER, *args]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
        workers = [subprocess.Popen(command, env=env, **pipes) for _ in range(n)]
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        start = time.perf_counter()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        seconds = [float(worker.stdout.readline()) for worker in workers]
        wall = time.perf_counter() - start
        for worker in workers:
            worker.wait()
        rate = n * epochs / wall
        print(
            f"  {n} process(es) on {threads or 'default'} thread(s): each took "
            f"{', '.join(f'{s:.2f}' for s in seconds)} s for {epochs} epochs; "
            f"{rate:.1f} epochs/s in all",
            flush=True,
        )
        return rate

    return run(1), run(count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST directory (default: $FASTBP_DATA)")
    parser.add_argument("--loads", default="0,1,2", help="busy processes, e.g. 0,1,2")
    parser.add_argument(
        "--configs",
        default=",".join(str(i) for i in range(1, len(CONFIGS) + 1)),
        help="compare.py's configurations: "
        + "; ".join(f"{i} = {c.label}" for i, c in enumerate(CONFIGS, 1)),
    )
    parser.add_argument("--repeats", type=int, default=15, help="epochs per variant")
    parser.add_argument(
        "--settle", type=int, default=2, help="untimed epochs of the default at each load first"
    )
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--process-epochs", type=int, default=20)
    args = parser.parse_args(argv)
    directory = args.data or os.environ.get("FASTBP_DATA")
    if not directory:
        parser.error("give --data DIR or set FASTBP_DATA to the MNIST directory")

    import fastbp
    from fastbp import _threads
    from fastbp.datasets import load_mnist

    configs = [CONFIGS[int(i) - 1] for i in args.configs.split(",")]
    data = {}
    for dtype in {c.dtype for c in configs}:
        (X, y), _ = load_mnist(directory, dtype=dtype)
        data[dtype] = (X[:MNIST_TRAIN], y[:MNIST_TRAIN])
    print(
        f"fastbp {fastbp.__version__}; {os.cpu_count()} CPUs, this process may use "
        f"{_threads.available_cpus()}; default threads {_threads.default_threads()}",
        flush=True,
    )
    for config in configs:  # compile (or load) every kernel the epochs use
        X, y = data[config.dtype]
        net = fastbp.Network(list(config.sizes), seed=0, dtype=config.dtype)
        for threads in (1, None):
            net.fit(X[:3000], y[:3000], epochs=1, batch_size=config.batch_size, lr=ETA,
                    threads=threads)  # fmt: skip
    rows = []
    for load in (int(n) for n in args.loads.split(",")):
        rows += measure_load(load, configs, data, args.repeats, args.settle)
    print(
        "\n| busy processes | configuration | 1 thread, s | default, s | default / 1 thread "
        "| the default's first epochs, s |"
    )
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    for load, label, one, default, ratio, settling in rows:
        print(f"| {load} | {label} | {one:.4f} | {default:.4f} | {ratio:.2f} | {settling} |")
    print(f"worst default / 1 thread: {max(r[4] for r in rows):.2f}")

    if args.processes > 1:
        config, n = configs[0], args.processes
        print(f"\n{n} training processes at once, each {config.label}:")
        one_alone, one_together = many_processes(n, config, directory, args.process_epochs, 1)
        alone, together = many_processes(n, config, directory, args.process_epochs, None)
        print(
            f"default threads: {n} at once / ({n} × one alone on one thread) "
            f"{together / (n * one_alone):.2f}, / ({n} × one alone on the default threads) "
            f"{together / (n * alone):.2f}; one thread each: {n} at once / ({n} × one alone) "
            f"{one_together / (n * one_alone):.2f}"
        )


if __name__ == "__main__":
    main()
