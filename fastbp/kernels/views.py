"""Views of the flat buffers, the finiteness checks over them, and the work buffers.

A layer's weights and biases in ``params`` (laid out by ``fastbp.layout``), a layer's rows of
the work buffers of a mini-batch (``workspace``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._config import kernel
from .._views import flat, matrix
from .weighted_input import NARROW


class Model(NamedTuple):
    """What the passes over all layers read of a network (``Network._model``): the layer widths
    ``sizes``, the ``offsets`` of each layer in the flat buffer and the cumulative neuron counts
    ``units`` (``fastbp.layout``), each layer's activation code ``acts`` and its ``alphas``
    (index 0, the input layer, is unused), the ``cost`` code, each layer's residual connection
    (``skips``: 0 none, 1 identity, 2 projected) and whether it is batch-normalised (``bn``),
    and the running mean and variance of the batch-normalised neurons (``stats``, 2 × neurons,
    updated in training)."""

    sizes: np.ndarray
    offsets: np.ndarray
    units: np.ndarray
    acts: np.ndarray
    alphas: np.ndarray
    cost: np.int64
    skips: np.ndarray
    bn: np.ndarray
    stats: np.ndarray


class Workspace(NamedTuple):
    """The preallocated buffers of the passes, so that nothing is allocated per mini-batch.

    ``z``, ``a``, ``delta`` and ``da`` hold ``z``, ``a``, ``δ`` and ``f'(z)`` of every layer
    for up to ``capacity`` rows (see ``unit_view``); ``own`` is ``arange(capacity)``, the rows
    of a mini-batch in those buffers; ``coef`` holds, for each pair of neurons of the widest
    layer, the (2, 5) block of coefficients that ``accumulate_weight_gradient`` multiplies by;
    ``g`` holds ``∂C/∂aˡ`` of every layer (BP2 needs it through residual connections); ``h``
    the normalised ``ẑ`` of batch-normalised layers, ``inv`` their ``1/√(σ² + ε)`` per neuron
    and ``norm`` their ``(Σ δ ẑ, Σ δ)`` per neuron, the gradients of ``γ`` and ``β``; ``t`` room
    for the transposed weights of the largest layer with short rows
    (``weighted_input_narrow``)."""

    z: np.ndarray
    a: np.ndarray
    delta: np.ndarray
    da: np.ndarray
    own: np.ndarray
    coef: np.ndarray
    g: np.ndarray
    h: np.ndarray
    inv: np.ndarray
    norm: np.ndarray
    t: np.ndarray


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
    """The ``Workspace`` for mini-batches of up to ``capacity`` rows, of ``like``'s dtype."""
    n_units = capacity * units[-1]
    widest = 0
    narrow = 0
    for l in range(1, sizes.shape[0]):
        widest = max(widest, sizes[l])
        if sizes[l - 1] < NARROW:
            narrow = max(narrow, sizes[l - 1] * sizes[l])
    return Workspace(
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


@kernel()
def first_non_finite_layer(params, model):
    """The first layer (1-based) whose parameters are not all finite, or -1."""
    sizes, offsets = model.sizes, model.offsets
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
