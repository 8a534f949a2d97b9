"""Explicit SIMD vectors for the kernels of short rows, as Numba intrinsics.

LLVM vectorises a loop over a row 16 float32 values at a time and interleaves 4 such
vectors, so a loop shorter than 64 values (a 30-wide layer) runs its scalar remainder only.
These intrinsics let a kernel hold a row's chunk as one vector value: ``load`` reads up to
``LANES`` consecutive values (a 512-bit vector: 16 float32 or 8 float64) with a masked load,
so a row whose length is not a multiple of the vector length needs no scalar tail and never
reads past its end; ``store`` writes them back, masked the same way.

A ``Vector`` lives in registers (its LLVM type is ``<lanes x float>``); nothing here
allocates. Each lane is computed by the same operations in the same order whatever its
position, so results do not depend on where a chunk starts. On a CPU without AVX-512 LLVM
splits each vector into narrower ones: slower, same results.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

#: Bits in one vector: AVX-512.
VECTOR_BITS = 512


class Vector(types.Type):
    """``lanes`` values of the floating type ``dtype``, held in one SIMD register."""

    def __init__(self, dtype: types.Float, lanes: int):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"Vector({dtype}, {lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vector_of(dtype: types.Type) -> Vector:
    return Vector(dtype, VECTOR_BITS // dtype.bitwidth)


def _mask(builder, count, lanes):
    """``<lanes x i1>``: lane ``t`` is on when ``t < count``."""
    i64 = ir.IntType(64)
    iota = ir.Constant(ir.VectorType(i64, lanes), list(range(lanes)))
    return builder.icmp_signed("<", iota, _splat(builder, builder.sext(count, i64), lanes))


def _splat(builder, value, lanes):
    vec = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.IntType(32)(0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), zeros)


def _chunk_pointer(context, builder, arrty, arr, start):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [start])


def _check_array(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
        raise TypeError(f"expected a 1-d C-contiguous array, got {arr}")
    if not isinstance(arr.dtype, types.Float):
        raise TypeError(f"expected a floating dtype, got {arr.dtype}")


@intrinsic
def load(typingctx, arr, start, count):
    """``arr[start : start + min(count, lanes)]`` as a vector, the lanes past it 0."""
    _check_array(arr)
    vty = _vector_of(arr.dtype)

    def codegen(context, builder, sig, args):
        arrty = sig.args[0]
        lanes = vty.lanes
        vec = ir.VectorType(context.get_value_type(arrty.dtype), lanes)
        ptr = _chunk_pointer(context, builder, arrty, args[0], args[1])
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(
                vec, [ptr.type, ir.IntType(32), ir.VectorType(ir.IntType(1), lanes), vec]
            ),
            f"llvm.masked.load.v{lanes}f{arrty.dtype.bitwidth}.p0",
        )
        align = ir.IntType(32)(arrty.dtype.bitwidth // 8)
        zero = ir.Constant(vec, None)
        return builder.call(fn, [ptr, align, _mask(builder, args[2], lanes), zero])

    return vty(arr, start, count), codegen


@intrinsic
def store(typingctx, arr, start, count, value):
    """``arr[start : start + min(count, lanes)] = value[: min(count, lanes)]``."""
    _check_array(arr)
    vty = _vector_of(arr.dtype)
    if value != vty:
        raise TypeError(f"expected {vty}, got {value}")

    def codegen(context, builder, sig, args):
        arrty = sig.args[0]
        lanes = vty.lanes
        vec = ir.VectorType(context.get_value_type(arrty.dtype), lanes)
        ptr = _chunk_pointer(context, builder, arrty, args[0], args[1])
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(
                ir.VoidType(), [vec, ptr.type, ir.IntType(32), ir.VectorType(ir.IntType(1), lanes)]
            ),
            f"llvm.masked.store.v{lanes}f{arrty.dtype.bitwidth}.p0",
        )
        align = ir.IntType(32)(arrty.dtype.bitwidth // 8)
        builder.call(fn, [args[3], ptr, align, _mask(builder, args[2], lanes)])
        return context.get_dummy_value()

    return types.none(arr, start, count, value), codegen


@intrinsic
def zeros(typingctx, like):
    """A vector of zeros of ``like``'s dtype (an array or a scalar)."""
    dtype = like.dtype if isinstance(like, types.Array) else like
    vty = _vector_of(dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vty), None)

    return vty(like), codegen


def _operand(builder, context, ty, value, lanes):
    if isinstance(ty, Vector):
        return value
    return _splat(builder, value, lanes)


@intrinsic
def fma(typingctx, acc, x, y):
    """``acc + x · y`` lane by lane, one fused multiply-add; ``x`` may be a scalar."""
    if not isinstance(acc, Vector):
        raise TypeError(f"expected a Vector, got {acc}")
    if x not in (acc, acc.dtype) or y not in (acc, acc.dtype):
        raise TypeError(f"fma({acc}, {x}, {y}): operands of another type")

    def codegen(context, builder, sig, args):
        lanes = acc.lanes
        a = _operand(builder, context, sig.args[1], args[1], lanes)
        b = _operand(builder, context, sig.args[2], args[2], lanes)
        vec = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vec, [vec, vec, vec]),
            f"llvm.fma.v{lanes}f{acc.dtype.bitwidth}",
        )
        return builder.call(fn, [a, b, args[0]])

    return acc(acc, x, y), codegen


@intrinsic
def mul(typingctx, x, y):
    """``x · y`` lane by lane (``y`` may be a scalar)."""
    if not isinstance(x, Vector) or y not in (x, x.dtype):
        raise TypeError(f"mul({x}, {y}): expected a Vector and a Vector or scalar")

    def codegen(context, builder, sig, args):
        return builder.fmul(args[0], _operand(builder, context, sig.args[1], args[1], x.lanes))

    return x(x, y), codegen


@intrinsic
def add(typingctx, x, y):
    """``x + y`` lane by lane."""
    if not isinstance(x, Vector) or y != x:
        raise TypeError(f"add({x}, {y}): expected two Vectors of one type")

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return x(x, y), codegen


@intrinsic
def total(typingctx, v):
    """The sum of the lanes of ``v``, as a pairwise tree (halves added, then quarters, ...)."""
    if not isinstance(v, Vector):
        raise TypeError(f"expected a Vector, got {v}")

    def codegen(context, builder, sig, args):
        x = args[0]
        width = v.lanes
        i32 = ir.IntType(32)
        while width > 1:
            half = width // 2
            vec = ir.VectorType(x.type.element, half)
            undef = ir.Constant(x.type, ir.Undefined)
            lo = builder.shuffle_vector(
                x, undef, ir.Constant(ir.VectorType(i32, half), list(range(half)))
            )
            hi = builder.shuffle_vector(
                x, undef, ir.Constant(ir.VectorType(i32, half), list(range(half, width)))
            )
            x = builder.fadd(lo, hi)
            assert x.type == vec
            width = half
        return builder.extract_element(x, i32(0))

    return v.dtype(v), codegen


@intrinsic
def lanes(typingctx, like):
    """The number of lanes of a vector of ``like``'s dtype (an array or a scalar), a constant."""
    dtype = like.dtype if isinstance(like, types.Array) else like
    n = _vector_of(dtype).lanes

    def codegen(context, builder, sig, args):
        return ir.IntType(64)(n)

    return types.intp(like), codegen
