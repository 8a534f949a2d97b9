"""Layer 1 in columns on one thread, or on a team of threads that stays together for an epoch
(``train_epoch_columns``), which a thread that loses its CPU does not hold up.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _simd as simd
from .._config import kernel
from .._fpmode import flush_subnormals, restore_fp_mode
from .._sync import (
    compare_exchange,
    load_acquire,
    monotonic_ns,
    spin_pause,
    store_release,
    yield_thread,
)
from .._views import flat
from .backward import accumulate_bias_gradient, backpropagate_errors
from .columns import (
    COLUMN_BLOCKS,
    accumulate_weight_gradient_columns,
    accumulate_weight_gradient_columns_threaded,
    add_partial_sums,
    block_bounds,
    columns_to_rows,
    rows_to_columns,
    uses_columns,
    weighted_input_columns,
    weighted_input_columns_threaded,
)
from .epochs import copy_values, prefetch_rows, sgd_step
from .forward import forward_pass
from .regularisation import regularise_weights, seed_generator
from .views import all_finite, first_non_finite_layer, layer_views, unit_view

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
# due, and for every member once ``STALL_EVENTS`` waits longer than usual (stalls) add up to a
# ``STALL_PART``-th of the epoch so far (and at least ``STALL_LEAST``).

#: ``int64`` values per cache line: each counter of a team has a line to itself.
LINE = 8

#: The team's counters (``column_buffers``' third array), one per cache line: how many members
#: arrived (their roles, in order of arrival), member 0's last step through B, and the step
#: from which member 0 took over another member's share (0: it did not); then for each member
#: (``member_slot``) its last step through A, its last step through C, the last step it claimed
#: (``TAKEN``: member 0 took its share over), the nanoseconds it stalled waiting for B and
#: how many times it did.
ARRIVED, B_DONE, TOOK_OVER = 0, 1, 2
A_DONE, C_DONE, CLAIMED, STALLED, STALLS = 0, 1, 2, 3, 4
TAKEN = -1
#: The size of a team's counters: the three above and five per member.
TEAM_COUNTERS = LINE * (3 + 5 * COLUMN_BLOCKS)

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
#: Member 0 takes over every member's share once there have been STALL_EVENTS stalls, adding
#: up to 1/STALL_PART of the time since the epoch began and to STALL_LEAST ns: another
#: process's work takes a CPU for a time slice (milliseconds) again and again, while an idle
#: machine's hiccup (a kernel thread, a virtual CPU paused by its host) comes alone and must
#: not end a team.
STALL_EVENTS = 3
STALL_PART = 10
STALL_LEAST = 1_000_000
#: How long member 0 waits beyond its usual wait for a member that has not claimed the step
#: before it takes over that member's share (longer than an idle machine's hiccups, which last
#: up to a few milliseconds: a member that late has lost its CPU) ...
TAKE_NS = 5_000_000
#: ... and at the first step, for a member to join: starting a thread takes tens of µs on an
#: idle machine, and more on a busy one (member 0 yields its CPU meanwhile).
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
    return LINE * (3 + 5 * role + what)


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
    """A member's record of its waits, ``(recent, older, stalled, stalls)``, after a wait of
    ``waited`` ns at step ``step``. Its usual wait is the shortest of the last one or two windows of
    ``WAIT_WINDOW`` steps: a stall only lengthens a wait, so it does not move it, while a
    longer B (a bigger network) is learnt within a window. A wait longer than the usual one by
    more than ``STALL_NS`` and more than the usual one is a stall: its excess is added to
    ``stalled``, and ``stalls`` counts it. The first step's (joining) is left out.
    """
    recent, older, stalled, stalls = waits
    if step == 1:
        return waits
    usual = min(recent, older)
    if usual < UNKNOWN and waited - usual > max(STALL_NS, usual):
        stalled += waited - usual
        stalls += 1
    recent = min(recent, waited)
    if step % WAIT_WINDOW == 0:
        older, recent = recent, UNKNOWN
    return recent, older, stalled, stalls


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
    sizes, offsets, units = model.sizes, model.offsets, model.units
    zbuf, dbuf, own = ws.z, ws.delta, ws.own
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
    waits = (UNKNOWN, UNKNOWN, 0, 0)  # this member's record of its waits (``note_wait``)
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
            store_release(flags, member_slot(role, STALLS), waits[3])
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
            total, stalls = waits[2], waits[3]  # member 0's stalls and the members'
            for r in range(1, members):
                total += load_acquire(flags, member_slot(r, STALLED))
                stalls += load_acquire(flags, member_slot(r, STALLS))
            if total > noted:
                noted = total
                enough = stalls >= STALL_EVENTS and total > STALL_LEAST
                dissolve = enough and STALL_PART * total > monotonic_ns() - began
    if members > 1:  # for the caller: member 0's stalls
        store_release(flags, member_slot(0, STALLED), waits[2])
        store_release(flags, member_slot(0, STALLS), waits[3])
    if failed < 0:
        columns_to_rows(wt, w1, lo, hi)
        for r in range(1, members):
            if taken & (1 << r):
                r_lo, r_hi = share_inputs(members, r, n_in, width)
                columns_to_rows(wt, w1, r_lo, r_hi)
    restore_fp_mode(mode)
    return failed, layer
