"""CPU kernels: the equations of backpropagation, each a compiled Numba function.

Notation follows Nielsen, *Neural Networks and Deep Learning*, chapter 2. Layer ``l`` has
weights ``w`` of shape ``(n_out, n_in)`` and biases ``b`` of shape ``(n_out,)``. A mini-batch
is held as rows: ``a[k]`` is the activation of sample ``k``. Kernels that read the network's
input take the data matrix ``x`` and ``rows``, the indices of the mini-batch's samples in it,
so a shuffled epoch never copies the data.

All parameters live in one flat buffer ``params``; layer ``l`` (1-based, ``l = 1 .. L-1``)
occupies ``params[offsets[l - 1]:offsets[l]]``: its weights row by row, then its biases.
Gradients use the same layout, so an update is one operation over the whole buffer.

Kernels never validate: the ``Network`` class checks shapes, dtypes and values first, and
passes C-contiguous arrays of one floating dtype and scalars of that same dtype.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._config import kernel

#: Mini-batches of at least this many rows use BLAS for the matrix products (measured on a
#: 2-core x86-64: at 10 rows the compiled loops run the 784→30 product at 65 GFLOP/s against
#: 28 for BLAS; at 100 rows BLAS runs at 140–170 against 55–85). BLAS is never called inside a
#: parallel region, where it would oversubscribe the cores.
BLAS_MIN_ROWS = 32

#: Rows per block in the parallel kernels. A fixed number, so that how the work is split, and
#: so every rounding, does not depend on the number of threads.
BLOCK_ROWS = 64


# --- activation ---------------------------------------------------------------------------


@kernel()
def sigmoid_scalar(z):
    """σ(z) = 1 / (1 + e⁻ᶻ), evaluated without overflow.

    For ``z < 0`` it uses the equal form ``eᶻ / (1 + eᶻ)``, so ``exp`` only ever sees
    a non-positive argument: no overflow and no NaN for any finite ``z``.
    """
    one = type(z)(1.0)
    e = np.exp(-np.abs(z))
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


@kernel()
def sigmoid_prime_scalar(z):
    """σ'(z) = σ(z) (1 − σ(z)), evaluated as ``e / (1 + e)²`` with ``e = e^(−|z|)``.

    The product form loses all relative precision where σ(z) rounds near 1 (``1 − σ`` cancels);
    this form is exact to rounding for every ``z`` and never overflows or gives NaN.
    """
    e = np.exp(-np.abs(z))
    d = type(z)(1.0) + e
    return e / (d * d)


@kernel()
def sigmoid(z, out):
    """Element-wise activation ``out = σ(z)`` (``out`` may be ``z``)."""
    zf = z.ravel()
    of = out.ravel()
    for i in range(zf.shape[0]):
        of[i] = sigmoid_scalar(zf[i])


@kernel()
def sigmoid_prime(z, out):
    """Element-wise derivative ``out = σ'(z) = σ(z) (1 − σ(z))``."""
    zf = z.ravel()
    of = out.ravel()
    for i in range(zf.shape[0]):
        of[i] = sigmoid_prime_scalar(zf[i])


# --- forward pass -------------------------------------------------------------------------


@kernel()
def gather_rows(a, rows):
    """The mini-batch ``a[rows]`` as a new C-contiguous array (for the BLAS path)."""
    out = np.empty((rows.shape[0], a.shape[1]), dtype=a.dtype)
    for k in range(rows.shape[0]):
        out[k] = a[rows[k]]
    return out


@kernel()
def weighted_input(w, b, a, rows, z, use_blas):
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
    use_blas : bool
        Compute the product with BLAS (``np.dot``) rather than with the compiled loop. BLAS
        is faster from a few dozen rows up, the loop below that (see ``BLAS_MIN_ROWS``).
    """
    n_out, n_in = w.shape
    if use_blas:
        np.dot(gather_rows(a, rows), w.T, z)
        for k in range(rows.shape[0]):
            for j in range(n_out):
                z[k, j] += b[j]
        return
    for k in range(rows.shape[0]):
        ak = a[rows[k]]
        for j in range(n_out):
            wj = w[j]
            s = b[j]
            for i in range(n_in):
                s += wj[i] * ak[i]
            z[k, j] = s


# --- the four equations of backpropagation ------------------------------------------------


@kernel()
def output_error_quadratic(a, y, rows, z, delta):
    """BP1 with the quadratic cost: ``δᴸ = ∇ₐC ⊙ σ'(zᴸ)``, where ``∇ₐC = a − y``.

    ``C = 1/(2n) Σₓ ‖y(x) − aᴸ(x)‖²``. Targets of the mini-batch are ``y[rows]``;
    ``delta[k, j] = (a[k, j] − y[rows[k], j]) σ'(z[k, j])``.
    """
    m, n = delta.shape
    for k in range(m):
        yk = y[rows[k]]
        for j in range(n):
            delta[k, j] = (a[k, j] - yk[j]) * sigmoid_prime_scalar(z[k, j])


@kernel()
def backpropagate_error(w_next, delta_next, z, delta, use_blas):
    """BP2: ``δˡ = ((wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ'(zˡ)``, the error of layer ``l`` from that of ``l + 1``.

    ``delta[k, i] = (Σⱼ w_next[j, i] delta_next[k, j]) σ'(z[k, i])``; with ``use_blas`` the
    product ``δˡ⁺¹ wˡ⁺¹`` is one ``np.dot``.
    """
    m, n = delta.shape
    n_next = w_next.shape[0]
    if use_blas:
        np.dot(delta_next, w_next, delta)
        for k in range(m):
            for i in range(n):
                delta[k, i] *= sigmoid_prime_scalar(z[k, i])
        return
    zero = delta.dtype.type(0.0)
    for k in range(m):
        dk = delta[k]
        for i in range(n):
            dk[i] = zero
        for j in range(n_next):
            d = delta_next[k, j]
            wj = w_next[j]
            for i in range(n):
                dk[i] += d * wj[i]
        for i in range(n):
            dk[i] *= sigmoid_prime_scalar(z[k, i])


@kernel()
def accumulate_bias_gradient(delta, nabla_b):
    """BP3 summed over the mini-batch: ``∂C/∂bˡ += Σₖ δˡ[k]``."""
    m, n = delta.shape
    for k in range(m):
        for j in range(n):
            nabla_b[j] += delta[k, j]


@kernel()
def accumulate_weight_gradient(delta, a, rows, nabla_w, use_blas):
    """BP4 summed over the mini-batch: ``∂C/∂wˡ += Σₖ δˡ[k] (aˡ⁻¹[rows[k]])ᵀ``.

    The sum of outer products, ``nabla_w[j, i] += Σₖ delta[k, j] a[rows[k], i]``, which is
    the matrix product ``δᵀ a`` (one ``np.dot`` with ``use_blas``).
    """
    m, n_out = delta.shape
    n_in = nabla_w.shape[1]
    if use_blas:
        nabla_w += np.dot(delta.T, gather_rows(a, rows))
        return
    for j in range(n_out):
        gj = nabla_w[j]
        for k in range(m):
            d = delta[k, j]
            ak = a[rows[k]]
            for i in range(n_in):
                gj[i] += d * ak[i]


@kernel()
def sgd_step(params, grad, scale):
    """Gradient-descent step on the flat buffer: ``θ ← θ − scale · ∇θ``.

    With ``scale = η/m`` and ``grad = Σₓ ∂Cₓ/∂θ`` over a mini-batch of ``m`` samples this is
    the book's ``w ← w − (η/m) Σₓ ∂Cₓ/∂w`` and ``b ← b − (η/m) Σₓ ∂Cₓ/∂b``, for every layer
    at once.
    """
    for i in range(params.shape[0]):
        params[i] -= scale * grad[i]


# --- whole passes over the layers ----------------------------------------------------------


@kernel()
def layer_views(params, sizes, offsets, l):
    """Views ``(w, b)`` of layer ``l`` (1-based) in the flat buffer ``params``."""
    n_out = sizes[l]
    n_in = sizes[l - 1]
    start = offsets[l - 1]
    w = params[start : start + n_out * n_in].reshape((n_out, n_in))
    b = params[start + n_out * n_in : offsets[l]]
    return w, b


@kernel()
def unit_view(buf, sizes, units, l, m):
    """View of layer ``l``'s rows for ``m`` samples in a per-unit work buffer.

    ``buf`` holds, for each layer ``l ≥ 1``, room for ``capacity`` rows of ``sizes[l]``
    values, where ``capacity = buf.size // units[-1]``.
    """
    capacity = buf.shape[0] // units[-1]
    start = capacity * units[l - 1]
    return buf[start : start + m * sizes[l]].reshape((m, sizes[l]))


@kernel()
def forward_pass(params, sizes, offsets, units, x, rows, zbuf, abuf, use_blas):
    """Feed the mini-batch ``x[rows]`` forward: ``zˡ = wˡ aˡ⁻¹ + bˡ``, ``aˡ = σ(zˡ)``.

    Every layer's ``z`` and ``a`` are left in ``zbuf`` and ``abuf`` (see ``unit_view``).
    """
    m = rows.shape[0]
    own = np.arange(m)
    for l in range(1, sizes.shape[0]):
        w, b = layer_views(params, sizes, offsets, l)
        z = unit_view(zbuf, sizes, units, l, m)
        if l == 1:
            weighted_input(w, b, x, rows, z, use_blas)
        else:
            weighted_input(w, b, unit_view(abuf, sizes, units, l - 1, m), own, z, use_blas)
        sigmoid(z, unit_view(abuf, sizes, units, l, m))


@kernel()
def backward_pass(params, sizes, offsets, units, x, y, rows, zbuf, abuf, dbuf, grad, use_blas):
    """Backpropagate the mini-batch ``x[rows]`` and add its summed gradient to ``grad``.

    Runs ``forward_pass``, then BP1 for the output layer, BP2 down to layer 1, and BP3/BP4
    into ``grad`` (same layout as ``params``). Every ``δˡ`` is left in ``dbuf``.
    """
    m = rows.shape[0]
    own = np.arange(m)
    n_layers = sizes.shape[0]
    forward_pass(params, sizes, offsets, units, x, rows, zbuf, abuf, use_blas)
    last = n_layers - 1
    output_error_quadratic(
        unit_view(abuf, sizes, units, last, m),
        y,
        rows,
        unit_view(zbuf, sizes, units, last, m),
        unit_view(dbuf, sizes, units, last, m),
    )
    for l in range(last, 0, -1):
        delta = unit_view(dbuf, sizes, units, l, m)
        if l < last:
            w_next, _ = layer_views(params, sizes, offsets, l + 1)
            backpropagate_error(
                w_next,
                unit_view(dbuf, sizes, units, l + 1, m),
                unit_view(zbuf, sizes, units, l, m),
                delta,
                use_blas,
            )
        nabla_w, nabla_b = layer_views(grad, sizes, offsets, l)
        accumulate_bias_gradient(delta, nabla_b)
        if l == 1:
            accumulate_weight_gradient(delta, x, rows, nabla_w, use_blas)
        else:
            accumulate_weight_gradient(
                delta, unit_view(abuf, sizes, units, l - 1, m), own, nabla_w, use_blas
            )


@kernel()
def train_epoch(
    params, sizes, offsets, units, x, y, order, batch_size, eta, zbuf, abuf, dbuf, grad
):
    """One epoch of mini-batch SGD, entirely in compiled code.

    The samples are visited in the order ``order`` (a permutation of the rows of ``x``),
    ``batch_size`` at a time; a last, smaller mini-batch is trained on, not dropped. For each
    mini-batch of ``m`` samples: ``grad = Σₓ ∇Cₓ`` by ``backward_pass``, then
    ``sgd_step(params, grad, η/m)``.
    """
    n = order.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        grad[:] = 0
        rows = order[start:stop]
        use_blas = stop - start >= BLAS_MIN_ROWS
        backward_pass(params, sizes, offsets, units, x, y, rows, zbuf, abuf, dbuf, grad, use_blas)
        sgd_step(params, grad, eta / type(eta)(stop - start))


@kernel(parallel=True)
def batch_gradient(params, sizes, offsets, units, x, y, slices, grad_slices):
    """Summed gradient ``Σₓ ∇Cₓ`` over all rows of ``x``, split over threads without races.

    The rows are cut into ``len(slices) - 1`` contiguous slices (``slices`` holds their
    bounds); slice ``s`` sums its own samples into its own buffer ``grad_slices[s]``, in
    blocks of ``BLOCK_ROWS``. The caller adds the slices up in order, so the result does not
    depend on the thread count.
    """
    n_slices = slices.shape[0] - 1
    total_units = units[-1]
    for s in prange(n_slices):
        g = grad_slices[s]
        g[:] = 0
        zbuf = np.empty(BLOCK_ROWS * total_units, dtype=params.dtype)
        abuf = np.empty_like(zbuf)
        dbuf = np.empty_like(zbuf)
        for start in range(slices[s], slices[s + 1], BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, slices[s + 1])
            rows = np.arange(start, stop)
            backward_pass(params, sizes, offsets, units, x, y, rows, zbuf, abuf, dbuf, g, False)


@kernel(parallel=True)
def feedforward(params, sizes, offsets, units, x, out):
    """Output activations ``out = aᴸ`` for every row of ``x``, in parallel blocks of rows.

    Each block of ``BLOCK_ROWS`` rows is computed by one thread into its own rows of ``out``.
    """
    n = x.shape[0]
    n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    total_units = units[-1]
    last = sizes.shape[0] - 1
    for blk in prange(n_blocks):
        start = blk * BLOCK_ROWS
        stop = min(start + BLOCK_ROWS, n)
        zbuf = np.empty(BLOCK_ROWS * total_units, dtype=params.dtype)
        abuf = np.empty_like(zbuf)
        forward_pass(params, sizes, offsets, units, x, np.arange(start, stop), zbuf, abuf, False)
        out[start:stop] = unit_view(abuf, sizes, units, last, stop - start)
