"""Recurrent layers (Elman RNN, LSTM, GRU) and backpropagation through time (BPTT).

A recurrent layer with ``n_in`` inputs and ``H`` units keeps its weights as one matrix ``W`` of
shape ``(n_in + H, G·H)`` (row ``j`` for input ``j`` of ``[xₜ, hₜ₋₁]``, one column per gate
unit; ``G`` = 1, 4 or 3 gates): its first ``n_in`` rows are ``Wₓ``, the others ``W_h``; its
biases ``b`` (``G·H``) and, for the GRU, the recurrent candidate bias ``b_hn`` (``H``). The
gates follow PyTorch's order: LSTM ``i, f, g, o``, GRU ``r, z, n``. The output layer reads the
last layer's ``hₜ`` through ``V`` (``(H, n_out)``) and ``c``. A mini-batch is held as rows:
``h[t, k]`` is sample ``k``'s state after step ``t`` (``h[0] = 0``).

The work is arranged as cuDNN arranges it, so that most of it is a few large products:

- forward, per layer: the input part of every step's pre-activations at once,
  ``Zₓ = X Wₓ + b`` over all ``T·B`` rows (steps × samples); then step by step only the
  recurrent part, ``Zₜ = Zₓₜ + Hₜ₋₁ W_h`` (``B × H`` by ``H × G·H``), and the cell;
- backward, per layer, from the last step to the first: the cell's ``δZₜ`` (kept for every
  step) and ``∂C/∂Hₜ₋₁ += δZₜ W_hᵀ``, with a copy ``W_hᵀ`` made once per mini-batch so that
  this too reads rows; then, after the recursion, one reduction over all ``T·B`` rows each
  for ``∂C/∂Wₓ = Xᵀ δZ``, ``∂C/∂W_h = Hₜ₋₁ᵀ δZ``, ``∂C/∂b = Σ δZ`` and (below the top
  layer) ``δX = δZ Wₓᵀ``, the δ sent down. (The GRU's candidate has its recurrent part
  ``W_hn hₜ₋₁ + b_hn`` scaled by the reset gate: its δ differs from the input part's, and
  is kept apart.)

Every product is one register-tiled SIMD kernel, ``accumulate_product``; the cells work a SIMD
vector of units at a time. On several threads the samples of a mini-batch are split into
contiguous parts for the forward and backward recursions (samples are independent there: no
thread waits for another within a layer), and the reductions by their output rows. Each
value is computed whole by one thread in one fixed order, so the weights are the same, bit
for bit, whatever the number of threads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._views import flat
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
    dzx: np.ndarray  # (T, B, 4·Hm) δ of the pre-activations (of their input part: GRU)
    dzh: np.ndarray  # (T, B, 4·Hm) GRU: δ of the recurrent part ((0, 0, 0) for the others)
    dout: np.ndarray  # (B, n_out) output error
    rows: np.ndarray  # (B,) sample indices (inference)
    hlast: np.ndarray  # (B, Hm) each sequence's last state (many-to-one)
    lens: np.ndarray  # (B,) the mini-batch's sequence lengths
    norms: np.ndarray  # (L, T) Σ ‖∂C/∂hₜ‖² over the mini-batch, per layer and step ((0, 0):
    # not computed, as in training)
    wt: np.ndarray  # like params: each layer's W_hᵀ and Wₓᵀ (``transpose_weights``)


@kernel(inline=True)
def logistic(z):
    """σ(z) = 1/(1 + e⁻ᶻ), with ``exp`` of a non-positive argument only (no overflow)."""
    one = type(z)(1.0)
    e = math.exp(-abs(z))
    return one / (one + e) if z >= 0 else e / (one + e)


#: Rows of ``k`` (the summed index) a product takes at a time: a 64-row panel of 4 vectors of
#: ``B`` (16 KiB in float32) stays in the L1 cache while every row tile of ``C`` uses it.
K_BLOCK = 64


@kernel(inline=True)
def store_tile_row(C, r, step, c, s0, s1, s2, s3):
    """One row of a product's tile: ``C[r : r + c] = [s0, s1, s2, s3][:c]`` (4 vectors of
    ``step`` values, masked at ``c``)."""
    simd.store(C, r, c, s0)
    simd.store(C, r + step, c - step, s1)
    simd.store(C, r + 2 * step, c - 2 * step, s2)
    simd.store(C, r + 3 * step, c - 3 * step, s3)


@kernel()
def accumulate_product(A, a0, si, sk, B, b0, ldb, C, c0, ldc, M, N, K, add):
    """``C[i, :N] = (C[i, :N] if add else 0) + Σₖ a(i, k) B[k, :N]`` for ``i < M``, with
    ``a(i, k) = A[a0 + i·si + k·sk]``: ``A[i, k]`` (``si`` = its row length, ``sk`` = 1) or
    ``A[k, i]`` (``si`` = 1, ``sk`` = its row length). The arrays are flat: ``B[k, j]`` is
    ``B[b0 + k·ldb + j]``, ``C[i, j]`` is ``C[c0 + i·ldc + j]``.

    Register tiles of 4 rows × 4 SIMD vectors of ``C`` (2 or 1 at a row's end, 3 masked as 4): 16
    running sums held in registers across ``K_BLOCK`` values of ``k``, each chunk of ``B``
    loaded once for 4 rows and each ``a(i, k)`` broadcast once for 4 vectors; a row count
    that is not a multiple of 4 repeats the last row, a column count that is not a multiple
    of the vector length is masked. Every element of ``C`` is the same chain of fused
    multiply-adds, its start value then one per ``k`` in the order of ``k``, whatever tile,
    remainder or thread computes it: results do not depend on how rows are split.
    """
    step = simd.lanes(C)
    width = 4 * step
    for kb in range(0, K, K_BLOCK):
        ke = min(kb + K_BLOCK, K)
        more = add or kb > 0
        for j in range(0, N, width):
            c = N - j
            wide = (c + step - 1) // step  # vectors in this tile (1 to 4)
            ca, cb, cc, cd = c, c - step, c - 2 * step, c - 3 * step
            for i0 in range(0, M, 4):
                i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
                r0, r1 = c0 + i0 * ldc + j, c0 + i1 * ldc + j
                r2, r3 = c0 + i2 * ldc + j, c0 + i3 * ldc + j
                if more:
                    s00, s01 = simd.load(C, r0, ca), simd.load(C, r0 + step, cb)
                    s02, s03 = simd.load(C, r0 + 2 * step, cc), simd.load(C, r0 + 3 * step, cd)
                    s10, s11 = simd.load(C, r1, ca), simd.load(C, r1 + step, cb)
                    s12, s13 = simd.load(C, r1 + 2 * step, cc), simd.load(C, r1 + 3 * step, cd)
                    s20, s21 = simd.load(C, r2, ca), simd.load(C, r2 + step, cb)
                    s22, s23 = simd.load(C, r2 + 2 * step, cc), simd.load(C, r2 + 3 * step, cd)
                    s30, s31 = simd.load(C, r3, ca), simd.load(C, r3 + step, cb)
                    s32, s33 = simd.load(C, r3 + 2 * step, cc), simd.load(C, r3 + 3 * step, cd)
                else:
                    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = simd.zeros(C)
                    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = simd.zeros(C)
                p0, p1, p2, p3 = a0 + i0 * si, a0 + i1 * si, a0 + i2 * si, a0 + i3 * si
                if wide >= 3:
                    for k in range(kb, ke):
                        q = b0 + k * ldb + j
                        v0, v1 = simd.load(B, q, ca), simd.load(B, q + step, cb)
                        v2, v3 = simd.load(B, q + 2 * step, cc), simd.load(B, q + 3 * step, cd)
                        x = A[p0 + k * sk]
                        s00, s01 = simd.fma(s00, x, v0), simd.fma(s01, x, v1)
                        s02, s03 = simd.fma(s02, x, v2), simd.fma(s03, x, v3)
                        x = A[p1 + k * sk]
                        s10, s11 = simd.fma(s10, x, v0), simd.fma(s11, x, v1)
                        s12, s13 = simd.fma(s12, x, v2), simd.fma(s13, x, v3)
                        x = A[p2 + k * sk]
                        s20, s21 = simd.fma(s20, x, v0), simd.fma(s21, x, v1)
                        s22, s23 = simd.fma(s22, x, v2), simd.fma(s23, x, v3)
                        x = A[p3 + k * sk]
                        s30, s31 = simd.fma(s30, x, v0), simd.fma(s31, x, v1)
                        s32, s33 = simd.fma(s32, x, v2), simd.fma(s33, x, v3)
                elif wide == 2:
                    for k in range(kb, ke):
                        q = b0 + k * ldb + j
                        v0, v1 = simd.load(B, q, ca), simd.load(B, q + step, cb)
                        x = A[p0 + k * sk]
                        s00, s01 = simd.fma(s00, x, v0), simd.fma(s01, x, v1)
                        x = A[p1 + k * sk]
                        s10, s11 = simd.fma(s10, x, v0), simd.fma(s11, x, v1)
                        x = A[p2 + k * sk]
                        s20, s21 = simd.fma(s20, x, v0), simd.fma(s21, x, v1)
                        x = A[p3 + k * sk]
                        s30, s31 = simd.fma(s30, x, v0), simd.fma(s31, x, v1)
                else:
                    for k in range(kb, ke):
                        v0 = simd.load(B, b0 + k * ldb + j, ca)
                        s00 = simd.fma(s00, A[p0 + k * sk], v0)
                        s10 = simd.fma(s10, A[p1 + k * sk], v0)
                        s20 = simd.fma(s20, A[p2 + k * sk], v0)
                        s30 = simd.fma(s30, A[p3 + k * sk], v0)
                rows = min(4, M - i0)
                store_tile_row(C, r0, step, c, s00, s01, s02, s03)
                if rows > 1:
                    store_tile_row(C, r1, step, c, s10, s11, s12, s13)
                if rows > 2:
                    store_tile_row(C, r2, step, c, s20, s21, s22, s23)
                if rows > 3:
                    store_tile_row(C, r3, step, c, s30, s31, s32, s33)


@kernel(inline=True)
def sigmoid_vector(x, one):
    """σ(x) lane by lane: ``e = e^(−|x|)`` (``simd.exp_negative_abs``), ``1/(1 + e)`` for
    ``x ≥ 0``, ``e/(1 + e)`` below (no overflow): one division."""
    e = simd.exp_negative_abs(x)
    return simd.div(simd.where_nonnegative(x, simd.add(simd.zeros(one), one), e), simd.add(e, one))


@kernel(inline=True)
def tanh_vector(x, one):
    """tanh(x) lane by lane: ``e = e^(−2|x|)``, ``±(1 − e)/(1 + e)`` with the sign of ``x``
    (within a few units in the last place of 1: near 0 the error is absolute, not relative)."""
    e = simd.exp_negative_abs(simd.add(x, x))
    t = simd.div(simd.sub(simd.add(simd.zeros(one), one), e), simd.add(e, one))
    return simd.where_nonnegative(x, t, simd.mul(t, -one))


@kernel(inline=True)
def rnn_cell(a, k0, k1, n_h, h):
    """Elman cell: ``hₜ = tanh(zₜ)`` (``a`` holds ``z`` and is left holding ``hₜ``); rows
    ``k0 ≤ k < k1``, a SIMD vector of units at a time."""
    one = type(a[0, 0])(1.0)
    la, lh = a.shape[1], h.shape[1]
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            c = n_h - j
            v = tanh_vector(simd.load(a, k * la + j, c), one)
            simd.store(a, k * la + j, c, v)
            simd.store(h, k * lh + j, c, v)


@kernel(inline=True)
def lstm_cell(a, c_prev, k0, k1, n_h, c, h):
    """LSTM cell: ``i, f, o = σ(zᵢ, z_f, z_o)``, ``g = tanh(z_g)``, ``cₜ = f ⊙ cₜ₋₁ + i ⊙ g``,
    ``hₜ = o ⊙ tanh(cₜ)`` (``a`` holds ``z`` and is left holding ``i, f, g, o``); rows
    ``k0 ≤ k < k1``, a SIMD vector of units at a time."""
    one = type(a[0, 0])(1.0)
    la, lh = a.shape[1], h.shape[1]
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            n = n_h - j
            p = k * la + j
            i = sigmoid_vector(simd.load(a, p, n), one)
            f = sigmoid_vector(simd.load(a, p + n_h, n), one)
            g = tanh_vector(simd.load(a, p + 2 * n_h, n), one)
            o = sigmoid_vector(simd.load(a, p + 3 * n_h, n), one)
            simd.store(a, p, n, i)
            simd.store(a, p + n_h, n, f)
            simd.store(a, p + 2 * n_h, n, g)
            simd.store(a, p + 3 * n_h, n, o)
            q = k * lh + j
            cj = simd.fma(simd.mul(i, g), f, simd.load(c_prev, q, n))
            simd.store(c, q, n, cj)
            simd.store(h, q, n, simd.mul(o, tanh_vector(cj, one)))


@kernel(inline=True)
def gru_cell(a, zh, b_hn, h_prev, k0, k1, n_h, h):
    """GRU cell: ``r, u = σ(z_r, z_z)``, ``n = tanh(z_n + r ⊙ (W_hn hₜ₋₁ + b_hn))``,
    ``hₜ = (1 − u) ⊙ n + u ⊙ hₜ₋₁`` (``a`` is left holding ``r, u, n, W_hn hₜ₋₁ + b_hn``);
    rows ``k0 ≤ k < k1``, a SIMD vector of units at a time."""
    one = type(a[0, 0])(1.0)
    la, lh, lz = a.shape[1], h.shape[1], zh.shape[1]
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            n = n_h - j
            p = k * la + j
            r = sigmoid_vector(simd.load(a, p, n), one)
            u = sigmoid_vector(simd.load(a, p + n_h, n), one)
            hn = simd.add(simd.load(zh, k * lz + j, n), simd.load(b_hn, j, n))
            nn = tanh_vector(simd.fma(simd.load(a, p + 2 * n_h, n), r, hn), one)
            simd.store(a, p, n, r)
            simd.store(a, p + n_h, n, u)
            simd.store(a, p + 2 * n_h, n, nn)
            simd.store(a, p + 3 * n_h, n, hn)
            q = k * lh + j
            hv = simd.fma(simd.mul(simd.sub(simd.add(simd.zeros(one), one), u), nn), u,
                          simd.load(h_prev, q, n))  # fmt: skip
            simd.store(h, q, n, hv)


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
def row_part(n, parts, p, quantum):
    """Part ``p`` of ``parts`` of ``range(n)``: ``(start, stop)``, contiguous, in whole
    multiples of ``quantum`` but for the last part's end."""
    tiles = (n + quantum - 1) // quantum
    return min(n, tiles * p // parts * quantum), min(n, tiles * (p + 1) // parts * quantum)


@kernel(inline=True)
def layer_input(model, l, ws):
    """Layer ``l``'s inputs as a flat array and where step 0 starts: ``(xs, start, row length)``
    (``xs[start + (t·B + k)·ld + j]`` is ``x_tj`` of sample ``k``)."""
    if l == 0:
        return flat(ws.xb), 0, ws.xb.shape[2]
    return flat(ws.hs[l - 1]), ws.hs.shape[2] * ws.hs.shape[3], ws.hs.shape[3]


@kernel(inline=True)
def forward_layer(params, model, l, n_steps, ws, k0, k1):
    """Layer ``l``'s forward pass for the samples ``k0 ≤ k < k1``: first the input part of
    every step's pre-activations, ``Zₓ = X Wₓ + b`` (``acts``), then step by step the
    recurrent part, ``Zₜ = Zₓₜ + Hₜ₋₁ W_h``, and the cell. (The GRU's candidate takes its
    recurrent part ``W_hn hₜ₋₁`` separately, in ``zh``: the reset gate scales it.)"""
    cell = model.cell
    W, b, b_hn = recurrent_layer_views(params, model, l)
    n_in, n_h = model.widths[l], model.widths[l + 1]
    gh = W.shape[1]
    split = 2 * n_h if cell == GRU else gh
    rows, wide, at = ws.xb.shape[1], ws.hs.shape[3], ws.acts.shape[3]
    hs, cs, acts = ws.hs[l], ws.cs[l], ws.acts[l]
    za, hf, zh = flat(acts), flat(hs), flat(ws.zh)
    xs, x0, ldx = layer_input(model, l, ws)
    w0 = model.offsets[l]
    m = k1 - k0
    zero = type(b[0])(0.0)
    for k in range(k0, k1):
        for j in range(n_h):
            hs[0, k, j] = zero
            cs[0, k, j] = zero
    for t in range(n_steps):
        for k in range(k0, k1):
            for g in range(gh):
                acts[t, k, g] = b[g]
        r = t * rows + k0
        accumulate_product(xs, x0 + r * ldx, ldx, 1, params, w0, gh, za, r * at, at, m, gh, n_in,
                           True)  # fmt: skip
    for t in range(n_steps):
        r = t * rows + k0
        if t > 0:
            accumulate_product(hf, r * wide, wide, 1, params, w0 + n_in * gh, gh, za, r * at, at,
                               m, split, n_h, True)  # fmt: skip
        if cell == RNN:
            rnn_cell(acts[t], k0, k1, n_h, hs[t + 1])
        elif cell == LSTM:
            lstm_cell(acts[t], cs[t], k0, k1, n_h, cs[t + 1], hs[t + 1])
        else:
            if t > 0:
                lz = ws.zh.shape[1]
                accumulate_product(hf, r * wide, wide, 1, params, w0 + n_in * gh + split, gh, zh,
                                   k0 * lz, lz, m, n_h, n_h, False)  # fmt: skip
            else:
                # (through the local name: inside ``forward_layer_threaded``'s prange, Numba
                # 0.68 dropped stores written as ``ws.zh[k, j] = …``)
                for i in range(k0 * ws.zh.shape[1], k1 * ws.zh.shape[1]):
                    zh[i] = zero
            gru_cell(acts[t], ws.zh, b_hn, hs[t], k0, k1, n_h, hs[t + 1])


@kernel(parallel=True)
def forward_layer_threaded(params, model, l, n_steps, m, ws, parts):
    """``forward_layer`` with the mini-batch's ``m`` samples in ``parts`` contiguous parts,
    one a thread (samples are independent in the forward pass: no thread waits for another)."""
    for p in prange(parts):
        k0, k1 = row_part(m, parts, p, 4)
        forward_layer(params, model, l, n_steps, ws, k0, k1)


@kernel(inline=True)
def forward_sequences(params, model, m, n_steps, ws, parts):
    """The forward pass of the ``m`` sequences in ``ws.xb`` through every layer and step
    (on ``parts`` threads), then the outputs: ``outs[t]`` from the last layer's ``hₜ`` at
    every step (many-to-many), or ``outs[0]`` from each sequence's last state ``h[lens[k]]``."""
    n_layers = model.widths.shape[0] - 2
    for l in range(n_layers):
        if parts > 1:
            forward_layer_threaded(params, model, l, n_steps, m, ws, parts)
        else:
            forward_layer(params, model, l, n_steps, ws, 0, m)
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
def rnn_delta(a, dh, k0, k1, n_h, dpx, dph):
    """Elman cell: ``δz = ∂C/∂hₜ ⊙ (1 − hₜ²)`` (the same for both parts of ``z``)."""
    one = type(a[0, 0])(1.0)
    la, ld, lp = a.shape[1], dh.shape[1], dpx.shape[1]
    ones = simd.add(simd.zeros(one), one)
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            n = n_h - j
            h = simd.load(a, k * la + j, n)
            d = simd.mul(simd.load(dh, k * ld + j, n), simd.sub(ones, simd.mul(h, h)))
            simd.store(dpx, k * lp + j, n, d)
            simd.store(dph, k * lp + j, n, d)


@kernel(inline=True)
def lstm_delta(a, c_prev, c, dh, dc, k0, k1, n_h, dpx, dph):
    """LSTM cell: ``δc = δh ⊙ o ⊙ (1 − tanh² cₜ) + δcₜ₊₁``; ``δz_o = δh ⊙ tanh cₜ ⊙ o(1 − o)``,
    ``δzᵢ = δc ⊙ g ⊙ i(1 − i)``, ``δz_g = δc ⊙ i ⊙ (1 − g²)``,
    ``δz_f = δc ⊙ cₜ₋₁ ⊙ f(1 − f)``; ``dc`` (in: ``δcₜ₊₁`` carried) is left holding
    ``δc ⊙ f``, what reaches ``cₜ₋₁``. Rows ``k0 ≤ k < k1``, a SIMD vector at a time."""
    one = type(a[0, 0])(1.0)
    la, lh, lp = a.shape[1], c.shape[1], dpx.shape[1]
    ones = simd.add(simd.zeros(one), one)
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            n = n_h - j
            p = k * la + j
            i, f = simd.load(a, p, n), simd.load(a, p + n_h, n)
            g, o = simd.load(a, p + 2 * n_h, n), simd.load(a, p + 3 * n_h, n)
            q = k * lh + j
            tc = tanh_vector(simd.load(c, q, n), one)
            d = simd.load(dh, q, n)
            dcj = simd.fma(simd.load(dc, q, n), simd.mul(d, o), simd.sub(ones, simd.mul(tc, tc)))
            zi = simd.mul(simd.mul(dcj, g), simd.mul(i, simd.sub(ones, i)))
            zf = simd.mul(simd.mul(dcj, simd.load(c_prev, q, n)), simd.mul(f, simd.sub(ones, f)))
            zg = simd.mul(simd.mul(dcj, i), simd.sub(ones, simd.mul(g, g)))
            zo = simd.mul(simd.mul(d, tc), simd.mul(o, simd.sub(ones, o)))
            r = k * lp + j
            simd.store(dpx, r, n, zi)
            simd.store(dpx, r + n_h, n, zf)
            simd.store(dpx, r + 2 * n_h, n, zg)
            simd.store(dpx, r + 3 * n_h, n, zo)
            simd.store(dph, r, n, zi)
            simd.store(dph, r + n_h, n, zf)
            simd.store(dph, r + 2 * n_h, n, zg)
            simd.store(dph, r + 3 * n_h, n, zo)
            simd.store(dc, q, n, simd.mul(dcj, f))


@kernel(inline=True)
def gru_delta(a, h_prev, dh, k0, k1, n_h, dpx, dph, carry):
    """GRU cell, with ``hₜ = (1 − u) n + u hₜ₋₁``: ``δn = δh ⊙ (1 − u)``, ``δu = δh ⊙ (hₜ₋₁ − n)``,
    ``δz_n = δn ⊙ (1 − n²)`` (the input part), ``δ(W_hn h + b_hn) = δz_n ⊙ r`` (the
    recurrent part), ``δz_r = δz_n ⊙ (W_hn h + b_hn) ⊙ r(1 − r)``, ``δz_u = δu ⊙ u(1 − u)``;
    ``carry = δh ⊙ u``, the direct part of ``∂C/∂hₜ₋₁``. Rows ``k0 ≤ k < k1``, a SIMD vector
    at a time."""
    one = type(a[0, 0])(1.0)
    la, lh, lp = a.shape[1], dh.shape[1], dpx.shape[1]
    ones = simd.add(simd.zeros(one), one)
    for k in range(k0, k1):
        for j in range(0, n_h, simd.lanes(a)):
            n = n_h - j
            p = k * la + j
            r, u = simd.load(a, p, n), simd.load(a, p + n_h, n)
            nn, hn = simd.load(a, p + 2 * n_h, n), simd.load(a, p + 3 * n_h, n)
            q = k * lh + j
            d = simd.load(dh, q, n)
            zn = simd.mul(simd.mul(d, simd.sub(ones, u)), simd.sub(ones, simd.mul(nn, nn)))
            zr = simd.mul(simd.mul(zn, hn), simd.mul(r, simd.sub(ones, r)))
            zu = simd.mul(simd.mul(d, simd.sub(simd.load(h_prev, q, n), nn)),
                          simd.mul(u, simd.sub(ones, u)))  # fmt: skip
            s = k * lp + j
            simd.store(dpx, s, n, zr)
            simd.store(dpx, s + n_h, n, zu)
            simd.store(dpx, s + 2 * n_h, n, zn)
            simd.store(dph, s, n, zr)
            simd.store(dph, s + n_h, n, zu)
            simd.store(dph, s + 2 * n_h, n, simd.mul(zn, r))
            simd.store(carry, q, n, simd.mul(d, u))


@kernel(inline=True)
def transpose_weights(params, model, l, wt):
    """``W_hᵀ`` (``(G·H, H)``) and ``Wₓᵀ`` (``(G·H, n_in)``) of layer ``l``, one after the
    other from ``offsets[l]`` in ``wt``: BPTT's products with ``Wᵀ`` then read rows too.
    In blocks of 16 × 16, so that both sides stay in the cache."""
    W, _, _ = recurrent_layer_views(params, model, l)
    n_in, n_h = model.widths[l], model.widths[l + 1]
    gh = W.shape[1]
    start = model.offsets[l]
    for j0 in range(0, n_in + n_h, 16):
        for g0 in range(0, gh, 16):
            for j in range(j0, min(j0 + 16, n_in + n_h)):
                if j < n_in:
                    at, width = start + gh * n_h + j, n_in
                else:
                    at, width = start + j - n_in, n_h
                for g in range(g0, min(g0 + 16, gh)):
                    wt[at + g * width] = W[j, g]


@kernel(inline=True)
def backward_layer(model, l, n_steps, ws, above, k0, k1):
    """The δ recursion of layer ``l`` for the samples ``k0 ≤ k < k1``, from the last step to
    the first: ``∂C/∂hₜ`` = what comes from above (``above[t]``, left holding the total) +
    what comes back from step ``t + 1``; the cell's ``δZₜ`` (kept for every step in ``dzx``,
    and for the GRU the recurrent part's in ``dzh``); then ``∂C/∂hₜ₋₁ += δZₜ W_hᵀ``
    (``W_hᵀ`` from ``ws.wt``), cut before every multiple of ``model.bptt``."""
    cell = model.cell
    n_h = model.widths[l + 1]
    gh = n_h * (1 if cell == RNN else (4 if cell == LSTM else 3))
    hs, cs, acts = ws.hs[l], ws.cs[l], ws.acts[l]
    carry_h, carry_c = ws.carry_h, ws.carry_c
    dzr = ws.dzh if cell == GRU else ws.dzx
    df, cf = flat(dzr), flat(carry_h)
    rows, wide, gz = ws.xb.shape[1], ws.hs.shape[3], dzr.shape[2]
    zero = type(carry_h[0, 0])(0.0)
    for k in range(k0, k1):
        for j in range(n_h):
            carry_h[k, j] = zero
            carry_c[k, j] = zero
    for t in range(n_steps - 1, -1, -1):
        dh = above[t]
        for k in range(k0, k1):
            for j in range(n_h):
                dh[k, j] += carry_h[k, j]
                carry_h[k, j] = zero
        if cell == RNN:
            rnn_delta(acts[t], dh, k0, k1, n_h, ws.dzx[t], dzr[t])
        elif cell == LSTM:
            lstm_delta(acts[t], cs[t], cs[t + 1], dh, carry_c, k0, k1, n_h, ws.dzx[t], dzr[t])
        else:
            gru_delta(acts[t], hs[t], dh, k0, k1, n_h, ws.dzx[t], dzr[t], carry_h)
        cut = model.bptt > 0 and t % model.bptt == 0
        if t > 0 and not cut:
            r = t * rows + k0
            accumulate_product(df, r * gz, gz, 1, ws.wt, model.offsets[l], n_h, cf, k0 * wide,
                               wide, k1 - k0, n_h, gh, True)  # fmt: skip
        if cut:
            for k in range(k0, k1):
                for j in range(n_h):
                    carry_h[k, j] = zero
                    carry_c[k, j] = zero


@kernel(parallel=True)
def backward_layer_threaded(model, l, n_steps, m, ws, above, parts):
    """``backward_layer`` with the ``m`` samples in ``parts`` contiguous parts, one a thread
    (the recursion of one sample never reads another's)."""
    for p in prange(parts):
        k0, k1 = row_part(m, parts, p, 4)
        backward_layer(model, l, n_steps, ws, above, k0, k1)


@kernel(inline=True)
def layer_gradient(model, l, n_steps, ws, grad, below, parts, p):
    """Part ``p`` of ``parts`` of layer ``l``'s reductions over all ``T·B`` rows (steps ×
    samples) of the δs ``backward_layer`` kept: the rows of ``∂C/∂Wₓ += Xᵀ δZₓ`` and
    ``∂C/∂W_h += Hₜ₋₁ᵀ δZ_h`` from ``row_part(n_in + H)``, the columns of
    ``∂C/∂b += Σ δZₓ`` (GRU: ``∂C/∂b_hn += Σ δZ_h`` of the candidate), and (layer > 0) the
    rows of ``δX = δZₓ Wₓᵀ``, the δ sent to the layer below (into ``below``). Each element is
    reduced over every row, in one order, by one part: the sums do not depend on ``parts``.
    Rows of samples past the mini-batch hold zeros (``clear_unused_rows``)."""
    cell = model.cell
    n_in, n_h = model.widths[l], model.widths[l + 1]
    gh = n_h * (1 if cell == RNN else (4 if cell == LSTM else 3))
    split = 2 * n_h if cell == GRU else gh
    dzr = ws.dzh if cell == GRU else ws.dzx
    rows, wide, gz = ws.xb.shape[1], ws.hs.shape[3], ws.dzx.shape[2]
    n = n_steps * rows
    xs, x0, ldx = layer_input(model, l, ws)
    dx, dr = flat(ws.dzx), flat(dzr)
    w0 = model.offsets[l]
    r0, r1 = row_part(n_in + n_h, parts, p, 4)
    a, e = r0, min(r1, n_in)
    if e > a:
        accumulate_product(xs, x0 + a, 1, ldx, dx, 0, gz, grad, w0 + a * gh, gh, e - a, gh, n,
                           True)  # fmt: skip
    a, e = max(r0, n_in), r1
    if e > a:
        accumulate_product(flat(ws.hs[l]), a - n_in, 1, wide, dr, 0, gz, grad, w0 + a * gh, gh,
                           e - a, gh, n, True)  # fmt: skip
    b0 = w0 + (n_in + n_h) * gh
    c0, c1 = row_part(gh, parts, p, 16)
    for r in range(n):
        for g in range(c0, c1):
            grad[b0 + g] += dx[r * gz + g]
    if cell == GRU:
        h0, h1 = row_part(n_h, parts, p, 16)
        for r in range(n):
            for j in range(h0, h1):
                grad[b0 + gh + j] += dr[r * gz + split + j]
    if l > 0:
        s0, s1 = row_part(n, parts, p, 4)
        if s1 > s0:
            accumulate_product(dx, s0 * gz, gz, 1, ws.wt, w0 + gh * n_h, n_in, flat(below),
                               s0 * wide, wide, s1 - s0, n_in, gh, False)  # fmt: skip


@kernel(parallel=True)
def layer_gradient_threaded(model, l, n_steps, ws, grad, below, parts):
    """``layer_gradient``'s ``parts`` parts, one a thread."""
    for p in prange(parts):
        layer_gradient(model, l, n_steps, ws, grad, below, parts, p)


@kernel(inline=True)
def clear_unused_rows(model, m, ws):
    """Zeros in every step's rows of samples ``k ≥ m`` of the inputs, states and δs, so that
    the reductions over all ``T·B`` rows of a smaller mini-batch add nothing for them."""
    zero = type(ws.xb[0, 0, 0])(0.0)
    for t in range(ws.xb.shape[0]):
        for k in range(m, ws.xb.shape[1]):
            for j in range(ws.xb.shape[2]):
                ws.xb[t, k, j] = zero
            for j in range(ws.dzx.shape[2]):
                ws.dzx[t, k, j] = zero
            if ws.dzh.shape[0] > 0:
                for j in range(ws.dzh.shape[2]):
                    ws.dzh[t, k, j] = zero
    for l in range(ws.hs.shape[0]):
        for t in range(ws.hs.shape[1]):
            for k in range(m, ws.hs.shape[2]):
                for j in range(ws.hs.shape[3]):
                    ws.hs[l, t, k, j] = zero


@kernel(inline=True)
def backward_sequences(params, model, Y, rows, m, n_steps, ws, grad, parts):
    """Backpropagation through time of the mini-batch whose forward pass ``ws`` holds: the
    output errors, then layer by layer from the top, the δ recursion from the last step to
    the first (``backward_layer``), then the layer's weight gradients, summed over steps and
    samples, and the δ of the layer below (``layer_gradient``), on ``parts`` threads; each
    step's ``Σₖ ‖∂C/∂hₜ‖²`` (from the totals the recursion leaves in ``above``) goes to
    ``ws.norms``. Padding (steps from a sequence's length on)
    gets no error; the recursion is cut before every multiple of ``model.bptt``."""
    n_layers = model.widths.shape[0] - 2
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
        transpose_weights(params, model, l, ws.wt)
        if parts > 1:
            backward_layer_threaded(model, l, n_steps, m, ws, above, parts)
            layer_gradient_threaded(model, l, n_steps, ws, grad, below, parts)
        else:
            backward_layer(model, l, n_steps, ws, above, 0, m)
            layer_gradient(model, l, n_steps, ws, grad, below, 1, 0)
        n_h = model.widths[l + 1]
        for t in range(n_steps if ws.norms.shape[0] > 0 else 0):
            total = zero
            for k in range(m):
                for j in range(n_h):
                    total += above[t, k, j] * above[t, k, j]
            ws.norms[l, t] += total
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
def sequence_gradient(params, model, X, Y, lengths, rows, m, ws, grad, parts):
    """``grad = Σₓ ∇Cₓ`` over the ``m`` sequences ``X[rows[:m]]`` (forward pass, then BPTT,
    on ``parts`` threads); ``ws.norms`` gets their ``Σ ‖∂C/∂hₜ‖²`` per layer and step."""
    n_steps = X.shape[1]
    zero = type(params[0])(0.0)
    for i in range(grad.shape[0]):
        grad[i] = zero
    for l in range(ws.norms.shape[0]):
        for t in range(ws.norms.shape[1]):
            ws.norms[l, t] = zero
    if m < ws.xb.shape[1]:
        clear_unused_rows(model, m, ws)
    gather_batch(X, lengths, rows, m, n_steps, ws.xb, ws.lens)
    forward_sequences(params, model, m, n_steps, ws, parts)
    backward_sequences(params, model, Y, rows, m, n_steps, ws, grad, parts)


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
        forward_sequences(params, model, m, n_steps, ws, 1)
        for s in range(ws.outs.shape[0]):
            for k in range(m):
                for o in range(out.shape[2]):
                    out[start + k, s, o] = ws.outs[s, k, o]


@kernel()
def train_epoch_recurrent(params, model, X, Y, lengths, order, batch_size, eta, l2, l1, grad,
                          state, optimizer, hyper, clip, t0, backup, state_backup, ws,
                          parts):  # fmt: skip
    """One epoch of mini-batch training: for each mini-batch of ``order``, the mean gradient
    ``g = (1/m) Σₓ ∇Cₓ`` by BPTT, ``+ l2·w + l1·sgn(w)``, clipped (``clip``: norm, value; 0
    for none), then the optimiser's step (``optimizer_step``, at step ``t0 + 1`` on).

    With a non-empty ``backup``, the parameters (and ``state``, into ``state_backup``) are
    saved before each step and checked after it; the first step that leaves a non-finite
    value is undone and the epoch stops. ``parts``: the threads each mini-batch's forward and
    backward passes run on (the weights are the same for any). Returns ``(steps taken, that
    mini-batch or −1, −1)``."""
    n = order.shape[0]
    t = t0
    checking = backup.shape[0] > 0
    scale_one = eta - eta + type(eta)(1.0)
    for batch, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        for k in range(m):
            ws.rows[k] = order[start + k]
        sequence_gradient(params, model, X, Y, lengths, ws.rows, m, ws, grad, parts)
        scale = scale_one / type(eta)(m)
        for i in range(grad.shape[0]):
            grad[i] *= scale
        if l2 != 0 or l1 != 0:
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
