"""The recurrent kernels' building blocks: the register-tiled product against NumPy, and the
threaded BPTT (samples in parts, reductions by output tiles) bitwise the same for any split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastbp import RecurrentNetwork, kernels

from .naive_recurrent import outputs_and_gradient

CELLS = ["rnn", "lstm", "gru"]


def _product(A, a0, si, sk, B, b0, ldb, C, c0, ldc, M, N, K, add):
    """``accumulate_product`` in plain NumPy, from its equation."""
    C = C.copy()
    for i in range(M):
        a = np.array([A[a0 + i * si + k * sk] for k in range(K)])
        rows = np.array([B[b0 + k * ldb : b0 + k * ldb + N] for k in range(K)]).reshape(K, N)
        start = C[c0 + i * ldc : c0 + i * ldc + N] if add else 0.0
        C[c0 + i * ldc : c0 + i * ldc + N] = start + a @ rows
    return C


@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize(("M", "N", "K"), [(1, 1, 1), (7, 37, 5), (9, 64, 70), (4, 70, 131)])
def test_product_equals_numpy(trans, add, M, N, K):
    rng = np.random.default_rng(M * N * K)
    lda, ldb, ldc = (K if not trans else M) + 3, N + 5, N + 2
    a0, b0, c0 = 2, 1, 3
    A = rng.standard_normal(a0 + lda * (M if not trans else K))
    B = rng.standard_normal(b0 + ldb * K)
    C = rng.standard_normal(c0 + ldc * M + 4)
    si, sk = (lda, 1) if not trans else (1, lda)
    want = _product(A, a0, si, sk, B, b0, ldb, C, c0, ldc, M, N, K, add)
    got = C.copy()
    kernels.accumulate_product(A, a0, si, sk, B, b0, ldb, got, c0, ldc, M, N, K, add)
    assert np.abs(got - want).max() < 1e-12 * K
    # values outside the M × N block (padding of each row, the ends) are untouched
    outside = np.ones(C.shape, bool)
    for i in range(M):
        outside[c0 + i * ldc : c0 + i * ldc + N] = False
    assert np.array_equal(got[outside], C[outside])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_product_rows_do_not_depend_on_the_split(dtype):
    """Any split of the rows (into multiples of 4 or not) gives each row the same bits."""
    rng = np.random.default_rng(1)
    M, N, K = 13, 45, 150
    A, B = rng.standard_normal(M * K).astype(dtype), rng.standard_normal(K * N).astype(dtype)
    whole = np.zeros(M * N, dtype)
    kernels.accumulate_product(A, 0, K, 1, B, 0, N, whole, 0, N, M, N, K, False)
    for cuts in ([0, 4, 13], [0, 1, 6, 13], [0, 3, 7, 11, 13]):
        parts = np.zeros(M * N, dtype)
        for lo, hi in itertools.pairwise(cuts):
            kernels.accumulate_product(A, lo * K, K, 1, B, 0, N, parts, lo * N, N, hi - lo, N, K,
                                       False)  # fmt: skip
        assert np.array_equal(parts, whole)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("many", [False, True])
def test_threaded_gradient_is_bitwise_the_same_and_right(cell, many):
    """Wide enough for several SIMD vectors and row tiles, 2 layers, ragged lengths, a
    mini-batch smaller than the work buffers (after a full one): 1, 2 and 3 parts."""
    net = RecurrentNetwork(3, [19, 10], 2, cell=cell, many_to_many=many, seed=5, bptt=4,
                           dtype="float64")  # fmt: skip
    rng = np.random.default_rng(2)
    n, T = 11, 7
    X = rng.standard_normal((n, T, 3))
    y = rng.integers(0, 2, (n, T) if many else n)
    Y = net._targets(y, X)
    lengths = rng.integers(1, T + 1, n).astype(np.int64)
    ws = net._work(n + 2, T)
    grad = np.empty_like(net.params)
    order = np.arange(n, dtype=np.int64)
    results = []
    for parts in (1, 2, 3):
        # a full mini-batch first leaves values in the rows the smaller one does not use
        full = np.concatenate([order, order[:2]])
        kernels.sequence_gradient(net.params, net._model, X, Y, lengths, full, n + 2, ws, grad,
                                  parts)  # fmt: skip
        kernels.sequence_gradient(net.params, net._model, X, Y, lengths, order, n, ws, grad,
                                  parts)  # fmt: skip
        results.append((grad.copy(), ws.norms.copy()))
    for grad, norms in results[1:]:
        assert np.array_equal(grad, results[0][0])
        assert np.array_equal(norms, results[0][1])
    _, want, want_norms = outputs_and_gradient(net, net.params, X, Y, lengths, bptt=4)
    assert np.abs(results[0][0] - want).max() < 1e-10
    assert np.abs(results[0][1] - want_norms).max() < 1e-10


def test_threaded_fit_gives_the_same_weights_as_one_thread():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    nets = []
    for threads in (1, 2):
        net = RecurrentNetwork(4, 20, 3, cell="lstm", seed=1, dtype="float32")
        net.fit(X, y, epochs=2, batch_size=16, lr=0.1, seed=2, threads=threads)
        nets.append(net)
    assert np.array_equal(nets[0].params, nets[1].params)


def test_gradient_of_more_sequences_than_a_block_equals_the_reference():
    """``gradient`` runs blocks of ``_BLOCK`` sequences and sums them."""
    from fastbp.recurrent import _BLOCK

    net = RecurrentNetwork(3, 5, 2, cell="gru", seed=2, dtype="float64")
    rng = np.random.default_rng(4)
    n = _BLOCK + 44
    X = rng.standard_normal((n, 3, 3))
    y = rng.integers(0, 2, n)
    lengths = rng.integers(1, 4, n).astype(np.int64)
    _, want, want_norms = outputs_and_gradient(net, net.params, X, net._targets(y, X), lengths)
    assert np.abs(net.gradient(X, y, lengths) - want / n).max() < 1e-12
    assert np.abs(net.gradient_norms(X, y, lengths) - np.sqrt(want_norms) / n).max() < 1e-12
