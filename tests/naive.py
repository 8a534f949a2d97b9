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


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def activation(name: str, z: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """f(z) for each activation, from its definition."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if name == "elu":
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    if name == "linear":
        return z
    if name == "softmax":
        return softmax(z)
    raise ValueError(name)


def derivative(name: str, z: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """f'(z) for each element-wise activation, from its definition."""
    if name == "sigmoid":
        return sigmoid_prime(z)
    if name == "tanh":
        return 1.0 / np.cosh(np.minimum(np.abs(z), 350.0)) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, alpha)
    if name == "elu":
        return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))
    if name == "linear":
        return np.ones_like(z)
    raise ValueError(name)


def output_delta(cost: str, output: str, z, a, y, alpha=0.0):
    """BP1 from ``∂C/∂a`` and the chain rule written out in full (the output's Jacobian)."""
    if cost == "quadratic":
        grad_a = a - y
    elif cost == "cross_entropy":
        grad_a = (a - y) / (a * (1 - a))
    else:  # log-likelihood
        grad_a = -y / a
    if output == "softmax":
        jacobian = np.diag(a) - np.outer(a, a)
        return jacobian @ grad_a
    return grad_a * derivative(output, z, alpha)


def backprop(weights, biases, x, y, activations=None, cost="quadratic", alpha=0.0, residual=None):
    """One sample's ``zs``, ``activations``, ``deltas`` and gradient of its cost ``Cₓ``.

    The book's algorithm step by step: feedforward ``zˡ = wˡaˡ⁻¹ + bˡ``, ``aˡ = f(zˡ)``;
    BP1 ``δᴸ = ∇ₐC ⊙ f'(zᴸ)`` (with the full Jacobian for softmax); BP2
    ``δˡ = ((wˡ⁺¹)ᵀδˡ⁺¹) ⊙ f'(zˡ)``; BP3 ``∂C/∂bˡ = δˡ``; BP4 ``∂C/∂wˡ = δˡ(aˡ⁻¹)ᵀ``.
    ``activations`` names each layer's function (all sigmoid by default). ``residual[l]``
    makes layer ``l`` (0-based over the weight matrices) add its input to its output: ``True``
    as it is, a matrix ``P`` projected (``+ P aˡ⁻¹``); then ``∂C/∂aˡ⁻¹`` gets ``∂C/∂aˡ``
    (or ``Pᵀ ∂C/∂aˡ``) directly as well as through ``wˡ``.
    """
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    biases = [np.asarray(b, dtype=np.float64) for b in biases]
    names = activations or ["sigmoid"] * len(weights)
    skips = residual or [False] * len(weights)
    a = np.asarray(x, dtype=np.float64)
    outs, zs = [a], []
    for w, b, name, skip in zip(weights, biases, names, skips, strict=True):
        z = w @ a + b
        zs.append(z)
        if isinstance(skip, np.ndarray):
            a = activation(name, z, alpha) + skip @ a
        else:
            a = activation(name, z, alpha) + (a if skip else 0.0)
        outs.append(a)
    y = np.asarray(y, dtype=np.float64)
    deltas = [None] * len(weights)
    deltas[-1] = output_delta(cost, names[-1], zs[-1], outs[-1], y, alpha)
    grad_a = None  # ∂C/∂a of the layer above, kept for a skip over it
    for l in range(len(weights) - 2, -1, -1):
        g = weights[l + 1].T @ deltas[l + 1]
        if isinstance(skips[l + 1], np.ndarray):
            g = g + skips[l + 1].T @ grad_a
        elif skips[l + 1]:
            g = g + grad_a
        grad_a = g
        deltas[l] = g * derivative(names[l], zs[l], alpha)
    nabla_b = list(deltas)
    nabla_w = [np.outer(d, a) for d, a in zip(deltas, outs[:-1], strict=True)]
    return zs, outs[1:], deltas, nabla_b, nabla_w


def batch(weights, biases, X, Y, **kwargs):
    """``backprop`` for every row, stacked (``zs``, ``activations``, ``deltas``) and summed
    (``nabla_b``, ``nabla_w``) over the batch."""
    per_sample = [backprop(weights, biases, x, y, **kwargs) for x, y in zip(X, Y, strict=True)]
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


def sgd_epoch(weights, biases, X, Y, order, batch_size, eta, lmbda=0.0, l1=0.0, **kwargs):
    """One epoch of the book's ``update_mini_batch`` over ``X[order]``; returns new lists.

    With L2: ``w ← (1 − ηλ/n) w − (η/m) Σ∇``; with L1: ``w ← w − (ηλ₁/n) sgn(w) − (η/m) Σ∇``.
    """
    n = len(X)
    weights = [np.array(w, dtype=np.float64) for w in weights]
    biases = [np.array(b, dtype=np.float64) for b in biases]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        grads = batch(weights, biases, X[rows], Y[rows], **kwargs)
        m = len(rows)
        weights = [
            (1 - eta * lmbda / n) * w - eta * l1 / n * np.sign(w) - (eta / m) * g
            for w, g in zip(weights, grads["nabla_w"], strict=True)
        ]
        biases = [b - (eta / m) * g for b, g in zip(biases, grads["nabla_b"], strict=True)]
    return weights, biases
