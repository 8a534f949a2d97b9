"""Epochs of this checkout's fastbp alternated with another revision's, in one process.

How to reproduce
----------------
From the repository root, with the MNIST IDX files in ``DIR``::

    PYTHONPATH=. python benchmarks/ab_epochs.py --data DIR --against HEAD~1 \\
        --sizes 784-30-10 --batch 10 --threads 2 --repeats 7

The other revision's ``fastbp`` package (``git archive``) is imported beside this one under
another name, both networks are warmed up (compiled) on 3,000 rows, then their epochs on the
first 50,000 MNIST training images alternate: old, new, old, new, … so that both see the same
phases of a shared, noisy machine. It prints each side's median seconds per epoch and
old / new (above 1: this checkout is faster), as a ratio of medians and as the median of the
pairwise ratios, and whether the two networks, trained alike, end with bitwise the same
weights. With ``--predict`` it alternates ``predict`` on the 10,000 test images
instead (the networks trained for one epoch first). Speed is not part of the tests; this is
for a change's closing note.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np


def import_revision(revision: str, where: Path):
    """The ``fastbp`` package of git ``revision``, imported as ``fastbp_<short hash>``."""
    root = Path(__file__).resolve().parent.parent
    short = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=root, check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "fastbp"], cwd=root, check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    tar_path = where / "old.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(where, filter="data")
    name = f"fastbp_{short}"
    package = where / name
    (where / "fastbp").rename(package)
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the package's relative imports resolve through this name
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST directory (default: $FASTBP_DATA)")
    parser.add_argument("--against", default="HEAD", help="git revision to compare with")
    parser.add_argument("--sizes", default="784-30-10", help="layer sizes, e.g. 784-30-10")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="fit's threads= (default)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=7, help="epochs timed per side")
    parser.add_argument(
        "--predict", action="store_true", help="time predict on the test images, not epochs"
    )
    args = parser.parse_args(argv)

    import fastbp
    from fastbp.datasets import load_mnist

    (X, y), (X_test, _) = load_mnist(args.data, dtype=args.dtype)
    X, y = X[:50_000], y[:50_000]
    sizes = [int(s) for s in args.sizes.split("-")]
    with tempfile.TemporaryDirectory() as tmp:
        old = import_revision(args.against, Path(tmp))
        nets = {
            "old": old.Network(sizes, seed=0, dtype=args.dtype),
            "new": fastbp.Network(sizes, seed=0, dtype=args.dtype),
        }
        options = {"batch_size": args.batch, "threads": args.threads, "epochs": 1}
        for net in nets.values():
            net.fit(X[:3000], y[:3000], lr=3.0, **options)
        if args.predict:
            for net in nets.values():
                net.fit(X, y, lr=3.0, **options)
                net.predict(X_test)
        times: dict[str, list[float]] = {side: [] for side in nets}
        for repeat in range(args.repeats):
            for side, net in nets.items():
                start = time.perf_counter()
                if args.predict:
                    net.predict(X_test)
                else:
                    net.fit(X, y, lr=0.1, seed=repeat, **options)
                times[side].append(time.perf_counter() - start)
        same = nets["old"].params.tobytes() == nets["new"].params.tobytes()
    old_t, new_t = np.array(times["old"]), np.array(times["new"])
    print(
        f"{args.sizes} batch {args.batch} {args.dtype} threads {args.threads}: "
        f"old ({args.against}) {np.median(old_t):.4f} s, new {np.median(new_t):.4f} s per "
        f"{'predict' if args.predict else 'epoch'} "
        f"(medians of {args.repeats}); old / new {np.median(old_t) / np.median(new_t):.3f}, "
        f"pairwise median {np.median(old_t / new_t):.3f}; the same weights after: {same}"
    )


if __name__ == "__main__":
    main()
