"""Slow, obvious NumPy versions of the network, written from the book's equations.

Per sample, like ``network.py`` in Nielsen's *Neural Networks and Deep Learning* (chapter 2),
in float64 whatever the dtype of the parameters. Nothing here calls fastbp: every kernel test
computes the same thing twice, with fastbp and with this.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e⁻ᶻ), in the form that cannot overflow for either sign of z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """σ'(z) = σ(z)(1 − σ(z)) = σ(|z|)(1 − σ(|z|)), using 1 − σ(|z|) = σ(−|z|) to avoid the
    cancellation in ``1 − σ`` when σ is close to 1."""
    return sigmoid(np.abs(z)) * sigmoid(-np.abs(z))


def backprop(weights, biases, x, y):
    """One sample's ``zs``, ``activations``, ``deltas`` and gradient of ``Cₓ = ½‖y − aᴸ‖²``.

    The book's algorithm step by step: feedforward ``zˡ = wˡaˡ⁻¹ + bˡ``, ``aˡ = σ(zˡ)``;
    BP1 ``δᴸ = (aᴸ − y) ⊙ σ'(zᴸ)``; BP2 ``δˡ = ((wˡ⁺¹)ᵀδˡ⁺¹) ⊙ σ'(zˡ)``;
    BP3 ``∂C/∂bˡ = δˡ``; BP4 ``∂C/∂wˡ = δˡ(aˡ⁻¹)ᵀ``.
    """
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    biases = [np.asarray(b, dtype=np.float64) for b in biases]
    activation = np.asarray(x, dtype=np.float64)
    activations, zs = [activation], []
    for w, b in zip(weights, biases, strict=True):
        z = w @ activation + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    deltas = [None] * len(weights)
    deltas[-1] = (activations[-1] - np.asarray(y, dtype=np.float64)) * sigmoid_prime(zs[-1])
    for l in range(len(weights) - 2, -1, -1):
        deltas[l] = (weights[l + 1].T @ deltas[l + 1]) * sigmoid_prime(zs[l])
    nabla_b = list(deltas)
    nabla_w = [np.outer(d, a) for d, a in zip(deltas, activations[:-1], strict=True)]
    return zs, activations[1:], deltas, nabla_b, nabla_w


def batch(weights, biases, X, Y):
    """``backprop`` for every row, stacked (``zs``, ``activations``, ``deltas``) and summed
    (``nabla_b``, ``nabla_w``) over the batch."""
    per_sample = [backprop(weights, biases, x, y) for x, y in zip(X, Y, strict=True)]
    stacked = [
        [np.stack(layer) for layer in zip(*part, strict=True)]
        for part in zip(*per_sample, strict=False)
    ]
    zs, activations, deltas, nabla_b, nabla_w = stacked
    return {
        "zs": zs,
        "activations": activations,
        "deltas": deltas,
        "nabla_b": [g.sum(axis=0) for g in nabla_b],
        "nabla_w": [g.sum(axis=0) for g in nabla_w],
    }


def cost(weights, biases, X, Y) -> float:
    """Quadratic cost ``C = 1/(2n) Σₓ ‖y(x) − aᴸ(x)‖²``."""
    total = 0.0
    for x, y in zip(X, Y, strict=True):
        a = np.asarray(x, dtype=np.float64)
        for w, b in zip(weights, biases, strict=True):
            a = sigmoid(np.asarray(w, np.float64) @ a + np.asarray(b, np.float64))
        total += 0.5 * np.sum((np.asarray(y, np.float64) - a) ** 2)
    return total / len(X)


def sgd_epoch(weights, biases, X, Y, order, batch_size, eta):
    """One epoch of the book's ``update_mini_batch`` over ``X[order]``; returns new lists."""
    weights = [np.array(w, dtype=np.float64) for w in weights]
    biases = [np.array(b, dtype=np.float64) for b in biases]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        grads = batch(weights, biases, X[rows], Y[rows])
        m = len(rows)
        weights = [w - (eta / m) * g for w, g in zip(weights, grads["nabla_w"], strict=True)]
        biases = [b - (eta / m) * g for b, g in zip(biases, grads["nabla_b"], strict=True)]
    return weights, biases
