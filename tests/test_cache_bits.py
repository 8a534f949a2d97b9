"""Same seed, same bits, whether the kernels were just compiled or loaded from Numba's cache.

A kernel that another kernel calls is compiled twice: into its own library, and, as a weak
copy that LLVM optimises again, into its caller's. Fast-math lets the two copies round
differently, and which one a call reaches depends on what the process has loaded: a process
that compiles has the callee's own library (it is compiled first, and wins), a process that
loads the caller from the cache has only the caller's copy. Each child below trains every
optimiser × {no penalty, L2, L1, clipping} (and a batch-normalised network) in one process,
the compile dominating, and prints a SHA-256 of each one's parameters: with the cache off,
from an empty cache (it compiles and writes the cache), and from that warm cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import hashlib, json
    from numba.core.registry import CPUDispatcher
    from fastbp import Network, _fpmode
    from fastbp import kernels as K
    from fastbp.datasets import load_mini_mnist

    (X, y), _ = load_mini_mnist()
    X, y = X[:300], y[:300]
    penalties = {
        "none": {}, "l2": {"lmbda": 5.0}, "l1": {"l1": 2.0},
        "clip_norm": {"clip_norm": 0.5}, "clip_value": {"clip_value": 0.01},
    }
    spec = dict(activation="relu", cost="log-likelihood", init="he", seed=1, threads=1)
    digests = {}
    for optimizer in ("sgd", "momentum", "nesterov", "adam"):
        for penalty, options in penalties.items():
            net = Network([784, 30, 10], **spec)
            net.fit(X, y, epochs=1, batch_size=10, lr=0.01, seed=2, optimizer=optimizer,
                    **options)
            digests[f"{optimizer}, {penalty}"] = hashlib.sha256(net.params.tobytes()).hexdigest()
    for optimizer in ("sgd", "momentum"):
        net = Network([784, 30, 10], batch_norm=True, **spec)
        net.fit(X, y, epochs=1, batch_size=25, lr=0.01, seed=2, optimizer=optimizer, lmbda=5.0)
        digests[f"batch norm, {optimizer}, l2"] = hashlib.sha256(net.params.tobytes()).hexdigest()
    kernels = [k for m in (K, _fpmode) for k in vars(m).values()
               if isinstance(k, CPUDispatcher)]
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    cached = any(k.stats.cache_path for k in kernels)
    print(json.dumps({"digests": digests, "hits": hits, "misses": misses, "cached": cached}))
    """
)


def start(env):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env={**os.environ, "NUMBA_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def report(child):
    out, err = child.communicate()
    assert child.returncode == 0, err
    return json.loads(out)


def test_compiled_and_cached_kernels_train_the_same_bits(tmp_path):
    cache = {"FASTBP_CACHE": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    uncached = start({"FASTBP_CACHE": "0"})  # the two compiling runs side by side
    cold = report(start(cache))
    uncached = report(uncached)
    warm = report(start(cache))
    assert not uncached["cached"] and uncached["hits"] == 0, "FASTBP_CACHE=0 should not cache"
    assert cold["cached"] and cold["hits"] == 0 < cold["misses"], "an empty cache: compiles"
    assert warm["cached"] and warm["misses"] == 0 < warm["hits"], "a warm cache: loads"
    compiled = cold["digests"]
    assert len(compiled) == 22
    for name, run in (("FASTBP_CACHE=0", uncached), ("from the warm cache", warm)):
        differ = [key for key in compiled if run["digests"][key] != compiled[key]]
        assert differ == [], f"{name}: not the bits of the run that compiled: {differ}"
