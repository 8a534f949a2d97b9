"""Layer 1 in columns: ``z¹`` and BP4 computed from ``wᵀ``, which an epoch keeps in a buffer of
its own, for networks whose inputs are wide (``uses_columns``).
"""

from __future__ import annotations

from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .._views import flat
from .regularisation import regularise_weights
from .weighted_input import NARROW

# A first layer of long rows and few neurons (784-30) computes ``z`` best from ``wᵀ``: each
# row ``i`` of ``wᵀ`` holds the weights of input ``i`` to every neuron, so ``z[k] = b +
# Σᵢ a[k, i] (wᵀ)[i]`` runs along ``i`` with the neurons in SIMD lanes — no sum is split
# into lanes to be added up at the end, as a dot product along a row must be — and the
# SGD step ``(wᵀ)[i] += Σₖ a[k, i] (scale · δ[k])`` touches each weight once per ten samples.
# An epoch that trains layer 1 this way keeps ``wᵀ`` in a buffer of its own (``columns``,
# rows padded to whole SIMD vectors), filled from ``w¹`` at its start and copied back
# at its end. The inputs are cut into ``COLUMN_BLOCKS`` fixed blocks, whose partial sums of ``z``
# are added in order: a team of threads shares them out (``train_epoch_columns``) and gets the
# same values as one thread.

#: Blocks of layer 1's inputs in the column form, each with its own partial sums of ``z``;
#: the most threads in a team.
COLUMN_BLOCKS = 4


@kernel(inline=True)
def ten_rows(a, rows, k0, lo, hi):
    """The values ``lo`` to ``hi`` of the rows ``a[rows[k0]]`` … ``a[rows[k0 + 9]]``, the last
    row of ``rows`` repeated past its end."""
    m = rows.shape[0]
    return (
        a[rows[k0], lo:hi], a[rows[min(k0 + 1, m - 1)], lo:hi],
        a[rows[min(k0 + 2, m - 1)], lo:hi], a[rows[min(k0 + 3, m - 1)], lo:hi],
        a[rows[min(k0 + 4, m - 1)], lo:hi], a[rows[min(k0 + 5, m - 1)], lo:hi],
        a[rows[min(k0 + 6, m - 1)], lo:hi], a[rows[min(k0 + 7, m - 1)], lo:hi],
        a[rows[min(k0 + 8, m - 1)], lo:hi], a[rows[min(k0 + 9, m - 1)], lo:hi],
    )  # fmt: skip


@kernel(inline=True)
def fma_ten_pairs(s0, s1, xs, i, v0, v1):
    """``s0[t] + xs[t][i] · v0`` and ``s1[t] + xs[t][i] · v1`` for the ten samples ``t``: a
    step of the sums of two vectors of neurons, sample by sample (each input value is read
    once for both)."""
    y = xs[0][i]
    a0, b0 = simd.fma(s0[0], y, v0), simd.fma(s1[0], y, v1)
    y = xs[1][i]
    a1, b1 = simd.fma(s0[1], y, v0), simd.fma(s1[1], y, v1)
    y = xs[2][i]
    a2, b2 = simd.fma(s0[2], y, v0), simd.fma(s1[2], y, v1)
    y = xs[3][i]
    a3, b3 = simd.fma(s0[3], y, v0), simd.fma(s1[3], y, v1)
    y = xs[4][i]
    a4, b4 = simd.fma(s0[4], y, v0), simd.fma(s1[4], y, v1)
    y = xs[5][i]
    a5, b5 = simd.fma(s0[5], y, v0), simd.fma(s1[5], y, v1)
    y = xs[6][i]
    a6, b6 = simd.fma(s0[6], y, v0), simd.fma(s1[6], y, v1)
    y = xs[7][i]
    a7, b7 = simd.fma(s0[7], y, v0), simd.fma(s1[7], y, v1)
    y = xs[8][i]
    a8, b8 = simd.fma(s0[8], y, v0), simd.fma(s1[8], y, v1)
    y = xs[9][i]
    a9, b9 = simd.fma(s0[9], y, v0), simd.fma(s1[9], y, v1)
    return (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9), (b0, b1, b2, b3, b4, b5, b6, b7, b8, b9)


@kernel()
def block_bounds(n_in, block, width):
    """Inputs ``lo`` to ``hi`` of block ``block`` of ``COLUMN_BLOCKS``: near-equal blocks
    whose bounds are multiples of ``width`` (a cache line of values)."""
    per = -(-n_in // (COLUMN_BLOCKS * width)) * width
    return min(block * per, n_in), min((block + 1) * per, n_in)


@kernel()
def weighted_input_columns(wt, a, rows, part, lo, hi):
    """Layer 1's weighted input from inputs ``lo`` to ``hi``, from its weights in columns.

    ``part[k, j] = Σᵢ a[rows[k], i] wt[i, j]`` for ``lo ≤ i < hi``, the terms added in the
    order of ``i`` (``wt = wᵀ``, rows padded to a whole number of SIMD vectors; ``part`` as
    wide). Ten samples × two vectors of neurons per pass over the rows of ``wt`` (one for the
    last of an odd number): twenty running sums in registers, each ``wt`` chunk loaded once
    for ten products, the inputs broadcast. Past the last sample the last is repeated and its
    sums discarded.
    """
    m = rows.shape[0]
    n_pad = wt.shape[1]
    step = simd.lanes(wt)
    zero = simd.zeros(wt)
    ten = (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero)
    for k0 in range(0, m, 10):
        xs = ten_rows(a, rows, k0, lo, hi)
        out = part[k0 : min(k0 + 10, m)]
        for j in range(0, n_pad - step, 2 * step):
            s0, s1 = ten, ten
            for i in range(hi - lo):
                at = (lo + i) * n_pad + j
                v0, v1 = simd.load(wt, at, step), simd.load(wt, at + step, step)
                s0, s1 = fma_ten_pairs(s0, s1, xs, i, v0, v1)
            for t in range(out.shape[0]):
                simd.store(out, t * n_pad + j, step, s0[t])
                simd.store(out, t * n_pad + j + step, step, s1[t])
        if (n_pad // step) % 2:  # the last vector alone (the unused half is compiled away)
            j = n_pad - step
            s0 = ten
            for i in range(hi - lo):
                v0 = simd.load(wt, (lo + i) * n_pad + j, step)
                s0 = fma_ten_pairs(s0, ten, xs, i, v0, v0)[0]
            for t in range(out.shape[0]):
                simd.store(out, t * n_pad + j, step, s0[t])


@kernel()
def add_partial_sums(b, parts, z):
    """``z[k] = b + parts[0][k] + parts[1][k] + …``: layer 1's weighted input from the partial
    sums of its ``COLUMN_BLOCKS`` blocks of inputs, added in order."""
    m, n = z.shape
    n_pad = parts.shape[2]
    step = simd.lanes(z)
    block = parts.shape[1] * n_pad
    for k in range(m):
        for j in range(0, n, step):
            s = simd.load(b, j, n - j)
            for c in range(COLUMN_BLOCKS):
                s = simd.add(s, simd.load(parts, c * block + k * n_pad + j, n - j))
            simd.store(z, k * n + j, n - j, s)


@kernel(parallel=True)
def weighted_input_columns_threaded(wt, a, rows, parts):
    """``weighted_input_columns`` for every block of inputs, on Numba's threads: the blocks'
    partial sums of ``z`` (``parts[c]`` for block ``c``) for each group of ten samples are
    one task, computed whole by one thread, so the sums are those of one thread."""
    m = rows.shape[0]
    n_in = a.shape[1]
    width = simd.lanes(wt)
    groups = (m + 9) // 10
    for t in prange(COLUMN_BLOCKS * groups):
        mode = flush_subnormals()
        c, k0 = t // groups, 10 * (t % groups)
        lo, hi = block_bounds(n_in, c, width)
        weighted_input_columns(wt, a, rows[k0 : min(k0 + 10, m)], parts[c, k0:], lo, hi)
        restore_fp_mode(mode)


@kernel()
def rows_to_columns(w, wt, lo, hi):
    """``wt[i, :n_out] = w[:, i]`` and ``wt[i, n_out:] = 0`` for the inputs ``lo`` to ``hi``."""
    n_out = w.shape[0]
    zero = w[0, 0] - w[0, 0]
    for i in range(lo, hi):
        for j in range(n_out):
            wt[i, j] = w[j, i]
        for j in range(n_out, wt.shape[1]):
            wt[i, j] = zero


@kernel()
def columns_to_rows(wt, w, lo, hi):
    """``w[:, i] = wt[i, :n_out]`` for the inputs ``lo`` to ``hi``."""
    for j in range(w.shape[0]):
        for i in range(lo, hi):
            w[j, i] = wt[i, j]


@kernel(inline=True)
def ten_coefficients(delta, k0, j, scale):
    """``scale · delta[k, j : j + v]`` (a vector) for the ten samples ``k = k0 … k0 + 9``; the
    lanes past a row's end are 0, as are the vectors past the last sample (their loads are
    masked off)."""
    m, n = delta.shape
    c = n - j
    return (
        simd.mul(simd.load(delta, k0 * n + j, c), scale),
        simd.mul(simd.load(delta, (k0 + 1) * n + j, c if k0 + 1 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 2) * n + j, c if k0 + 2 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 3) * n + j, c if k0 + 3 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 4) * n + j, c if k0 + 4 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 5) * n + j, c if k0 + 5 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 6) * n + j, c if k0 + 6 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 7) * n + j, c if k0 + 7 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 8) * n + j, c if k0 + 8 < m else 0), scale),
        simd.mul(simd.load(delta, (k0 + 9) * n + j, c if k0 + 9 < m else 0), scale),
    )


@kernel(inline=True)
def combine_ten_pairs(c0, c1, xs, i):
    """``Σₜ xs[t][i] · c0[t]`` and ``Σₜ xs[t][i] · c1[t]`` over the ten samples, added in the
    order of ``t``: two vectors of neurons at once, sample by sample."""
    y = xs[0][i]
    u0, u1 = simd.mul(c0[0], y), simd.mul(c1[0], y)
    y = xs[1][i]
    u0, u1 = simd.fma(u0, y, c0[1]), simd.fma(u1, y, c1[1])
    y = xs[2][i]
    u0, u1 = simd.fma(u0, y, c0[2]), simd.fma(u1, y, c1[2])
    y = xs[3][i]
    u0, u1 = simd.fma(u0, y, c0[3]), simd.fma(u1, y, c1[3])
    y = xs[4][i]
    u0, u1 = simd.fma(u0, y, c0[4]), simd.fma(u1, y, c1[4])
    y = xs[5][i]
    u0, u1 = simd.fma(u0, y, c0[5]), simd.fma(u1, y, c1[5])
    y = xs[6][i]
    u0, u1 = simd.fma(u0, y, c0[6]), simd.fma(u1, y, c1[6])
    y = xs[7][i]
    u0, u1 = simd.fma(u0, y, c0[7]), simd.fma(u1, y, c1[7])
    y = xs[8][i]
    u0, u1 = simd.fma(u0, y, c0[8]), simd.fma(u1, y, c1[8])
    y = xs[9][i]
    u0, u1 = simd.fma(u0, y, c0[9]), simd.fma(u1, y, c1[9])
    return u0, u1


@kernel(inline=True)
def add_to(wt, at, step, u):
    """``wt[at : at + step] += u`` (memory order)."""
    simd.store(wt, at, step, simd.add(simd.load(wt, at, step), u))


@kernel()
def accumulate_weight_gradient_columns(delta, a, rows, wt, scale, lo, hi, ahead):
    """BP4 for layer 1 in columns: ``wt[i] += scale · Σₖ a[rows[k], i] δ[k]`` for the inputs
    ``lo`` to ``hi`` (``wt = (w¹)ᵀ``, see ``weighted_input_columns``; ``∂C/∂w = δ aᵀ``).

    Ten samples × two SIMD vectors of neurons per pass (one for the last of an odd number):
    the twenty coefficient vectors ``scale · δ[k]`` stay in registers, and each chunk of
    ``wt`` is loaded, added its ten products (summed in the order of ``k``) and stored once.
    Samples past the last get coefficient 0. The first pass of each ten samples asks for ten
    of the rows ``a[ahead]`` (the next mini-batch's) between ``lo`` and ``hi``, a cache line
    of each per vector of inputs.
    """
    m = delta.shape[0]
    n_in = a.shape[1]
    n_pad = wt.shape[1]
    step = simd.lanes(wt)
    for k0 in range(0, m, 10):
        xs = ten_rows(a, rows, k0, lo, hi)
        fetch = ahead[k0 : min(k0 + 10, ahead.shape[0])]
        for j in range(0, n_pad - step, 2 * step):
            c0 = ten_coefficients(delta, k0, j, scale)
            c1 = ten_coefficients(delta, k0, j + step, scale)
            for i in range(hi - lo):
                if i % step == 0:
                    for r in range(fetch.shape[0]):
                        simd.prefetch(a, fetch[r] * n_in + lo + i)
                at = (lo + i) * n_pad + j
                u0, u1 = combine_ten_pairs(c0, c1, xs, i)
                add_to(wt, at, step, u0)
                add_to(wt, at + step, step, u1)
            fetch = ahead[:0]  # asked for in the first pass
        if (n_pad // step) % 2:  # the last vector alone (the unused half is compiled away)
            j = n_pad - step
            c0 = ten_coefficients(delta, k0, j, scale)
            for i in range(hi - lo):
                if i % step == 0:
                    for r in range(fetch.shape[0]):
                        simd.prefetch(a, fetch[r] * n_in + lo + i)
                add_to(wt, (lo + i) * n_pad + j, step, combine_ten_pairs(c0, c0, xs, i)[0])


@kernel(parallel=True)
def accumulate_weight_gradient_columns_threaded(delta, a, rows, wt, scale, decay, shrink, ahead):
    """``accumulate_weight_gradient_columns`` for all of ``wt`` on Numba's threads, each task
    ``2v`` rows of ``wt`` (``v`` SIMD lanes), weight-decayed first as ``regularise_weights``
    does (``decay = 1`` and ``shrink = 0``: not). Each weight's update is computed whole by one
    thread, as on one."""
    n_in = a.shape[1]
    rows_per = 2 * simd.lanes(wt)
    for t in prange((n_in + rows_per - 1) // rows_per):
        mode = flush_subnormals()
        lo, hi = t * rows_per, min(t * rows_per + rows_per, n_in)
        if decay != 1 or shrink != 0:
            block = wt[lo:hi]
            regularise_weights(flat(block), decay, shrink)
        accumulate_weight_gradient_columns(delta, a, rows, wt, scale, lo, hi, ahead)
        restore_fp_mode(mode)


def uses_columns(sizes, extras) -> bool:
    """Whether a network trains with ``train_epoch_columns``, layer 1 in columns (see
    ``weighted_input_columns``): one without residual connections or batch normalisation
    (``extras`` is ``None``) whose first layer has rows of at least ``NARROW`` inputs.

    The answer does not depend on the number of threads, nor on how they share the work: the
    columns sum layer 1's products in another order than the rows, and the weights must be
    the same whatever that number is.
    """
    return extras is None and int(sizes[0]) >= NARROW


def narrow_after_first(sizes) -> bool:
    """Whether every layer after the first has rows of fewer than ``NARROW`` inputs."""
    return all(int(n) < NARROW for n in sizes[1:-1])
