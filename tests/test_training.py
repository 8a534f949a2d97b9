"""Optimisers, clipping and regularisation: hand-computed steps and a NumPy reference epoch."""

from __future__ import annotations

import numpy as np
import pytest

from fastbp import Network, kernels

from . import naive
from .test_network import assert_close, flat, numeric_gradient, pair_problem

HYPER = kernels.Hyper(momentum=0.5, beta1=0.9, beta2=0.99, eps=1e-8, rho=0.9)


def step(optimizer, params, grad, state, t=1, eta=0.1):
    params, state = params.copy(), state.copy()
    kernels.optimizer_step(params, grad, state, optimizer, eta, HYPER, t)
    return params, state


def test_sgd_step_by_hand():
    params, _ = step(kernels.SGD, np.array([1.0, -2.0]), np.array([0.5, 1.0]), np.zeros((2, 2)))
    np.testing.assert_allclose(params, [1.0 - 0.05, -2.0 - 0.1], rtol=1e-15)


def test_momentum_step_by_hand():
    # v = μv − ηg = 0.5·0.2 − 0.1·0.5 = 0.05 (first), 0.5·(−0.4) − 0.1·1 = −0.3 (second).
    state = np.array([[0.2, -0.4], [0.0, 0.0]])
    params, state = step(kernels.MOMENTUM, np.array([1.0, -2.0]), np.array([0.5, 1.0]), state)
    np.testing.assert_allclose(state[0], [0.05, -0.3], rtol=1e-15)
    np.testing.assert_allclose(params, [1.05, -2.3], rtol=1e-15)


def test_nesterov_step_by_hand():
    # v' = 0.05 and −0.3 as above; θ ← θ − μv + (1 + μ)v' = 1 − 0.1 + 0.075, −2 + 0.2 − 0.45.
    state = np.array([[0.2, -0.4], [0.0, 0.0]])
    params, state = step(kernels.NESTEROV, np.array([1.0, -2.0]), np.array([0.5, 1.0]), state)
    np.testing.assert_allclose(state[0], [0.05, -0.3], rtol=1e-15)
    np.testing.assert_allclose(params, [0.975, -2.25], rtol=1e-15)


def test_adam_steps_by_hand():
    # Step 1 from zero state: m = 0.1g, s = 0.01g², m̂ = g, ŝ = g², so θ moves by η·sgn(g).
    params, state = step(
        kernels.ADAM, np.array([1.0, -2.0]), np.array([0.5, -4.0]), np.zeros((2, 2))
    )
    np.testing.assert_allclose(state, [[0.05, -0.4], [0.0025, 0.16]], rtol=1e-12)
    np.testing.assert_allclose(params, [0.9, -1.9], rtol=1e-7)
    # Step 2 with g = (0.5, 0): m = (0.095, −0.36), s = (0.004975, 0.1584).
    params, state = step(kernels.ADAM, params, np.array([0.5, 0.0]), state, t=2)
    m_hat = np.array([0.095, -0.36]) / (1 - 0.9**2)
    s_hat = np.array([0.004975, 0.1584]) / (1 - 0.99**2)
    np.testing.assert_allclose(params, [0.9, -1.9] - 0.1 * m_hat / (np.sqrt(s_hat) + 1e-8))


def test_rmsprop_steps_by_hand():
    # s = ρs + (1 − ρ)g² = 0.9·0.1 + 0.1·0.25 = 0.115 and 0.9·0 + 0.1·16 = 1.6;
    # θ ← θ − ηg/(√s + ε).
    state = np.array([[0.1, 0.0], [7.0, 7.0]])  # state[1] is Adam's: left alone
    grad = np.array([0.5, -4.0])
    params, state = step(kernels.RMSPROP, np.array([1.0, -2.0]), grad, state)
    np.testing.assert_allclose(state, [[0.115, 1.6], [7.0, 7.0]], rtol=1e-15)
    want = np.array([1.0, -2.0]) - 0.1 * grad / (np.sqrt([0.115, 1.6]) + 1e-8)
    np.testing.assert_allclose(params, want, rtol=1e-15)


def test_rmsprop_matches_torch_optim_rmsprop():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    start = rng.standard_normal(7)
    grads = rng.standard_normal((6, 7))
    params, state = start.copy(), np.zeros((2, 7))
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optim = torch.optim.RMSprop([theta], lr=0.01, alpha=0.9, eps=1e-8)
    for t, g in enumerate(grads, start=1):
        kernels.optimizer_step(params, g, state, kernels.RMSPROP, 0.01, HYPER, t)
        theta.grad = torch.tensor(g, dtype=torch.float64)
        optim.step()
    np.testing.assert_allclose(params, theta.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_clipping_by_norm_and_value():
    small = np.array([0.3, -0.4])  # norm 0.5
    g = small.copy()
    kernels.clip_gradient(g, 1.0, 0.0)
    assert g.tobytes() == small.tobytes()  # under the bound: untouched
    g = np.array([3.0, -4.0])  # norm 5 → scaled by 1/5 exactly
    kernels.clip_gradient(g, 1.0, 0.0)
    np.testing.assert_allclose(g, [0.6, -0.8], rtol=1e-15)
    g = np.array([3.0, -0.5, 0.1])
    kernels.clip_gradient(g, 0.0, 1.0)
    assert g.tolist() == [1.0, -0.5, 0.1]


def reference_epoch(net, X, Y, batch_size, eta, optimizer, lmbda=0.0, mu=0.5, clip_norm=0.0,
                    rho=0.9, eps=1e-8):  # fmt: skip
    """The general path written with NumPy: mean gradient + (λ/n)w, clipped, then the step."""
    ws = [np.array(w, dtype=np.float64) for w in net.weights]
    bs = [np.array(b, dtype=np.float64) for b in net.biases]
    vw = [np.zeros_like(w) for w in ws]
    vb = [np.zeros_like(b) for b in bs]
    n = len(X)
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        grads = naive.batch(ws, bs, X[rows], Y[rows], activations=list(net.activations),
                            cost=net.cost.name, alpha=0.2)  # fmt: skip
        gw = [g / len(rows) + lmbda / n * w for g, w in zip(grads["nabla_w"], ws, strict=True)]
        gb = [g / len(rows) for g in grads["nabla_b"]]
        norm = np.sqrt(sum(np.sum(g * g) for g in gw + gb))
        if clip_norm and norm > clip_norm:
            gw = [g * clip_norm / norm for g in gw]
            gb = [g * clip_norm / norm for g in gb]
        for p, v, g in zip(ws + bs, vw + vb, gw + gb, strict=True):
            if optimizer == "rmsprop":  # v is the running mean of g²
                v[...] = rho * v + (1 - rho) * g * g
                p -= eta * g / (np.sqrt(v) + eps)
                continue
            new = mu * v - eta * g
            if optimizer == "momentum":
                p += new
            else:  # nesterov
                p += -mu * v + (1 + mu) * new
            v[...] = new
    return ws + bs


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "rmsprop"])
@pytest.mark.parametrize(("lmbda", "clip_norm"), [(0.0, None), (3.0, None), (0.0, 0.5)])
def test_an_optimizers_epoch_matches_the_reference(optimizer, lmbda, clip_norm):
    net, X, Y = pair_problem([5, 4, 3], "tanh", "softmax", "log_likelihood", 17, "float64", 5)
    want = reference_epoch(net, X, Y, 4, 0.2, optimizer, lmbda, 0.5, clip_norm or 0.0, 0.9)
    net.fit(X, Y, epochs=1, batch_size=4, lr=0.2, optimizer=optimizer, momentum=0.5,
            lmbda=lmbda, clip_norm=clip_norm, shuffle=False, rho=0.9)  # fmt: skip
    for got, w in zip(net.weights + net.biases, want, strict=True):
        assert_close(got, w, "float64")


def test_sgd_with_clipping_that_never_binds_equals_the_fused_path():
    a, X, Y = pair_problem([5, 4, 3], "relu", "sigmoid", "cross_entropy", 30, "float64", 6)
    b, _, _ = pair_problem([5, 4, 3], "relu", "sigmoid", "cross_entropy", 30, "float64", 6)
    a.fit(X, Y, epochs=2, batch_size=7, lr=0.3, lmbda=1.0, shuffle=False)
    b.fit(X, Y, epochs=2, batch_size=7, lr=0.3, lmbda=1.0, shuffle=False, clip_norm=1e9)
    assert_close(b.params, a.params, "float64")


def test_optimizer_state_carries_over_and_resets_on_change():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 4)), rng.integers(0, 2, 40)
    once = Network([4, 3, 2], seed=1, dtype="float64")
    once.fit(X, y, epochs=2, batch_size=8, lr=0.01, optimizer="adam", shuffle=False)
    twice = Network([4, 3, 2], seed=1, dtype="float64")
    for _ in range(2):
        twice.fit(X, y, epochs=1, batch_size=8, lr=0.01, optimizer="adam", shuffle=False)
    assert once.params.tobytes() == twice.params.tobytes()
    assert twice._optimizer[2] == 10
    twice.fit(X, y, epochs=1, batch_size=8, lr=0.01, optimizer="momentum", shuffle=False)
    assert twice._optimizer[0] == "momentum" and twice._optimizer[2] == 5


def test_adam_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    net = Network([2, 8, 2], activation="tanh", cost="log_likelihood", seed=3, dtype="float64")
    net.fit(X, [0, 1, 1, 0], epochs=500, batch_size=4, lr=0.05, optimizer="adam")
    assert net.predict(X).tolist() == [0, 1, 1, 0]


def test_the_books_halving_schedule():
    # With η = 1e-30 nothing learns, so the accuracy never improves after epoch 0: the rule
    # fires every `patience` epochs, and training stops at the `max_halvings`-th halving.
    net, X, Y = pair_problem([5, 4, 3], "sigmoid", "sigmoid", "quadratic", 20, "float64", 1)
    history = net.fit(X, Y, epochs=50, batch_size=5, lr=1e-30, validation_data=(X, Y),
                      schedule="halve", patience=2, max_halvings=3)  # fmt: skip
    assert history["lr"] == [1e-30] * 3 + [5e-31] * 2 + [2.5e-31] * 2
    assert history["epoch"] == list(range(7))


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(3)
    X, y = rng.random((60, 5)), rng.integers(0, 3, 60)
    net = Network([5, 12, 3], seed=4, dtype="float64")
    snapshots = []
    history = net.fit(
        X[:40], y[:40], epochs=60, batch_size=5, lr=8.0, validation_data=(X[40:], y[40:]),
        early_stopping=5, callback=lambda n, e, h: snapshots.append(n.params.copy()),
    )  # fmt: skip
    accuracies = history["val_accuracy"]
    best = int(np.argmax(accuracies))  # the first epoch with the best accuracy
    assert history["best_epoch"] == [best]
    assert len(accuracies) == best + 6 or len(accuracies) == 60
    assert net.params.tobytes() == snapshots[best].tobytes()
    assert net.accuracy(X[40:], y[40:]) == accuracies[best]


def test_dropout_gradient_matches_central_differences_with_a_fixed_mask():
    """With the generator reseeded for every evaluation, each sees the same masks."""
    net, X, Y = pair_problem([4, 6, 5, 3], "sigmoid", "softmax", "log_likelihood", 8, "float64", 9)

    def cost():
        out = net._trace(X, Y, dropout=0.4, seed=7)["activations"][-1]
        return float(np.mean(net.cost.fn(out, Y)))

    trace = net._trace(X, Y, dropout=0.4, seed=7)
    hidden = trace["activations"][0]
    assert (hidden == 0).any() and (hidden != 0).any()  # some neurons dropped, some kept
    analytic = flat(trace["nabla_b"], trace["nabla_w"]) / len(X)
    numeric = numeric_gradient(net, cost)
    assert np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric) < 1e-6


def test_dropout_is_reproducible_and_inverted():
    rng = np.random.default_rng(0)
    X, y = rng.random((100, 6)), rng.integers(0, 3, 100)
    nets = [Network([6, 20, 3], seed=2) for _ in range(3)]
    for net in nets[:2]:
        net.fit(X, y, epochs=2, batch_size=10, lr=0.5, dropout=0.5)
    nets[2].fit(X, y, epochs=2, batch_size=10, lr=0.5)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    assert nets[0].params.tobytes() != nets[2].params.tobytes()
    # Inverted scaling: a kept neuron is doubled (p = 0.5), and on average nothing changes.
    net = Network([6, 2000, 3], seed=1, dtype="float64")
    plain = net._trace(X[:1], y[:1])["activations"][0]
    dropped = net._trace(X[:1], y[:1], dropout=0.5, seed=3)["activations"][0]
    ratio = dropped[plain != 0] / plain[plain != 0]
    assert np.all((ratio == 0) | (np.abs(ratio - 2) < 1e-12))
    assert abs(np.mean(dropped) / np.mean(plain) - 1) < 0.05


@pytest.mark.parametrize(("lmbda", "l1"), [(3.0, 0.0), (0.0, 2.0), (1.5, 0.5)])
def test_regularised_gradient_matches_central_differences(lmbda, l1):
    """∂/∂θ of total_cost(λ, λ₁) = the mean data gradient + the kernel's penalty gradient."""
    net, X, Y = pair_problem([4, 5, 3], "elu", "sigmoid", "cross_entropy", 9, "float64", 4)
    grad = flat(*net.gradients(X, Y))
    n = len(X)
    kernels.add_regularisation_gradient(net.params, net._model, grad, lmbda / n, l1 / n)
    numeric = numeric_gradient(net, lambda: net.total_cost(X, Y, lmbda, l1))
    assert np.linalg.norm(grad - numeric) / np.linalg.norm(grad + numeric) < 1e-6


def test_one_configuration_api_across_network_fit_and_sgd():
    rng = np.random.default_rng(1)
    X, y = rng.random((50, 6)), rng.integers(0, 3, 50)
    spec = dict(activation="relu", output="softmax", cost="log-likelihood", init="he", seed=3)
    options = dict(optimizer="adam", lmbda=5.0, dropout=0.2, clip_norm=1.0, seed=9)
    a, b = Network([6, 10, 3], **spec), Network([6, 10, 3], **spec)
    a.fit(X, y, epochs=2, batch_size=5, lr=0.01, **options)
    b.SGD((X, y), 2, 5, 0.01, verbose=False, **options)
    assert a.params.tobytes() == b.params.tobytes()
