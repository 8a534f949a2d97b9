"""Vanishing and exploding gradients on MNIST (the book's chapter 5), and their remedies.

Three experiments, on the book's 50,000 MNIST training images (``--data`` or ``FASTBP_DATA``)::

    python examples/vanishing.py [--data DIR] [--epochs 10] [--plot norms.png]

1. The book's measurement: the speed of learning ``‖∂C/∂bˡ‖`` of each hidden layer of the
   sigmoid networks [784, 30, 30, 10], [784, 30, 30, 30, 10] and [784, 30, 30, 30, 30, 10] at
   initialisation, averaged over five seeds (on 1,000 training images).
2. Exploding gradients: a deep ReLU network with N(0, 10²)-scaled weights, trained without and
   then with gradient clipping.
3. Remedies side by side on [784, 30, 30, 30, 30, 10], same seed and epochs: plain sigmoid, ReLU
   with He initialisation, residual connections, batch normalisation, pre-training then
   fine-tuning, and clipping;
   for each, the ratio of the first to the last hidden layer's speed after the first epoch,
   in how many epochs the first hidden layer was the slowest, and the test accuracy after
   the last. ``--plot`` draws each one's per-layer norms over the
   epochs (matplotlib).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from fastbp import GradientWarning, Network
from fastbp.datasets import load_mnist

DEEP = [784, 30, 30, 30, 30, 10]


def speeds_at_initialisation(X, y) -> None:
    print("1. Speed of learning ‖∂C/∂b‖ of each hidden layer at initialisation (5 seeds):")
    for sizes in ([784, 30, 30, 10], [784, 30, 30, 30, 10], DEEP):
        norms = np.mean(
            [Network(sizes, seed=s).gradient_norms(X[:1000], y[:1000])["bias"] for s in range(5)],
            axis=0,
        )[:-1]  # hidden layers only
        speeds = ", ".join(f"{v:.4f}" for v in norms)
        print(f"   {sizes}: {speeds}  (last/first = {norms[-1] / norms[0]:.1f})")


def exploding(X, y) -> None:
    print("2. Exploding gradients: ReLU [784, 30, 30, 30, 30, 10], weights N(0, 10²), η = 0.1")
    for clip in (None, 1.0):
        net = Network(DEEP, activation="relu", cost="log_likelihood", seed=1)
        for w in net.weights:
            w *= 10
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GradientWarning)
            try:
                history = net.fit(X[:5000], y[:5000], epochs=3, batch_size=10, lr=0.1,
                                  clip_norm=clip, monitor_gradients=True)  # fmt: skip
                outcome = f"trained; accuracy {net.accuracy(X[:5000], y[:5000]):.1%}"
                first = history["grad_norm_b"][0]
                outcome += f"; ‖∂C/∂b‖ first/last hidden {first[0] / first[-2]:.3g}"
            except FloatingPointError as exc:
                outcome = f"stopped: {exc}"
        label = "no clipping" if clip is None else f"clip_norm={clip}"
        print(f"   {label}: {outcome}")
        for w in caught:
            print(f"     warning: {w.message}")


REMEDIES = {
    "plain sigmoid": ({}, {"lr": 3.0}, 0),
    "ReLU + He": ({"activation": "relu", "cost": "log_likelihood", "init": "he"}, {"lr": 0.05}, 0),
    # A residual sum of sigmoids grows past (0, 1): the cross-entropy output and a smaller η.
    "residual": ({"residual": True, "cost": "cross_entropy"}, {"lr": 0.3}, 0),
    "batch norm": ({"batch_norm": True}, {"lr": 3.0}, 0),
    "pre-training": ({"init": "scaled"}, {"lr": 3.0}, 3),
    "clipping": ({}, {"lr": 3.0, "clip_norm": 1.0}, 0),
}


def remedies(X, y, X_test, y_test, epochs: int, plot: str | None) -> None:
    print(f"3. Remedies on {DEEP}, seed 1, {epochs} epochs, batch 10:")
    print(f"   {'network':<15} {'first/last speed':>17} {'layer 1 slowest':>16} "
          f"{'test accuracy':>14} {'seconds':>8}")  # fmt: skip
    curves = {}
    for name, (model, training, pretrain_epochs) in REMEDIES.items():
        net = Network(DEEP, seed=1, **model)
        start = time.perf_counter()
        if pretrain_epochs:
            net.pretrain(X, epochs=pretrain_epochs, seed=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientWarning)
            history = net.fit(X, y, epochs=epochs, batch_size=10, monitor_gradients=True,
                              validation_data=(X_test, y_test), **training)  # fmt: skip
        norms = np.array(history["grad_norm_b"])[:, :-1]  # hidden layers
        ratio = norms[0, 0] / norms[0, -1]
        slowest = f"{np.sum(norms.argmin(axis=1) == 0)} of {len(norms)}"  # epochs
        accuracy = history["val_accuracy"][-1]
        seconds = time.perf_counter() - start
        print(f"   {name:<15} {ratio:>17.3f} {slowest:>16} {accuracy:>14.2%} {seconds:>8.1f}")
        curves[name] = norms
    if plot:
        plot_norms(curves, epochs, plot)


def plot_norms(curves: dict[str, np.ndarray], epochs: int, path: str) -> None:
    """One panel per remedy, two rows of three: each hidden layer's speed per epoch, on one
    shared logarithmic scale, with one legend and a title for the whole figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7.5), layout="constrained")
    axes = fig.subplots(2, (len(curves) + 1) // 2, sharex=True, sharey=True).ravel()
    for ax, (name, norms) in zip(axes[: len(curves)], curves.items(), strict=True):
        for layer in range(norms.shape[1]):
            ax.semilogy(range(1, len(norms) + 1), norms[:, layer], marker="o", markersize=3,
                        label=f"hidden layer {layer + 1}")  # fmt: skip
        # A batch-normalised layer's shift β does the bias's job: its ‖∂C/∂β‖ is the speed.
        ax.set_title(name + (" (‖∂C/∂β‖)" if name == "batch norm" else ""))
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    for ax in axes[-((len(curves) + 1) // 2) :]:
        ax.set_xlabel("epoch")
    for ax in axes[:: (len(curves) + 1) // 2]:
        ax.set_ylabel("‖∂C/∂bˡ‖, speed of learning")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(
        f"Speed of learning of each hidden layer during training: {DEEP}, seed 1, "
        f"{epochs} epochs at batch 10"
    )
    FigureCanvasAgg(fig).print_png(path)
    print(f"   wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="directory of the MNIST files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--plot", default=None, help="PNG of the per-layer norms")
    args = parser.parse_args()
    if args.plot:  # before the training, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: python -m pip install 'fastbp[plot]'")
    (X, y), _, (X_test, y_test) = load_mnist(args.data, split="book")
    speeds_at_initialisation(X, y)
    exploding(X, y)
    remedies(X, y, X_test, y_test, args.epochs, args.plot)


if __name__ == "__main__":
    main()
