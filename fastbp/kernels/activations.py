"""Activation functions and their derivatives: ``a = f(z)`` and ``f'(z)`` for every activation
code, and softmax over each row.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .._views import flat
from .codes import ELU, LEAKY_RELU, LINEAR, RELU, SIGMOID, SOFTMAX, TANH


@kernel()
def sigmoid_and_prime(z):
    """``(σ(z), σ'(z))`` from one exponential: σ(z) = 1 / (1 + e⁻ᶻ), σ'(z) = σ(z)(1 − σ(z)).

    With ``e = e^(−|z|)``: σ(z) = 1/(1 + e) for z ≥ 0 and e/(1 + e) for z < 0, and
    σ'(z) = e/(1 + e)². ``exp`` only ever sees a non-positive argument, so nothing overflows
    and nothing is NaN for any finite ``z``; and σ' keeps its full relative precision where
    σ rounds to 1 (the product form loses it to the cancellation in ``1 − σ``).
    """
    one = type(z)(1.0)
    e = math.exp(-abs(z))
    d = one + e
    s = one / d if z >= 0 else e / d
    return s, e / (d * d)


@kernel()
def activation_and_derivative(z, kind, alpha):
    """``(f(z), f'(z))`` for the activation ``kind``, stable for every finite ``z``.

    - sigmoid: see ``sigmoid_and_prime``;
    - tanh: with ``e = e^(−2|z|)``, tanh z = sign(z)(1 − e)/(1 + e) and
      tanh' z = 1 − tanh² z = 4e/(1 + e)² (no cancellation where tanh rounds to ±1), with
      ``1 − e`` taken as ``−expm1(−2|z|)`` (no cancellation near 0 either);
    - ReLU: ``max(z, 0)``, derivative 1 for z > 0 else 0;
    - leaky ReLU: ``z`` for z > 0 else ``α z``; derivative 1 or ``α``;
    - ELU: ``z`` for z > 0 else ``α (eᶻ − 1)`` (``expm1``); derivative 1 or ``α eᶻ``;
    - linear: ``z``, derivative 1;
    - step: 1 for z > 0 else 0, derivative 0.
    """
    one = type(z)(1.0)
    zero = type(z)(0.0)
    if kind == SIGMOID:
        return sigmoid_and_prime(z)
    if kind == TANH:
        two = one + one
        em = math.expm1(-two * abs(z))  # e − 1, exact near z = 0 where 1 − e cancels
        d = two + em
        t = -em / d
        return (t if z >= 0 else -t), two * two * (one + em) / (d * d)
    if kind == RELU:
        return (z, one) if z > 0 else (zero, zero)
    if kind == LEAKY_RELU:
        return (z, one) if z > 0 else (alpha * z, alpha)
    if kind == ELU:
        if z > 0:
            return z, one
        return alpha * math.expm1(z), alpha * math.exp(z)
    if kind == LINEAR:
        return z, one
    return (one if z > 0 else zero), zero  # STEP


@kernel()
def softmax_rows(z, a):
    """Softmax of each row: ``a_j = e^(z_j − max z) / Σᵢ e^(z_i − max z)`` (the maximum is
    subtracted so that no exponential overflows)."""
    for k in range(z.shape[0]):
        top = z[k, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[k, j])
        total = z[k, 0] - z[k, 0]
        for j in range(z.shape[1]):
            a[k, j] = np.exp(z[k, j] - top)
            total += a[k, j]
        for j in range(z.shape[1]):
            a[k, j] /= total


@kernel()
def sigmoid_chunk(z, a, da, start, stop):
    """``a = σ(z)``, ``da = σ'(z)`` for ``z[start:stop]``, by ``sigmoid_and_prime``'s formulas
    (``e = e^(−|z|)``, σ = 1/(1 + e) for z ≥ 0 and e/(1 + e) below, σ' = e/(1 + e)²), a SIMD
    vector at a time, ``e`` from ``simd.exp_negative_abs``; the last vector is masked."""
    one = z.dtype.type(1.0)
    for i in range(start, stop, simd.lanes(z)):
        c = stop - i
        x = simd.load(z, i, c)
        e = simd.exp_negative_abs(x)
        d = simd.add(e, one)
        simd.store(a, i, c, simd.where_nonnegative(x, simd.rdiv(one, d), simd.div(e, d)))
        simd.store(da, i, c, simd.div(e, simd.mul(d, d)))


@kernel()
def activate_serial(z, a, da, kind, alpha):
    """``activate`` on the calling thread."""
    if kind == SOFTMAX:
        softmax_rows(z, a)
        da[:] = 0
        return
    zf = flat(z)
    af = flat(a)
    df = flat(da)
    n = zf.shape[0]
    if kind == SIGMOID:
        sigmoid_chunk(zf, af, df, 0, n)
        return
    for i in range(n):
        af[i], df[i] = activation_and_derivative(zf[i], kind, alpha)


@kernel(parallel=True)
def activate(z, a, da, kind, alpha):
    """A layer's activation and its derivative, element-wise: ``a = f(z)``, ``da = f'(z)``.

    The forward pass keeps ``f'(zˡ)`` for BP1 and BP2, so each neuron's ``exp`` (if any) is
    computed once. Softmax (``kind == SOFTMAX``) works row by row and leaves ``da`` at 0: its
    Jacobian is not diagonal, and BP1 handles it. The elements are shared out over the
    threads in chunks of 1024 (``activate_serial`` does the same on the calling thread).
    """
    if kind == SOFTMAX:
        activate_serial(z, a, da, kind, alpha)
        return
    zf = z.ravel()
    af = a.ravel()
    df = da.ravel()
    n = zf.shape[0]
    if kind == SIGMOID:
        for c in prange((n + 1023) // 1024):
            mode = flush_subnormals()
            sigmoid_chunk(zf, af, df, c * 1024, min(c * 1024 + 1024, n))
            restore_fp_mode(mode)
        return
    for c in prange((n + 1023) // 1024):
        mode = flush_subnormals()
        for i in range(c * 1024, min(c * 1024 + 1024, n)):
            af[i], df[i] = activation_and_derivative(zf[i], kind, alpha)
        restore_fp_mode(mode)
