"""The peers' imports and threads: NumPy's OpenBLAS and JAX's CPU client on one thread.

A peer is imported only if it is installed (nothing is ever installed). NumPy's OpenBLAS (used
by the ``book``, ``numpy`` and ``sklearn`` systems) is set through its C API; JAX's thread pool
is sized by creating its CPU client while the process may use one CPU."""

from __future__ import annotations

import ctypes
import importlib
import os
from pathlib import Path


def optional_module(name: str):
    """The module ``name``, or ``None`` when it is not installed (never installs anything)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def import_jax(threads: int):
    """JAX with its CPU client created (or ``None``), and how many threads it has, in words.

    With ``threads == 1`` the client is created while this thread may run on one CPU only:
    XLA sizes its thread pool by the CPUs it may use, and its threads keep that affinity.
    """
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    one_cpu = threads == 1 and saved is not None and len(saved) > 1
    if one_cpu:
        os.sched_setaffinity(0, {min(saved)})
    try:
        jax = optional_module("jax")
        if jax is not None:
            jax.jit(lambda x: x + 1)(jax.numpy.zeros(1)).block_until_ready()  # creates the client
    finally:
        if one_cpu:
            os.sched_setaffinity(0, saved)
    if jax is None:
        return None, "not installed"
    if one_cpu or (saved is not None and len(saved) == 1):
        return jax, "1 (XLA's CPU client created while the process could use one CPU)"
    return jax, "its default (XLA's thread pool over all usable CPUs)"


def openblas_libraries() -> dict[str, str]:
    """The OpenBLAS libraries loaded in this process: ``{"numpy" | "scipy" | "other": path}``.

    NumPy's and SciPy's wheels each bundle their own copy (in ``numpy.libs`` and
    ``scipy.libs``); read from ``/proc/self/maps`` (Linux), empty elsewhere.
    """
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        path = line.split()[-1]
        if "openblas" not in Path(path).name.lower():
            continue
        owner = next((o for o in ("numpy", "scipy") if f"{o}.libs" in path), "other")
        found.setdefault(owner, path)
    return found


def blas_threads(path: str, threads: int | None = None) -> int | None:
    """Set (when ``threads`` is given) and return the thread count of the OpenBLAS at ``path``."""
    lib = ctypes.CDLL(path)  # already loaded: the same library, not a second copy
    names = (
        "scipy_openblas{}_num_threads64_",
        "scipy_openblas{}_num_threads",
        "openblas{}_num_threads",
    )
    for name in names:
        try:
            setter, getter = getattr(lib, name.format("_set")), getattr(lib, name.format("_get"))
        except AttributeError:
            continue
        getter.restype = ctypes.c_int
        if threads is not None:
            setter(ctypes.c_int(threads))
        return int(getter())
    return None
