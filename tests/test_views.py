"""The view intrinsics are the views ``reshape`` makes, sharing the buffer's memory."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastbp._views import flat, matrix


@numba.njit
def matrix_of(buf, start, rows, cols):
    return matrix(buf, start, rows, cols)


@numba.njit
def flat_of(a):
    return flat(a)


@numba.njit
def fill_matrix(buf, start, rows, cols, value):
    """Write through a view made and dropped inside compiled code."""
    view = matrix(buf, start, rows, cols)
    view[rows - 1, cols - 1] = value
    return view.shape[0] * view.strides[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_matrix_is_the_reshaped_slice_and_shares_its_memory(dtype):
    buf = np.arange(50).astype(dtype)
    view = matrix_of(buf, 7, 4, 6)
    want = buf[7 : 7 + 24].reshape((4, 6))
    assert view.shape == want.shape and view.strides == want.strides
    assert view.flags.c_contiguous and view.dtype == buf.dtype
    np.testing.assert_array_equal(view, want)
    view[1, 2] = 99
    assert buf[7 + 1 * 6 + 2] == 99
    assert fill_matrix(buf, 20, 3, 5, 77) == 3 * 5 * buf.itemsize
    assert buf[20 + 2 * 5 + 4] == 77
    assert matrix_of(buf, np.int32(0), np.uint8(2), 3).shape == (2, 3)  # any integer types


def test_a_view_keeps_its_buffer_alive():
    view = matrix_of(np.arange(12.0), 2, 2, 5)
    np.testing.assert_array_equal(flat_of(view), np.arange(2.0, 12.0))
    assert view.base is not None


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5)])
def test_flat_is_ravel_of_a_contiguous_array(shape):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    view = flat_of(a)
    assert view.shape == (a.size,) and view.strides == (4,)
    np.testing.assert_array_equal(view, a.ravel())
    view[-1] = -1
    assert a.flat[-1] == -1


def test_non_contiguous_arrays_are_refused_while_compiling():
    a = np.zeros((4, 6))
    with pytest.raises(numba.core.errors.TypingError, match="C-contiguous"):
        flat_of(a[:, ::2])
    with pytest.raises(numba.core.errors.TypingError, match="1-d C-contiguous"):
        matrix_of(a, 0, 2, 2)
    with pytest.raises(numba.core.errors.TypingError, match="integers"):
        matrix_of(a[0], 0.5, 2, 2)


@numba.njit(parallel=True)
def add_second_half_to_first(buf, half):
    first = matrix(buf, 0, 2, half // 2)
    first += matrix(buf, half, 2, half // 2)


def test_writes_through_a_view_stay_in_a_parallel_kernel():
    """``parallel=True`` removes writes to arrays it believes dead: a view must count as its
    buffer (it did not at first, and a residual network's predictions lost the skip)."""
    buf = np.arange(12.0)
    add_second_half_to_first(buf, 6)
    np.testing.assert_array_equal(buf, np.r_[np.arange(6.0) + np.arange(6.0, 12.0), 6:12])
