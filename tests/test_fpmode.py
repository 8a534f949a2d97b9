"""Subnormal numbers are flushed to zero inside the kernels, and only there."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastbp import Network, _fpmode

pytestmark = pytest.mark.skipif(not _fpmode.X86, reason="the flush mode is set on x86 only")

TINY = np.float32(1e-30)  # TINY * SMALL = 1e-40, a subnormal float32
SMALL = np.float32(1e-10)


@numba.njit
def product(a, b):
    return a * b


def test_flush_subnormals_sets_the_mode_and_restore_puts_it_back():
    assert product(TINY, SMALL) != 0
    mode = _fpmode.flush_subnormals()
    try:
        assert product(TINY, SMALL) == 0
        assert product(np.float32(1e-20), SMALL) == np.float32(1e-30)  # normal numbers unchanged
    finally:
        _fpmode.restore_fp_mode(mode)
    assert product(TINY, SMALL) == np.float32(1e-40)


def test_fit_and_predict_leave_the_callers_mode_as_it_was():
    rng = np.random.default_rng(0)
    X = rng.random((50, 6)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    net = Network([6, 5, 3], seed=0)
    net.fit(X, y, epochs=1, batch_size=10, lr=1.0)
    net.predict(X)
    net.gradients(X, y)
    assert product(TINY, SMALL) != 0
    diverging = Network([2, 3, 1], seed=0, dtype="float64")
    diverging.weights[0][...] = 0  # then one step of η = 1e12 on x = 1e300 overflows w¹
    with pytest.raises(FloatingPointError):
        diverging.fit([[1e300, 1e300]], [0.0], epochs=1, batch_size=1, lr=1e12)
    assert product(TINY, SMALL) != 0


def test_a_saturated_neurons_subnormal_gradient_is_flushed_to_zero():
    # σ'(z) is subnormal for z = -95 in float32 (about 5.5e-42), so the output error δ and the
    # bias gradient are too, unless flushed: the kernels return exactly 0.
    net = Network([1, 1], seed=0)
    net.weights[0][...] = 0
    net.biases[0][...] = -95
    nabla_b, _ = net.gradients(np.zeros((4, 1), np.float32), np.ones((4, 1), np.float32))
    assert nabla_b[0][0] == 0
    a = 1 / (1 + np.exp(np.float64(95)))
    assert 0 < a * (1 - a) < np.finfo(np.float32).tiny  # what it would be: subnormal
