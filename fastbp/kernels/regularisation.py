"""Dropout masks, L2/L1 weight decay, the penalties' gradient and gradient clipping."""

from __future__ import annotations

import numpy as np

from .._config import kernel
from .._views import flat
from .views import layer_views


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


# ``inline``: one compiled copy in ``train_epoch_general``, the same whether it was compiled
# or loaded from the cache (see ``_config.kernel``).


@kernel(inline=True)
def add_regularisation_gradient(params, model, grad, l2, l1):
    """Add the penalties' gradient to the weights' part of ``grad``: ``+ l2·w + l1·sgn(w)``
    (``l2 = λ/n``, ``l1 = λ₁/n``; biases are not regularised)."""
    sizes, offsets = model.sizes, model.offsets
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
