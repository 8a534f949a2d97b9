"""Numba options for every fastbp kernel, in one place.

Environment variables (read once, at import):

``FASTBP_CACHE``
    ``0`` switches Numba's on-disk cache off (default ``1``: compiled kernels are cached, so
    only the first import after an install or change pays the compile time).
``FASTBP_FASTMATH``
    ``0`` compiles without fast-math flags (default ``1``). The flags set here never include
    ``nnan`` or ``ninf``, so ``np.isfinite`` and NaN checks keep working inside kernels.
"""

from __future__ import annotations

import os

import numba


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise ValueError(f"environment variable {name}: expected 0 or 1, got {value!r}")


CACHE: bool = _flag("FASTBP_CACHE", True)

#: LLVM fast-math flags: reassociation lets the dot products and axpys vectorise; the flags that
#: assume no NaN or infinity ("nnan", "ninf") are left out on purpose.
FASTMATH: set[str] | bool = (
    {"nsz", "arcp", "contract", "reassoc"} if _flag("FASTBP_FASTMATH", True) else False
)


def kernel(*, parallel: bool = False):
    """Decorator factory: ``numba.njit`` with fastbp's options.

    Every kernel is compiled with the same ``cache``, ``fastmath`` and ``error_model``;
    ``parallel=True`` only where a kernel has a ``prange`` loop that pays for itself.
    """
    return numba.njit(
        cache=CACHE, fastmath=FASTMATH, error_model="numpy", nogil=True, parallel=parallel
    )
