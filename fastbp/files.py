"""The JSON of the book's ``network2.py``: export a network to it, import one from it.

fastbp's own model files are ``Network.save``/``Network.load`` (``fastbp._storage``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ._storage import write_atomically
from .network import Network

#: The book's ``network2.py`` cost class names and ours.
_NETWORK2_COSTS = {"QuadraticCost": "quadratic", "CrossEntropyCost": "cross_entropy"}


def export_network2(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` as the JSON of the book's ``network2.py`` (``sizes``, ``weights``,
    ``biases`` as columns, ``cost`` class name). Only what that code can run is accepted:
    sigmoid neurons throughout, quadratic or cross-entropy cost."""
    names = {v: k for k, v in _NETWORK2_COSTS.items()}
    unsupported = any(net.residual) or net.batch_norm
    if set(net.activations) != {"sigmoid"} or net.cost.name not in names or unsupported:
        raise ValueError(
            "net: the book's network2.py runs sigmoid networks with the quadratic or "
            f"cross-entropy cost only, not {list(net.activations)} with {net.cost.name!r}"
        )
    data = {
        "sizes": list(net.sizes),
        "weights": [w.astype(np.float64).tolist() for w in net.weights],
        "biases": [b.astype(np.float64).reshape(-1, 1).tolist() for b in net.biases],
        "cost": names[net.cost.name],
    }
    write_atomically(Path(path), json.dumps(data).encode())


def import_network2(path: str | os.PathLike[str], *, dtype: str = "float64") -> Network:
    """Read a network saved by the book's ``network2.py`` (its ``Network.save`` JSON)."""
    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not network2.py JSON ({exc})") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= set(data):
        raise ValueError(f"{path}: expected the keys sizes, weights, biases and cost")
    if data["cost"] not in _NETWORK2_COSTS:
        raise ValueError(f"{path}: unknown cost {data['cost']!r}")
    try:
        net = Network(data["sizes"], cost=_NETWORK2_COSTS[data["cost"]], dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: bad sizes ({exc})") from None
    try:
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64) for b in data["biases"]]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: weights and biases must be arrays of numbers ({exc})") from None
    if len(weights) != len(net.weights) or len(biases) != len(net.biases):
        raise ValueError(f"{path}: expected {len(net.weights)} weight and bias arrays")
    for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.shape != net.weights[l].shape or b.size != net.biases[l].size:
            raise ValueError(f"{path}: layer {l + 1}'s arrays do not match sizes {net.sizes}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"{path}: layer {l + 1} contains NaN or infinity")
        net.weights[l][...] = w
        net.biases[l][...] = b.reshape(-1)
    return net
