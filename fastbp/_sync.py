"""Atomic operations on an ``int64`` array, for threads that work together inside one kernel.

A *team* epoch (``kernels.train_epoch_columns``) keeps its threads inside one compiled call for
the whole epoch and has them wait for each other at two points of each mini-batch's step,
instead of starting a parallel region for every layer of every step (each start costs
microseconds, more than a batch of 10 takes to compute). They coordinate through counters in
an ``int64`` array, each on its own cache line, with these intrinsics:

- ``load_acquire(flags, i)``: ``flags[i]``, read atomically; every write another thread made
  before its ``store_release`` of the value read is visible after it;
- ``store_release(flags, i, value)``: ``flags[i] = value``, written atomically after every
  earlier write of this thread;
- ``compare_exchange(flags, i, expected, new)``: ``flags[i] = new`` if it holds ``expected``,
  atomically; whether it did;
- ``spin_pause()``: a hint to the core that this thread is spinning on a flag (x86 ``pause``;
  nothing elsewhere);
- ``monotonic_ns()``: the monotonic clock, in nanoseconds (``clock_gettime``);
- ``yield_thread()``: let another runnable thread have this CPU (``sched_yield``).

The last two call the C library by name (the symbol is resolved when Numba loads the code,
so it can be cached); on Windows, which has neither, the clock reads 0 and ``yield_thread``
does nothing.

Editing this module invalidates every cached kernel (``fastbp._cache``).
"""

from __future__ import annotations

import sys

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._fpmode import X86

#: Whether the C library has ``clock_gettime`` and ``sched_yield`` (POSIX).
POSIX = sys.platform != "win32"
#: ``CLOCK_MONOTONIC``'s number (macOS numbers its clocks differently from Linux).
_CLOCK_MONOTONIC = 6 if sys.platform == "darwin" else 1


def _slot(context, builder, arrty, arr, i):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [i])


def _check(flags):
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.layout == "C"):
        raise TypeError(f"expected a C-contiguous int64 array, got {flags}")


@intrinsic
def load_acquire(typingctx, flags, i):
    """``flags[i]``, an atomic load with acquire ordering."""
    _check(flags)

    def codegen(context, builder, sig, args):
        ptr = _slot(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(flags, types.intp), codegen


@intrinsic
def store_release(typingctx, flags, i, value):
    """``flags[i] = value``, an atomic store with release ordering."""
    _check(flags)

    def codegen(context, builder, sig, args):
        ptr = _slot(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.none(flags, types.intp, types.int64), codegen


@intrinsic
def compare_exchange(typingctx, flags, i, expected, new):
    """``flags[i] = new`` if ``flags[i] == expected``, atomically (acquire and release);
    returns whether it was written."""
    _check(flags)

    def codegen(context, builder, sig, args):
        ptr = _slot(context, builder, sig.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 1)

    return types.boolean(flags, types.intp, types.int64, types.int64), codegen


@intrinsic
def spin_pause(typingctx):
    """Tell the core this thread is waiting in a loop (x86 ``pause``; elsewhere nothing)."""

    def codegen(context, builder, sig, args):
        if X86:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
            )
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.none(), codegen


def _call_c(builder, name, ret, args, values):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)
    return builder.call(fn, values)


@intrinsic
def monotonic_ns(typingctx):
    """The monotonic clock in nanoseconds (``clock_gettime(CLOCK_MONOTONIC)``); 0 on Windows."""

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        if not POSIX:
            return ir.Constant(i64, 0)
        ts = cgutils.alloca_once(builder, ir.LiteralStructType([i64, i64]))  # struct timespec
        i32 = ir.IntType(32)
        _call_c(builder, "clock_gettime", i32, [i32, ts.type], [i32(_CLOCK_MONOTONIC), ts])
        seconds = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nanoseconds = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(seconds, i64(1_000_000_000)), nanoseconds)

    return types.int64(), codegen


@intrinsic
def yield_thread(typingctx):
    """Give this CPU to another runnable thread, if there is one (``sched_yield``)."""

    def codegen(context, builder, sig, args):
        if POSIX:
            _call_c(builder, "sched_yield", ir.IntType(32), [], [])
        return context.get_dummy_value()

    return types.none(), codegen
