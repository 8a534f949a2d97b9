"""Numba's on-disk cache, kept correct for kernels that span several modules.

Numba decides whether a cached function is stale from its own source file only (its time
stamp and size). A kernel in ``kernels/epochs.py`` that calls, or inlines, one in
``kernels/forward.py``, or uses an intrinsic of ``_simd.py``, would load stale machine code
after an edit of those other files. So every function defined in ``WATCHED`` files is cached
under ``KernelCacheLocator``, whose stamp is one SHA-256 of all of them: editing any of them
invalidates every cached kernel, and nothing else does (a reinstall that rewrites the same
files, or ``touch``, keeps the cache).

The cache lives in ``NUMBA_CACHE_DIR`` when that is set, else in fastbp's per-user cache
directory (``~/.cache/fastbp/numba``, see ``CACHE_ROOT``), not beside the sources: ``pip
install`` replaces the package's directory, ``__pycache__`` and all, and a cache there would
be lost at every reinstall (``pip install ".[test]"`` after ``pip install .``). Where that
directory cannot be written, Numba's own choice applies (beside the sources, else its user
cache directory).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching, config

from ._paths import user_cache

_PACKAGE = Path(__file__).resolve().parent

#: The sources a cached kernel may depend on: the kernels' modules, and the modules of the
#: options, intrinsics and views they are compiled with.
WATCHED = frozenset(
    [
        *(_PACKAGE / "kernels").glob("*.py"),
        *(_PACKAGE / name for name in ("_cache.py", "_config.py", "_fpmode.py", "_simd.py")),
        *(_PACKAGE / name for name in ("_sync.py", "_views.py")),
    ]
)


def _stamp(files: frozenset[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


#: The stamp of every cached kernel: a SHA-256 of the ``WATCHED`` sources, read at import.
STAMP = _stamp(WATCHED)

#: Numba's own locators, in the order it tries them (``CacheImpl`` in Numba ≥ 0.61).
_impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl


#: Where fastbp's kernels are cached when ``NUMBA_CACHE_DIR`` is not set: a directory per
#: installed copy (Numba names it after the path of the sources), outside that copy.
CACHE_ROOT = user_cache("numba")

#: Numba's locator of a user-wide cache directory, whose path this module replaces.
_UserWide = getattr(caching, "UserWideCacheLocator", None) or caching._UserWideCacheLocator


class UserCacheLocator(_UserWide):
    """Numba's user-wide locator, in ``CACHE_ROOT`` rather than Numba's directory."""

    def __init__(self, py_func, py_file) -> None:
        super().__init__(py_func, py_file)
        self._cache_path = str(CACHE_ROOT / self.get_suitable_cache_subpath(py_file))


class KernelCacheLocator(caching._CacheLocator):
    """Numba's locator for a function (the first of its own that accepts it), with
    ``STAMP`` as the freshness of its source."""

    def __init__(self, inner: caching._CacheLocator) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> str:
        return STAMP

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    def __getattr__(self, name: str):
        # What Numba reads of its own locators besides their methods (``_py_file`` when it
        # warns that a function cannot be cached).
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve() not in WATCHED:
            return None
        if not config.CACHE_DIR:  # else Numba's locator of NUMBA_CACHE_DIR
            inner = UserCacheLocator.from_function(py_func, py_file)
            if inner is not None:  # None: CACHE_ROOT cannot be written
                return cls(inner)
        for other in _impl._locator_classes:
            if other is cls:
                continue
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


def install() -> None:
    """Put ``KernelCacheLocator`` first among Numba's locators (once)."""
    if KernelCacheLocator not in _impl._locator_classes:
        _impl._locator_classes.insert(0, KernelCacheLocator)
