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

Editing this module invalidates every cached kernel (``fastbp._cache``).
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
    if not (isinstance(arr, types.Array) and arr.layout == "C"):
        raise TypeError(f"expected a C-contiguous array, got {arr}")
    if not isinstance(arr.dtype, types.Float):
        raise TypeError(f"expected a floating dtype, got {arr.dtype}")


@intrinsic
def load(typingctx, arr, start, count):
    """``arr[start : start + min(count, lanes)]`` as a vector, the lanes past it 0.

    ``start`` indexes the array's values in memory order (``arr.ravel()``), so a 2-d array's
    row chunk is ``load(arr, row * n_columns + i, count)``: no row view is made (a view of a
    row costs reference counting in a loop)."""
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
    """``arr[start : start + min(count, lanes)] = value[: min(count, lanes)]`` (``start`` in
    memory order, as for ``load``)."""
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


def _binary(name, doc, op):
    """An intrinsic ``name(x, y)``: ``op`` lane by lane, ``x`` a Vector, ``y`` one or a scalar."""

    def typer(typingctx, x, y):
        if not isinstance(x, Vector) or y not in (x, x.dtype):
            raise TypeError(f"{name}({x}, {y}): expected a Vector and a Vector or scalar")

        def codegen(context, builder, sig, args):
            b = _operand(builder, context, sig.args[1], args[1], x.lanes)
            return op(builder, args[0], b)

        return x(x, y), codegen

    typer.__name__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


add = _binary(
    "add", "``x + y`` lane by lane (``y`` may be a scalar).", lambda b, x, y: b.fadd(x, y)
)
sub = _binary(
    "sub", "``x − y`` lane by lane (``y`` may be a scalar).", lambda b, x, y: b.fsub(x, y)
)
mul = _binary(
    "mul", "``x · y`` lane by lane (``y`` may be a scalar).", lambda b, x, y: b.fmul(x, y)
)
div = _binary(
    "div", "``x / y`` lane by lane (``y`` may be a scalar).", lambda b, x, y: b.fdiv(x, y)
)


@intrinsic
def rdiv(typingctx, x, y):
    """``x / y`` lane by lane for a scalar ``x`` and a Vector ``y``."""
    if not isinstance(y, Vector) or x != y.dtype:
        raise TypeError(f"rdiv({x}, {y}): expected a scalar and a Vector of its type")

    def codegen(context, builder, sig, args):
        return builder.fdiv(_splat(builder, args[0], y.lanes), args[1])

    return y(x, y), codegen


@intrinsic
def where_nonnegative(typingctx, z, a, b):
    """Lane by lane, ``a`` where ``z ≥ 0`` and ``b`` elsewhere (NaN lanes of ``z`` take ``b``)."""
    if not (isinstance(z, Vector) and a == z and b == z):
        raise TypeError(f"where_nonnegative({z}, {a}, {b}): expected three Vectors of one type")

    def codegen(context, builder, sig, args):
        zero = ir.Constant(args[0].type, None)
        return builder.select(builder.fcmp_ordered(">=", args[0], zero), args[1], args[2])

    return z(z, a, b), codegen


@intrinsic
def exp_negative_abs(typingctx, v):
    """``e^(−|v|)`` lane by lane, to within about 2 units in the last place.

    ``x = −|v| = n ln 2 + r`` with ``n = rint(x / ln 2)`` and ``|r| ≤ ½ ln 2`` (``ln 2`` in two
    parts, so ``r`` is exact to the working precision), ``eʳ`` by its Taylor polynomial
    (degree 7 in float32, 13 in float64: truncation under one unit in the last place), and
    ``2ⁿ`` built in the exponent bits (a result below the smallest normal number is rounded once
    to a subnormal one). Below ``−104`` in float32, ``−746`` in float64, the result is 0, as
    ``e^x`` rounds to 0 there. NaN stays NaN.
    """
    if not isinstance(v, Vector):
        raise TypeError(f"expected a Vector, got {v}")
    single = v.dtype.bitwidth == 32

    def codegen(context, builder, sig, args):
        vec = args[0].type
        lanes = v.lanes
        fty = vec.element
        bits = 32 if single else 64
        ity = ir.IntType(bits)
        ivec = ir.VectorType(ity, lanes)

        def const(value):
            return ir.Constant(vec, [fty(value)] * lanes)

        def call(name, *operands):
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec] * len(operands)), name
            )
            return builder.call(fn, list(operands))

        suffix = f"v{lanes}f{bits}"
        x = builder.fneg(call(f"llvm.fabs.{suffix}", args[0]))
        lowest = -104.0 if single else -746.0
        tiny = builder.fcmp_ordered("<", x, const(lowest))
        x = builder.select(tiny, const(lowest), x)
        n = call(f"llvm.rint.{suffix}", builder.fmul(x, const(1.4426950408889634)))
        if single:
            ln2_hi, ln2_lo, degree = 0.693359375, -2.12194440e-4, 7
        else:
            ln2_hi, ln2_lo, degree = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 13
        fma = f"llvm.fma.{suffix}"
        r = call(fma, n, const(-ln2_hi), x)
        r = call(fma, n, const(-ln2_lo), r)
        factorial = 1.0
        for k in range(1, degree + 1):
            factorial *= k
        p = const(1.0 / factorial)
        for k in range(degree - 1, -1, -1):
            factorial = factorial / (k + 1)
            p = call(fma, p, r, const(1.0 / factorial))
        bias = 127 if single else 1023
        mantissa = 23 if single else 52

        def power_of_two(exponent):  # 2**exponent for a normal exponent, in the exponent bits
            biased = builder.add(exponent, ir.Constant(ivec, [ity(bias)] * lanes))
            return builder.bitcast(
                builder.shl(biased, ir.Constant(ivec, [ity(mantissa)] * lanes)), vec
            )

        # Below the smallest normal number 2ⁿ is not normal: take 2ⁿ⁺⁶⁴, then round once by 2⁻⁶⁴.
        ni = builder.fptosi(n, ivec)
        sub = builder.icmp_signed("<", ni, ir.Constant(ivec, [ity(1 - bias)] * lanes))
        shift = builder.select(
            sub, ir.Constant(ivec, [ity(64)] * lanes), ir.Constant(ivec, [ity(0)] * lanes)
        )
        result = builder.fmul(p, power_of_two(builder.add(ni, shift)))
        result = builder.fmul(result, power_of_two(builder.neg(shift)))
        result = builder.select(tiny, ir.Constant(vec, None), result)
        return builder.select(builder.fcmp_unordered("uno", x, x), x, result)

    return v(v), codegen


@intrinsic
def prefetch(typingctx, arr, start):
    """Ask for the cache line of ``arr``'s value ``start`` (memory order) to be fetched into
    the L2 cache, without waiting for it (``llvm.prefetch``, read, locality 2): a hint that
    never faults and changes no result. L2, not L1: the kernels that issue it keep their own
    operands in L1."""
    _check_array(arr)

    def codegen(context, builder, sig, args):
        ptr = _chunk_pointer(context, builder, sig.args[0], args[0], args[1])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
            "llvm.prefetch.p0",
        )  # fmt: skip
        builder.call(fn, [ptr, i32(0), i32(2), i32(1)])  # read, locality 2, data cache
        return context.get_dummy_value()

    return types.none(arr, start), codegen
