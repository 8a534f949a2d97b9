"""Long time lags: the adding problem with T = 100, learning curves of the RNN, GRU and LSTM.

    python examples/recurrent_adding.py [--steps 100] [--budget 200000] [--plot curves.png]

Each model sees the same budget of training sequences (fresh ones, a block per epoch) with
Adam; after every block the test MSE on 1,000 held-out sequences is printed as a fraction of
the constant predictor's (the variance of the targets, 2/3). The models: the tanh RNN, the
GRU and the LSTM with the chrono initialisation for ``T`` steps (``chrono=T``: gates that
start out remembering for 1 to ``T`` steps), and the LSTM with the usual forget bias 1.
``--plot`` draws the learning curves on one plot (matplotlib).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fastbp import RecurrentNetwork
from fastbp.datasets import adding_problem


def models(steps):
    """(label, RecurrentNetwork options) of the models compared."""
    return [
        ("RNN", {"cell": "rnn"}),
        ("GRU, chrono", {"cell": "gru", "chrono": steps}),
        ("LSTM, chrono", {"cell": "lstm", "chrono": steps}),
        ("LSTM, forget bias 1", {"cell": "lstm"}),
    ]


def learning_curve(label, options, args, X_test, y_test):
    net = RecurrentNetwork(2, args.hidden, 1, output="linear", seed=args.seed, **options)
    baseline = float(np.var(y_test))
    seen, curve, start = 0, [], time.perf_counter()
    block = 0
    while seen < args.budget:
        X, y = adding_problem(args.block, args.steps, seed=1000 * args.seed + block)
        net.fit(X, y, epochs=1, batch_size=args.batch_size, lr=args.lr, optimizer="adam",
                clip_norm=1.0)  # fmt: skip
        seen += args.block
        block += 1
        mse = float(np.mean((net.feedforward(X_test)[:, 0] - y_test[:, 0]) ** 2))
        curve.append((seen, mse / baseline))
        print(f"{label}: {seen:7d} sequences, test MSE {mse / baseline:.2%} of the constant "
              f"predictor's, {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--budget", type=int, default=200_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", help="draw the learning curves (PNG)")
    args = parser.parse_args()
    X_test, y_test = adding_problem(1000, args.steps, seed=123456)
    curves = {
        label: learning_curve(label, options, args, X_test, y_test)
        for label, options in models(args.steps)
    }
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
        for label, curve in curves.items():
            ax.semilogy(*zip(*curve, strict=True), label=label)
        ax.axhline(0.01, color="grey", linestyle=":", label="1% of the constant predictor")
        ax.set(xlabel="training sequences", ylabel="test MSE / constant predictor's",
               title=f"Adding problem, T = {args.steps}, H = {args.hidden}")  # fmt: skip
        ax.legend()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
