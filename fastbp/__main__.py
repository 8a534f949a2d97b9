"""``python -m fastbp``: train the book's network on the bundled data and print its progress.

A short, real training job that needs no download: ``Network([784, 30, 10])`` by mini-batch
SGD (batch 10, η = 3.0) on the bundled mini MNIST (8,000 training and 2,000 test images from
MNIST's test split; see ``fastbp.datasets.load_mini_mnist``), one line per epoch.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import Network, __version__
from .datasets import load_mini_mnist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastbp",
        description="Train Network([784, 30, 10]) on the bundled mini MNIST and print accuracy.",
    )
    parser.add_argument("--epochs", type=int, default=5, help="passes over the data (5)")
    parser.add_argument("--batch-size", type=int, default=10, help="mini-batch size (10)")
    parser.add_argument("--eta", type=float, default=3.0, help="learning rate η (3.0)")
    parser.add_argument("--hidden", type=int, default=30, help="hidden neurons (30)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=1, help="seed of weights and order (1)")
    args = parser.parse_args(argv)

    (X, y), (X_test, y_test) = load_mini_mnist(dtype=args.dtype)
    net = Network([784, args.hidden, 10], seed=args.seed, dtype=args.dtype)
    print(f"fastbp {__version__}: {net}")
    print(f"bundled mini MNIST: {len(X)} training and {len(X_test)} test images")
    start = time.perf_counter()
    for epoch in range(args.epochs):
        try:
            history = net.fit(
                X, y, epochs=1, batch_size=args.batch_size, lr=args.eta,
                validation_data=(X_test, y_test),
            )  # fmt: skip
        except (ValueError, TypeError, FloatingPointError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        correct, seconds = history["val_correct"][0], history["seconds"][0]
        print(
            f"Epoch {epoch}: {correct} / {len(X_test)} ({correct / len(X_test):.1%}), "
            f"{seconds:.3f} s, {len(X) / seconds:,.0f} samples/s",
            flush=True,
        )
    print(f"total {time.perf_counter() - start:.1f} s (the first epoch includes compilation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
