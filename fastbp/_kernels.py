"""CPU kernels: the equations of backpropagation, each a compiled Numba function.

Notation follows Nielsen, *Neural Networks and Deep Learning*, chapter 2. Layer ``l`` has
weights ``w`` of shape ``(n_out, n_in)`` and biases ``b`` of shape ``(n_out,)``. A mini-batch
is held as rows: ``a[k]`` is the activation of sample ``k``. Kernels that read the network's
input take the data matrix ``x`` and ``rows``, the indices of the mini-batch's samples in it,
so a shuffled epoch never copies the data.

All parameters live in one flat buffer ``params``; layer ``l`` (1-based, ``l = 1 .. L-1``)
occupies ``params[offsets[l - 1]:offsets[l]]``: its weights row by row, then its biases.
Gradients use the same layout, so an update is one operation over the whole buffer.

The passes over all layers take ``model = (sizes, offsets, units, acts, alphas, cost,
residual, bn, stats)``: the layer widths, the offsets above, the cumulative neuron counts of
the work buffers, each layer's activation code and its ``alpha`` (index 0, the input layer,
is unused), the cost code, for each layer whether it adds its input to its output (a residual
connection, ``aˡ = f(zˡ) + aˡ⁻¹``) and whether it is batch-normalised, and the running mean
and variance of the batch-normalised neurons (``stats``, 2 × neurons, updated in training).

Kernels never validate: the ``Network`` class checks shapes, dtypes and values first, and
passes C-contiguous arrays of one floating dtype and scalars of that same dtype. They compute
with subnormal numbers flushed to zero (``_fpmode``): the caller sets that mode on its thread,
and each iteration of a parallel loop on its own.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import prange

from . import _simd as simd
from ._config import kernel
from ._fpmode import flush_subnormals, restore_fp_mode
from ._sync import (
    compare_exchange,
    load_acquire,
    monotonic_ns,
    spin_pause,
    store_release,
    yield_thread,
)
from ._views import flat, matrix

#: A mini-batch's matrix products run on several threads, each owning a set of neurons, when
#: a layer's work ``m · n_out · n_in`` is at least this many multiply-adds; below it one thread
#: is faster, since a parallel region costs microseconds to start. (784-30-10 at batch 10 is
#: 235k per step: one thread, or a team of them, ``train_epoch_columns``; 784-100-10 at batch 100
#: is 7.8M: all of them.)
PARALLEL_MIN_WORK = 1_000_000


def threading_threshold(sizes, batch_size: int, n_threads: int) -> int | None:
    """The ``threads_from`` of the compiled passes for a network of ``sizes`` trained in
    mini-batches of ``batch_size`` on ``n_threads`` threads: ``PARALLEL_MIN_WORK`` when some
    layer's work per mini-batch reaches it, else ``None`` — then Numba compiles the passes
    without their parallel branches, which saves seconds of compile time for small networks.
    """
    if n_threads > 1 and largest_work(sizes, batch_size) >= PARALLEL_MIN_WORK:
        return PARALLEL_MIN_WORK
    return None


def largest_work(sizes, batch_size: int) -> int:
    """The largest layer's multiply-adds per mini-batch, ``m · n_out · n_in``."""
    return batch_size * max(int(a) * int(b) for a, b in itertools.pairwise(sizes))


def has_extras(model) -> bool | None:
    """The ``extras`` argument of the compiled passes for ``model``: ``True`` if some layer
    has a residual connection or batch normalisation, else ``None``, for which Numba compiles
    the passes without that code (it prunes ``extras is not None`` on the argument's type)."""
    residual, bn = model[6], model[7]
    return True if residual.any() or bn.any() else None


#: Rows per block in the parallel kernels. A fixed number, so that how the work is split, and
#: so every rounding, does not depend on the number of threads.
BLOCK_ROWS = 64

#: Rows shorter than this many values are "narrow": shorter than LLVM's vectorised loop over a
#: row (16 float32 lanes × 4 interleaved vectors), which would leave them to its scalar
#: remainder. Their kernels hold whole chunks of a row in SIMD registers instead (``_simd``).
NARROW = 64


# --- activations ----------------------------------------------------------------------------
#
# Each layer's activation function is a code; ``alpha`` is the slope of the leaky ReLU for
# ``x < 0`` or the scale of the ELU. Softmax is only an output layer (it couples the neurons of
# a row); the step function has no useful derivative (its ``f'`` is 0) and is refused for
# training by the ``Network`` class.

SIGMOID, TANH, RELU, LEAKY_RELU, ELU, LINEAR, SOFTMAX, STEP = 0, 1, 2, 3, 4, 5, 6, 7

#: Cost codes: quadratic ``½‖a − y‖²``, cross-entropy ``−Σ[y ln a + (1 − y) ln(1 − a)]``
#: (sigmoid output), log-likelihood ``−ln a_y`` (softmax output).
QUADRATIC, CROSS_ENTROPY, LOG_LIKELIHOOD = 0, 1, 2


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


# --- the perceptron (the book's section 1.1) ---------------------------------------------


@kernel(allocates=True)
def perceptron_output(w, b, x):
    """Step output of a perceptron: ``1`` if ``w · x + b > 0`` else ``0`` (for each row of x)."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for k in range(x.shape[0]):
        s = b
        for i in range(w.shape[0]):
            s += w[i] * x[k, i]
        out[k] = 1 if s > 0 else 0
    return out


@kernel()
def perceptron_epoch(w, b, x, y, eta):
    """One pass of the perceptron learning rule over the rows of ``x``, in order.

    For each sample: ``output = step(w · x + b)``, then ``w ← w + η (y − output) x`` and
    ``b ← b + η (y − output)``. Returns the new bias and the number of misclassified samples
    (0 means the pass changed nothing: the rule has converged).
    """
    errors = 0
    for k in range(x.shape[0]):
        s = b
        for i in range(w.shape[0]):
            s += w[i] * x[k, i]
        miss = y[k] - (1 if s > 0 else 0)
        if miss != 0:
            errors += 1
            for i in range(w.shape[0]):
                w[i] += eta * miss * x[k, i]
            b += eta * miss
    return b, errors


# --- workspace ------------------------------------------------------------------------------
#
# Kernels that run a whole pass take ``ws``, a tuple of preallocated buffers, so that nothing
# is allocated per mini-batch: ``(zbuf, abuf, dbuf, pbuf, own, coef, gbuf, hbuf, ivbuf, nbuf,
# tbuf)``. ``zbuf``, ``abuf``,
# ``dbuf`` and ``pbuf`` hold ``z``, ``a``, ``δ`` and ``σ'(z)`` of every layer for up to
# ``capacity`` rows (see ``unit_view``); ``own`` is ``arange(capacity)``, the rows of a
# mini-batch in those buffers; ``coef`` holds, for each pair of neurons of the widest layer,
# the (2, 5) block of coefficients that ``accumulate_weight_gradient`` multiplies by; ``gbuf``
# holds ``∂C/∂aˡ`` of every layer (BP2 needs it through residual connections); ``hbuf`` the
# normalised ``ẑ`` of batch-normalised layers, ``ivbuf`` their ``1/√(σ² + ε)`` per neuron and
# ``nbuf`` their ``(Σ δ ẑ, Σ δ)`` per neuron, the gradients of ``γ`` and ``β``; ``tbuf`` room for
# the transposed weights of the largest layer with short rows (``weighted_input_narrow``).


@kernel(inline=True)
def layer_views(params, sizes, offsets, l):
    """Views ``(w, b)`` of layer ``l`` (1-based) in the flat buffer ``params`` (a batch-
    normalised layer has its ``γ`` and ``β`` after ``b``: see ``norm_views``)."""
    n_out = sizes[l]
    n_in = sizes[l - 1]
    start = offsets[l - 1]
    w = matrix(params, start, n_out, n_in)
    b = params[start + n_out * n_in : start + n_out * n_in + n_out]
    return w, b


@kernel(inline=True)
def projection_view(params, sizes, offsets, l):
    """View of the projection ``P`` (``sizes[l] × sizes[l-1]``) of a layer whose residual
    connection joins unequal widths: it follows the layer's biases."""
    n_out, n_in = sizes[l], sizes[l - 1]
    start = offsets[l - 1] + n_out * n_in + n_out
    return matrix(params, start, n_out, n_in)


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
def norm_views(params, sizes, offsets, l):
    """Views ``(γ, β)`` of a batch-normalised layer ``l``: they follow its biases."""
    n = sizes[l]
    end = offsets[l]
    return params[end - 2 * n : end - n], params[end - n : end]


@kernel(inline=True)
def unit_view(buf, sizes, units, l, m):
    """View of layer ``l``'s rows for ``m`` samples in a per-unit work buffer.

    ``buf`` holds, for each layer ``l ≥ 1``, room for ``capacity`` rows of ``sizes[l]``
    values, where ``capacity = buf.size // units[-1]``.
    """
    capacity = buf.shape[0] // units[-1]
    start = capacity * units[l - 1]
    return matrix(buf, start, m, sizes[l])


@kernel(allocates=True)
def workspace(sizes, units, capacity, like):
    """Work buffers ``ws`` for mini-batches of up to ``capacity`` rows, of ``like``'s dtype."""
    n_units = capacity * units[-1]
    widest = 0
    narrow = 0
    for l in range(1, sizes.shape[0]):
        widest = max(widest, sizes[l])
        if sizes[l - 1] < NARROW:
            narrow = max(narrow, sizes[l - 1] * sizes[l])
    return (
        np.empty(n_units, dtype=like.dtype),
        np.empty(n_units, dtype=like.dtype),
        np.empty(n_units, dtype=like.dtype),
        np.empty(n_units, dtype=like.dtype),
        np.arange(capacity),
        np.empty(((widest + 1) // 2, 2, 5), dtype=like.dtype),
        np.zeros(n_units, dtype=like.dtype),
        np.empty(n_units, dtype=like.dtype),
        np.empty(units[-1], dtype=like.dtype),
        np.empty((2, units[-1]), dtype=like.dtype),
        np.empty(narrow, dtype=like.dtype),
    )


# --- forward pass ---------------------------------------------------------------------------


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


# --- layer 1 in columns: its weights transposed for the length of an epoch -----------------
#
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


@kernel()
def seed_generator(seed):
    """Seed Numba's random generator of the calling thread (``drop_out`` draws from it)."""
    np.random.seed(seed)  # noqa: NPY002 (Numba's per-thread generator)


@kernel()
def drop_out(a, da, p):
    """Inverted dropout of a hidden layer: each neuron is kept with probability ``1 − p``.

    A kept neuron's ``a`` and ``f'(z)`` are scaled by ``1/(1 − p)``, a dropped one's set to 0,
    so that ``aˡ = mask ⊙ f(zˡ)/(1 − p)`` and BP2 sees the same mask through ``f'``. Draws
    from Numba's generator, seeded by the caller; always on one thread, in order, so the masks
    do not depend on the thread count.
    """
    af = flat(a)
    df = flat(da)
    scale = type(p)(1.0) / (type(p)(1.0) - p)
    zero = p - p
    for i in range(af.shape[0]):
        if np.random.random() < p:  # noqa: NPY002
            af[i] = zero
            df[i] = zero
        else:
            af[i] *= scale
            df[i] *= scale


# ``inline``: the batch-norm kernels have one compiled copy per caller, the same whether it
# was compiled or loaded from the cache (see ``_config.kernel``).
@kernel(inline=True)
def batch_norm_forward(z, gamma, beta, h, inv, mean, var, mode):
    """Batch normalisation of a layer's weighted input, in place: ``z ← γ ẑ + β``.

    ``ẑ = (z − μ)/√(σ² + ε)`` per neuron, with ``μ``, ``σ²`` the mini-batch's mean and
    variance (``mode`` 1; ``mode`` 2 also moves the running statistics ``mean``, ``var``
    a tenth of the way towards them, with the unbiased variance) or the running statistics
    (``mode`` 0, for prediction). ``ẑ`` is kept in ``h`` and ``1/√(σ² + ε)`` in ``inv`` for
    ``batch_norm_backward``. ``ε = 1e-5``.
    """
    m, n = z.shape
    eps = type(gamma[0])(1e-5)
    mf = type(gamma[0])(m)  # an integer in float arithmetic would promote it to float64
    for j in range(n):
        if mode == 0:
            mu = mean[j]
            v = var[j]
        else:
            mu = z[0, j] - z[0, j]
            for k in range(m):
                mu += z[k, j]
            mu /= mf
            v = mu - mu
            for k in range(m):
                v += (z[k, j] - mu) * (z[k, j] - mu)
            v /= mf
            if mode == 2:
                unbiased = v * mf / (mf - type(mf)(1.0)) if m > 1 else v
                mean[j] += type(mu)(0.1) * (mu - mean[j])
                var[j] += type(mu)(0.1) * (unbiased - var[j])
        iv = type(v)(1.0) / np.sqrt(v + eps)
        inv[j] = iv
        for k in range(m):
            hk = (z[k, j] - mu) * iv
            h[k, j] = hk
            z[k, j] = gamma[j] * hk + beta[j]


@kernel(inline=True)
def batch_norm_backward(delta, h, inv, gamma, sums):
    """From ``δ`` with respect to ``y = γ ẑ + β`` to ``δ`` with respect to ``z``, in place.

    ``∂C/∂γ = Σₖ δₖ ẑₖ`` and ``∂C/∂β = Σₖ δₖ`` go to ``sums[0]``, ``sums[1]``; then, with the
    mini-batch statistics depending on every sample,
    ``δ_z = (γ/(m √(σ² + ε))) (m δ − Σₖ δₖ − ẑ Σₖ δₖ ẑₖ)``.
    """
    m, n = delta.shape
    mf = type(gamma[0])(m)
    for j in range(n):
        s_d = delta[0, j] - delta[0, j]
        s_dh = s_d
        for k in range(m):
            s_d += delta[k, j]
            s_dh += delta[k, j] * h[k, j]
        sums[0, j] = s_dh
        sums[1, j] = s_d
        c = gamma[j] * inv[j] / mf
        for k in range(m):
            delta[k, j] = c * (mf * delta[k, j] - s_d - h[k, j] * s_dh)


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
    sizes, offsets, units, acts, alphas, _, residual, bn, stats = model
    zbuf, abuf, _, pbuf, own, _, _, hbuf, ivbuf, _, tbuf = ws
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


# --- the four equations of backpropagation ------------------------------------------------


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


# --- whole passes over the layers ----------------------------------------------------------


@kernel(inline=True)
def backpropagate_errors(params, model, y, rows, ws, extras):
    """BP1 for the output layer, then BP2 down to layer 1, after ``forward_pass``.

    Every ``δˡ`` is left in ``ws``'s ``dbuf``; the weights are only read.
    """
    sizes, offsets, units, acts, _, cost, residual, bn, _ = model
    _, abuf, dbuf, pbuf, _, _, gbuf, hbuf, ivbuf, nbuf, _ = ws
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
    sizes, offsets, units, _, _, _, residual, bn, _ = model
    _, abuf, dbuf, _, own, coef, gbuf, _, _, nbuf, _ = ws
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


@kernel()
def regularise_weights(w, decay, shrink):
    """Weight decay before a step: ``w ← decay · w − shrink · sgn(w)``.

    L2 (the book's chapter 3) is ``decay = 1 − ηλ/n``; L1 is ``shrink = ηλ/n``. Biases are
    not regularised.
    """
    zero = decay - decay
    for i in range(w.shape[0]):
        v = w[i]
        w[i] = decay * v - (shrink if v > zero else (-shrink if v < zero else zero))


@kernel(inline=True)
def sgd_step(
    params, model, x, rows, ws, eta_over_m, decay, shrink, threads_from, extras, ahead, first, wide
):  # fmt: skip
    """The SGD step ``w ← w − (η/m) Σₓ ∂Cₓ/∂w``, ``b ← b − (η/m) Σₓ ∂Cₓ/∂b`` for every layer
    from ``first`` (1 for all).

    BP3 and BP4 accumulated straight into the parameters with scale ``−η/m``, after
    ``forward_pass`` and ``backpropagate_errors``: no gradient buffer is written or read. With
    regularisation (``decay != 1`` or ``shrink != 0``) the weights are first decayed by
    ``regularise_weights``, which makes the step the book's
    ``w ← (1 − ηλ/n) w − (η/m) Σₓ ∂Cₓ/∂w`` for L2. Layer 1's BP4 prefetches the rows of
    ``x`` listed in ``ahead``. ``wide`` as for ``forward_pass``.
    """
    if decay != 1 or shrink != 0:
        sizes, offsets, _, _, _, _, _, _, _ = model
        for l in range(first, sizes.shape[0]):
            w, _ = layer_views(params, sizes, offsets, l)
            regularise_weights(flat(w), decay, shrink)
    accumulate_gradient(
        model, x, rows, ws, params, -eta_over_m, threads_from, extras, ahead, first, wide
    )


@kernel()
def prefetch_rows(a, rows):
    """Ask for every cache line of the rows ``a[rows]`` to be fetched into L2 (``_simd``'s
    ``prefetch``: a hint, no result changes)."""
    n = a.shape[1]
    step = simd.lanes(a)
    for k in range(rows.shape[0]):
        row = a[rows[k]]
        for i in range(0, n, step):
            simd.prefetch(row, i)
        simd.prefetch(row, n - 1)  # a short row may end on the next line


@kernel()
def copy_values(dst, src):
    """``dst[...] = src`` for two C-contiguous arrays of the same size (a loop: slice
    assignment between arrays needs Numba's runtime, which the epoch kernels go without)."""
    d = flat(dst)
    s = flat(src)
    for i in range(d.shape[0]):
        d[i] = s[i]


@kernel()
def train_epoch(
    params, model, x, y, order, batch_size, eta, l2, l1, dropout, seed, ws, threads_from, backup,
    extras,
):  # fmt: skip
    """One epoch of mini-batch SGD, entirely in compiled code and without allocating.

    The samples are visited in the order ``order`` (a permutation of the rows of ``x``),
    ``batch_size`` at a time; a last, smaller mini-batch is trained on, not dropped. For each
    mini-batch of ``m`` samples: ``forward_pass``, ``backpropagate_errors`` (all ``δˡ`` from
    the weights before the step), then ``sgd_step`` with ``η/m``. ``l2`` and ``l1`` are the
    regularisation strengths ``λ/n`` (0 for none); ``dropout`` the probability of dropping a
    hidden neuron (``None`` for none), drawn from Numba's generator seeded with ``seed``.
    Layers with at least ``threads_from`` multiply-adds per mini-batch run on several threads
    (``None``: none does; see ``threading_threshold``); ``extras`` is ``None`` for a network
    without residual connections and batch normalisation (see ``has_extras``). The networks
    ``uses_columns`` names train instead with ``train_epoch_columns``.

    ``backup`` is empty for a normal epoch. To find where an epoch went non-finite, the caller
    replays it (same order, same seed) with a ``backup`` the size of ``params``: each step is
    then checked, and at the first non-finite one the parameters go back to their values
    before it and its mini-batch's index and first non-finite layer are returned; ``(-1, -1)``
    otherwise.
    """
    decay = type(eta)(1.0) - eta * l2
    shrink = eta * l1
    seed_generator(seed)
    n = order.shape[0]
    for batch, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        rows = order[start:stop]
        eta_over_m = eta / type(eta)(stop - start)
        if backup.size:
            copy_values(backup, params)
        prefetch_rows(y, rows)  # the targets arrive while the forward pass computes
        forward_pass(params, model, x, rows, ws, threads_from, dropout, 2, extras, 0, True)
        backpropagate_errors(params, model, y, rows, ws, extras)
        ahead = order[stop : min(stop + batch_size, n)]  # prefetched during this step
        sgd_step(
            params, model, x, rows, ws, eta_over_m, decay, shrink, threads_from, extras, ahead,
            1, True,
        )  # fmt: skip
        if backup.size and not all_finite(params):
            layer = first_non_finite_layer(params, model)
            copy_values(params, backup)
            return batch, layer
    return -1, -1


# --- layer 1 in columns, on one thread or a team of them ------------------------------------
#
# At batch 10 a 784-30-10 step is about 10 µs of work, too little to repay starting a parallel
# region for each layer of each step. A team's threads each run the whole epoch in one
# compiled call; they share layer 1's ``COLUMN_BLOCKS`` blocks of inputs (rows of ``wᵀ``)
# and meet twice per step, through counters:
#
#   A  every member: the partial sums of z¹ over its blocks (``weighted_input_columns``),
#      then says so;
#   B  member 0, once all of A is done: z¹ = b¹ + the partial sums, a¹ = f(z¹), the other
#      layers' forward pass, BP1, BP2 down to δ¹ and layer 1's BP3, then says so; then the
#      other layers' BP3/BP4 and update, which no one else reads;
#   C  every member, once B has said so: BP4 and the SGD update of its own rows of wᵀ.
#
# A member only ever reads and writes its own rows of wᵀ, so the next step's A needs nothing
# from the others. Every value is computed by the same kernel, in the same order, as on one
# thread: the weights are the same whatever the number of members.
#
# A team only pays while each member has a CPU of its own. On a busy machine (another process,
# a browser, a second training job) a member loses its CPU for a scheduler time slice,
# milliseconds, and the others would wait that long at every meeting. So a waiting member
# spins only briefly, then yields its CPU; and each member claims each of its
# steps before doing it (``CLAIMED``). Member 0 may claim a step of another member's share
# first (``take_over``): then that member stops, and member 0 does its share for the rest of
# the epoch, with the same kernels in the same order, so the weights are still the same. It
# does so for a member that has not claimed its first step after ``JOIN_NS`` (its thread could
# not start, or runs after this one on the same CPU) or a later one ``TAKE_NS`` after it was
# due, and for every member once the waits longer than usual (stalls) add up to a
# ``STALL_PART``-th of the epoch so far (and at least ``STALL_LEAST``).

#: ``int64`` values per cache line: each counter of a team has a line to itself.
LINE = 8

#: The team's counters (``column_buffers``' third array), one per cache line: how many members
#: arrived (their roles, in order of arrival), member 0's last step through B, and the step
#: from which member 0 took over another member's share (0: it did not); then for each member
#: (``member_slot``) its last step through A, its last step through C, the last step it claimed
#: (``TAKEN``: member 0 took its share over), and the nanoseconds it stalled waiting for B.
ARRIVED, B_DONE, TOOK_OVER = 0, 1, 2
A_DONE, C_DONE, CLAIMED, STALLED = 0, 1, 2, 3
TAKEN = -1
#: The size of a team's counters: the three above and four per member.
TEAM_COUNTERS = LINE * (3 + 4 * COLUMN_BLOCKS)

#: Reads of a counter without a ``pause`` before a waiting member starts pausing between them
#: (a wait in a step is usually a microsecond or two; a ``pause`` can take a fraction of one).
EAGER_SPINS = 4096
#: After the eager reads, a member pauses between reads until it has waited this many ns more
#: than its usual wait (``note_wait``), then also yields its CPU (the member it waits for may be
#: waiting for that CPU). It never sleeps: a sleeper wakes late, which its partner would see
#: as a stall of its own.
SPIN_NS = 20_000
#: A wait more than this many ns (and more than its usual wait) longer than usual is a stall:
#: someone lost their CPU for a scheduler time slice (about 0.7–3 ms), or waited that long for
#: one. Shorter excesses are the jitter of an idle machine's steps.
STALL_NS = 500_000
#: Member 0 takes over every member's share once the stalls add up to 1/STALL_PART of the time
#: since the epoch began, and to STALL_LEAST ns (a CPU lost for a time slice costs
#: milliseconds; an idle machine's hiccups of tens or a few hundred µs must not end a team).
STALL_PART = 10
STALL_LEAST = 1_000_000
#: How long member 0 waits beyond its usual wait for a member that has not claimed the step
#: before it takes over that member's share ...
TAKE_NS = 200_000
#: ... and at the first step, for a member to join: starting a thread takes tens of µs on an
#: idle machine, and more on a busy one (member 0 sleeps meanwhile).
JOIN_NS = 10_000_000

#: Least multiply-adds in an epoch for a team to train it. Starting one costs about 0.3 ms
#: per epoch (a thread and two calls' argument checks), repaid at 784-30-10's 2–3 µs per step
#: of 10 from about a hundred steps (61M multiply-adds at 256 steps).
TEAM_MIN_EPOCH_WORK = 50_000_000

#: Least share of a network's multiply-adds in layer 1 for a team to train it: the members
#: share layer 1, and member 0 does every other layer while the others wait. 784-30-30-30-30-10
#: (89% in layer 1) at batch 10 trains 1.14x faster on a team of two than on one thread (median
#: of eight alternated runs, from 0.87x to 1.66x on this shared machine).
TEAM_MIN_FIRST_SHARE = 0.85


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


def column_buffers(sizes, capacity: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``columns`` argument of ``train_epoch_columns`` for mini-batches of up to
    ``capacity`` rows: ``wᵀ`` of layer 1 (rows padded to a whole number of SIMD vectors),
    the partial sums of its blocks, and a team's counters (``ARRIVED`` …, zeroed before each
    team epoch). The first two start on a cache line, so that members writing their own rows
    of ``wᵀ`` never share one."""
    dtype = np.dtype(dtype)
    lanes = simd.VECTOR_BITS // (8 * dtype.itemsize)
    n_pad = -(-int(sizes[1]) // lanes) * lanes
    return (
        _aligned_zeros((int(sizes[0]), n_pad), dtype),
        _aligned_zeros((COLUMN_BLOCKS, capacity, n_pad), dtype),
        np.zeros(TEAM_COUNTERS, dtype=np.int64),
    )


def _aligned_zeros(shape, dtype, align: int = 64) -> np.ndarray:
    """Zeros of ``shape`` whose first value starts on an ``align``-byte boundary."""
    count = math.prod(shape)
    raw = np.zeros(count + align // dtype.itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % align) // dtype.itemsize
    return raw[skip : skip + count].reshape(shape)


def team_size(sizes, n_samples: int, batch_size: int, n_threads: int, extras) -> int:
    """Threads for ``train_epoch_columns`` to train a network of ``sizes`` on ``n_samples`` in
    mini-batches of ``batch_size`` on ``n_threads`` threads; 1 when one thread is better.

    A team needs a network trained in columns (``uses_columns``) with at least
    ``TEAM_MIN_FIRST_SHARE`` of its multiply-adds in layer 1 (member 0 alone does the other
    layers while the others wait) and an epoch of at least ``TEAM_MIN_EPOCH_WORK``
    multiply-adds; it has 2 or ``COLUMN_BLOCKS`` members, which share the blocks evenly.
    """
    if n_threads < 2 or not uses_columns(sizes, extras):
        return 1
    work = [int(a) * int(b) for a, b in itertools.pairwise(sizes)]
    if work[0] < TEAM_MIN_FIRST_SHARE * sum(work):
        return 1
    if n_samples * sum(work) < TEAM_MIN_EPOCH_WORK:
        return 1
    return COLUMN_BLOCKS if n_threads >= COLUMN_BLOCKS else 2


@kernel(inline=True)
def member_slot(role, what):
    """The index in a team's counters of member ``role``'s counter ``what`` (``A_DONE`` …)."""
    return LINE * (3 + 4 * role + what)


@kernel()
def arrive(flags):
    """This thread's role in the team whose counters are ``flags``: 0, 1, … in order of
    arrival."""
    while True:
        arrived = load_acquire(flags, LINE * ARRIVED)
        if compare_exchange(flags, LINE * ARRIVED, arrived, arrived + 1):
            return arrived


@kernel()
def pause(spins, since, usual):
    """One turn of a loop that waits for a counter, ``spins`` turns in: returns when the wait
    began to be timed (``since``, 0 before).

    The first ``EAGER_SPINS`` turns do nothing; then each one pauses, and every 16th looks at
    the clock and, from ``usual + SPIN_NS`` ns of timed wait on, yields the CPU.
    """
    if spins < EAGER_SPINS:
        return since
    if since == 0:
        return monotonic_ns()
    spin_pause()
    if spins % 16 == 0 and monotonic_ns() - since > usual + SPIN_NS:
        yield_thread()
    return since


#: Steps in each window of ``note_wait``'s sliding minimum.
WAIT_WINDOW = 16
#: A usual wait not known yet.
UNKNOWN = 1 << 62


@kernel()
def note_wait(waits, waited, step):
    """A member's record of its waits, ``(recent, older, stalled)``, after a wait of ``waited``
    ns at step ``step``. Its usual wait is the shortest of the last one or two windows of
    ``WAIT_WINDOW`` steps: a stall only lengthens a wait, so it does not move it, while a
    longer B (a bigger network) is learnt within a window. A wait longer than the usual one by
    more than ``STALL_NS`` and more than the usual one adds its excess to ``stalled``. The first
    step's (joining) is left out.
    """
    recent, older, stalled = waits
    if step == 1:
        return waits
    usual = min(recent, older)
    if usual < UNKNOWN and waited - usual > max(STALL_NS, usual):
        stalled += waited - usual
    recent = min(recent, waited)
    if step % WAIT_WINDOW == 0:
        older, recent = recent, UNKNOWN
    return recent, older, stalled


@kernel()
def usual_wait(waits):
    """The usual wait of a ``note_wait`` record, in ns (0 while unknown)."""
    usual = min(waits[0], waits[1])
    return usual if usual < UNKNOWN else 0


@kernel()
def waited_since(since):
    """Nanoseconds since ``since`` (0 for a wait that ended within its eager reads)."""
    return monotonic_ns() - since if since else 0


@kernel()
def wait_until(flags, i, value, usual):
    """Wait until ``flags[i] ≥ value``, pausing as ``pause`` says; returns the ns it waited
    beyond its eager reads."""
    spins, since = 0, 0
    while load_acquire(flags, i) < value:
        since = pause(spins, since, usual)
        spins += 1
    return waited_since(since)


@kernel()
def take_over(flags, role, step):
    """Claim step ``step`` of member ``role``'s share for member 0, if that member has not
    claimed it; once it has finished its step before, return whether the claim was made.
    The member then stops (its claim of ``step`` fails) and member 0 does its share."""
    if not compare_exchange(flags, member_slot(role, CLAIMED), step - 1, TAKEN):
        return False
    wait_until(flags, member_slot(role, C_DONE), step - 1, 0)
    return True


@kernel()
def share_blocks(members, role):
    """The blocks of inputs ``c0`` to ``c1`` that member ``role`` of ``members`` does: from
    ``COLUMN_BLOCKS · (members − 1 − role) / members`` up to the next member's, so member 0,
    which also does B, has the last blocks (the last is the shortest when the inputs do not
    divide evenly: 160 of 784 against 208)."""
    c0 = (members - 1 - role) * COLUMN_BLOCKS // members
    c1 = (members - role) * COLUMN_BLOCKS // members
    return c0, c1


@kernel()
def share_inputs(members, role, n_in, width):
    """The inputs ``lo`` to ``hi`` (rows of ``wᵀ``) of member ``role``'s blocks."""
    c0, c1 = share_blocks(members, role)
    return block_bounds(n_in, c0, width)[0], block_bounds(n_in, c1 - 1, width)[1]


@kernel()
def weighted_input_share(wt, x, rows, parts, members, role):
    """Step A for member ``role``'s blocks: their partial sums of z¹ (``parts[c]``)."""
    n_in = x.shape[1]
    width = simd.lanes(wt)
    c0, c1 = share_blocks(members, role)
    for c in range(c0, c1):
        lo, hi = block_bounds(n_in, c, width)
        weighted_input_columns(wt, x, rows, parts[c], lo, hi)


@kernel()
def update_share(delta, x, rows, wt, scale, decay, shrink, ahead, members, role):
    """Step C for member ``role``'s blocks: their rows of ``wᵀ`` weight-decayed (when
    ``decay ≠ 1`` or ``shrink ≠ 0``), then BP4 and the SGD update."""
    n_in = x.shape[1]
    width = simd.lanes(wt)
    c0, c1 = share_blocks(members, role)
    for c in range(c0, c1):
        lo, hi = block_bounds(n_in, c, width)
        if decay != 1 or shrink != 0:
            block = wt[lo:hi]
            regularise_weights(flat(block), decay, shrink)
        accumulate_weight_gradient_columns(delta, x, rows, wt, scale, lo, hi, ahead)


@kernel()
def train_epoch_columns(team, params, model, x, y, order, batch_size, eta, l2, l1, dropout, seed,
                        ws, threads_from, columns, backup, wide):  # fmt: skip
    """``train_epoch`` for the networks ``uses_columns`` names, with layer 1 in columns
    (``columns``: ``column_buffers``), on one thread (``team = 1``) or as one member of a
    team of ``team`` threads that stays together for the whole epoch.

    For a team the caller runs it on ``team`` threads at once (the calling thread and
    ``team − 1`` others; it releases the GIL), all with the same arguments, ``columns``'
    counters zeroed and ``backup`` empty. Each takes a role as it arrives (``arrive``) and does
    its share of every step (A, B, C above, the blocks of ``share_blocks``), which it copies
    from ``w¹`` into ``wᵀ`` (``columns[0]``) at the start and back at the end — unless member 0
    takes it over (``take_over``), which then copies it back. Ordinary threads, not a Numba
    parallel loop: that would compile the epoch a second time, which doubled a first start.
    The weights are bitwise those of one thread: each value is computed by the same kernel in
    the same order, only by another thread, and the dropout masks are drawn by member 0 from
    a generator seeded with ``seed``.

    On one thread, a layer with at least ``threads_from`` multiply-adds per mini-batch runs
    on Numba's threads (``None``: none does; a team gets ``None``): layer 1 by
    ``weighted_input_columns_threaded`` and ``accumulate_weight_gradient_columns_threaded``,
    whose values are those of the blocks one after the other, the others as in
    ``train_epoch``. ``backup`` (one thread only) and the result as for ``train_epoch``.
    ``wide`` is ``None`` when every layer after the first has narrow rows
    (``narrow_after_first``): then only the narrow kernels are compiled for them.
    """
    sizes, offsets, units, _, _, _, _, _, _ = model
    zbuf, _, dbuf, _, own, _, _, _, _, _, _ = ws
    wt, parts, flags = columns
    mode = flush_subnormals()
    members = team
    role = 0 if members == 1 else arrive(flags)
    decay = type(eta)(1.0) - eta * l2
    shrink = eta * l1
    w1, b1 = layer_views(params, sizes, offsets, 1)
    n_in = x.shape[1]
    width = simd.lanes(wt)
    n = order.shape[0]
    failed, layer = -1, -1
    waits = (UNKNOWN, UNKNOWN, 0)  # this member's record of its waits (``note_wait``)
    if role > 0:  # a member: A and C of its share, until the epoch ends or member 0 takes over
        lo, hi = share_inputs(members, role, n_in, width)
        taken = False
        step = 0
        for start in range(0, n, batch_size):
            step += 1
            if not compare_exchange(flags, member_slot(role, CLAIMED), step - 1, step):
                taken = True
                break
            if step == 1:
                rows_to_columns(w1, wt, lo, hi)
            stop = min(start + batch_size, n)
            rows = order[start:stop]
            weighted_input_share(wt, x, rows, parts, members, role)
            store_release(flags, member_slot(role, A_DONE), step)
            waited = wait_until(flags, LINE * B_DONE, step, usual_wait(waits))
            waits = note_wait(waits, waited, step)
            store_release(flags, member_slot(role, STALLED), waits[2])
            m = stop - start
            update_share(
                unit_view(dbuf, sizes, units, 1, m), x, rows, wt, -eta / type(eta)(m), decay,
                shrink, order[stop : min(stop + batch_size, n)], members, role,
            )  # fmt: skip
            store_release(flags, member_slot(role, C_DONE), step)
        if not taken:
            columns_to_rows(wt, w1, lo, hi)
        restore_fp_mode(mode)
        return failed, layer

    # Member 0 (or one thread): its share, the others' shares it took over, and B.
    everyone = (1 << members) - 2  # the bits of members 1, 2, …
    taken = 0
    lo, hi = share_inputs(members, 0, n_in, width)
    rows_to_columns(w1, wt, lo, hi)
    if dropout is not None:
        seed_generator(seed)
    began = monotonic_ns() if members > 1 else 0
    noted = 0  # the stalls that were last compared with the time since the epoch began
    dissolve = False
    step = 0
    for start in range(0, n, batch_size):
        step += 1
        stop = min(start + batch_size, n)
        rows = order[start:stop]
        m = stop - start
        eta_over_m = eta / type(eta)(m)
        ahead = order[stop : min(stop + batch_size, n)]
        if backup.size:
            copy_values(backup, params)
        if dissolve and taken != everyone:
            for r in range(1, members):
                if not taken & (1 << r) and take_over(flags, r, step):
                    taken |= 1 << r
                    if step == 1:
                        r_lo, r_hi = share_inputs(members, r, n_in, width)
                        rows_to_columns(w1, wt, r_lo, r_hi)
        # A: the partial sums of z¹ over this member's blocks of inputs, and those taken over.
        prefetch_rows(y, rows)  # the targets arrive while A computes
        threaded = threads_from is not None and m * wt.size >= threads_from
        if threads_from is not None and threaded:  # (pruned while compiling without threads)
            weighted_input_columns_threaded(wt, x, rows, parts)
        else:
            weighted_input_share(wt, x, rows, parts, members, 0)
        for r in range(1, members):
            if taken & (1 << r):
                weighted_input_share(wt, x, rows, parts, members, r)
        # B: once every member's A is done (a member that has not yet claimed this step after
        # a stall or, at the first step, JOIN_NS is taken over and its A done here).
        waited = 0
        usual = usual_wait(waits)
        for r in range(1, members):
            if taken & (1 << r):
                continue
            spins, since = 0, 0
            patience = JOIN_NS if step == 1 else usual + TAKE_NS
            while load_acquire(flags, member_slot(r, A_DONE)) < step:
                since = pause(spins, since, usual)
                spins += 1
                if (
                    spins % 64 == 0 and since and monotonic_ns() - since > patience
                    and take_over(flags, r, step)
                ):  # fmt: skip
                    taken |= 1 << r
                    if step == 1:
                        r_lo, r_hi = share_inputs(members, r, n_in, width)
                        rows_to_columns(w1, wt, r_lo, r_hi)
                    weighted_input_share(wt, x, rows, parts, members, r)
                    break
            waited += waited_since(since)
        waits = note_wait(waits, waited, step)
        if taken and not load_acquire(flags, LINE * TOOK_OVER):
            store_release(flags, LINE * TOOK_OVER, step)
        delta1 = unit_view(dbuf, sizes, units, 1, m)
        add_partial_sums(b1, parts, unit_view(zbuf, sizes, units, 1, m))
        forward_pass(params, model, x, rows, ws, threads_from, dropout, 2, None, 1, wide)
        backpropagate_errors(params, model, y, rows, ws, None)
        accumulate_bias_gradient(delta1, b1, -eta_over_m)
        if taken != everyone:
            store_release(flags, LINE * B_DONE, step)
        after_first = own[:0]  # no rows of x to prefetch: layers 2 on read aˡ⁻¹
        sgd_step(
            params, model, x, rows, ws, eta_over_m, decay, shrink, threads_from, None,
            after_first, 2, wide,
        )  # fmt: skip
        # C: BP4 and the update of this member's rows of wᵀ (and those taken over), asking
        # for the next rows' values.
        if threads_from is not None and threaded:
            accumulate_weight_gradient_columns_threaded(
                delta1, x, rows, wt, -eta_over_m, decay, shrink, ahead
            )
        else:
            update_share(delta1, x, rows, wt, -eta_over_m, decay, shrink, ahead, members, 0)
        for r in range(1, members):
            if taken & (1 << r):
                update_share(delta1, x, rows, wt, -eta_over_m, decay, shrink, ahead, members, r)
        if backup.size:
            columns_to_rows(wt, w1, lo, hi)
            if not all_finite(params):
                failed, layer = step - 1, first_non_finite_layer(params, model)
                copy_values(params, backup)
                break
        if taken != everyone and not dissolve:
            total = waits[2]  # member 0's stalls and those the members report
            for r in range(1, members):
                total += load_acquire(flags, member_slot(r, STALLED))
            if total > noted:
                noted = total
                dissolve = total > STALL_LEAST and STALL_PART * total > monotonic_ns() - began
    if failed < 0:
        columns_to_rows(wt, w1, lo, hi)
        for r in range(1, members):
            if taken & (1 << r):
                r_lo, r_hi = share_inputs(members, r, n_in, width)
                columns_to_rows(wt, w1, r_lo, r_hi)
    restore_fp_mode(mode)
    return failed, layer


# --- optimisers and gradient clipping (the general training path) -----------------------

SGD, MOMENTUM, NESTEROV, ADAM = 0, 1, 2, 3

# ``inline``: one compiled copy in ``train_epoch_general``, the same whether it was compiled
# or loaded from the cache (see ``_config.kernel``).


@kernel(inline=True)
def add_regularisation_gradient(params, model, grad, l2, l1):
    """Add the penalties' gradient to the weights' part of ``grad``: ``+ l2·w + l1·sgn(w)``
    (``l2 = λ/n``, ``l1 = λ₁/n``; biases are not regularised)."""
    sizes, offsets, _, _, _, _, _, _, _ = model
    zero = l2 - l2
    for l in range(1, sizes.shape[0]):
        w, _ = layer_views(params, sizes, offsets, l)
        g, _ = layer_views(grad, sizes, offsets, l)
        wf = flat(w)
        gf = flat(g)
        for i in range(wf.shape[0]):
            v = wf[i]
            gf[i] += l2 * v + (l1 if v > zero else (-l1 if v < zero else zero))


@kernel(inline=True)
def clip_gradient(grad, max_norm, max_value):
    """Clip a mini-batch's gradient: each component to ``[−max_value, max_value]``, then the
    whole vector to global norm ``max_norm`` (``g ← g · max_norm/‖g‖`` when ``‖g‖`` is larger;
    a gradient under the bound is left exactly as it is). A bound of 0 means none."""
    zero = max_norm - max_norm
    if max_value > zero:
        for i in range(grad.shape[0]):
            grad[i] = min(max(grad[i], -max_value), max_value)
    if max_norm > zero:
        total = zero
        for i in range(grad.shape[0]):
            total += grad[i] * grad[i]
        norm = np.sqrt(total)
        if norm > max_norm:
            scale = max_norm / norm
            for i in range(grad.shape[0]):
                grad[i] *= scale


@kernel(inline=True)
def optimizer_step(params, grad, state, optimizer, eta, hyper, t):
    """One step of the optimiser on the flat buffers, ``grad`` being the mean gradient ``g``.

    - SGD: ``θ ← θ − η g``;
    - momentum (the book's chapter 3): ``v ← μ v − η g``, ``θ ← θ + v``;
    - Nesterov: ``v' = μ v − η g``, ``θ ← θ − μ v + (1 + μ) v'`` (the look-ahead form, with
      ``g`` taken at ``θ``), ``v ← v'``;
    - Adam: ``m ← β₁ m + (1 − β₁) g``, ``s ← β₂ s + (1 − β₂) g²``,
      ``θ ← θ − η m̂ / (√ŝ + ε)`` with ``m̂ = m/(1 − β₁ᵗ)``, ``ŝ = s/(1 − β₂ᵗ)``.

    ``hyper = (μ, β₁, β₂, ε)``; ``state[0]`` holds ``v`` or ``m``, ``state[1]`` holds ``s``;
    ``t`` is the 1-based step number (Adam's bias correction).
    """
    one = type(eta)(1.0)
    mu, beta1, beta2, eps = hyper[0], hyper[1], hyper[2], hyper[3]
    if optimizer == SGD:
        for i in range(params.shape[0]):
            params[i] -= eta * grad[i]
    elif optimizer == MOMENTUM:
        v = state[0]
        for i in range(params.shape[0]):
            v[i] = mu * v[i] - eta * grad[i]
            params[i] += v[i]
    elif optimizer == NESTEROV:
        v = state[0]
        for i in range(params.shape[0]):
            new = mu * v[i] - eta * grad[i]
            params[i] += -mu * v[i] + (one + mu) * new
            v[i] = new
    else:
        m, s = state[0], state[1]
        c1 = one - beta1 ** type(eta)(t)
        c2 = one - beta2 ** type(eta)(t)
        for i in range(params.shape[0]):
            g = grad[i]
            m[i] = beta1 * m[i] + (one - beta1) * g
            s[i] = beta2 * s[i] + (one - beta2) * g * g
            params[i] -= eta * (m[i] / c1) / (np.sqrt(s[i] / c2) + eps)


@kernel()
def train_epoch_general(
    params, model, x, y, order, batch_size, eta, l2, l1, dropout, seed, ws, grad, state,
    optimizer, hyper, clip, t0, threads_from, backup, state_backup, extras,
):  # fmt: skip
    """One epoch with an optimiser, regularisation as a gradient term, and clipping.

    For each mini-batch of ``m`` samples: ``grad = (1/m) Σₓ ∇Cₓ`` (``forward_pass``,
    ``backpropagate_errors``, ``accumulate_gradient`` with scale ``1/m``), plus the penalties'
    gradient, clipped (``clip = (max_norm, max_value)``), then ``optimizer_step``. ``t0`` is
    the number of steps taken before this epoch. Returns the number of steps after it and, as
    ``train_epoch`` (whose ``backup`` replay this shares, with ``state_backup`` for the
    optimiser's state), the first non-finite mini-batch and layer, or -1 and -1. The other
    arguments are ``train_epoch``'s.
    """
    n = order.shape[0]
    t = t0
    one = type(eta)(1.0)
    seed_generator(seed)
    for batch, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        rows = order[start:stop]
        if backup.size:
            copy_values(backup, params)
            copy_values(state_backup, state)
        grad[:] = 0
        forward_pass(params, model, x, rows, ws, threads_from, dropout, 2, extras, 0, True)
        backpropagate_errors(params, model, y, rows, ws, extras)
        ahead = order[stop : min(stop + batch_size, n)]  # prefetched during this step
        scale = one / type(eta)(stop - start)
        accumulate_gradient(model, x, rows, ws, grad, scale, threads_from, extras, ahead, 1, True)
        if l2 != 0 or l1 != 0:
            add_regularisation_gradient(params, model, grad, l2, l1)
        clip_gradient(grad, clip[0], clip[1])
        t += 1
        optimizer_step(params, grad, state, optimizer, eta, hyper, t)
        if backup.size and not all_finite(params):
            layer = first_non_finite_layer(params, model)
            copy_values(params, backup)
            copy_values(state, state_backup)
            return t - 1, batch, layer
    return t, -1, -1


@kernel()
def first_non_finite_layer(params, model):
    """The first layer (1-based) whose parameters are not all finite, or -1."""
    sizes, offsets, _, _, _, _, _, _, _ = model
    for l in range(1, sizes.shape[0]):
        if not all_finite(params[offsets[l - 1] : offsets[l]]):
            return l
    return -1


@kernel()
def all_finite(a):
    """Whether every value of ``a`` is finite: ``Σ a·0`` is 0, or NaN if any value is NaN or
    ±∞ (a sum the compiler can vectorise, unlike a loop that stops at the first bad value)."""
    values = flat(a)
    zero = type(values[0])(0.0)
    s = values[0] * zero
    for i in range(values.shape[0]):
        s += values[i] * zero
    return s == zero


@kernel(parallel=True)
def batch_gradient(params, model, x, y, slices, grad_slices, extras):
    """Summed gradient ``Σₓ ∇Cₓ`` over all rows of ``x``, split over threads without races.

    The rows are cut into ``len(slices) - 1`` contiguous slices (``slices`` holds their
    bounds); slice ``s`` sums its own samples into its own buffer ``grad_slices[s]``, in
    blocks of ``BLOCK_ROWS``. The caller adds the slices up in order, so the result does not
    depend on the thread count. ``extras`` as for ``forward_pass``.
    """
    sizes, _, units, _, _, _, _, _, _ = model
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


#: Rows per block of ``feedforward``: a multiple of ten, the samples of each pass of
#: ``weighted_input_columns`` (a partial group of ten costs a whole one).
FEEDFORWARD_ROWS = 160


@kernel(parallel=True)
def feedforward(params, model, x, out, finite, extras, wt):
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
    in cache).
    """
    n = x.shape[0]
    n_blocks = (n + FEEDFORWARD_ROWS - 1) // FEEDFORWARD_ROWS
    sizes, offsets, units, _, _, _, _, _, _ = model
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
            add_partial_sums(b1, parts, unit_view(ws[0], sizes, units, 1, stop - start))
            done = 1
        forward_pass(params, model, x, rows, ws, None, None, 0, extras, done, True)
        out[start:stop] = unit_view(ws[1], sizes, units, last, stop - start)
        finite[blk] = all_finite(unit_view(ws[0], sizes, units, 1, stop - start))
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
