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

from . import _cache


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
if CACHE:
    _cache.install()  # before any kernel is compiled: see fastbp._cache

#: LLVM fast-math flags: reassociation lets the dot products and axpys vectorise; the flags that
#: assume no NaN or infinity ("nnan", "ninf") are left out on purpose.
FASTMATH: set[str] | bool = (
    {"nsz", "arcp", "contract", "reassoc"} if _flag("FASTBP_FASTMATH", True) else False
)


def _accepts_nrt_option() -> bool:
    """Whether this Numba has the ``_nrt`` option (private, so checked rather than assumed):
    a Numba without it compiles every kernel with the runtime, slower, with the same results."""
    try:
        from numba.core.options import DefaultOptions
    except ImportError:
        return False
    return hasattr(DefaultOptions, "_nrt")


_NRT_OPTION: bool = _accepts_nrt_option()


def kernel(*, parallel: bool = False, allocates: bool = False, inline: bool = False):
    """Decorator factory: ``numba.njit`` with fastbp's options.

    Every kernel is compiled with the same ``cache``, ``fastmath`` and ``error_model``;
    ``parallel=True`` only where a kernel has a ``prange`` loop that pays for itself.

    Kernels that allocate no array (``allocates=False``, the default) and run on one thread
    are compiled without Numba's runtime (NRT): then an array view or a local name for an
    array costs no reference counting, which is an atomic increment and decrement each time
    (in the compiled epoch they took about a third of the time). A kernel that allocates, or
    has a ``prange`` loop (whose scheduler uses the runtime), keeps it. Without the runtime a
    kernel cannot return a view, so the small kernels that make views are ``inline``: Numba
    inlines them into their callers.

    ``inline`` is also for the same bits whether a kernel was compiled or loaded from the
    cache. A kernel called (not inlined) from another one is compiled twice: into its own
    library, and into its caller's as a weak copy that LLVM optimises again, where fast-math
    may reassociate and fuse it differently (``add_regularisation_gradient`` computed
    ``g + λw`` with one rounding in one copy and two in the other). Which copy a call runs is
    decided by the process's linker: a process that compiles the caller has the callee's own
    library, compiled first, and runs it; a process that loads the caller from the cache has
    only the caller's copy. An inlined kernel exists only inside its callers, once each.
    ``tests/test_cache_bits.py`` trains each path compiled and cached and compares the bits.
    """
    runtime = {"_nrt": parallel or allocates} if _NRT_OPTION else {}
    return numba.njit(
        cache=CACHE,
        fastmath=FASTMATH,
        error_model="numpy",
        nogil=True,
        parallel=parallel,
        inline="always" if inline else "never",
        **runtime,
    )
