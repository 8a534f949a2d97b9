"""CUDA kernels: the equations of backpropagation as ``@cuda.jit`` kernels for NVIDIA GPUs.

The same equations as the CPU kernels of ``fastbp.kernels``, on the same layouts: one flat
parameter buffer, layer ``l``'s weights ``(n_out, n_in)`` row by row, then its biases; a
mini-batch held as rows (``a[s]`` is sample ``s``'s activation). The scalar activation
functions are the CPU module's own Python source compiled a second time by ``cuda.jit``
(``_device_function``), so both devices evaluate one definition of each ``f`` and ``f'``.

This module is imported only when a network is put on ``device="cuda"``: ``import fastbp``
needs neither a GPU, nor the CUDA toolkit, nor numba-cuda.

The matrix kernels give each thread one element of the result and walk the inner dimension in
``TILE × TILE`` tiles through shared memory, always in the same order; every reduction has a
fixed shape. No result depends on how blocks are scheduled, so one seed gives bitwise the same
weights on one GPU run after run. The host functions at the end launch the kernels: a
training epoch is a loop of launches over data, parameters and optimiser state that stay in
device memory, with no copy to or from the host per mini-batch.
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np
from numba import cuda

from . import kernels
from .kernels.codes import ADAM, MOMENTUM, NESTEROV, QUADRATIC, RMSPROP, SGD, SOFTMAX
from .layout import Layout

#: Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs each GPU thread as a Python
#: thread: there the blocks and chunks below are made small, so that tests reach several
#: blocks, partial tiles and several chunks with tiny shapes in seconds. The code is the same.
SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
#: Side of the square tiles of the matrix kernels (threads per block: ``TILE²``).
TILE = 4 if SIMULATOR else 16
#: Threads per block of the element-wise kernels (a power of 2: ``partial_sums_of_squares``
#: halves it).
THREADS = 16 if SIMULATOR else 256
#: Row length of the shared tiles: one more than ``TILE``, so that a tile read by columns
#: falls in different memory banks.
PADDED = TILE + 1
#: Blocks of the sum-of-squares reduction: a fixed number, so the order of the additions, and
#: so the rounding, is the same on every GPU.
REDUCE_BLOCKS = 4 if SIMULATOR else 64
#: Largest number of rows ``feedforward`` and ``gradient_sum`` take in one pass.
CHUNK_ROWS = 8 if SIMULATOR else 8192


def _device_function(cpu_kernel, **callees):
    """The CUDA device function of one of ``kernels``' scalar kernels: the same Python source,
    compiled by ``cuda.jit(device=True)``, with the scalar kernels it calls (``callees``, by
    name) replaced by their CUDA versions."""
    f = cpu_kernel.py_func
    namespace = {**f.__globals__, **callees}
    source = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    source.__doc__ = f.__doc__
    return cuda.jit(device=True)(source)


sigmoid_and_prime = _device_function(kernels.sigmoid_and_prime)
activation_and_derivative = _device_function(
    kernels.activation_and_derivative, sigmoid_and_prime=sigmoid_and_prime
)


@cuda.jit(device=True)
def tile_product(left, right, i, j, inner, left_t, right_t, tl, tr):
    """``Σₖ L[i, k] R[k, j]`` for ``k < inner``, through the block's shared tiles ``tl``, ``tr``.

    ``L[i, k]`` is ``left[i, k]``, or ``left[k, i]`` when ``left_t``; ``R[k, j]`` is
    ``right[k, j]``, or ``right[j, k]`` when ``right_t``. Thread ``(x, y)`` of the block
    computes ``i = block row + y``, ``j = block column + x``; each tile is read from global
    memory along its rows (coalesced) whichever the orientation. Every thread of the block
    must call it (it synchronises), also those whose ``(i, j)`` lies outside the result.
    """
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    bi = i - ty
    bj = j - tx
    zero = type(tl[0, 0])(0.0)
    acc = zero
    for t0 in range(0, inner, TILE):
        if left_t:  # L[bi + tx, t0 + ty] = left[t0 + ty, bi + tx]
            r = t0 + ty
            c = bi + tx
            tl[tx, ty] = left[r, c] if r < inner and c < left.shape[1] else zero
        else:
            r = bi + ty
            c = t0 + tx
            tl[ty, tx] = left[r, c] if r < left.shape[0] and c < inner else zero
        if right_t:  # R[t0 + tx, bj + ty] = right[bj + ty, t0 + tx]
            r = bj + ty
            c = t0 + tx
            tr[tx, ty] = right[r, c] if r < right.shape[0] and c < inner else zero
        else:
            r = t0 + ty
            c = bj + tx
            tr[ty, tx] = right[r, c] if r < inner and c < right.shape[1] else zero
        cuda.syncthreads()
        for kk in range(TILE):
            acc += tl[ty, kk] * tr[kk, tx]
        cuda.syncthreads()
    return acc


# --- the forward pass -------------------------------------------------------------------------


@cuda.jit
def gather_rows(x, order, start, out):
    """The mini-batch's inputs: ``out[s] = x[order[start + s]]`` (an epoch's shuffle is an
    index on the device; the data itself is never moved)."""
    k, s = cuda.grid(2)
    if s < out.shape[0] and k < out.shape[1]:
        out[s, k] = x[order[start + s], k]


@cuda.jit
def weighted_input(w, b, a_in, z, a, da, kind, alpha):
    """The weighted input ``z = w a + b``, then the activation ``a = f(z)`` and ``da = f'(z)``.

    ``z[s, j] = Σₖ w[j, k] a_in[s, k] + b[j]``; ``f`` is the activation ``kind``
    (``activation_and_derivative``). For a softmax layer only ``z`` is written here:
    ``softmax_rows`` finishes the layer.
    """
    tl = cuda.shared.array((TILE, PADDED), dtype=z.dtype)
    tr = cuda.shared.array((TILE, PADDED), dtype=z.dtype)
    j, s = cuda.grid(2)
    acc = tile_product(a_in, w, s, j, w.shape[1], False, True, tl, tr)
    if s < z.shape[0] and j < z.shape[1]:
        v = acc + b[j]
        z[s, j] = v
        if kind != SOFTMAX:
            a[s, j], da[s, j] = activation_and_derivative(v, kind, alpha)


@cuda.jit
def softmax_rows(z, a, da):
    """Softmax of each row, ``a_j = e^(z_j − max z) / Σᵢ e^(z_i − max z)``, one thread a row;
    ``da = 0`` (the Jacobian is not diagonal: ``output_error`` handles it)."""
    s = cuda.grid(1)
    if s < z.shape[0]:
        n = z.shape[1]
        top = z[s, 0]
        for j in range(1, n):
            top = max(top, z[s, j])
        total = z[s, 0] - z[s, 0]
        for j in range(n):
            e = math.exp(z[s, j] - top)
            a[s, j] = e
            total += e
            da[s, j] = total - total
        for j in range(n):
            a[s, j] /= total


# --- backpropagation --------------------------------------------------------------------------


@cuda.jit
def output_error(a, y, order, start, da, delta, cost, kind):
    """BP1: the output error ``δᴸ = ∇ₐC ⊙ f'(zᴸ)`` for targets ``y[order[start + s]]``.

    - quadratic cost: ``δᴸ = (a − y) ⊙ f'(zᴸ)``; with a softmax output
      ``δ_j = a_j (g_j − Σᵢ gᵢ aᵢ)``, ``g = a − y``;
    - cross-entropy (sigmoid output) and log-likelihood (softmax output): ``δᴸ = a − y``.
    """
    j, s = cuda.grid(2)
    if s < delta.shape[0] and j < delta.shape[1]:
        ys = y[order[start + s]]
        g = a[s, j] - ys[j]
        if cost != QUADRATIC:
            delta[s, j] = g
        elif kind == SOFTMAX:
            dot = g - g
            for i in range(delta.shape[1]):
                dot += (a[s, i] - ys[i]) * a[s, i]
            delta[s, j] = a[s, j] * (g - dot)
        else:
            delta[s, j] = g * da[s, j]


@cuda.jit
def backpropagate_error(w_next, delta_next, da, delta):
    """BP2: ``δˡ = ((wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ f'(zˡ)``:
    ``delta[s, k] = (Σⱼ delta_next[s, j] w_next[j, k]) · da[s, k]``."""
    tl = cuda.shared.array((TILE, PADDED), dtype=delta.dtype)
    tr = cuda.shared.array((TILE, PADDED), dtype=delta.dtype)
    k, s = cuda.grid(2)
    acc = tile_product(delta_next, w_next, s, k, w_next.shape[0], False, False, tl, tr)
    if s < delta.shape[0] and k < delta.shape[1]:
        delta[s, k] = acc * da[s, k]


@cuda.jit
def accumulate_gradient(delta, a_in, grad_w, grad_b, scale, add):
    """BP3 and BP4 summed over the mini-batch, times ``scale``:
    ``∂C/∂w = δ aᵀ``: ``grad_w[j, k] = scale Σₛ delta[s, j] a_in[s, k]``, and
    ``∂C/∂b = δ``: ``grad_b[j] = scale Σₛ delta[s, j]``. With ``add`` the sums are added to
    the gradient already there (a batch taken in chunks), else they replace it.

    The grid has one column more than ``grad_w``: its threads sum the biases' part.
    """
    tl = cuda.shared.array((TILE, PADDED), dtype=delta.dtype)
    tr = cuda.shared.array((TILE, PADDED), dtype=delta.dtype)
    k, j = cuda.grid(2)
    acc = tile_product(delta, a_in, j, k, delta.shape[0], True, False, tl, tr)
    n_out, n_in = grad_w.shape
    if j < n_out and k < n_in:
        v = scale * acc
        grad_w[j, k] = grad_w[j, k] + v if add else v
    elif j < n_out and k == n_in:
        total = delta[0, j]
        for s in range(1, delta.shape[0]):
            total += delta[s, j]
        v = scale * total
        grad_b[j] = grad_b[j] + v if add else v


# --- the update -------------------------------------------------------------------------------


@cuda.jit
def regularise_and_clip(params, grad, decay, l2, l1, max_value):
    """The penalties' gradient and clipping by value, element-wise on the flat buffers:
    ``g ← g + l2·w + l1·sgn(w)`` where ``decay`` is 1 (the weights; biases are not
    regularised), then ``g ← min(max(g, −max_value), max_value)`` when ``max_value > 0``."""
    i = cuda.grid(1)
    if i < grad.shape[0]:
        g = grad[i]
        zero = g - g
        if decay[i] != zero:
            w = params[i]
            g += l2 * w + (l1 if w > zero else (-l1 if w < zero else zero))
        if max_value > zero:
            g = min(max(g, -max_value), max_value)
        grad[i] = g


@cuda.jit
def partial_sums_of_squares(g, partial):
    """``partial[b] = Σ g[i]²`` over block ``b``'s share of ``g`` (a grid-stride loop, then a
    tree in shared memory): the first stage of ``‖g‖``."""
    cache = cuda.shared.array(THREADS, dtype=g.dtype)
    t = cuda.threadIdx.x
    total = type(cache[0])(0.0)
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        total += g[i] * g[i]
    cache[t] = total
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            cache[t] += cache[t + step]
        cuda.syncthreads()
        step //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = cache[0]


@cuda.jit
def clip_scale(partial, max_norm, scale):
    """``scale[0] = max_norm / ‖g‖`` when ``‖g‖ = √(Σ partial) > max_norm``, else 1 (a
    gradient under the bound is left exactly as it is). One thread."""
    if cuda.grid(1) == 0:
        total = partial[0]
        for b in range(1, partial.shape[0]):
            total += partial[b]
        norm = math.sqrt(total)
        one = type(max_norm)(1.0)
        scale[0] = max_norm / norm if norm > max_norm else one


@cuda.jit
def optimizer_step(params, grad, state, optimizer, eta, hyper, c1, c2, scale, clipped):
    """One optimiser step on the flat buffers with the mean gradient ``g = grad``, or
    ``g = scale[0] · grad`` when ``clipped`` (``scale`` from ``clip_scale``), as
    ``kernels.optimizer_step``:

    - SGD: ``θ ← θ − η g``;
    - momentum: ``v ← μ v − η g``, ``θ ← θ + v``;
    - Nesterov: ``v' = μ v − η g``, ``θ ← θ − μ v + (1 + μ) v'``, ``v ← v'``;
    - Adam: ``m ← β₁ m + (1 − β₁) g``, ``s ← β₂ s + (1 − β₂) g²``,
      ``θ ← θ − η (m/c₁) / (√(s/c₂) + ε)`` with ``c₁ = 1 − β₁ᵗ``, ``c₂ = 1 − β₂ᵗ``;
    - RMSprop: ``s ← ρ s + (1 − ρ) g²``, ``θ ← θ − η g / (√s + ε)``.

    ``hyper = (μ, β₁, β₂, ε, ρ)`` (the fields of ``kernels.Hyper``); ``state[0]`` holds ``v``,
    ``m`` or RMSprop's ``s``, ``state[1]`` Adam's ``s``.
    """
    i = cuda.grid(1)
    if i < params.shape[0]:
        g = grad[i] * scale[0] if clipped else grad[i]
        one = type(eta)(1.0)
        if optimizer == SGD:
            params[i] -= eta * g
        elif optimizer == MOMENTUM:
            v = hyper[0] * state[0, i] - eta * g
            state[0, i] = v
            params[i] += v
        elif optimizer == NESTEROV:
            mu = hyper[0]
            new = mu * state[0, i] - eta * g
            params[i] += -mu * state[0, i] + (one + mu) * new
            state[0, i] = new
        elif optimizer == ADAM:
            beta1, beta2, eps = hyper[1], hyper[2], hyper[3]
            m = beta1 * state[0, i] + (one - beta1) * g
            s = beta2 * state[1, i] + (one - beta2) * g * g
            state[0, i] = m
            state[1, i] = s
            params[i] -= eta * (m / c1) / (math.sqrt(s / c2) + eps)
        elif optimizer == RMSPROP:
            rho, eps = hyper[4], hyper[3]
            s = rho * state[0, i] + (one - rho) * g * g
            state[0, i] = s
            params[i] -= eta * g / (math.sqrt(s) + eps)


@cuda.jit
def flag_non_finite(a, flag):
    """``flag[0] = 1`` if any element of ``a`` is NaN or infinite (left alone otherwise)."""
    i = cuda.grid(1)
    if i < a.shape[0] and not math.isfinite(a[i]):
        flag[0] = 1


# --- launches ---------------------------------------------------------------------------------


def _tiles(cols: int, rows: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Launch configuration of a matrix kernel over a ``rows × cols`` result."""
    return (-(-cols // TILE), -(-rows // TILE)), (TILE, TILE)


def _line(n: int) -> tuple[int, int]:
    """Launch configuration of an element-wise kernel over ``n`` elements."""
    return max(1, -(-n // THREADS)), THREADS


class Buffers:
    """Per-layer activations ``a`` (``a[0]``: the gathered input rows), derivatives ``da``,
    weighted inputs ``z`` and errors ``delta`` of up to ``rows`` samples, in device memory."""

    def __init__(self, sizes: list[int], rows: int, dtype: np.dtype) -> None:
        self.rows = rows
        self.a = [cuda.device_array((rows, n), dtype=dtype) for n in sizes]
        self.z = [None, *(cuda.device_array((rows, n), dtype=dtype) for n in sizes[1:])]
        self.da = [None, *(cuda.device_array((rows, n), dtype=dtype) for n in sizes[1:])]
        self.delta = [None, *(cuda.device_array((rows, n), dtype=dtype) for n in sizes[1:])]
        #: The input rows of the last forward pass (``a[0]``, or the caller's matrix).
        self.input = None
        self._first: dict[int, Buffers] = {}

    def first(self, rows: int) -> Buffers:
        """Views of the first ``rows`` rows (kept, for a last, shorter mini-batch)."""
        if rows == self.rows:
            return self
        if rows not in self._first:
            view = Buffers.__new__(Buffers)
            view.rows, view.input, view._first = rows, None, {}
            for name in ("a", "z", "da", "delta"):
                setattr(view, name, [v if v is None else v[:rows] for v in getattr(self, name)])
            self._first[rows] = view
        return self._first[rows]


class DeviceNetwork:
    """A network's parameters, gradient and work buffers in GPU memory, and the launches of a
    forward pass, a backward pass and an optimiser step.

    ``model`` is the network's ``kernels.Model``; its views come from ``fastbp.layout``. Residual
    connections and batch normalisation are not implemented on the GPU (``Network`` refuses
    them there).
    """

    def __init__(self, params: np.ndarray, model: tuple, rows: int) -> None:
        self.model = model
        self.dtype = params.dtype
        self.sizes = [int(n) for n in model.sizes]
        self.acts = [int(k) for k in model.acts]
        self.alphas = [params.dtype.type(v) for v in model.alphas]
        self.cost = int(model.cost)
        self.params = cuda.to_device(params)
        self.grad = cuda.device_array_like(params)
        layout = Layout(tuple(self.sizes), tuple(model.skips[1:]), tuple(model.bn[1:]))
        layers = range(1, len(self.sizes))
        self.w = [layout.weights(self.params, l) for l in layers]
        self.b = [layout.biases(self.params, l) for l in layers]
        self.gw = [layout.weights(self.grad, l) for l in layers]
        self.gb = [layout.biases(self.grad, l) for l in layers]
        decay = layout.decayed().astype(params.dtype)
        self.decay = cuda.to_device(decay)
        self.batch = Buffers(self.sizes, rows, self.dtype)
        self.chunk: Buffers | None = None  # for feedforward and gradient_sum, made on demand
        self.flag = cuda.to_device(np.zeros(1, dtype=np.int32))
        self.partial = cuda.device_array(REDUCE_BLOCKS, dtype=self.dtype)
        self.scale = cuda.device_array(1, dtype=self.dtype)

    def _chunks(self, n: int):
        """``(start, buffers)`` for the chunks of ``CHUNK_ROWS`` rows of an ``n``-row matrix."""
        if self.chunk is None or self.chunk.rows < min(CHUNK_ROWS, n):
            self.chunk = Buffers(self.sizes, min(CHUNK_ROWS, n), self.dtype)
        size = self.chunk.rows
        for start in range(0, n, size):
            yield start, self.chunk.first(min(size, n - start))

    def forward(self, x, buf: Buffers, order=None, start: int = 0) -> None:
        """The forward pass for ``buf.rows`` samples: rows ``order[start:]`` of ``x`` (``x``
        itself, in order, when ``order`` is None); fills ``buf.z``, ``buf.a``, ``buf.da``."""
        m = buf.rows
        if order is None:
            a_in = x
        else:
            grid, block = _tiles(self.sizes[0], m)
            gather_rows[grid, block](x, order, start, buf.a[0])
            a_in = buf.a[0]
        buf.input = a_in
        for l in range(1, len(self.sizes)):
            grid, block = _tiles(self.sizes[l], m)
            weighted_input[grid, block](
                self.w[l - 1], self.b[l - 1], a_in, buf.z[l], buf.a[l], buf.da[l],
                self.acts[l], self.alphas[l],
            )  # fmt: skip
            if self.acts[l] == SOFTMAX:
                softmax_rows[_line(m)](buf.z[l], buf.a[l], buf.da[l])
            a_in = buf.a[l]

    def backward(self, y, order, start: int, buf: Buffers, scale, add: bool) -> None:
        """BP1, BP2, then BP3 and BP4 into ``grad`` (times ``scale``; added to it with
        ``add``) for the samples of the last ``forward`` on ``buf``, whose targets are
        ``y[order[start + s]]``."""
        m = buf.rows
        L = len(self.sizes) - 1
        grid, block = _tiles(self.sizes[L], m)
        output_error[grid, block](
            buf.a[L], y, order, start, buf.da[L], buf.delta[L], self.cost, self.acts[L]
        )
        for l in range(L - 1, 0, -1):
            grid, block = _tiles(self.sizes[l], m)
            backpropagate_error[grid, block](self.w[l], buf.delta[l + 1], buf.da[l], buf.delta[l])
        for l in range(1, L + 1):
            a_in = buf.a[l - 1] if l > 1 else buf.input
            grid, block = _tiles(self.sizes[l - 1] + 1, self.sizes[l])
            accumulate_gradient[grid, block](
                buf.delta[l], a_in, self.gw[l - 1], self.gb[l - 1], scale, add
            )

    def step(self, state, optimizer: int, eta, hyper, hyper_d, t: int, l2, l1, clip) -> None:
        """Regularise and clip ``grad``, then take the optimiser's step number ``t`` (from 1);
        ``hyper_d`` is ``hyper`` in device memory."""
        zero = self.dtype.type(0)
        n = self.params.shape[0]
        if l2 != zero or l1 != zero or clip[1] > zero:
            regularise_and_clip[_line(n)](self.params, self.grad, self.decay, l2, l1, clip[1])
        if clip[0] > zero:
            partial_sums_of_squares[REDUCE_BLOCKS, THREADS](self.grad, self.partial)
            clip_scale[1, 1](self.partial, clip[0], self.scale)
        one = self.dtype.type(1)
        optimizer_step[_line(n)](
            self.params, self.grad, state, optimizer, eta, hyper_d, one - hyper[1] ** t,
            one - hyper[2] ** t, self.scale, clip[0] > zero,
        )  # fmt: skip

    def non_finite(self) -> bool:
        """Whether any parameter is NaN or infinite (a flag copied to the host)."""
        self.flag.copy_to_device(np.zeros(1, dtype=np.int32))
        flag_non_finite[_line(self.params.shape[0])](self.params, self.flag)
        return bool(self.flag.copy_to_host()[0])

    def feedforward(self, x) -> np.ndarray:
        """The outputs for the rows of the device matrix ``x``, copied to the host."""
        out = np.empty((x.shape[0], self.sizes[-1]), dtype=self.dtype)
        for start, buf in self._chunks(x.shape[0]):
            self.forward(x[start : start + buf.rows], buf)
            buf.a[-1].copy_to_host(out[start : start + buf.rows])
        return out

    def gradient_sum(self, x, y, order) -> np.ndarray:
        """``Σₓ ∇Cₓ`` over the rows of the device matrix ``x`` (targets ``y[order[i]]`` for
        row ``i``), copied to the host in the layout of ``params``."""
        one = self.dtype.type(1)
        for start, buf in self._chunks(x.shape[0]):
            self.forward(x[start : start + buf.rows], buf)
            self.backward(y, order, start, buf, one, start > 0)
        return self.grad.copy_to_host()


def feedforward(params: np.ndarray, model: tuple, X: np.ndarray) -> np.ndarray:
    """The network's outputs for the rows of ``X``, computed on the GPU."""
    return DeviceNetwork(params, model, 1).feedforward(cuda.to_device(X))


def gradient_sum(params: np.ndarray, model: tuple, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``Σₓ ∇Cₓ`` over the rows of ``X`` (targets ``Y``), computed on the GPU."""
    order = cuda.to_device(np.arange(X.shape[0], dtype=np.int64))
    net = DeviceNetwork(params, model, 1)
    return net.gradient_sum(cuda.to_device(X), cuda.to_device(Y), order)


class Trainer:
    """Training on the GPU. The training data, the parameters, the gradient and the optimiser's
    state are copied to device memory once; ``epoch`` is a loop of kernel launches."""

    def __init__(self, params: np.ndarray, model: tuple, X: np.ndarray, Y: np.ndarray,
                 batch_size: int, with_state: bool) -> None:  # fmt: skip
        self.net = DeviceNetwork(params, model, min(batch_size, X.shape[0]))
        self.x_host = X
        self.x = cuda.to_device(X)
        self.y = cuda.to_device(Y)
        self.order = cuda.device_array(X.shape[0], dtype=np.int64)
        # Plain SGD keeps no state: a placeholder of the right type.
        state_shape = (2, params.size if with_state else 1)
        self.state = cuda.to_device(np.zeros(state_shape, dtype=params.dtype))
        self.backup = self.state_backup = None
        self.batch_size = batch_size
        self._data: dict[int, tuple[np.ndarray, object]] = {}
        self._identity = None  # 0, 1, 2, ...: the probe's targets are its own rows

    def _on_device(self, X: np.ndarray):
        """``X`` in device memory, copied there the first time it is seen (the training data
        is already there)."""
        if X is self.x_host:
            return self.x
        if id(X) not in self._data:
            self._data[id(X)] = (X, cuda.to_device(X))  # holding X keeps its id unique
        return self._data[id(X)][1]

    def feedforward(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The outputs for the rows of ``X`` (validation or training data, copied once)."""
        self.net.params.copy_to_device(params)
        return self.net.feedforward(self._on_device(X))

    def gradient_sum(self, params: np.ndarray, rows: int) -> np.ndarray:
        """``Σₓ ∇Cₓ`` over the first ``rows`` training samples."""
        self.net.params.copy_to_device(params)
        if self._identity is None or self._identity.shape[0] < rows:
            self._identity = cuda.to_device(np.arange(rows, dtype=np.int64))
        return self.net.gradient_sum(self.x[:rows], self.y, self._identity)

    def epoch(self, params: np.ndarray, state: np.ndarray | None, order: np.ndarray,
              optimizer: int, eta, hyper: np.ndarray, l2, l1, clip: np.ndarray, t0: int,
              check: bool) -> tuple[int, int, int]:  # fmt: skip
        """One epoch over the samples in ``order``, from ``params`` and ``state`` (the
        optimiser's, or None), which receive the results: returns ``(steps, -1, -1)``.

        With ``check`` the parameters are tested after every mini-batch; at the first that
        makes one non-finite they are restored to their values before it, and the result is
        ``(steps, that mini-batch, its first non-finite layer)``.
        """
        net = self.net
        net.params.copy_to_device(params)
        if state is not None:
            self.state.copy_to_device(state)
        self.order.copy_to_device(order)
        hyper_d = cuda.to_device(hyper)
        if check and self.backup is None:
            self.backup = cuda.device_array_like(net.params)
            self.state_backup = cuda.device_array_like(self.state)
        t, failed, layer = self._run(
            order.shape[0], optimizer, eta, hyper, hyper_d, l2, l1, clip, t0, check
        )
        net.params.copy_to_host(params)
        if state is not None:
            self.state.copy_to_host(state)
        return t, failed, layer

    def _run(self, n, optimizer, eta, hyper, hyper_d, l2, l1, clip, t0, check):
        """The mini-batches of ``epoch``."""
        net = self.net
        t = t0
        failed = layer = -1
        one = net.dtype.type(1)
        for batch, start in enumerate(range(0, n, self.batch_size)):
            buf = net.batch.first(min(self.batch_size, n - start))
            if check:
                self.backup.copy_to_device(net.params)
                self.state_backup.copy_to_device(self.state)
            net.forward(self.x, buf, self.order, start)
            net.backward(self.y, self.order, start, buf, one / net.dtype.type(buf.rows), False)
            t += 1
            net.step(self.state, optimizer, eta, hyper, hyper_d, t, l2, l1, clip)
            if check and net.non_finite():
                layer = kernels.first_non_finite_layer(net.params.copy_to_host(), net.model)
                net.params.copy_to_device(self.backup)
                self.state.copy_to_device(self.state_backup)
                failed, t = batch, t - 1
                break
        return t, failed, layer
