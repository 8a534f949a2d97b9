"""``fastbp info``: versions, threads, the Numba cache, CUDA and the data directory."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path

import numpy as np

from .. import __version__


def _numba_cache_dir() -> str:
    """Where fastbp's kernels are cached (``fastbp._cache``), found without compiling one."""
    from numba.core import config

    from .. import _cache, _config

    if not _config.CACHE:
        return "off (FASTBP_CACHE=0)"
    if config.CACHE_DIR:
        return f"{config.CACHE_DIR} (NUMBA_CACHE_DIR)"
    return str(_cache.CACHE_ROOT)


def _info(args: argparse.Namespace) -> int:
    import numba

    from .. import _threads, datasets

    # Nothing is compiled here (an information command answers at once): Numba's threading
    # layer is started by loading its library, as the first parallel kernel would.
    try:
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()
        layer = numba.threading_layer()
    except (ImportError, ValueError):  # a Numba without that (private) function
        layer = f"{numba.config.THREADING_LAYER} (configured; chosen when a kernel first runs)"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # older NumPy or an unusual build
        blas = "unknown"
    try:
        scipy = importlib.import_module("scipy").__version__
    except ImportError:
        scipy = "not installed"
    directory = datasets.data_dir()
    found = all(
        (directory / f"{name}.gz").is_file() or (directory / name).is_file()
        for name in datasets.MNIST_FILES
    )
    rows = [
        ("fastbp", f"{__version__} ({Path(__file__).parent.parent})"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("NumPy", f"{np.__version__} (BLAS: {blas}; fastbp itself calls no BLAS)"),
        ("Numba", numba.__version__),
        ("SciPy", scipy),
        ("platform", f"{platform.platform()}, {os.cpu_count()} CPUs"),
        ("threading layer", layer),
        ("threads", _threads.describe()),
        ("Numba cache", _numba_cache_dir()),
        ("CUDA", _cuda_status()),
        ("MNIST data dir", f"{directory} ({'files found' if found else 'files not found'})"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


def _cuda_status() -> str:
    """What ``--device cuda`` would run on."""
    import numba

    if not numba.config.ENABLE_CUDASIM and sys.platform == "linux":
        # Importing numba.cuda takes most of a second: not when Linux has no NVIDIA driver.
        if not Path("/proc/driver/nvidia").exists():
            return "no usable NVIDIA GPU (no NVIDIA driver loaded)"
    try:
        from numba import cuda
    except ImportError:
        return "not installed (pip install 'fastbp[cuda]')"
    if numba.config.ENABLE_CUDASIM:
        return "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    if not cuda.is_available():
        return "no usable NVIDIA GPU"
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    return f"{name} (compute capability {'.'.join(map(str, device.compute_capability))})"
