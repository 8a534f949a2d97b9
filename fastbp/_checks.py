"""Argument checks shared by the public classes: each names the parameter it rejects.

Every check runs before any compiled kernel, so a rejected call leaves the model unchanged.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np

_DTYPES = {"float32": np.float32, "float64": np.float64}


def _check_dtype(dtype: Any) -> type[np.floating]:
    try:
        name = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[name]


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(f"sizes: expected a sequence of layer widths, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(
            f"sizes: expected at least two layers (input and output), got {len(sizes)}"
        )
    widths = []
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"sizes[{i}]: expected a positive integer width, got {n!r}")
        if n <= 0:
            raise ValueError(f"sizes[{i}]: expected a positive integer width, got {n}")
        widths.append(int(n))
    return tuple(widths)


def _memory_bytes() -> int | None:
    """Bytes of this machine's physical memory, or None where it cannot be told."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(nbytes: int, what: str) -> None:
    """Refuse, as ``ValueError`` starting with ``what``, an array larger than this machine's
    memory, before anything is allocated (NumPy would raise a ``MemoryError`` or swap)."""
    total = _memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"{what}: the parameters would need {nbytes / 2**30:,.1f} GiB, more than this "
            f"machine's {total / 2**30:,.1f} GiB of memory; expected smaller layers"
        )


def _check_threads(threads: Any, name: str = "threads") -> int | None:
    if threads is None:
        return None
    most = numba.config.NUMBA_NUM_THREADS
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"{name}: expected an integer from 1 to {most} or None, got {threads!r}")
    if not 1 <= threads <= most:
        raise ValueError(
            f"{name}: expected an integer from 1 to {most} (NUMBA_NUM_THREADS) or None, "
            f"got {threads}"
        )
    return int(threads)


@contextmanager
def _numba_threads(threads: int | None) -> Iterator[int]:
    """Run the block on ``threads`` of Numba's threads (None: as set), then restore the count."""
    saved = numba.get_num_threads()
    numba.set_num_threads(saved if threads is None else threads)
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(saved)


def _check_positive_int(value: Any, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name}: expected a {bound} integer, got {value}")
    return int(value)


def _check_rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive finite number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value}")
    return value


def _asarray(values: Any, name: str) -> np.ndarray:
    """``np.asarray(values)``, with a ragged nested sequence reported under ``name``."""
    try:
        return np.asarray(values)
    except ValueError as exc:
        raise ValueError(f"{name}: expected a rectangular array of numbers ({exc})") from None


def _scaled_pixels(arr: np.ndarray, dtype: Any) -> np.ndarray:
    """The one rule for ``uint8`` inputs, in the API and the command line alike: they are 8-bit
    pixels (0–255) and are scaled to [0, 1] (``x / 255``) in ``dtype``. Arrays of any other
    type are returned as they are (their values are the inputs)."""
    if arr.dtype != np.uint8:
        return arr
    return np.ascontiguousarray(arr, dtype=dtype) / np.dtype(dtype).type(255)


def _as_float_array(
    values: Any, name: str, dtype: type[np.floating], *, check_finite: bool = True
) -> np.ndarray:
    """``values`` as an array of ``dtype``, refusing non-numeric, empty and non-finite input.

    ``check_finite=False`` leaves the NaN/infinity check to the caller, for callers whose
    compiled code detects them anyway (a pass over a large ``X`` costs as much as a tenth of
    an epoch); a float64-to-float32 overflow is always checked here.
    """
    arr = _asarray(values, name)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name}: expected numeric values, got an array of dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got complex values")
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty array {arr.shape}")
    if check_finite and np.issubdtype(arr.dtype, np.floating) and not _all_finite(arr):
        raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    # Only a narrowing float cast (float64 to float32) can overflow.
    narrowed = np.issubdtype(arr.dtype, np.floating) and arr.itemsize > out.itemsize
    if narrowed and not _all_finite(out):
        if not _all_finite(arr):
            raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
        raise ValueError(f"{name}: values overflow {np.dtype(dtype).name}; expected finite values")
    return out


def _all_finite(arr: np.ndarray) -> bool:
    """Whether every value is finite. A finite sum proves it without a boolean array
    the size of ``arr`` (NaN and ±inf propagate into any sum); only an overflowing sum of
    finite values needs the element-wise test."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(arr)):
            return True
    return bool(np.isfinite(arr).all())


def _check_targets(y: Any, n: int, n_out: int, dtype: Any, name: str = "y") -> np.ndarray:
    """Targets as ``(n, n_out)`` rows of ``dtype``: from integer class labels or from rows."""
    arr = _asarray(y, name)
    if arr.ndim == 1 and n_out > 1:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(
                f"{name}: expected integer class labels in [0, {n_out}) or rows of width "
                f"{n_out}, got a 1-D array of dtype {arr.dtype}"
            )
        labels = _check_labels(arr, n_out, name)
        if labels.shape[0] != n:
            raise ValueError(
                f"{name}: expected {n} labels, one per sample of X, got {labels.shape[0]}"
            )
        targets = np.zeros((n, n_out), dtype=dtype)
        targets[np.arange(n), labels] = 1
        return targets
    out = _as_float_array(arr, name, dtype)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    if out.ndim != 2 or out.shape[1] != n_out:
        raise ValueError(
            f"{name}: expected targets of shape (n_samples, {n_out}) or integer class "
            f"labels, got shape {out.shape}"
        )
    if out.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows, one per sample of X, got {out.shape[0]}")
    return out


def _check_labels(y: Any, n_out: int, name: str = "y") -> np.ndarray:
    """Integer class labels of a network with ``n_out`` outputs, as an int64 array."""
    arr = np.asarray(y)
    n_classes = max(n_out, 2)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array of class labels, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(
            f"{name}: expected class labels in [0, {n_classes}), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def _check_class_labels(y: Any, n: int, n_out: int, dtype: Any, name: str = "y") -> np.ndarray:
    """Class labels from integer labels or from one-hot (or score) rows."""
    arr = _asarray(y, name)
    if arr.ndim == 2:
        rows = _check_targets(arr, n, n_out, dtype, name)
        return rows.argmax(axis=1) if n_out > 1 else (rows[:, 0] > 0.5).astype(np.int64)
    labels = _check_labels(arr, n_out, name)
    if labels.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels, one per sample of X, got {labels.shape[0]}")
    return labels


def _unpack_pairs(data: Any, n_in: int, name: str) -> tuple[Any, Any]:
    """``(X, Y)`` from a pair of arrays or from the book's list of ``(x, y)`` pairs.

    A tuple ``(X, Y)`` whose ``X`` is an ndarray is a pair of arrays (its shape is checked
    later); anything else is read as a sequence of ``(x, y)`` samples.
    """
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        return data
    try:
        pairs = list(data)
    except TypeError:
        raise TypeError(
            f"{name}: expected a pair of arrays (X, y) or a list of (x, y) pairs, "
            f"got {type(data).__name__}"
        ) from None
    if not pairs:
        raise ValueError(f"{name}: expected at least one sample, got none")
    if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
        raise TypeError(f"{name}: expected a pair of arrays (X, y) or a list of (x, y) pairs")
    xs = [_asarray(x, name).reshape(-1) for x, _ in pairs]
    if len({x.shape for x in xs}) != 1:
        raise ValueError(f"{name}: every x must have {n_in} values")
    ys = [_asarray(y, name) for _, y in pairs]
    if all(y.ndim == 0 for y in ys):
        Y = np.stack(ys)
        if not np.issubdtype(Y.dtype, np.integer):
            raise TypeError(f"{name}: expected integer class labels, got dtype {Y.dtype}")
    else:
        if len({y.size for y in ys}) != 1:
            raise ValueError(f"{name}: every y must have the same number of values")
        Y = np.stack([y.reshape(-1) for y in ys])
    return np.stack(xs), Y
