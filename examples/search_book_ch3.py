"""The book's chapter 3 recipe for choosing hyper-parameters, as three fastbp searches on Dask.

Nielsen's advice ("How to choose a neural network's hyper-parameters?"): first get *any*
signal quickly on a stripped-down problem, then set the learning rate η by orders of
magnitude, narrow it, and only then tune the regularisation λ, each step with the others
fixed. Here, for 784-30-10 with the cross-entropy cost on MNIST (the book's 50,000 / 10,000
split, from ``--data`` or ``FASTBP_DATA``):

1. broad strategy: η by orders of magnitude (0.025 … 25, a grid) on a subset of 1,000
   training images scored on 1,000 validation images, 3 epochs: seconds per trial;
2. narrow η: Optuna's default sampler in a log range around the best, on the full training
   set, 5 epochs, with the median pruner stopping hopeless trials;
3. λ: a grid of L2 strengths at that η, full set, 10 epochs.

Each stage is a study in one SQLite file (``--storage``), so a stage that was interrupted
continues with ``--resume``. The trials run on an embedded local Dask cluster (one worker
process per CPU), or on ``--scheduler tcp://HOST:PORT``'s::

    FASTBP_DATA=/path/to/mnist python examples/search_book_ch3.py
    python examples/search_book_ch3.py --quick      # the bundled mini MNIST, in seconds
"""

from __future__ import annotations

import argparse
import os
import tempfile

import fastbp
from fastbp.datasets import load_mini_mnist, load_mnist
from fastbp.sweep import Range


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $FASTBP_DATA)")
    parser.add_argument("--quick", action="store_true", help="the bundled mini MNIST, fewer trials")
    parser.add_argument("--storage", help="SQLite file of the studies (default: a temporary one)")
    parser.add_argument("--resume", action="store_true", help="continue the studies")
    parser.add_argument("--scheduler", help="a Dask scheduler's address (default: local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster's workers (the CPUs)")
    args = parser.parse_args()
    if args.quick:
        (X, y), (X_val, y_val) = load_mini_mnist()
        n_narrow, epochs = 6, 2
    else:
        (X, y), (X_val, y_val), _ = load_mnist(args.data, split="book")
        n_narrow, epochs = 12, 5
    storage = args.storage or os.path.join(tempfile.mkdtemp(), "ch3.db")
    # One cluster for the three studies (each search would otherwise start its own).
    client = None
    if args.scheduler is None:
        import distributed

        from fastbp._threads import available_cpus

        cluster = distributed.LocalCluster(
            n_workers=args.workers or available_cpus(), threads_per_worker=1,
            dashboard_address=None,
        )  # fmt: skip
        client = distributed.Client(cluster)
    common = dict(storage=storage, resume=args.resume, scheduler=client or args.scheduler)
    fixed = {"hidden": 30, "cost": "cross_entropy", "batch_size": 10}

    print("1. broad strategy: η by orders of magnitude, 1,000 images, 3 epochs")
    broad = fastbp.search(
        X[:1000], y[:1000], validation_data=(X_val[:1000], y_val[:1000]),
        space={"lr": [0.025, 0.25, 2.5, 25.0]}, fixed={**fixed, "epochs": 3}, sampler="grid",
        pruner="none", study_name="ch3-broad", **common,
    )  # fmt: skip
    print(broad.table())
    eta = broad.best_params["lr"]

    print(f"\n2. narrow η around {eta}: TPE with the median pruner, {epochs} epochs")
    narrow = fastbp.search(
        X, y, validation_data=(X_val, y_val), space={"lr": Range(eta / 4, eta * 4, log=True)},
        fixed={**fixed, "epochs": epochs}, n_trials=n_narrow, study_name="ch3-eta", **common,
    )  # fmt: skip
    print(narrow.table())
    eta = narrow.best_params["lr"]

    print(f"\n3. λ at η = {eta:.3g}, {2 * epochs} epochs")
    lmbda = fastbp.search(
        X, y, validation_data=(X_val, y_val), space={"lmbda": [0.0, 1.0, 5.0, 10.0]},
        fixed={**fixed, "epochs": 2 * epochs, "lr": eta}, sampler="grid", pruner="none",
        study_name="ch3-lambda", **common,
    )  # fmt: skip
    print(lmbda.table())
    print(f"\nchosen: η = {eta:.3g}, λ = {lmbda.best_params['lmbda']} "
          f"(validation accuracy {lmbda.best_value:.4f}); studies in {storage}")  # fmt: skip
    if client is not None:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
