"""Issue 20's measurements: a 16-trial search on a 2-worker local Dask cluster against the same
trials one after another in one process (which has loaded the kernels before), the same
study through ``GridSearchCV(n_jobs=2)``, on a 2-worker cluster that is already running (its
workers have loaded the kernels), and the median pruner's time to the unpruned study's best
accuracy.

The trials: 784-30-10, sigmoid, quadratic cost, 5 epochs at batch 10 on the book's 50,000
MNIST training images, scored on its 10,000 validation images; η ∈ {0.5, 1, 3, 6} × λ ∈
{0, 1, 5, 10} (a grid, one thread per trial). Needs ``FASTBP_DATA`` and ``fastbp[search,
sklearn]``::

    FASTBP_DATA=/path/to/mnist python -m benchmarks.search_speedup [--epochs 5] [--subset N]

A benchmark script, not a test: it prints one table, with the machine's CPU count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

GRID = {"lr": [0.5, 1.0, 3.0, 6.0], "lmbda": [0.0, 1.0, 5.0, 10.0]}


def main() -> None:
    import distributed
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    from fastbp import _threads
    from fastbp.datasets import load_mnist
    from fastbp.sklearn import NetworkClassifier
    from fastbp.sweep import search

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--subset", type=int, help="first N training images only")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    (X, y), (X_val, y_val), _ = load_mnist(split="book")
    if args.subset:
        X, y = X[: args.subset], y[: args.subset]
    fixed = {"hidden": 30, "epochs": args.epochs, "batch_size": 10, "threads": 1}
    tmp = tempfile.mkdtemp()
    rows = []

    def run(name: str, **kw: object) -> object:
        start = time.perf_counter()
        result = search(
            X, y, validation_data=(X_val, y_val), space=GRID, fixed=fixed, sampler="grid",
            storage=os.path.join(tmp, f"{name}.db"), **kw,
        )  # fmt: skip
        wall = time.perf_counter() - start
        print(result.table(16), flush=True)
        return result, wall

    # This process loads the kernels before it is timed, as the running cluster's workers do.
    run("warm-up-process", scheduler="process", pruner="none", n_trials=2)
    seq, seq_wall = run("sequential", scheduler="process", pruner="none")
    par, par_wall = run("dask", workers=args.workers, pruner="none")
    pruned, pruned_wall = run("pruned", workers=args.workers, pruner="median")
    # The same study on a cluster that is already running, whose workers have loaded the
    # kernels (a 2-trial study before it): what a user with a long-lived cluster sees.
    with (
        distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                 dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        run("warm-up", scheduler=client, pruner="none", n_trials=2)
        warm, warm_wall = run("warm", scheduler=client, pruner="none")

    # Overhead per trial on the cluster, after each worker's first: the time the worker was
    # idle before it (scheduling, results, data) and the trial's time outside ``fit``.
    overhead, share, last_end = [], [], {}
    runs = sorted((t.user_attrs["run"] for t in par.study.trials), key=lambda r: r["ended"])
    for r in runs:
        worker = (r["host"], r["pid"])
        began = r["ended"] - r["trial_seconds"]
        if worker in last_end:
            gap = max(0.0, began - last_end[worker])
            overhead.append(gap + r["trial_seconds"] - r["fit_seconds"])
            share.append(overhead[-1] / (gap + r["trial_seconds"]))
        last_end[worker] = r["ended"]

    Xg = np.concatenate([X, X_val])
    yg = np.concatenate([y, y_val])
    split = PredefinedSplit(np.r_[np.full(len(X), -1), np.zeros(len(X_val), dtype=int)])
    est = NetworkClassifier(
        hidden_layer_sizes=(30,), cost="quadratic", output="sigmoid", epochs=args.epochs,
        batch_size=10, threads=1, random_state=0,
    )  # fmt: skip
    start = time.perf_counter()
    GridSearchCV(est, GRID, cv=split, n_jobs=args.workers, refit=False).fit(Xg, yg)
    grid_wall = time.perf_counter() - start

    def reach(result: object, target: float) -> float | None:
        trials = [t for t in result.study.trials if t.value is not None and t.value >= target]
        if not trials:
            return None
        begin = min(t.datetime_start for t in result.study.trials)
        return min((t.datetime_complete - begin).total_seconds() for t in trials)

    best = par.best_value
    pruned_states = sum(t.state.name == "PRUNED" for t in pruned.study.trials)
    print()
    print(f"CPUs this process may use: {_threads.available_cpus()}; {len(X)} training images, "
          f"{args.epochs} epochs, 16 trials")  # fmt: skip
    print("| run | wall s | speed-up vs one process |")
    print("|---|---|---|")
    rows = [
        ("one process, trials one after another", seq_wall),
        (f"Dask local cluster, {args.workers} workers", par_wall),
        (f"GridSearchCV(n_jobs={args.workers}), NetworkClassifier", grid_wall),
        (f"Dask, {args.workers} workers, median pruner ({pruned_states} pruned)", pruned_wall),
        (f"Dask, {args.workers} workers already running", warm_wall),
    ]
    for name, wall in rows:
        print(f"| {name} | {wall:.1f} | {seq_wall / wall:.2f}x |")
    print()
    print("| run | cluster start s | data to the workers s | trials s (first submission to last "
          "result, less the data) | speed-up of the trials |")  # fmt: skip
    print("|---|---|---|---|---|")
    base = seq.seconds
    results = (("one process", seq), ("Dask", par), ("Dask, pruner", pruned),
               ("Dask, already running", warm))  # fmt: skip
    for name, result in results:
        trials = result.seconds - result.scatter_seconds
        print(f"| {name} | {result.setup_seconds:.1f} | {result.scatter_seconds:.1f} | "
              f"{trials:.1f} | {base / trials:.2f}x |")  # fmt: skip
    print()
    print(f"overhead per trial after each worker's first: median {np.median(overhead):.3f} s, "
          f"{np.median(share):.1%} of a trial (max {np.max(share):.1%})")  # fmt: skip
    same = {t.number: t.value for t in seq.study.trials} == {
        t.number: t.value for t in par.study.trials
    }
    print(f"same accuracy per trial in one process and on the cluster: {same}")
    print(f"best accuracy, unpruned: {best:.4f}, reached after {reach(par, best):.1f} s "
          f"(study {par.seconds:.1f} s)")  # fmt: skip
    got = reach(pruned, best)
    print(
        f"with the median pruner: best {pruned.best_value:.4f}; the unpruned best reached "
        f"after {'never' if got is None else f'{got:.1f} s'} (study {pruned.seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
