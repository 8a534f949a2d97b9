"""``fastbp evaluate``: accuracy, cost and confusion matrix of a saved network."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .common import _load_model
from .data import _load_data
from .plots import _figure, plot_confusion


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``m[i, j]``: how many samples of class ``i`` were predicted as ``j``."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def _format_confusion(m: np.ndarray) -> str:
    width = max(len(str(m.max())), len(str(m.shape[0] - 1)), 3)
    head = "true\\pred " + " ".join(f"{j:>{width}}" for j in range(m.shape[1]))
    rows = [f"{i:>9} " + " ".join(f"{v:>{width}}" for v in row) for i, row in enumerate(m)]
    return "\n".join([head, *rows])


def _evaluate(args: argparse.Namespace) -> int:
    if args.plot:
        _figure()
    net = _load_model(args.model)
    description, data = _load_data(args, net.dtype)
    X, y = data["test"]
    predicted = net.predict(X)
    labels = np.asarray(y)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    n_classes = max(net.sizes[-1], 2)
    accuracy = float(np.mean(predicted == labels))
    cost = net.total_cost(X, y)
    m = confusion_matrix(labels, predicted, n_classes)
    if args.json:
        result = {"accuracy": accuracy, "cost": cost, "n": len(X), "confusion": m.tolist()}
        print(json.dumps(result))
    else:
        print(f"{net!r}")
        print(f"{description}: {len(X)} test images")
        print(f"accuracy: {int(np.sum(predicted == labels))} / {len(X)} ({accuracy:.2%})")
        print(f"cost ({net.cost.name}): {cost:.4f}")
        print("confusion matrix (rows: true class, columns: predicted class):")
        print(_format_confusion(m))
    if args.plot:
        plot_confusion(m, args.plot, f"{Path(args.model).name} on {description}: {accuracy:.2%}")
        print(f"wrote the confusion matrix to {args.plot}", file=sys.stderr if args.json else None)
    return 0
