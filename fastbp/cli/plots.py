"""The figures of ``--plot``: training curves and the confusion matrix, drawn with matplotlib."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .common import _optional


def _figure() -> Any:
    """A matplotlib ``Figure`` drawn with Agg (no GUI, no pyplot state)."""
    _optional("matplotlib", "plot", "--plot")
    from matplotlib.figure import Figure

    return Figure


def plot_history(history: dict[str, list], path: str | os.PathLike[str], title: str) -> None:
    """Cost (left) and accuracy (right) per epoch, training and validation, as an image."""
    Figure = _figure()
    norms = history.get("grad_norm_b")
    fig = Figure(figsize=(15 if norms else 10, 4), layout="constrained")
    axes = fig.subplots(1, 3 if norms else 2)
    cost_ax, acc_ax = axes[0], axes[1]
    if norms:
        norm_ax = axes[2]
        for layer, values in enumerate(zip(*norms, strict=True), start=1):
            norm_ax.semilogy(history["epoch"], values, "o-", markersize=4, label=f"layer {layer}")
        norm_ax.set_xlabel("epoch")
        norm_ax.set_ylabel("‖∂C/∂b‖")
        norm_ax.set_title("speed of learning per layer")
        norm_ax.xaxis.get_major_locator().set_params(integer=True)
        norm_ax.grid(True, alpha=0.3)
        norm_ax.legend(fontsize="small")
    epochs = history["epoch"]
    for prefix, label, style in (("train", "training", "o-"), ("val", "validation", "s-")):
        if f"{prefix}_cost" in history:
            cost_ax.plot(epochs, history[f"{prefix}_cost"], style, label=label, markersize=4)
            accuracy = [100 * a for a in history[f"{prefix}_accuracy"]]
            acc_ax.plot(epochs, accuracy, style, label=label, markersize=4)
    for ax, ylabel in ((cost_ax, "cost"), (acc_ax, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend()
    cost_ax.set_title("cost per epoch")
    acc_ax.set_title("accuracy per epoch")
    fig.suptitle(title, fontsize="medium")
    fig.savefig(path, dpi=100)


def plot_confusion(m: np.ndarray, path: str | os.PathLike[str], title: str) -> None:
    """The confusion matrix as a heat map with the counts written in."""
    Figure = _figure()
    n = m.shape[0]
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    threshold = m.max() / 2 if m.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if m[i, j] > threshold else "black"
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize="medium")
    fig.savefig(path, dpi=100)
