"""The JAX peer of ``benchmarks/compare_recurrent.py`` (``benchmarks/peers/jax_lstm.py``) trains
the same LSTM as fastbp: same cost, same SGD steps, same parameter layout and gate order."""

from __future__ import annotations

import numpy as np
import pytest

from fastbp import RecurrentNetwork

jax = pytest.importorskip("jax", reason="JAX is not installed (python -m pip install jax)")

from benchmarks.peers.jax_lstm import JaxLSTMTrainer, check_against_fastbp  # noqa: E402


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 3)), rng.integers(0, 4, n)


@pytest.mark.parametrize(("n", "batch"), [(7, 3), (6, 6)])
def test_an_epoch_equals_fastbp_in_float64(n, batch):
    before = bool(jax.config.jax_enable_x64)
    assert check_against_fastbp(jax, n=n, batch=batch) < 1e-9
    assert bool(jax.config.jax_enable_x64) == before


def test_the_timed_float32_epoch_follows_fastbp():
    X, y = _data(10)
    net = RecurrentNetwork(3, 6, 4, cell="lstm", seed=1)  # float32, as compare_recurrent times
    peer = JaxLSTMTrainer(jax, net, X.astype(np.float32), y, batch=4, lr=0.5)
    peer.compile(np.arange(10))
    start = peer.arrays()
    peer.epoch(np.arange(10))
    net.fit(X, y, epochs=1, batch_size=4, lr=0.5, shuffle=False)
    mine = {**net.layers[0], **net.layers[1]}
    for name, theirs in peer.arrays().items():
        assert theirs.dtype == np.float32
        moved = np.abs(theirs - start[name]).max()
        assert moved > 1e-2, name  # compile() left the parameters alone; the epoch moved them
        assert np.abs(theirs - mine[name]).max() < 1e-5 * (1 + moved), name


def test_a_wrong_gate_order_is_seen():
    X, y = _data(5)
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        net = RecurrentNetwork(3, 5, 4, cell="lstm", seed=7, dtype="float64")
        peer = JaxLSTMTrainer(jax, net, X, y, batch=5, lr=0.5)
        right = float(peer.loss(peer.params, peer.X, peer.y))
        W, b, V, c = peer.params
        swap = np.r_[5:10, 0:5, 10:20]  # the input and forget gates exchanged
        wrong = float(peer.loss((W[:, swap], b[swap], V, c), peer.X, peer.y))
    finally:
        jax.config.update("jax_enable_x64", before)
    assert abs(right - net.cost_of(X, y)) < 1e-12
    assert abs(wrong - net.cost_of(X, y)) > 1e-3


def test_only_a_one_layer_lstm_is_accepted():
    X, y = _data(4)
    net = RecurrentNetwork(3, 5, 4, cell="gru", seed=1)
    with pytest.raises(ValueError, match="net: expected a one-layer LSTM"):
        JaxLSTMTrainer(jax, net, X, y, batch=2, lr=0.1)
