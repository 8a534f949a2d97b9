"""Recurrent layers (Elman RNN, LSTM, GRU) and backpropagation through time (BPTT).

A recurrent layer with ``n_in`` inputs and ``H`` units keeps its weights as one matrix ``W`` of
shape ``(n_in + H, G·H)`` (row ``j`` for input ``j`` of ``[xₜ, hₜ₋₁]``, one column per gate
unit; ``G`` = 1, 4 or 3 gates), its biases ``b`` (``G·H``) and, for the GRU, the recurrent
candidate bias ``b_hn`` (``H``). The gates follow PyTorch's order: LSTM ``i, f, g, o``, GRU
``r, z, n``. The output layer reads the last layer's ``hₜ`` through ``V`` (``(H, n_out)``) and
``c``. A mini-batch is held as rows: ``h[t, k]`` is sample ``k``'s state after step ``t``
(``h[0] = 0``).

The pre-activations of a step are one product of ``[xₜ, hₜ₋₁]`` with all gates' weights; a
cell kernel applies the gates; BPTT runs the δ recursion back over the steps, layer by layer
from the top, and sums the weight gradients over steps and samples.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._config import kernel
from .codes import SIGMOID, SOFTMAX
from .optimizers import optimizer_step
from .regularisation import clip_gradient
from .views import all_finite

#: Cell codes.
RNN, LSTM, GRU = 0, 1, 2


class RecurrentModel(NamedTuple):
    """What the kernels need to know of a recurrent network.

    ``cell``: ``RNN``, ``LSTM`` or ``GRU``; ``widths``: ``[d, H₁, …, H_L, n_out]``;
    ``offsets``: where layer ``l``'s ``W`` starts (``offsets[L]``: ``V``; ``offsets[L+1]``:
    the size); ``output``: the output activation code; ``many``: an output at every step
    (else only at each sequence's last); ``bptt``: cut the δ recursion between ``t − 1`` and
    ``t`` whenever ``t`` is a multiple of it (0: never).
    """

    cell: int
    widths: np.ndarray
    offsets: np.ndarray
    output: int
    many: bool
    bptt: int


class RecurrentWork(NamedTuple):
    """Work buffers for mini-batches of up to ``B`` sequences of ``T`` steps (``Hm``: the
    widest layer, ``A``: the gate values kept per unit: 1, or 4 for LSTM and GRU)."""

    xb: np.ndarray  # (T, B, d) the mini-batch's inputs
    hs: np.ndarray  # (L, T + 1, B, Hm) hidden states
    cs: np.ndarray  # (L, T + 1, B, Hm) LSTM cell states
    acts: np.ndarray  # (L, T, B, A·Hm) gate values (GRU: r, z, n, W_hn h + b_hn)
    zh: np.ndarray  # (B, 3·Hm) GRU: the recurrent part of the pre-activations
    outs: np.ndarray  # (S, B, n_out) outputs (S = T many-to-many, else 1)
    above: np.ndarray  # (T, B, Hm) δ reaching this layer's hₜ from above
    below: np.ndarray  # (T, B, Hm) δ it sends to the layer below
    carry_h: np.ndarray  # (B, Hm) ∂C/∂hₜ₋₁ through the recurrence
    carry_c: np.ndarray  # (B, Hm) ∂C/∂cₜ₋₁
    dpx: np.ndarray  # (B, 4·Hm) δ of the input part of the pre-activations
    dph: np.ndarray  # (B, 4·Hm) δ of the recurrent part
    dout: np.ndarray  # (B, n_out) output error
    rows: np.ndarray  # (B,) sample indices (inference)
    hlast: np.ndarray  # (B, Hm) each sequence's last state (many-to-one)
    lens: np.ndarray  # (B,) the mini-batch's sequence lengths
    norms: np.ndarray  # (L, T) Σ ‖∂C/∂hₜ‖² over the mini-batch, per layer and step


@kernel(inline=True)
def logistic(z):
    """σ(z) = 1/(1 + e⁻ᶻ), with ``exp`` of a non-positive argument only (no overflow)."""
    one = type(z)(1.0)
    e = math.exp(-abs(z))
    return one / (one + e) if z >= 0 else e / (one + e)


@kernel(inline=True)
def gate_preactivations(W, b, x, h, n_in, n_h, split, m, z, zh):
    """``z = b + Wₓᵀ xₜ + W_hᵀ hₜ₋₁`` for rows ``k < m``: one product of ``[xₜ, hₜ₋₁]`` with
    all gates' weights, blocked over the batch (each row of ``W`` read once for four rows of
    ``z``). Columns from ``split`` on get their recurrent part in ``zh`` instead (the GRU's
    candidate, whose ``W_hn h`` the reset gate scales)."""
    gh = W.shape[1]
    zero = type(b[0])(0.0)
    for k in range(m):
        for g in range(gh):
            z[k, g] = b[g]
        for g in range(split, gh):
            zh[k, g - split] = zero
    blocked = m - m % 4
    for k in range(0, blocked, 4):
        z0, z1, z2, z3 = z[k], z[k + 1], z[k + 2], z[k + 3]
        for j in range(n_in):
            v0, v1, v2, v3 = x[k, j], x[k + 1, j], x[k + 2, j], x[k + 3, j]
            wj = W[j]
            for g in range(gh):
                w = wj[g]
                z0[g] += v0 * w
                z1[g] += v1 * w
                z2[g] += v2 * w
                z3[g] += v3 * w
        for j in range(n_h):
            v0, v1, v2, v3 = h[k, j], h[k + 1, j], h[k + 2, j], h[k + 3, j]
            wj = W[n_in + j]
            for g in range(split):
                w = wj[g]
                z0[g] += v0 * w
                z1[g] += v1 * w
                z2[g] += v2 * w
                z3[g] += v3 * w
            for g in range(split, gh):
                w = wj[g]
                zh[k, g - split] += v0 * w
                zh[k + 1, g - split] += v1 * w
                zh[k + 2, g - split] += v2 * w
                zh[k + 3, g - split] += v3 * w
    for k in range(blocked, m):
        zk = z[k]
        for j in range(n_in):
            v = x[k, j]
            wj = W[j]
            for g in range(gh):
                zk[g] += v * wj[g]
        for j in range(n_h):
            v = h[k, j]
            wj = W[n_in + j]
            for g in range(split):
                zk[g] += v * wj[g]
            for g in range(split, gh):
                zh[k, g - split] += v * wj[g]


@kernel(inline=True)
def rnn_cell(a, m, n_h, h):
    """Elman cell: ``hₜ = tanh(zₜ)`` (``a`` holds ``z`` and is left holding ``hₜ``)."""
    for k in range(m):
        for j in range(n_h):
            v = math.tanh(a[k, j])
            a[k, j] = v
            h[k, j] = v


@kernel(inline=True)
def lstm_cell(a, c_prev, m, n_h, c, h):
    """LSTM cell: ``i, f, o = σ(zᵢ, z_f, z_o)``, ``g = tanh(z_g)``, ``cₜ = f ⊙ cₜ₋₁ + i ⊙ g``,
    ``hₜ = o ⊙ tanh(cₜ)`` (``a`` holds ``z`` and is left holding ``i, f, g, o``)."""
    for k in range(m):
        for j in range(n_h):
            i = logistic(a[k, j])
            f = logistic(a[k, n_h + j])
            g = math.tanh(a[k, 2 * n_h + j])
            o = logistic(a[k, 3 * n_h + j])
            a[k, j], a[k, n_h + j], a[k, 2 * n_h + j], a[k, 3 * n_h + j] = i, f, g, o
            cj = f * c_prev[k, j] + i * g
            c[k, j] = cj
            h[k, j] = o * math.tanh(cj)


@kernel(inline=True)
def gru_cell(a, zh, b_hn, h_prev, m, n_h, h):
    """GRU cell: ``r, u = σ(z_r, z_z)``, ``n = tanh(z_n + r ⊙ (W_hn hₜ₋₁ + b_hn))``,
    ``hₜ = (1 − u) ⊙ n + u ⊙ hₜ₋₁`` (``a`` is left holding ``r, u, n, W_hn hₜ₋₁ + b_hn``)."""
    one = type(h_prev[0, 0])(1.0)
    for k in range(m):
        for j in range(n_h):
            r = logistic(a[k, j])
            u = logistic(a[k, n_h + j])
            hn = zh[k, j] + b_hn[j]
            n = math.tanh(a[k, 2 * n_h + j] + r * hn)
            a[k, j], a[k, n_h + j], a[k, 2 * n_h + j], a[k, 3 * n_h + j] = r, u, n, hn
            h[k, j] = (one - u) * n + u * h_prev[k, j]


@kernel(inline=True)
def output_layer(V, c, h, m, code, a):
    """``aₖ = f(Vᵀ hₖ + c)`` for rows ``k < m`` (``f``: softmax, sigmoid or the identity, by
    ``code``; softmax subtracts the row's maximum first)."""
    n_h, n_out = V.shape
    one = type(c[0])(1.0)
    for k in range(m):
        for o in range(n_out):
            a[k, o] = c[o]
        for j in range(n_h):
            v = h[k, j]
            for o in range(n_out):
                a[k, o] += v * V[j, o]
        if code == SOFTMAX:
            top = a[k, 0]
            for o in range(1, n_out):
                top = max(top, a[k, o])
            total = one - one
            for o in range(n_out):
                a[k, o] = math.exp(a[k, o] - top)
                total += a[k, o]
            for o in range(n_out):
                a[k, o] /= total
        elif code == SIGMOID:
            for o in range(n_out):
                a[k, o] = logistic(a[k, o])


@kernel(inline=True)
def recurrent_layer_views(params, model, l):
    """Layer ``l``'s ``(W, b, b_hn)`` views of a buffer laid out like ``params`` (``b_hn``
    is empty but for the GRU)."""
    n_in, n_h = model.widths[l], model.widths[l + 1]
    gates = 1 if model.cell == RNN else (4 if model.cell == LSTM else 3)
    start = model.offsets[l]
    size = (n_in + n_h) * gates * n_h
    W = params[start : start + size].reshape((n_in + n_h, gates * n_h))
    b = params[start + size : start + size + gates * n_h]
    extra = n_h if model.cell == GRU else 0
    b_hn = params[start + size + gates * n_h : start + size + gates * n_h + extra]
    return W, b, b_hn


@kernel(inline=True)
def recurrent_output_views(params, model):
    """The output layer's ``(V, c)`` views of a buffer laid out like ``params``."""
    n_layers = model.widths.shape[0] - 2
    n_h, n_out = model.widths[n_layers], model.widths[n_layers + 1]
    start = model.offsets[n_layers]
    V = params[start : start + n_h * n_out].reshape((n_h, n_out))
    return V, params[start + n_h * n_out : start + n_h * n_out + n_out]


@kernel(inline=True)
def gather_batch(X, lengths, rows, m, n_steps, xb, lens):
    """``xb[t, k] = X[rows[k], t]`` and ``lens[k] = lengths[rows[k]]``: the mini-batch in
    step-major order (the data itself is never shuffled)."""
    d = X.shape[2]
    for k in range(m):
        lens[k] = lengths[rows[k]]
        for t in range(n_steps):
            for j in range(d):
                xb[t, k, j] = X[rows[k], t, j]


@kernel(inline=True)
def forward_sequences(params, model, m, n_steps, ws):
    """The forward pass of the ``m`` sequences in ``ws.xb`` through every layer and step,
    then the outputs: ``outs[t]`` from the last layer's ``hₜ`` at every step (many-to-many),
    or ``outs[0]`` from each sequence's last state ``h[lens[k]]``."""
    n_layers = model.widths.shape[0] - 2
    cell = model.cell
    for l in range(n_layers):
        W, b, b_hn = recurrent_layer_views(params, model, l)
        n_in, n_h = model.widths[l], model.widths[l + 1]
        split = 2 * n_h if cell == GRU else W.shape[1]
        hs, cs, acts = ws.hs[l], ws.cs[l], ws.acts[l]
        zero = type(b[0])(0.0)
        for k in range(m):
            for j in range(n_h):
                hs[0, k, j] = zero
                cs[0, k, j] = zero
        for t in range(n_steps):
            x = ws.xb[t] if l == 0 else ws.hs[l - 1, t + 1]
            gate_preactivations(W, b, x, hs[t], n_in, n_h, split, m, acts[t], ws.zh)
            if cell == RNN:
                rnn_cell(acts[t], m, n_h, hs[t + 1])
            elif cell == LSTM:
                lstm_cell(acts[t], cs[t], m, n_h, cs[t + 1], hs[t + 1])
            else:
                gru_cell(acts[t], ws.zh, b_hn, hs[t], m, n_h, hs[t + 1])
    V, c = recurrent_output_views(params, model)
    top = ws.hs[n_layers - 1]
    if model.many:
        for t in range(n_steps):
            output_layer(V, c, top[t + 1], m, model.output, ws.outs[t])
    else:
        n_h = model.widths[n_layers]
        for k in range(m):
            for j in range(n_h):
                ws.hlast[k, j] = top[ws.lens[k], k, j]
        output_layer(V, c, ws.hlast, m, model.output, ws.outs[0])


@kernel(inline=True)
def sequence_output_error(a, Y, rows, s, lens, many, m, dout):
    """``δ = a − y`` of the matched output and cost (softmax and log-likelihood, sigmoid and
    cross-entropy, linear and quadratic), ``y = Y[rows[k], s]``; 0 at padding (many-to-many,
    ``s ≥ lens[k]``)."""
    for k in range(m):
        yk = Y[rows[k], s]
        valid = not many or s < lens[k]
        for o in range(dout.shape[1]):
            dout[k, o] = a[k, o] - yk[o] if valid else type(a[k, o])(0.0)


@kernel(inline=True)
def output_backward(V, h, dout, m, gV, gc, dh):
    """The output layer's gradients, summed over rows: ``∂C/∂V += Σₖ hₖ δₖᵀ``,
    ``∂C/∂c += Σₖ δₖ``, and ``∂C/∂hₖ = V δₖ`` (into ``dh``)."""
    n_h, n_out = V.shape
    for k in range(m):
        for j in range(n_h):
            v = h[k, j]
            total = v - v
            for o in range(n_out):
                gV[j, o] += v * dout[k, o]
                total += V[j, o] * dout[k, o]
            dh[k, j] = total
        for o in range(n_out):
            gc[o] += dout[k, o]


@kernel(inline=True)
def rnn_delta(a, dh, m, n_h, dpx, dph):
    """Elman cell: ``δz = ∂C/∂hₜ ⊙ (1 − hₜ²)`` (the same for both parts of ``z``)."""
    one = type(a[0, 0])(1.0)
    for k in range(m):
        for j in range(n_h):
            h = a[k, j]
            d = dh[k, j] * (one - h * h)
            dpx[k, j] = d
            dph[k, j] = d


@kernel(inline=True)
def lstm_delta(a, c_prev, c, dh, dc, m, n_h, dpx, dph):
    """LSTM cell: ``δc = δh ⊙ o ⊙ (1 − tanh² cₜ) + δcₜ₊₁``; ``δz_o = δh ⊙ tanh cₜ ⊙ o(1 − o)``,
    ``δzᵢ = δc ⊙ g ⊙ i(1 − i)``, ``δz_g = δc ⊙ i ⊙ (1 − g²)``,
    ``δz_f = δc ⊙ cₜ₋₁ ⊙ f(1 − f)``; ``dc`` (in: ``δcₜ₊₁`` carried) is left holding
    ``δc ⊙ f``, what reaches ``cₜ₋₁``."""
    one = type(a[0, 0])(1.0)
    for k in range(m):
        for j in range(n_h):
            i, f = a[k, j], a[k, n_h + j]
            g, o = a[k, 2 * n_h + j], a[k, 3 * n_h + j]
            tc = math.tanh(c[k, j])
            d = dh[k, j]
            dcj = d * o * (one - tc * tc) + dc[k, j]
            zi = dcj * g * i * (one - i)
            zf = dcj * c_prev[k, j] * f * (one - f)
            zg = dcj * i * (one - g * g)
            zo = d * tc * o * (one - o)
            dpx[k, j], dpx[k, n_h + j], dpx[k, 2 * n_h + j], dpx[k, 3 * n_h + j] = zi, zf, zg, zo
            dph[k, j], dph[k, n_h + j], dph[k, 2 * n_h + j], dph[k, 3 * n_h + j] = zi, zf, zg, zo
            dc[k, j] = dcj * f


@kernel(inline=True)
def gru_delta(a, h_prev, dh, m, n_h, dpx, dph, carry):
    """GRU cell, with ``hₜ = (1 − u) n + u hₜ₋₁``: ``δn = δh ⊙ (1 − u)``, ``δu = δh ⊙ (hₜ₋₁ − n)``,
    ``δz_n = δn ⊙ (1 − n²)`` (the input part), ``δ(W_hn h + b_hn) = δz_n ⊙ r`` (the
    recurrent part), ``δz_r = δz_n ⊙ (W_hn h + b_hn) ⊙ r(1 − r)``, ``δz_u = δu ⊙ u(1 − u)``;
    ``carry = δh ⊙ u``, the direct part of ``∂C/∂hₜ₋₁``."""
    one = type(a[0, 0])(1.0)
    for k in range(m):
        for j in range(n_h):
            r, u = a[k, j], a[k, n_h + j]
            n, hn = a[k, 2 * n_h + j], a[k, 3 * n_h + j]
            d = dh[k, j]
            zn = d * (one - u) * (one - n * n)
            zr = zn * hn * r * (one - r)
            zu = d * (h_prev[k, j] - n) * u * (one - u)
            dpx[k, j], dpx[k, n_h + j], dpx[k, 2 * n_h + j] = zr, zu, zn
            dph[k, j], dph[k, n_h + j], dph[k, 2 * n_h + j] = zr, zu, zn * r
            carry[k, j] = d * u


@kernel(inline=True)
def step_errors(W, n_in, n_h, dpx, dph, m, dx, want_dx, dh_prev):
    """BPTT's two products of a step: ``δxₜ = Wₓ δzₓ`` (to the layer below, if ``want_dx``)
    and ``δhₜ₋₁ += W_h δz_h`` (added to ``dh_prev``, which holds the cell's direct part);
    blocked over the batch (each row of ``W`` read once for four rows)."""
    gh = W.shape[1]
    blocked = m - m % 4
    for k in range(0, blocked, 4):
        for j in range(n_in + n_h):
            if j < n_in and not want_dx:
                continue
            d = dpx if j < n_in else dph
            d0, d1, d2, d3 = d[k], d[k + 1], d[k + 2], d[k + 3]
            wj = W[j]
            t0 = wj[0] - wj[0]
            t1, t2, t3 = t0, t0, t0
            for g in range(gh):
                w = wj[g]
                t0 += w * d0[g]
                t1 += w * d1[g]
                t2 += w * d2[g]
                t3 += w * d3[g]
            if j < n_in:
                dx[k, j], dx[k + 1, j], dx[k + 2, j], dx[k + 3, j] = t0, t1, t2, t3
            else:
                dh_prev[k, j - n_in] += t0
                dh_prev[k + 1, j - n_in] += t1
                dh_prev[k + 2, j - n_in] += t2
                dh_prev[k + 3, j - n_in] += t3
    for k in range(blocked, m):
        if want_dx:
            for j in range(n_in):
                wj = W[j]
                total = wj[0] - wj[0]
                for g in range(gh):
                    total += wj[g] * dpx[k, g]
                dx[k, j] = total
        for j in range(n_h):
            wj = W[n_in + j]
            total = wj[0] - wj[0]
            for g in range(gh):
                total += wj[g] * dph[k, g]
            dh_prev[k, j] += total


@kernel(inline=True)
def step_weight_gradient(gW, gb, gbhn, x, h_prev, dpx, dph, n_in, n_h, split, m):
    """The weight gradients of a step, summed over rows: ``∂C/∂Wₓ += xₜ δzₓᵀ``,
    ``∂C/∂W_h += hₜ₋₁ δz_hᵀ``, ``∂C/∂b += δzₓ``, and for the GRU ``∂C/∂b_hn += δz_h`` of the
    candidate (columns from ``split``); four rows at a time (each row of ``∂C/∂W`` read and
    written once for four)."""
    gh = gW.shape[1]
    blocked = m - m % 4
    for k in range(0, blocked, 4):
        for j in range(n_in + n_h):
            src = x if j < n_in else h_prev
            d = dpx if j < n_in else dph
            i = j if j < n_in else j - n_in
            v0, v1, v2, v3 = src[k, i], src[k + 1, i], src[k + 2, i], src[k + 3, i]
            d0, d1, d2, d3 = d[k], d[k + 1], d[k + 2], d[k + 3]
            gj = gW[j]
            for g in range(gh):
                gj[g] += v0 * d0[g] + v1 * d1[g] + v2 * d2[g] + v3 * d3[g]
    for k in range(blocked, m):
        for j in range(n_in):
            v = x[k, j]
            gj = gW[j]
            for g in range(gh):
                gj[g] += v * dpx[k, g]
        for j in range(n_h):
            v = h_prev[k, j]
            gj = gW[n_in + j]
            for g in range(gh):
                gj[g] += v * dph[k, g]
    for k in range(m):
        for g in range(gh):
            gb[g] += dpx[k, g]
        for j in range(gbhn.shape[0]):
            gbhn[j] += dph[k, split + j]


@kernel(inline=True)
def backward_sequences(params, model, Y, rows, m, n_steps, ws, grad):
    """Backpropagation through time of the mini-batch whose forward pass ``ws`` holds: the
    output errors, then layer by layer from the top, the δ recursion from the last step to
    the first, adding the gradient (summed over steps and samples) to ``grad`` and each
    step's ``Σₖ ‖∂C/∂hₜ‖²`` to ``ws.norms``. Padding (steps from a sequence's length on)
    gets no error; the recursion is cut before every multiple of ``model.bptt``."""
    n_layers = model.widths.shape[0] - 2
    cell = model.cell
    V, c = recurrent_output_views(params, model)
    gV, gc = recurrent_output_views(grad, model)
    top = ws.hs[n_layers - 1]
    n_h = model.widths[n_layers]
    zero = type(c[0])(0.0)
    above, below = ws.above, ws.below
    for t in range(n_steps):
        for k in range(m):
            for j in range(n_h):
                above[t, k, j] = zero
    if model.many:
        for t in range(n_steps):
            sequence_output_error(ws.outs[t], Y, rows, t, ws.lens, True, m, ws.dout)
            output_backward(V, top[t + 1], ws.dout, m, gV, gc, above[t])
    else:
        sequence_output_error(ws.outs[0], Y, rows, 0, ws.lens, False, m, ws.dout)
        output_backward(V, ws.hlast, ws.dout, m, gV, gc, ws.carry_h)
        for k in range(m):
            for j in range(n_h):
                above[ws.lens[k] - 1, k, j] = ws.carry_h[k, j]
    for l in range(n_layers - 1, -1, -1):
        W, _, _ = recurrent_layer_views(params, model, l)
        gW, gb, gbhn = recurrent_layer_views(grad, model, l)
        n_in, n_h = model.widths[l], model.widths[l + 1]
        split = 2 * n_h if cell == GRU else W.shape[1]
        hs, cs, acts = ws.hs[l], ws.cs[l], ws.acts[l]
        carry_h, carry_c = ws.carry_h, ws.carry_c
        for k in range(m):
            for j in range(n_h):
                carry_h[k, j] = zero
                carry_c[k, j] = zero
        for t in range(n_steps - 1, -1, -1):
            dh = above[t]
            total = zero
            for k in range(m):
                for j in range(n_h):
                    v = dh[k, j] + carry_h[k, j]
                    dh[k, j] = v
                    total += v * v
                    carry_h[k, j] = zero
            ws.norms[l, t] += total
            if cell == RNN:
                rnn_delta(acts[t], dh, m, n_h, ws.dpx, ws.dph)
            elif cell == LSTM:
                lstm_delta(acts[t], cs[t], cs[t + 1], dh, carry_c, m, n_h, ws.dpx, ws.dph)
            else:
                gru_delta(acts[t], hs[t], dh, m, n_h, ws.dpx, ws.dph, carry_h)
            x = ws.xb[t] if l == 0 else ws.hs[l - 1, t + 1]
            step_weight_gradient(gW, gb, gbhn, x, hs[t], ws.dpx, ws.dph, n_in, n_h, split, m)
            step_errors(W, n_in, n_h, ws.dpx, ws.dph, m, below[t], l > 0, carry_h)
            if model.bptt > 0 and t % model.bptt == 0:
                for k in range(m):
                    for j in range(n_h):
                        carry_h[k, j] = zero
                        carry_c[k, j] = zero
        above, below = below, above


@kernel(inline=True)
def add_penalty_gradient(params, model, grad, l2, l1):
    """Add the penalties' gradient to every weight's (not the biases'):
    ``+ l2·w + l1·sgn(w)`` (``l2 = λ/n``, ``l1 = λ₁/n``)."""
    zero = l2 - l2
    n_layers = model.widths.shape[0] - 2
    for l in range(n_layers + 1):
        if l < n_layers:
            n_in, n_h = model.widths[l], model.widths[l + 1]
            gates = 1 if model.cell == RNN else (4 if model.cell == LSTM else 3)
            size = (n_in + n_h) * gates * n_h
        else:
            size = model.widths[n_layers] * model.widths[n_layers + 1]
        start = model.offsets[l]
        for i in range(start, start + size):
            v = params[i]
            grad[i] += l2 * v + (l1 if v > zero else (-l1 if v < zero else zero))


@kernel(inline=True)
def sequence_gradient(params, model, X, Y, lengths, rows, m, ws, grad):
    """``grad = Σₓ ∇Cₓ`` over the ``m`` sequences ``X[rows[:m]]`` (forward pass, then BPTT);
    ``ws.norms`` gets their ``Σ ‖∂C/∂hₜ‖²`` per layer and step."""
    n_steps = X.shape[1]
    zero = type(params[0])(0.0)
    for i in range(grad.shape[0]):
        grad[i] = zero
    for l in range(ws.norms.shape[0]):
        for t in range(ws.norms.shape[1]):
            ws.norms[l, t] = zero
    gather_batch(X, lengths, rows, m, n_steps, ws.xb, ws.lens)
    forward_sequences(params, model, m, n_steps, ws)
    backward_sequences(params, model, Y, rows, m, n_steps, ws, grad)


@kernel()
def predict_sequences(params, model, X, lengths, ws, out):
    """The outputs of every sequence of ``X``, a mini-batch at a time: ``out[i, t]`` at every
    step (many-to-many) or ``out[i, 0]`` at each sequence's last."""
    n, n_steps = X.shape[0], X.shape[1]
    block = ws.rows.shape[0]
    for start in range(0, n, block):
        m = min(block, n - start)
        for k in range(m):
            ws.rows[k] = start + k
        gather_batch(X, lengths, ws.rows, m, n_steps, ws.xb, ws.lens)
        forward_sequences(params, model, m, n_steps, ws)
        for s in range(ws.outs.shape[0]):
            for k in range(m):
                for o in range(out.shape[2]):
                    out[start + k, s, o] = ws.outs[s, k, o]


@kernel()
def train_epoch_recurrent(params, model, X, Y, lengths, order, batch_size, eta, l2, l1, grad,
                          state, optimizer, hyper, clip, t0, backup, state_backup, ws):  # fmt: skip
    """One epoch of mini-batch training: for each mini-batch of ``order``, the mean gradient
    ``g = (1/m) Σₓ ∇Cₓ`` by BPTT, ``+ l2·w + l1·sgn(w)``, clipped (``clip``: norm, value; 0
    for none), then the optimiser's step (``optimizer_step``, at step ``t0 + 1`` on).

    With a non-empty ``backup``, the parameters (and ``state``, into ``state_backup``) are
    saved before each step and checked after it; the first step that leaves a non-finite
    value is undone and the epoch stops. Returns ``(steps taken, that mini-batch or −1,
    −1)``."""
    n = order.shape[0]
    t = t0
    checking = backup.shape[0] > 0
    scale_one = eta - eta + type(eta)(1.0)
    for batch, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        for k in range(m):
            ws.rows[k] = order[start + k]
        sequence_gradient(params, model, X, Y, lengths, ws.rows, m, ws, grad)
        scale = scale_one / type(eta)(m)
        for i in range(grad.shape[0]):
            grad[i] *= scale
        add_penalty_gradient(params, model, grad, l2, l1)
        clip_gradient(grad, clip[0], clip[1])
        if checking:
            for i in range(params.shape[0]):
                backup[i] = params[i]
            for i in range(state.shape[0]):
                for j in range(state.shape[1]):
                    state_backup[i, j] = state[i, j]
        t += 1
        optimizer_step(params, grad, state, optimizer, eta, hyper, t)
        if checking and not all_finite(params):
            for i in range(params.shape[0]):
                params[i] = backup[i]
            for i in range(state.shape[0]):
                for j in range(state.shape[1]):
                    state[i, j] = state_backup[i, j]
            return t - 1, batch, -1
    return t, -1, -1
