"""Gradient health: per-layer norms, and the diagnosis of vanishing and exploding gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastbp import GradientWarning, Network, diagnose_gradients

from . import naive


def test_gradient_norms_are_the_norms_of_the_reference_gradient():
    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 7)), rng.random((40, 3))
    net = Network([7, 6, 5, 3], seed=1, dtype="float64")
    norms = net.gradient_norms(X, Y)
    ref = naive.batch(net.weights, net.biases, X, Y)
    np.testing.assert_allclose(norms["bias"], [np.linalg.norm(g / 40) for g in ref["nabla_b"]])
    np.testing.assert_allclose(norms["weight"], [np.linalg.norm(g / 40) for g in ref["nabla_w"]])


@pytest.mark.parametrize(
    ("bias", "previous", "verdict"),
    [
        ([0.1, 0.2, 0.3], None, None),
        ([0.001, 0.05, 0.3], None, "vanishing gradients: the first layer learns 300 times"),
        ([50.0, 1.0, 0.1], None, "exploding gradients: the first layer's gradient is 500"),
        ([0.1, 0.2, 0.3], [0.1, 0.2, 0.001], "exploding gradients: a layer's ‖∂C/∂b‖ grew 300"),
        ([0.1, np.inf, 0.3], None, "exploding gradients: non-finite"),
    ],
)
def test_diagnosis_rules(bias, previous, verdict):
    norms = {"bias": np.array(bias), "weight": np.ones(len(bias))}
    prev = None if previous is None else {"bias": np.array(previous)}
    result = diagnose_gradients(norms, prev)
    assert result == verdict if verdict is None else result.startswith(verdict)


def test_a_deep_sigmoid_network_warns_of_vanishing_gradients():
    rng = np.random.default_rng(0)
    X, y = rng.random((1500, 50)), rng.integers(0, 10, 1500)
    net = Network([50, *[30] * 8, 10], seed=1, dtype="float64")
    with pytest.warns(GradientWarning, match=r"epoch \d: vanishing gradients: .* times slower"):
        history = net.fit(X, y, epochs=2, batch_size=10, lr=0.1, monitor_gradients=True)
    assert len(history["grad_norm_b"]) == 2 and len(history["grad_norm_b"][0]) == 9
    speeds = history["grad_norm_b"][0]
    assert speeds[0] < speeds[-1] / 10
    # What it measured is gradient_norms on the first 1,000 samples after the epoch.
    np.testing.assert_allclose(
        history["grad_norm_b"][-1], net.gradient_norms(X[:1000], y[:1000])["bias"]
    )


def test_a_healthy_network_does_not_warn():
    rng = np.random.default_rng(0)
    X, y = rng.random((500, 20)), rng.integers(0, 3, 500)
    net = Network([20, 10, 3], activation="relu", init="he", cost="log_likelihood", seed=2)
    history = net.fit(X, y, epochs=2, batch_size=10, lr=0.05, monitor_gradients=True)
    assert len(history["grad_norm_w"]) == 2


def test_greedy_pretraining_learns_to_reconstruct_and_gives_a_better_start():
    from fastbp.datasets import load_mini_mnist

    (X, y), (X_test, y_test) = load_mini_mnist()
    net = Network([784, 30, 30, 30, 10], init="scaled", seed=1)
    output_before = net.params[-(30 * 10 + 10) :].copy()
    hidden_before = [w.copy() for w in net.weights[:-1]]
    histories = net.pretrain(X, epochs=3, seed=2)
    assert len(histories) == 3  # one autoencoder per hidden layer
    for history in histories:
        assert history["train_cost"][-1] < history["train_cost"][0]
    for before, after in zip(hidden_before, net.weights[:-1], strict=True):
        assert not np.array_equal(before, after)  # every hidden layer was pre-trained
    assert np.array_equal(net.params[-(30 * 10 + 10) :], output_before)  # output untouched
    plain = Network([784, 30, 30, 30, 10], init="scaled", seed=1)
    kwargs = dict(epochs=1, batch_size=10, lr=3.0, validation_data=(X_test, y_test))
    pretrained_accuracy = net.fit(X, y, **kwargs)["val_accuracy"][0]
    plain_accuracy = plain.fit(X, y, **kwargs)["val_accuracy"][0]
    assert pretrained_accuracy > max(plain_accuracy, 0.8)


# --- residual connections -------------------------------------------------------------------


def residual_problem(dtype="float64", activation="tanh"):
    """Two identity skips (8 → 8) and a projected one (8 → 5)."""
    rng = np.random.default_rng(3)
    net = Network([6, 8, 8, 8, 5, 3], activation=activation, residual=True,
                  cost="log_likelihood", init="he", seed=4, dtype=dtype)  # fmt: skip
    X = rng.standard_normal((11, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 11)]
    return net, X, Y


def test_residual_true_links_every_hidden_layer_after_the_first():
    net = Network([6, 8, 8, 5, 5, 3], residual=True)
    assert net.residual == (False, True, True, True)
    assert list(net.projections) == [3]  # 8 → 5 is projected; 8 → 8 and 5 → 5 are not
    assert net.projections[3].shape == (5, 8)
    assert "residual=[False, True, True, True]" in repr(net)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_residual_network_matches_reference(activation):
    net, X, Y = residual_problem(activation=activation)
    trace = net._trace(X, Y)
    skips = [net.projections.get(l, r) for l, r in enumerate(net.residual, start=1)]
    ref = naive.batch(net.weights, net.biases, X, Y, activations=list(net.activations),
                      cost="log_likelihood", residual=[*skips, False])  # fmt: skip
    for key in ("activations", "deltas", "nabla_b", "nabla_w"):
        for got, want in zip(trace[key], ref[key], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_residual_gradient_matches_central_differences():
    from .test_network import central_differences

    net, X, Y = residual_problem()
    analytic, numeric = central_differences(net, X, Y)
    assert np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric) < 1e-6


def test_residual_connections_carry_the_gradient_down():
    rng = np.random.default_rng(0)
    X, y = rng.random((1000, 50)), rng.integers(0, 10, 1000)
    plain = Network([50, *[30] * 8, 10], seed=1, dtype="float64")
    skip = Network([50, *[30] * 8, 10], seed=1, dtype="float64", residual=True)
    ratio = {n: n.gradient_norms(X, y)["bias"] for n in (plain, skip)}
    assert ratio[skip][0] / ratio[skip][-1] > 3 * ratio[plain][0] / ratio[plain][-1]


def test_residual_networks_save_and_load(tmp_path):
    net, X, _ = residual_problem("float32")
    net.save(tmp_path / "r.npz")
    loaded = Network.load(tmp_path / "r.npz")
    assert loaded.residual == net.residual
    assert loaded.feedforward(X).tobytes() == net.feedforward(X).tobytes()


@pytest.mark.parametrize("residual", [[True, False], [True], "yes", [False, 1]])
def test_impossible_residual_connections_are_refused(residual):
    with pytest.raises(ValueError, match=r"^residual"):
        Network([6, 8, 5, 3], residual=residual)


# --- batch normalisation --------------------------------------------------------------------


def bn_problem(dtype="float64", activation="sigmoid", n=13):
    rng = np.random.default_rng(6)
    net = Network([5, 7, 6, 3], activation=activation, batch_norm=True, seed=2, dtype=dtype)
    for g, b in zip(net.gammas, net.betas, strict=True):  # not the trivial γ = 1, β = 0
        g[...] = rng.uniform(0.5, 1.5, g.size)
        b[...] = rng.normal(0, 0.3, b.size)
    X = rng.standard_normal((n, 5)).astype(dtype)
    Y = rng.random((n, 3)).astype(dtype)
    return net, X, Y


def numpy_forward(net, X, stats=None):
    """The batch-normalised network from the equations (batch statistics unless ``stats``)."""
    a = X.astype(np.float64)
    offset = 0
    for l, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = a @ w.T.astype(np.float64) + b
        if l < len(net.weights) - 1:
            n = z.shape[1]
            if stats is None:
                mu, var = z.mean(axis=0), z.var(axis=0)
            else:
                mu, var = stats[0, offset : offset + n], stats[1, offset : offset + n]
            z = net.gammas[l] * (z - mu) / np.sqrt(var + 1e-5) + net.betas[l]
            offset += n
        a = naive.activation(net.activations[l], z)
    return a


def test_batch_norm_forward_matches_the_equations():
    net, X, Y = bn_problem()
    np.testing.assert_allclose(net._trace(X, Y)["activations"][-1], numpy_forward(net, X),
                               rtol=1e-10)  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=3, max_size=5),
    activation=st.sampled_from(["sigmoid", "relu", "tanh", "elu"]),
    n=st.integers(2, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_norm_gradient_matches_central_differences(sizes, activation, n, seed):
    from .test_network import numeric_gradient

    rng = np.random.default_rng(seed)
    net = Network(sizes, activation=activation, batch_norm=True, residual=True, seed=seed,
                  dtype="float64")  # fmt: skip
    for g, b in zip(net.gammas, net.betas, strict=True):
        g[...] = rng.uniform(0.5, 1.5, g.size)
        b[...] = rng.normal(0, 0.3, b.size)
    X = rng.standard_normal((n, sizes[0]))
    Y = rng.random((n, sizes[-1]))
    if activation in ("relu", "elu"):
        # f' jumps at 0: a hidden z within reach of the step h falls on both sides of the kink
        # in the central differences, which then measure neither side. Such draws test nothing.
        zs = net._trace(X, Y)["zs"][:-1]
        assume(all(np.all(np.abs(z) > 1e-3) for z in zs))

    def cost():
        return float(np.mean(net.cost.fn(net._trace(X, Y)["activations"][-1], Y)))

    analytic = net._trace(X, Y)["grad"] / n
    numeric = numeric_gradient(net, cost)
    error = np.linalg.norm(analytic - numeric)
    assert error <= 1e-6 * np.linalg.norm(analytic + numeric) + 1e-10
    # gradients() of a batch-normalised network uses the whole batch's statistics too.
    _, nabla_w = net.gradients(X, Y)
    np.testing.assert_allclose(nabla_w[0], net._trace(X, Y)["nabla_w"][0] / n, rtol=1e-12)


def test_batch_norm_predicts_with_running_statistics_and_survives_saving(tmp_path):
    from fastbp.datasets import load_mini_mnist

    (X, y), (X_test, y_test) = load_mini_mnist()
    net = Network([784, 30, 30, 10], batch_norm=True, seed=1)
    history = net.fit(X, y, epochs=3, batch_size=10, lr=3.0, validation_data=(X_test, y_test))
    assert history["val_accuracy"][-1] > 0.85
    stats = net._bn_stats.astype(np.float64)
    assert not np.allclose(stats[0], 0) and not np.allclose(stats[1], 1)  # they moved
    np.testing.assert_allclose(net.feedforward(X_test[:50]), numpy_forward(net, X_test[:50], stats),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    net.save(tmp_path / "bn.npz")
    loaded = Network.load(tmp_path / "bn.npz")
    assert (
        loaded.batch_norm
        and loaded.feedforward(X_test).tobytes() == net.feedforward(X_test).tobytes()
    )


def test_batch_norm_layers_report_the_speed_of_their_shift():
    net, X, Y = bn_problem()
    grad = net._trace(X, Y)["grad"] / len(X)
    speeds = net.gradient_norms(X, Y)["bias"]
    for l, beta in enumerate(net.betas):
        start = beta.__array_interface__["data"][0] - net.params.__array_interface__["data"][0]
        start //= net.params.itemsize
        assert speeds[l] == pytest.approx(np.linalg.norm(grad[start : start + beta.size]))
