"""The weighted input ``z = w a + b`` of a layer for a mini-batch held as rows: register-blocked
loops over the weight rows, a variant for narrow rows, and the same on Numba's threads.
"""

from __future__ import annotations

from numba import prange

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .._views import matrix

#: Rows per block in the parallel kernels. A fixed number, so that how the work is split, and
#: so every rounding, does not depend on the number of threads.
BLOCK_ROWS = 64

#: Rows shorter than this many values are "narrow": shorter than LLVM's vectorised loop over a
#: row (16 float32 lanes × 4 interleaved vectors), which would leave them to its scalar
#: remainder. Their kernels hold whole chunks of a row in SIMD registers instead (``_simd``).
NARROW = 64


@kernel(inline=True)
def quad_chunk(w0, w1, w2, w3, x0, x1, x2, x3, x4, i, c, acc):
    """One chunk of ``weighted_input_quad``: ``acc[t][r] += w_r[i : i + c] · x_t[i : i + c]``
    lane by lane (``c`` values, at most a vector; the lanes past them add 0)."""
    ((s00, s10, s20, s30), (s01, s11, s21, s31), (s02, s12, s22, s32),
     (s03, s13, s23, s33), (s04, s14, s24, s34)) = acc  # fmt: skip
    v0 = simd.load(w0, i, c)
    v1 = simd.load(w1, i, c)
    v2 = simd.load(w2, i, c)
    v3 = simd.load(w3, i, c)
    y = simd.load(x0, i, c)
    s00, s10 = simd.fma(s00, v0, y), simd.fma(s10, v1, y)
    s20, s30 = simd.fma(s20, v2, y), simd.fma(s30, v3, y)
    y = simd.load(x1, i, c)
    s01, s11 = simd.fma(s01, v0, y), simd.fma(s11, v1, y)
    s21, s31 = simd.fma(s21, v2, y), simd.fma(s31, v3, y)
    y = simd.load(x2, i, c)
    s02, s12 = simd.fma(s02, v0, y), simd.fma(s12, v1, y)
    s22, s32 = simd.fma(s22, v2, y), simd.fma(s32, v3, y)
    y = simd.load(x3, i, c)
    s03, s13 = simd.fma(s03, v0, y), simd.fma(s13, v1, y)
    s23, s33 = simd.fma(s23, v2, y), simd.fma(s33, v3, y)
    y = simd.load(x4, i, c)
    s04, s14 = simd.fma(s04, v0, y), simd.fma(s14, v1, y)
    s24, s34 = simd.fma(s24, v2, y), simd.fma(s34, v3, y)
    return (
        (s00, s10, s20, s30),
        (s01, s11, s21, s31),
        (s02, s12, s22, s32),
        (s03, s13, s23, s33),
        (s04, s14, s24, s34),
    )


@kernel()
def weighted_input_quad(w, b, a, rows, z, j0):
    """``z[:, j] = w[j] · a[rows] + b[j]`` for the neurons ``j0`` to ``j0 + 3``.

    Four neurons × five samples per pass over the weight rows: twenty running sums, each a
    SIMD vector (``_simd``) over a chunk of the row, so each weight and input vector is loaded
    once for five or four products (``quad_chunk``); the whole chunks are plain loads, a row's
    last, partial chunk a masked load. The lanes
    are summed at the end, always in the same order, so a value does not depend on which
    neurons share its pass. A partial block repeats its last sample (or neuron) and discards
    the repeats.
    """
    n_out, n_in = w.shape
    m = rows.shape[0]
    j1 = min(j0 + 1, n_out - 1)
    j2 = min(j0 + 2, n_out - 1)
    j3 = min(j0 + 3, n_out - 1)
    w0, w1, w2, w3 = w[j0], w[j1], w[j2], w[j3]
    step = simd.lanes(w0)
    full = n_in - n_in % step
    for k0 in range(0, m, 5):
        x0 = a[rows[k0]]
        x1 = a[rows[min(k0 + 1, m - 1)]]
        x2 = a[rows[min(k0 + 2, m - 1)]]
        x3 = a[rows[min(k0 + 3, m - 1)]]
        x4 = a[rows[min(k0 + 4, m - 1)]]
        zero = simd.zeros(w0)
        four = (zero, zero, zero, zero)
        acc = (four, four, four, four, four)  # acc[t][r]: sample t, neuron r
        for i in range(0, full, step):  # whole chunks: the mask is a constant, all lanes on
            acc = quad_chunk(w0, w1, w2, w3, x0, x1, x2, x3, x4, i, step, acc)
        if full < n_in:
            acc = quad_chunk(w0, w1, w2, w3, x0, x1, x2, x3, x4, full, n_in - full, acc)
        for t in range(min(5, m - k0)):
            for r in range(min(4, n_out - j0)):
                z[k0 + t, j0 + r] = simd.total(acc[t][r]) + b[j0 + r]


@kernel(parallel=True)
def weighted_input(w, b, a, rows, z):
    """Weighted input of a layer for a mini-batch: ``z = w a + b``.

    Parameters
    ----------
    w : (n_out, n_in) array
    b : (n_out,) array
    a : (n, n_in) array
        Activations of the previous layer; the mini-batch is ``a[rows]``.
    rows : (m,) int64 array
    z : (m, n_out) array, output
        ``z[k, j] = Σᵢ w[j, i] a[rows[k], i] + b[j]``.

    The neurons are shared out over Numba's threads, four at a time. Each ``z[k, j]`` is
    computed whole by one thread, in the same order whatever the thread count.
    """
    for q in prange((w.shape[0] + 3) // 4):
        mode = flush_subnormals()
        weighted_input_quad(w, b, a, rows, z, 4 * q)
        restore_fp_mode(mode)


@kernel()
def weighted_input_serial(w, b, a, rows, z):
    """``weighted_input`` on the calling thread."""
    for q in range((w.shape[0] + 3) // 4):
        weighted_input_quad(w, b, a, rows, z, 4 * q)


@kernel()
def weighted_input_chunks(wt, b, a, rows, z, j):
    """``z[:, j : j + 2v] = wt[:, j : j + 2v]ᵀ a[rows] + b[j : j + 2v]`` (``v`` SIMD lanes).

    Four samples × two SIMD vectors of neurons per pass over the rows of ``wt = wᵀ``: eight
    running sums in registers, each ``wt`` chunk loaded once for four products, the input
    values broadcast; the last chunk of a row is a masked load and store. Where only one
    vector of neurons is left (a layer of 10), four sums: half the multiply-adds.
    """
    m = rows.shape[0]
    n_in, n_out = wt.shape
    step = simd.lanes(b)
    c = n_out - j
    c2 = c - step
    for k0 in range(0, m, 4):
        x0 = a[rows[k0]]
        x1 = a[rows[min(k0 + 1, m - 1)]]
        x2 = a[rows[min(k0 + 2, m - 1)]]
        x3 = a[rows[min(k0 + 3, m - 1)]]
        s00 = s10 = s20 = s30 = simd.load(b, j, c)
        if c2 <= 0:
            for i in range(n_in):
                v0 = simd.load(wt[i], j, c)
                s00 = simd.fma(s00, x0[i], v0)
                s10 = simd.fma(s10, x1[i], v0)
                s20 = simd.fma(s20, x2[i], v0)
                s30 = simd.fma(s30, x3[i], v0)
            ones = (s00, s10, s20, s30)
            for t in range(min(4, m - k0)):
                simd.store(z[k0 + t], j, c, ones[t])
            continue
        s01 = s11 = s21 = s31 = simd.load(b, j + step, c2)
        for i in range(n_in):
            wi = wt[i]
            v0 = simd.load(wi, j, c)
            v1 = simd.load(wi, j + step, c2)
            s00 = simd.fma(s00, x0[i], v0)
            s01 = simd.fma(s01, x0[i], v1)
            s10 = simd.fma(s10, x1[i], v0)
            s11 = simd.fma(s11, x1[i], v1)
            s20 = simd.fma(s20, x2[i], v0)
            s21 = simd.fma(s21, x2[i], v1)
            s30 = simd.fma(s30, x3[i], v0)
            s31 = simd.fma(s31, x3[i], v1)
        sums = ((s00, s01), (s10, s11), (s20, s21), (s30, s31))
        for t in range(min(4, m - k0)):
            simd.store(z[k0 + t], j, c, sums[t][0])
            simd.store(z[k0 + t], j + step, c2, sums[t][1])


@kernel(parallel=True)
def weighted_input_narrow(w, b, a, rows, z, scratch):
    """``weighted_input`` for a layer of short rows (``n_in < NARROW``): ``z = w a + b``.

    ``z[k, j] = b[j] + Σᵢ w[j, i] a[rows[k], i]``, the terms added in the order of ``i``.
    The weights are first transposed into ``scratch`` (at least ``n_in · n_out`` values), so
    that the products run along the neurons, whose rows of ``z`` are contiguous: no sum over
    a short row is split into SIMD lanes to be added up at the end. The chunks of neurons
    are shared out over the threads; each ``z[k, j]`` is computed whole by one thread, in the
    same order whatever the thread count.
    """
    n_out, n_in = w.shape
    wt = matrix(scratch, 0, n_in, n_out)
    transpose_into(w, wt)
    width = 2 * simd.lanes(b)
    for p in prange((n_out + width - 1) // width):
        mode = flush_subnormals()
        weighted_input_chunks(wt, b, a, rows, z, p * width)
        restore_fp_mode(mode)


@kernel()
def transpose_into(w, wt):
    """``wt = wᵀ``."""
    for j in range(w.shape[0]):
        for i in range(w.shape[1]):
            wt[i, j] = w[j, i]


@kernel()
def weighted_input_narrow_serial(w, b, a, rows, z, scratch):
    """``weighted_input_narrow`` on the calling thread."""
    n_out, n_in = w.shape
    wt = matrix(scratch, 0, n_in, n_out)
    transpose_into(w, wt)
    width = 2 * simd.lanes(b)
    for p in range((n_out + width - 1) // width):
        weighted_input_chunks(wt, b, a, rows, z, p * width)
