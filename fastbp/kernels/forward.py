"""The forward pass: each layer's ``z`` and ``a = f(z)`` (with dropout, batch normalisation and
residual connections), and prediction over blocks of rows.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .activations import activate, activate_serial
from .batch_norm import batch_norm_forward
from .columns import COLUMN_BLOCKS, add_partial_sums, block_bounds, weighted_input_columns
from .regularisation import drop_out
from .views import all_finite, layer_views, norm_views, projection_view, unit_view, workspace
from .weighted_input import (
    NARROW,
    weighted_input,
    weighted_input_narrow,
    weighted_input_narrow_serial,
    weighted_input_serial,
)


@kernel()
def add_projection(p, a_prev, a):
    """The skip of a residual connection between unequal widths: ``aˡ += P aˡ⁻¹``."""
    m, n = a.shape
    for k in range(m):
        for j in range(n):
            s = a[k, j] - a[k, j]
            pj = p[j]
            ak = a_prev[k]
            for i in range(pj.shape[0]):
                s += pj[i] * ak[i]
            a[k, j] += s


@kernel(inline=True)
def layer_weighted_input(w, b, a, rows, z, scratch, threads_from, wide):
    """``z = w a[rows] + b`` for one layer, by the kernel that suits its shape and work.

    A layer of at least ``threads_from`` multiply-adds (``m · n_out · n_in``) runs on Numba's
    threads (``weighted_input``, or ``weighted_input_narrow`` for rows shorter than
    ``NARROW``), a smaller one on the calling thread. ``threads_from=None`` means no layer
    threads: Numba then prunes the parallel branch while compiling (it tests the argument's
    type), so the parallel kernels are not even compiled for a network too small for them.
    ``wide=None`` says that the layer's rows are narrow (under ``NARROW`` inputs), and only
    the narrow kernels are compiled; ``True``: any.
    """
    if threads_from is not None:
        if rows.shape[0] * w.size >= threads_from:
            if w.shape[1] >= NARROW:
                weighted_input(w, b, a, rows, z)
            else:
                weighted_input_narrow(w, b, a, rows, z, scratch)
            return
    if wide is not None:
        if w.shape[1] >= NARROW:
            weighted_input_serial(w, b, a, rows, z)
            return
    weighted_input_narrow_serial(w, b, a, rows, z, scratch)


@kernel(inline=True)
def layer_activation(z, a, da, kind, alpha, work, threads_from):
    """``a = f(z)``, ``da = f'(z)`` for one layer: ``activate`` on Numba's threads when the
    layer's ``work`` is at least ``threads_from`` (``None``: never; see
    ``layer_weighted_input``), else ``activate_serial``."""
    if threads_from is not None:
        if work >= threads_from:
            activate(z, a, da, kind, alpha)
            return
    activate_serial(z, a, da, kind, alpha)


@kernel(inline=True)
def forward_pass(params, model, x, rows, ws, threads_from, dropout, bn_mode, extras, done, wide):
    """Feed the mini-batch ``x[rows]`` forward: ``zˡ = wˡ aˡ⁻¹ + bˡ``, ``aˡ = f(zˡ)``.

    Every layer's ``z``, ``a`` and ``f'(z)`` are left in the work buffers ``ws``. A layer with
    at least ``threads_from`` multiply-adds runs on several threads (``None``: none does).
    With a ``dropout`` probability (``None`` for none) the hidden layers go through
    ``drop_out`` (training only). Batch-normalised layers use ``batch_norm_forward`` with
    ``bn_mode`` (0: running statistics, 1: the mini-batch's, 2: the mini-batch's and update
    the running ones); their ``z`` is then ``γ ẑ + β``. ``extras`` is ``None`` for a network
    without residual connections and batch normalisation (see ``has_extras``). The first
    ``done`` layers' ``z`` are already in ``ws`` (``train_epoch_columns`` computes layer 1's);
    0 for none.
    ``wide`` is ``None`` when the layers computed have narrow rows (see
    ``layer_weighted_input``), else ``True``.
    """
    sizes, offsets, units, acts, alphas, residual, bn, stats = (
        model.sizes,
        model.offsets,
        model.units,
        model.acts,
        model.alphas,
        model.skips,
        model.bn,
        model.stats,
    )
    zbuf, abuf, pbuf, own, hbuf, ivbuf, tbuf = ws.z, ws.a, ws.da, ws.own, ws.h, ws.inv, ws.t
    m = rows.shape[0]
    for l in range(1, sizes.shape[0]):
        w, b = layer_views(params, sizes, offsets, l)
        z = unit_view(zbuf, sizes, units, l, m)
        a_in, a_rows = (x, rows) if l == 1 else (unit_view(abuf, sizes, units, l - 1, m), own[:m])
        if l > done:
            layer_weighted_input(w, b, a_in, a_rows, z, tbuf, threads_from, wide)
        if extras is not None and bn[l]:
            gamma, beta = norm_views(params, sizes, offsets, l)
            lo, hi = units[l - 1], units[l]
            batch_norm_forward(
                z, gamma, beta, unit_view(hbuf, sizes, units, l, m), ivbuf[lo:hi],
                stats[0, lo:hi], stats[1, lo:hi], bn_mode,
            )  # fmt: skip
        a, da = unit_view(abuf, sizes, units, l, m), unit_view(pbuf, sizes, units, l, m)
        layer_activation(z, a, da, acts[l], alphas[l], m * w.size, threads_from)
        if dropout is not None:  # pruned while compiling when there is no dropout
            if l < sizes.shape[0] - 1:
                drop_out(a, da, dropout)
        if extras is None:
            continue
        if residual[l] == 1:  # aˡ = f(zˡ) + aˡ⁻¹
            a += unit_view(abuf, sizes, units, l - 1, m)
        elif residual[l] == 2:  # aˡ = f(zˡ) + P aˡ⁻¹
            add_projection(
                projection_view(params, sizes, offsets, l),
                unit_view(abuf, sizes, units, l - 1, m),
                a,
            )


#: Rows per block of ``feedforward``: a multiple of ten, the samples of each pass of
#: ``weighted_input_columns`` (a partial group of ten costs a whole one).
FEEDFORWARD_ROWS = 160


@kernel(parallel=True)
def feedforward(params, model, x, out, finite, extras, wt, wide):
    """Output activations ``out = aᴸ`` for every row of ``x``, in parallel blocks of rows.

    Each block of ``FEEDFORWARD_ROWS`` rows is computed by one thread into its own rows of
    ``out``. ``finite[blk]`` is False where the block's ``z¹`` is not all finite: always so where an
    input is NaN or ±∞ (each of its terms ``x·w`` is then ±∞ or NaN, and so is the sum),
    though a NaN need not reach the outputs (σ(±∞) is finite); also where a finite input
    overflows. ``z¹`` has a fraction of ``x``'s values, so this costs little; the caller
    tells the two cases apart. ``extras`` as for ``forward_pass``.

    ``wt`` is ``None``, or layer 1's weights in columns (``w¹ᵀ`` in a buffer as
    ``column_buffers`` makes) for a network that ``uses_columns``: layer 1 is then computed
    block of inputs by block of inputs, as in training, by ``weighted_input_columns`` (ten
    samples per pass over ``wᵀ``, each block of ``wᵀ`` reused by the block's rows while it is
    in cache). ``wide`` as for ``forward_pass``, for the layers after those columns (``None``
    only with ``wt``, where every later layer is narrow: then no wide kernel is compiled).
    """
    n = x.shape[0]
    n_blocks = (n + FEEDFORWARD_ROWS - 1) // FEEDFORWARD_ROWS
    sizes, offsets, units = model.sizes, model.offsets, model.units
    last = sizes.shape[0] - 1
    for blk in prange(n_blocks):
        mode = flush_subnormals()
        start = blk * FEEDFORWARD_ROWS
        stop = min(start + FEEDFORWARD_ROWS, n)
        rows = np.arange(start, stop)
        ws = workspace(sizes, units, FEEDFORWARD_ROWS, params)
        done = 0
        if wt is not None:  # pruned while compiling for a network without columns
            parts = np.empty((COLUMN_BLOCKS, FEEDFORWARD_ROWS, wt.shape[1]), dtype=wt.dtype)
            for c in range(COLUMN_BLOCKS):
                lo, hi = block_bounds(x.shape[1], c, simd.lanes(wt))
                weighted_input_columns(wt, x, rows, parts[c], lo, hi)
            b1 = layer_views(params, sizes, offsets, 1)[1]
            add_partial_sums(b1, parts, unit_view(ws.z, sizes, units, 1, stop - start))
            done = 1
        forward_pass(params, model, x, rows, ws, None, None, 0, extras, done, wide)
        a = unit_view(ws.a, sizes, units, last, stop - start)
        for k in range(stop - start):  # a loop: ``out[start:stop] = a`` would compile
            for j in range(a.shape[1]):  # NumPy's broadcasting and its error messages
                out[start + k, j] = a[k, j]
        finite[blk] = all_finite(unit_view(ws.z, sizes, units, 1, stop - start))
        restore_fp_mode(mode)


@kernel()
def argmax_rows(out, classes):
    """``classes[k] = argmaxⱼ out[k, j]``, the first index of the largest value of each row,
    or of its first NaN (as ``np.argmax``)."""
    for k in range(out.shape[0]):
        best = 0
        for j in range(out.shape[1]):
            v = out[k, j]
            if v != v:
                best = j
                break
            if v > out[k, best]:
                best = j
        classes[k] = best
