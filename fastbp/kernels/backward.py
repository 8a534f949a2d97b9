"""The four equations of backpropagation and the passes that apply them to every layer:
BP1 ``output_error``, BP2 ``backpropagate_error``, BP3 ``accumulate_bias_gradient``, BP4
``accumulate_weight_gradient`` (and its variants).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .batch_norm import batch_norm_backward
from .codes import QUADRATIC, SOFTMAX
from .forward import forward_pass
from .views import layer_views, norm_views, projection_view, unit_view, workspace
from .weighted_input import BLOCK_ROWS, NARROW


@kernel(inline=True)
def layer_weight_gradient(delta, a, rows, out, scale, coef, threads_from, ahead, wide):
    """BP4 for one layer, ``out += scale · Σₖ δ[k] (a[rows[k]])ᵀ``: ``accumulate_weight_gradient``
    on Numba's threads when ``m · out.size`` is at least ``threads_from`` (``None``: never;
    see ``layer_weighted_input``), else ``accumulate_weight_gradient_serial``, which
    prefetches the rows ``ahead`` (``accumulate_weight_gradient_narrow`` where ``wide`` is
    ``None``, see ``layer_weighted_input``)."""
    if threads_from is not None:
        if rows.shape[0] * out.size >= threads_from:
            accumulate_weight_gradient(delta, a, rows, out, scale, coef)
            return
    if wide is not None:
        accumulate_weight_gradient_serial(delta, a, rows, out, scale, coef, ahead)
    else:
        accumulate_weight_gradient_narrow(delta, a, rows, out, scale)


@kernel()
def output_error(a, y, rows, da, delta, cost, kind):
    """BP1: the output error ``δᴸ = ∇ₐC ⊙ f'(zᴸ)`` for the mini-batch, targets ``y[rows]``.

    - quadratic cost ``C = ½‖a − y‖²``: ``∇ₐC = a − y``, so ``δᴸ = (a − y) ⊙ f'(zᴸ)`` (``da``
      holds ``f'(zᴸ)``); for a softmax output the Jacobian is not diagonal and
      ``δ_j = a_j (g_j − Σᵢ gᵢ aᵢ)`` with ``g = a − y``;
    - cross-entropy with a sigmoid output and log-likelihood with a softmax output: the
      ``f'`` cancels and ``δᴸ = a − y`` (the book's equations 66 and 84).
    """
    m, n = delta.shape
    for k in range(m):
        yk = y[rows[k]]
        if cost != QUADRATIC:
            for j in range(n):
                delta[k, j] = a[k, j] - yk[j]
        elif kind == SOFTMAX:
            dot = a[k, 0] - a[k, 0]
            for j in range(n):
                dot += (a[k, j] - yk[j]) * a[k, j]
            for j in range(n):
                delta[k, j] = a[k, j] * ((a[k, j] - yk[j]) - dot)
        else:
            for j in range(n):
                delta[k, j] = (a[k, j] - yk[j]) * da[k, j]


@kernel()
def backpropagate_error(w_next, delta_next, da, delta, g, g_next, skip, p_next):
    """BP2: ``δˡ = ((wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ f'(zˡ)``, the error of layer ``l`` from that of ``l + 1``.

    In two steps: ``gˡ = ∂C/∂aˡ = (wˡ⁺¹)ᵀ δˡ⁺¹`` (plus ``gˡ⁺¹`` when layer ``l + 1`` has a
    residual connection, ``skip`` 1: then ``aˡ⁺¹ = f(zˡ⁺¹) + aˡ`` passes its gradient straight
    down; or ``(P)ᵀ gˡ⁺¹`` with a projection ``p_next``, ``skip`` 2), kept in ``g`` for the
    layer below; then ``δˡ = gˡ ⊙ f'(zˡ)``, ``da`` holding ``f'(zˡ)``.
    ``g[k, i] = Σⱼ w_next[j, i] delta_next[k, j] (+ g_next[k, i] or Σⱼ P[j, i] g_next[k, j])``.

    Four samples × two SIMD vectors of ``g``'s row per pass over the rows of ``w_next``: eight
    running sums in registers, each row chunk loaded once for four products, the sums added
    in the order of ``j``; a row's last chunk is a masked load and store.
    """
    m, n = delta.shape
    step = simd.lanes(delta)
    for k0 in range(0, m, 4):
        k1 = min(k0 + 1, m - 1)
        k2 = min(k0 + 2, m - 1)
        k3 = min(k0 + 3, m - 1)
        for i in range(0, n, 2 * step):
            c = n - i
            c2 = c - step
            if skip == 1:
                s00 = simd.load(g_next, k0 * n + i, c)
                s01 = simd.load(g_next, k0 * n + i + step, c2)
                s10 = simd.load(g_next, k1 * n + i, c)
                s11 = simd.load(g_next, k1 * n + i + step, c2)
                s20 = simd.load(g_next, k2 * n + i, c)
                s21 = simd.load(g_next, k2 * n + i + step, c2)
                s30 = simd.load(g_next, k3 * n + i, c)
                s31 = simd.load(g_next, k3 * n + i + step, c2)
            else:
                s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = simd.zeros(delta)
            # With a projection, first + Σⱼ P[j, i] g_next[k, j]; then + Σⱼ w[j, i] δ[k, j].
            for term in range(0 if skip == 2 else 1, 2):
                rows_w = p_next if term == 0 else w_next
                coefs = g_next if term == 0 else delta_next
                for j in range(rows_w.shape[0]):
                    v0 = simd.load(rows_w, j * n + i, c)
                    v1 = simd.load(rows_w, j * n + i + step, c2)
                    d = coefs[k0, j]
                    s00 = simd.fma(s00, d, v0)
                    s01 = simd.fma(s01, d, v1)
                    d = coefs[k1, j]
                    s10 = simd.fma(s10, d, v0)
                    s11 = simd.fma(s11, d, v1)
                    d = coefs[k2, j]
                    s20 = simd.fma(s20, d, v0)
                    s21 = simd.fma(s21, d, v1)
                    d = coefs[k3, j]
                    s30 = simd.fma(s30, d, v0)
                    s31 = simd.fma(s31, d, v1)
            sums = ((s00, s01), (s10, s11), (s20, s21), (s30, s31))
            for t in range(min(4, m - k0)):
                k = k0 + t
                at = k * n + i
                simd.store(g, at, c, sums[t][0])
                simd.store(g, at + step, c2, sums[t][1])
                simd.store(delta, at, c, simd.mul(sums[t][0], simd.load(da, at, c)))
                d2 = simd.mul(sums[t][1], simd.load(da, at + step, c2))
                simd.store(delta, at + step, c2, d2)


@kernel()
def accumulate_bias_gradient(delta, out, scale):
    """BP3 summed over the mini-batch: ``out += scale · Σₖ δˡ[k]`` (``∂C/∂bˡ = δˡ``)."""
    m, n = delta.shape
    for j in range(n):
        s = delta[0, j]
        for k in range(1, m):
            s += delta[k, j]
        out[j] += scale * s


@kernel()
def accumulate_weight_gradient_pair(delta, a, rows, out, scale, c, j0):
    """``out[j] += scale Σₖ delta[k, j] a[rows[k]]`` for the rows ``j0`` and ``j0 + 1``.

    Two output rows from five samples per pass: each output value is loaded and stored once
    for ten products. ``c`` is this pair's (2, 5) block of coefficients ``scale · δ``;
    samples past the end of a partial block get coefficient 0.
    """
    m, n_out = delta.shape
    n_in = out.shape[1]
    zero = scale - scale
    pair = j0 + 1 < n_out
    o0 = out[j0]
    o1 = out[j0 + 1] if pair else o0
    for k0 in range(0, m, 5):
        for t in range(5):
            k = k0 + t
            c[0, t] = scale * delta[k, j0] if k < m else zero
            c[1, t] = scale * delta[k, j0 + 1] if k < m and pair else zero
        c00, c01, c02, c03, c04 = c[0, 0], c[0, 1], c[0, 2], c[0, 3], c[0, 4]
        c10, c11, c12, c13, c14 = c[1, 0], c[1, 1], c[1, 2], c[1, 3], c[1, 4]
        x0 = a[rows[k0]]
        x1 = a[rows[min(k0 + 1, m - 1)]]
        x2 = a[rows[min(k0 + 2, m - 1)]]
        x3 = a[rows[min(k0 + 3, m - 1)]]
        x4 = a[rows[min(k0 + 4, m - 1)]]
        if pair:
            for i in range(n_in):
                y0, y1, y2, y3, y4 = x0[i], x1[i], x2[i], x3[i], x4[i]
                o0[i] += c00 * y0 + c01 * y1 + c02 * y2 + c03 * y3 + c04 * y4
                o1[i] += c10 * y0 + c11 * y1 + c12 * y2 + c13 * y3 + c14 * y4
        else:
            for i in range(n_in):
                o0[i] += c00 * x0[i] + c01 * x1[i] + c02 * x2[i] + c03 * x3[i] + c04 * x4[i]


@kernel()
def accumulate_weight_gradient_quad(delta, a, rows, out, scale, j0):
    """``out[j] += scale Σₖ delta[k, j] a[rows[k]]`` for the rows ``j0`` to ``j0 + 3``.

    For short rows (fewer than ``NARROW`` values): four output rows × two SIMD vectors of the
    row, summed over all the samples in eight registers, then added to ``out`` with one
    multiply-add by ``scale`` (each output value is loaded and stored once per mini-batch).
    A row's last chunk is a masked load and store; past the last row, rows are repeated and
    their sums discarded.
    """
    m, n_out = delta.shape
    n_in = out.shape[1]
    j1 = min(j0 + 1, n_out - 1)
    j2 = min(j0 + 2, n_out - 1)
    j3 = min(j0 + 3, n_out - 1)
    step = simd.lanes(out)
    for i in range(0, n_in, 2 * step):
        c = n_in - i
        c2 = c - step
        u00 = u01 = u10 = u11 = u20 = u21 = u30 = u31 = simd.zeros(out)
        for k in range(m):
            x = a[rows[k]]
            dk = delta[k]
            y = simd.load(x, i, c)
            u00 = simd.fma(u00, dk[j0], y)
            u10 = simd.fma(u10, dk[j1], y)
            u20 = simd.fma(u20, dk[j2], y)
            u30 = simd.fma(u30, dk[j3], y)
            y = simd.load(x, i + step, c2)
            u01 = simd.fma(u01, dk[j0], y)
            u11 = simd.fma(u11, dk[j1], y)
            u21 = simd.fma(u21, dk[j2], y)
            u31 = simd.fma(u31, dk[j3], y)
        sums = ((u00, u01), (u10, u11), (u20, u21), (u30, u31))
        for t in range(min(4, n_out - j0)):
            o = out[j0 + t]
            simd.store(o, i, c, simd.fma(simd.load(o, i, c), scale, sums[t][0]))
            simd.store(o, i + step, c2, simd.fma(simd.load(o, i + step, c2), scale, sums[t][1]))


@kernel()
def block_coefficients(delta, k0, j, scale):
    """``scale · delta[k, j]`` for the five samples ``k = k0 … k0 + 4`` of a block, 0 past the
    last sample."""
    m = delta.shape[0]
    zero = scale - scale
    return (
        scale * delta[k0, j],
        scale * delta[k0 + 1, j] if k0 + 1 < m else zero,
        scale * delta[k0 + 2, j] if k0 + 2 < m else zero,
        scale * delta[k0 + 3, j] if k0 + 3 < m else zero,
        scale * delta[k0 + 4, j] if k0 + 4 < m else zero,
    )


@kernel(inline=True)
def rows4_chunk(outs, xs, coefs, i, c):
    """One chunk of ``accumulate_weight_gradient_rows4``: ``o_r[i : i + c] += Σₜ cᵣ[t] ·
    x_t[i : i + c]`` for its four output rows (``c`` values, at most a vector)."""
    x0, x1, x2, x3, x4 = xs
    y0 = simd.load(x0, i, c)
    y1 = simd.load(x1, i, c)
    y2 = simd.load(x2, i, c)
    y3 = simd.load(x3, i, c)
    y4 = simd.load(x4, i, c)
    for r in range(4):
        o, cj = outs[r], coefs[r]
        u = simd.mul(y0, cj[0])
        u = simd.fma(u, cj[1], y1)
        u = simd.fma(u, cj[2], y2)
        u = simd.fma(u, cj[3], y3)
        u = simd.fma(u, cj[4], y4)
        simd.store(o, i, c, simd.add(simd.load(o, i, c), u))


@kernel()
def accumulate_weight_gradient_rows4(delta, a, rows, out, scale, j0, ahead):
    """``out[j] += scale Σₖ delta[k, j] a[rows[k]]`` for the four rows ``j0`` to ``j0 + 3``.

    Four output rows from five samples per pass: for each SIMD vector of the row, five input
    vectors are loaded and each output vector is loaded, updated with five products and stored
    once (twenty products per five input and four output vectors); the twenty coefficients
    ``scale · δ`` stay in registers. The whole vectors are plain loads and stores, only a
    row's last, partial vector is masked; samples past the end of a partial block get
    coefficient 0.

    Meanwhile each pass (a block of samples of this unit) prefetches one row of ``a`` listed
    in ``ahead``, the next mini-batch's rows, one cache line per vector: they arrive from
    memory while this step computes instead of stalling the next one's forward pass. Pass
    ``p = (j0 / 4) · ⌈m/5⌉ + k0 / 5`` fetches ``a[ahead[p]]`` (from p = ``len(ahead)`` on,
    it touches its own first input row, already in cache).
    """
    m = delta.shape[0]
    n_in = out.shape[1]
    step = simd.lanes(out)
    full = n_in - n_in % step
    outs = (out[j0], out[j0 + 1], out[j0 + 2], out[j0 + 3])
    n_blocks = (m + 4) // 5
    for k0 in range(0, m, 5):
        xs = (
            a[rows[k0]],
            a[rows[min(k0 + 1, m - 1)]],
            a[rows[min(k0 + 2, m - 1)]],
            a[rows[min(k0 + 3, m - 1)]],
            a[rows[min(k0 + 4, m - 1)]],
        )
        coefs = (
            block_coefficients(delta, k0, j0, scale),
            block_coefficients(delta, k0, j0 + 1, scale),
            block_coefficients(delta, k0, j0 + 2, scale),
            block_coefficients(delta, k0, j0 + 3, scale),
        )
        p = (j0 // 4) * n_blocks + k0 // 5
        fetch = a[ahead[p]] if p < ahead.shape[0] else xs[0]
        for i in range(0, full, step):  # whole vectors: the mask is a constant, all lanes on
            simd.prefetch(fetch, i)
            rows4_chunk(outs, xs, coefs, i, step)
        if full < n_in:
            rows4_chunk(outs, xs, coefs, full, n_in - full)


@kernel(parallel=True)
def accumulate_weight_gradient(delta, a, rows, out, scale, coef):
    """BP4 summed over the mini-batch: ``out += scale · Σₖ δˡ[k] (aˡ⁻¹[rows[k]])ᵀ``.

    ``∂C/∂wˡ = δˡ (aˡ⁻¹)ᵀ``: with ``scale = 1`` this adds the summed gradient to ``out``; with
    ``out = w`` and ``scale = −η/m`` it is the SGD step of the weights, done in the same pass.
    ``out[j, i] += scale Σₖ delta[k, j] a[rows[k], i]``. Rows shorter than ``NARROW`` go
    four at a time through ``accumulate_weight_gradient_quad``; longer ones four at a time
    through ``accumulate_weight_gradient_rows4`` and the last one to three in pairs through
    ``accumulate_weight_gradient_pair`` (which kernel a row gets depends only on the shape).
    The rows of ``out`` are shared out over the threads; each row is owned by one, so nothing
    races and the result does not depend on the thread count.
    """
    if out.shape[1] < NARROW:
        for q in prange((out.shape[0] + 3) // 4):
            mode = flush_subnormals()
            accumulate_weight_gradient_quad(delta, a, rows, out, scale, 4 * q)
            restore_fp_mode(mode)
        return
    # Rows of 64 or more: blocks of four rows, then pairs for the last one to three rows.
    n_quads = out.shape[0] // 4
    n_units = n_quads + (out.shape[0] - 4 * n_quads + 1) // 2
    for u in prange(n_units):
        mode = flush_subnormals()
        accumulate_weight_gradient_unit(delta, a, rows, out, scale, coef[u], u, n_quads, rows[:0])
        restore_fp_mode(mode)


@kernel()
def accumulate_weight_gradient_serial(delta, a, rows, out, scale, coef, ahead):
    """``accumulate_weight_gradient`` on the calling thread, prefetching the rows of ``a``
    listed in ``ahead`` (see ``accumulate_weight_gradient_rows4``; empty: none)."""
    if out.shape[1] < NARROW:
        accumulate_weight_gradient_narrow(delta, a, rows, out, scale)
        return
    n_quads = out.shape[0] // 4
    n_units = n_quads + (out.shape[0] - 4 * n_quads + 1) // 2
    for u in range(n_units):
        accumulate_weight_gradient_unit(delta, a, rows, out, scale, coef[u], u, n_quads, ahead)


@kernel()
def accumulate_weight_gradient_narrow(delta, a, rows, out, scale):
    """``accumulate_weight_gradient`` on the calling thread for rows under ``NARROW`` values."""
    for q in range((out.shape[0] + 3) // 4):
        accumulate_weight_gradient_quad(delta, a, rows, out, scale, 4 * q)


@kernel()
def accumulate_weight_gradient_unit(delta, a, rows, out, scale, c, u, n_quads, ahead):
    """Unit ``u`` of ``accumulate_weight_gradient``'s rows: the four rows from ``4u`` while
    ``u < n_quads``, then the pairs of rows after them."""
    if u < n_quads:
        accumulate_weight_gradient_rows4(delta, a, rows, out, scale, 4 * u, ahead)
    else:
        accumulate_weight_gradient_pair(
            delta, a, rows, out, scale, c, 4 * n_quads + 2 * (u - n_quads)
        )


@kernel(inline=True)
def backpropagate_errors(params, model, y, rows, ws, extras):
    """BP1 for the output layer, then BP2 down to layer 1, after ``forward_pass``.

    Every ``δˡ`` is left in ``ws``'s ``dbuf``; the weights are only read.
    """
    sizes, offsets, units, acts, cost, residual, bn = (
        model.sizes,
        model.offsets,
        model.units,
        model.acts,
        model.cost,
        model.skips,
        model.bn,
    )
    abuf, dbuf, pbuf, gbuf, hbuf, ivbuf, nbuf = ws.a, ws.delta, ws.da, ws.g, ws.h, ws.inv, ws.norm
    m = rows.shape[0]
    last = sizes.shape[0] - 1
    output_error(
        unit_view(abuf, sizes, units, last, m),
        y,
        rows,
        unit_view(pbuf, sizes, units, last, m),
        unit_view(dbuf, sizes, units, last, m),
        cost,
        acts[last],
    )
    for l in range(last - 1, 0, -1):
        w_next, _ = layer_views(params, sizes, offsets, l + 1)
        backpropagate_error(
            w_next,
            unit_view(dbuf, sizes, units, l + 1, m),
            unit_view(pbuf, sizes, units, l, m),
            unit_view(dbuf, sizes, units, l, m),
            unit_view(gbuf, sizes, units, l, m),
            unit_view(gbuf, sizes, units, l + 1, m),
            residual[l + 1],
            projection_view(params, sizes, offsets, l + 1) if residual[l + 1] == 2 else w_next,
        )
        if extras is not None and bn[l]:
            gamma, _ = norm_views(params, sizes, offsets, l)
            lo, hi = units[l - 1], units[l]
            batch_norm_backward(
                unit_view(dbuf, sizes, units, l, m), unit_view(hbuf, sizes, units, l, m),
                ivbuf[lo:hi], gamma, nbuf[:, lo:hi],
            )  # fmt: skip


@kernel(inline=True)
def accumulate_gradient(model, x, rows, ws, out, scale, threads_from, extras, ahead, first, wide):
    """BP3 and BP4 for every layer from ``first`` (1 for all): ``out += scale · Σₖ ∇C`` over
    the mini-batch.

    Reads the ``δˡ`` and ``aˡ`` that ``forward_pass`` and ``backpropagate_errors`` left in
    ``ws``. ``out`` has the layout of ``params``. Layer 1's BP4 prefetches the rows of ``x``
    listed in ``ahead`` (the next mini-batch's; empty for none). ``wide`` as for
    ``forward_pass``.
    """
    sizes, offsets, units, residual, bn = (
        model.sizes,
        model.offsets,
        model.units,
        model.skips,
        model.bn,
    )
    abuf, dbuf, own, coef, gbuf, nbuf = ws.a, ws.delta, ws.own, ws.coef, ws.g, ws.norm
    m = rows.shape[0]
    for l in range(first, sizes.shape[0]):
        delta = unit_view(dbuf, sizes, units, l, m)
        out_w, out_b = layer_views(out, sizes, offsets, l)
        accumulate_bias_gradient(delta, out_b, scale)
        if extras is not None and residual[l] == 2:  # ∂C/∂P = Σₖ gˡ[k] (aˡ⁻¹[k])ᵀ
            layer_weight_gradient(
                unit_view(gbuf, sizes, units, l, m), unit_view(abuf, sizes, units, l - 1, m),
                own[:m], projection_view(out, sizes, offsets, l), scale, coef, threads_from,
                own[:0], wide,
            )  # fmt: skip
        if extras is not None and bn[l]:
            out_gamma, out_beta = norm_views(out, sizes, offsets, l)
            for j in range(sizes[l]):
                out_gamma[j] += scale * nbuf[0, units[l - 1] + j]
                out_beta[j] += scale * nbuf[1, units[l - 1] + j]
        a_in, a_rows = (x, rows) if l == 1 else (unit_view(abuf, sizes, units, l - 1, m), own[:m])
        fetch = ahead if l == 1 else own[:0]
        layer_weight_gradient(delta, a_in, a_rows, out_w, scale, coef, threads_from, fetch, wide)


@kernel()
def backward_pass(params, model, x, y, rows, ws, grad, dropout, extras):
    """Backpropagate the mini-batch ``x[rows]`` on one thread and add its summed gradient
    ``Σₓ ∇Cₓ`` to ``grad`` (same layout as ``params``); every ``zˡ``, ``aˡ``, ``σ'(zˡ)`` and
    ``δˡ`` is left in ``ws``. ``dropout`` and ``extras`` as for ``forward_pass``."""
    forward_pass(params, model, x, rows, ws, None, dropout, 1, extras, 0, True)
    backpropagate_errors(params, model, y, rows, ws, extras)
    one = type(params[0])(1.0)
    accumulate_gradient(model, x, rows, ws, grad, one, None, extras, rows[:0], 1, True)


@kernel(parallel=True)
def batch_gradient(params, model, x, y, slices, grad_slices, extras):
    """Summed gradient ``Σₓ ∇Cₓ`` over all rows of ``x``, split over threads without races.

    The rows are cut into ``len(slices) - 1`` contiguous slices (``slices`` holds their
    bounds); slice ``s`` sums its own samples into its own buffer ``grad_slices[s]``, in
    blocks of ``BLOCK_ROWS``. The caller adds the slices up in order, so the result does not
    depend on the thread count. ``extras`` as for ``forward_pass``.
    """
    sizes, units = model.sizes, model.units
    n_slices = slices.shape[0] - 1
    for s in prange(n_slices):
        mode = flush_subnormals()
        g = grad_slices[s]
        g[:] = 0
        ws = workspace(sizes, units, BLOCK_ROWS, params)
        for start in range(slices[s], slices[s + 1], BLOCK_ROWS):
            rows = np.arange(start, min(start + BLOCK_ROWS, slices[s + 1]))
            backward_pass(params, model, x, y, rows, ws, g, None, extras)
        restore_fp_mode(mode)
