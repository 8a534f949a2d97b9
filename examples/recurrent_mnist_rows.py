"""Row-by-row MNIST: an LSTM reads each image as 28 steps of 28 pixels, top row first.

    python examples/recurrent_mnist_rows.py [--data DIR] [--hidden 128] [--epochs 10]

Trains on the book's 50,000 training images (``--data`` or ``FASTBP_DATA``) with Adam, scores
the 10,000 validation images after each epoch (η is halved after two epochs without a better
validation accuracy, the book's schedule; training stops after four, and the weights of the
best epoch are kept) and the 10,000 test images at the end, and prints each epoch's seconds
and the test accuracy.
"""

from __future__ import annotations

import argparse
import time

from fastbp import RecurrentNetwork
from fastbp.datasets import as_rows, load_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory of the MNIST files (default: $FASTBP_DATA)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    (X, y), (X_val, y_val), (X_test, y_test) = load_mnist(args.data, split="book")
    net = RecurrentNetwork(28, args.hidden, 10, cell="lstm", seed=args.seed)
    print(net)
    start = time.perf_counter()

    def report(net, epoch, history):
        print(f"epoch {epoch}: validation {history['val_accuracy'][-1]:.2%}, "
              f"{history['seconds'][-1]:.1f} s, {time.perf_counter() - start:.0f} s in all",
              flush=True)  # fmt: skip

    net.fit(as_rows(X), y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            optimizer="adam", clip_norm=5.0, validation_data=(as_rows(X_val), y_val),
            schedule="halve", patience=2, early_stopping=4, callback=report)  # fmt: skip
    accuracy = (net.predict(as_rows(X_test)) == y_test).mean()
    print(f"test accuracy {accuracy:.2%} with the weights of the best epoch, "
          f"{time.perf_counter() - start:.0f} s in all")  # fmt: skip


if __name__ == "__main__":
    main()
