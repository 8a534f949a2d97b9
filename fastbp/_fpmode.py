"""How the CPU thread treats subnormal numbers, for the kernels.

A float32 value below 1.2e-38 in magnitude (2.2e-308 in float64) is *subnormal*. On x86-64,
an operation with a subnormal input or result takes a microcode assist: on Intel cores about
a hundred cycles instead of a few. Backpropagation makes such numbers where sigmoid neurons
saturate (``σ'(z)`` underflows, and the errors ``δ`` with it): a 784-1000-10 network trained
at the book's η = 3.0 saturates in its first epoch, and its epochs ran 1.35 times slower on an
Intel Sapphire Rapids core than with subnormals flushed (3.36 against 2.49 s, one thread).

``flush_subnormals`` sets the two bits of the thread's MXCSR register that flush subnormal
results to zero (FTZ) and read subnormal inputs as zero (DAZ), and returns the register as it
was; ``restore_fp_mode`` puts it back. The Python entry points of the kernels run inside
``subnormals_flushed()``, and every parallel loop sets the mode in each iteration (each thread
has its own register), so every kernel computes in the same mode, whatever the thread count:
results are still bitwise reproducible. A value that would have been subnormal becomes 0: a
change smaller than 1.2e-38, far below what a float32 weight of any normal size can hold.

On other CPUs (no MXCSR) both functions do nothing.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._config import kernel

#: Whether this CPU has SSE's MXCSR register.
X86 = platform.machine().lower() in {"x86_64", "amd64", "x86", "i386", "i686"}

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
FLUSH = np.uint32((1 << 15) | (1 << 6))


def _mxcsr_call(builder, name, slot):
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [slot.type]), name
    )
    builder.call(fn, [slot])


@intrinsic
def read_mxcsr(typingctx):
    """The calling thread's MXCSR register (``stmxcsr``; x86 only)."""

    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def write_mxcsr(typingctx, value):
    """Set the calling thread's MXCSR register to ``value`` (``ldmxcsr``; x86 only)."""
    if not isinstance(value, types.Integer):
        raise TypeError(f"expected an integer, got {value}")

    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        bits = args[0]
        if bits.type.width > 32:
            bits = builder.trunc(bits, ir.IntType(32))
        builder.store(bits, slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.none(value), codegen


@kernel()
def flush_subnormals():
    """Flush subnormal results and inputs to zero on this thread; returns the previous mode
    for ``restore_fp_mode`` (0, and nothing changes, on a CPU without MXCSR)."""
    if X86:
        mode = read_mxcsr()
        write_mxcsr(mode | FLUSH)
        return mode
    return np.uint32(0)


@kernel()
def restore_fp_mode(mode):
    """Put back the mode that ``flush_subnormals`` returned."""
    if X86:
        write_mxcsr(mode)


@contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Run the block with subnormal numbers flushed to zero on the calling thread."""
    mode = flush_subnormals()
    try:
        yield
    finally:
        restore_fp_mode(mode)
