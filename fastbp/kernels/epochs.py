"""Whole epochs in one compiled call: mini-batch SGD fused into BP3/BP4 (``train_epoch``), and
the step of an optimiser with penalties and clipping (``train_epoch_general``).
"""

from __future__ import annotations

import itertools

from .. import _simd as simd
from .._config import kernel
from .._views import flat
from .backward import accumulate_gradient, backpropagate_errors
from .forward import forward_pass
from .optimizers import optimizer_step
from .regularisation import (
    add_regularisation_gradient,
    clip_gradient,
    regularise_weights,
    seed_generator,
)
from .views import all_finite, first_non_finite_layer, layer_views

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
    residual, bn = model.skips, model.bn
    return True if residual.any() or bn.any() else None


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
        sizes, offsets = model.sizes, model.offsets
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
