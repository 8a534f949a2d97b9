"""Array views made in a few instructions, as Numba intrinsics.

Numba's ``reshape`` calls a helper function that works out the new strides for any layout:
about 30 ns a call, and the compiled epoch makes dozens of views per mini-batch (each layer's
rows of the work buffers, each layer's weights). A C-contiguous array's view needs no such
work: the data pointer, the shape and the strides follow from the arguments. These build the
view directly; they accept C-contiguous arrays only (checked while compiling), share the
buffer's memory and keep it alive as a slice does. Numba's alias analysis is told that a view
aliases its buffer: without that, in a ``parallel=True`` kernel, a write through a view that
is not read again looked like a write to a dead temporary and was removed.

Editing this module invalidates every cached kernel (``fastbp._cache``).
"""

from __future__ import annotations

from numba.core import errors, ir_utils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _check_contiguous(name: str, a: types.Type, ndim: int | None = None) -> None:
    if not isinstance(a, types.Array) or a.layout != "C" or (ndim and a.ndim != ndim):
        dims = f"{ndim}-d " if ndim else ""
        raise errors.TypingError(f"{name}: expected a {dims}C-contiguous array, got {a}")


def _view(context, builder, sig, src, data, shape):
    """The array of type ``sig.return_type`` over ``data`` with C strides for ``shape``,
    borrowing ``src``'s memory."""
    out = make_array(sig.return_type)(context, builder)
    dtype = sig.return_type.dtype
    itemsize = context.get_constant(
        types.intp, context.get_abi_sizeof(context.get_data_type(dtype))
    )
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    populate_array(
        out, data=data, shape=shape, strides=strides, itemsize=itemsize,
        meminfo=src.meminfo, parent=src.parent,
    )  # fmt: skip
    return impl_ret_borrowed(context, builder, sig.return_type, out._getvalue())


@intrinsic
def matrix(typingctx, buf, start, rows, cols):
    """``buf[start : start + rows · cols].reshape((rows, cols))`` for a 1-d C-contiguous
    ``buf``, without the reshape. The caller keeps the view inside ``buf``."""
    _check_contiguous("matrix", buf, 1)
    for value in (start, rows, cols):
        if not isinstance(value, types.Integer):
            raise errors.TypingError(f"matrix: expected integers, got {value}")

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        first, m, n = (
            context.cast(builder, v, t, types.intp)
            for v, t in zip(args[1:], sig.args[1:], strict=True)
        )
        return _view(context, builder, sig, src, builder.gep(src.data, [first]), [m, n])

    return buf.copy(ndim=2, layout="C")(buf, start, rows, cols), codegen


@intrinsic
def flat(typingctx, a):
    """``a.reshape(a.size)`` for a C-contiguous ``a``, without the reshape."""
    _check_contiguous("flat", a)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        return _view(context, builder, sig, src, src.data, [src.nitems])

    return a.copy(ndim=1, layout="C")(a), codegen


def _aliases_its_first_argument(lhs, args, alias_map, arg_aliases):
    """Alias analysis of a call ``lhs = view(buf, ...)``: ``lhs`` aliases ``buf`` (as
    ``numba.core.ir_utils`` records ``B = A.ravel()``)."""
    buf = args[0].name
    if buf in arg_aliases:
        arg_aliases.add(lhs)
        return
    alias_map.setdefault(buf, set()).add(lhs)
    alias_map.setdefault(lhs, set()).add(buf)


for _view_maker in ("matrix", "flat"):
    ir_utils.alias_func_extensions[(_view_maker, __name__)] = _aliases_its_first_argument
