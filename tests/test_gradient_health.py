"""Gradient health: per-layer norms, and the diagnosis of vanishing and exploding gradients."""

from __future__ import annotations

import numpy as np
import pytest

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
    first_before = net.weights[0].copy()
    histories = net.pretrain(X, epochs=3, seed=2)
    assert len(histories) == 3  # one autoencoder per hidden layer
    for history in histories:
        assert history["train_cost"][-1] < history["train_cost"][0]
    assert not np.array_equal(net.weights[0], first_before)
    assert np.array_equal(net.params[-(30 * 10 + 10) :], output_before)  # output untouched
    plain = Network([784, 30, 30, 30, 10], init="scaled", seed=1)
    kwargs = dict(epochs=1, batch_size=10, lr=3.0, validation_data=(X_test, y_test))
    pretrained_accuracy = net.fit(X, y, **kwargs)["val_accuracy"][0]
    plain_accuracy = plain.fit(X, y, **kwargs)["val_accuracy"][0]
    assert pretrained_accuracy > max(plain_accuracy, 0.8)
