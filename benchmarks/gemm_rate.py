"""This machine's single-thread GEMM rate, the divisor of ``compare.py``'s FLOP bounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: Side of the square matrices of the GEMM-rate measurement.
GEMM_N = 2048
#: Environment of the child process that measures the single-thread GEMM rate.
ONE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


GEMM_CODE = """
import json, os, sys, time
if hasattr(os, "sched_setaffinity"):  # the whole process on one CPU: one thread for BLAS and XLA
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import numpy as np
n, with_jax = int(sys.argv[1]), sys.argv[2] == "1"
rates = {"numpy": {}, "jax": {}}
for dtype in ("float32", "float64"):
    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    c = np.empty_like(a)
    best = float("inf")
    for _ in range(6):
        start = time.perf_counter()
        np.matmul(a, a, out=c)
        best = min(best, time.perf_counter() - start)
    rates["numpy"][dtype] = 2 * n**3 / best / 1e9
if with_jax:
    import jax
    jax.config.update("jax_enable_x64", True)
    f = jax.jit(lambda a: a @ a)
    for dtype in ("float32", "float64"):
        a = jax.numpy.asarray(np.random.default_rng(0).random((n, n)).astype(dtype))
        best = float("inf")
        for _ in range(6):
            start = time.perf_counter()
            f(a).block_until_ready()
            best = min(best, time.perf_counter() - start)
        rates["jax"][dtype] = 2 * n**3 / best / 1e9
print(json.dumps(rates))
"""


def gemm_rates(with_jax: bool) -> dict[str, dict[str, float]]:
    """Single-thread GEMM rates in GFLOP/s, ``{"numpy": {dtype: rate}, "jax": {...}}``.

    Measured in a child process pinned to one CPU, with BLAS's thread variables at 1, so the
    measurement never depends on this process's thread settings.
    The first of the 6 products warms up; the best time counts.
    """
    env = {**os.environ, **ONE_THREAD_ENV}
    out = subprocess.run(
        [sys.executable, "-c", GEMM_CODE, str(GEMM_N), "1" if with_jax else "0"],
        capture_output=True, text=True, check=True, env=env, timeout=600,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])
