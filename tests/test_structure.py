"""The code's promises about its own structure: Numba options live in one place."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numba

import fastbp
from fastbp import _config, _kernels

SOURCES = sorted(Path(fastbp.__file__).parent.glob("*.py"))


def test_numba_options_are_set_only_in_config():
    pattern = re.compile(r"fastmath\s*=|\bnjit\b|\bnumba\.jit\b|@jit\b")
    offenders = [
        f"{path.name}:{n}"
        for path in SOURCES
        if path.name != "_config.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_fastmath_never_assumes_finite_values():
    assert not isinstance(_config.FASTMATH, bool) or _config.FASTMATH is False
    if _config.FASTMATH:
        assert not {"nnan", "ninf", "fast"} & set(_config.FASTMATH)


def test_every_kernel_is_compiled_with_the_config_options():
    kernels = [
        obj
        for _, obj in inspect.getmembers(_kernels)
        if isinstance(obj, numba.core.registry.CPUDispatcher)
    ]
    assert len(kernels) >= 10
    for k in kernels:
        assert k.targetoptions["fastmath"] == _config.FASTMATH
        assert isinstance(k._cache, numba.core.caching.FunctionCache) == _config.CACHE
        assert k.targetoptions["error_model"] == "numpy"
        assert k.__doc__ and k.__doc__.strip(), f"{k.__name__} has no docstring"
