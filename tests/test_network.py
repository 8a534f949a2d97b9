"""The kernels and ``Network`` against the equations: reference, finite differences, examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastbp import Network, kernels
from fastbp.network import ACTIVATIONS

from . import naive

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "linear"]


def assert_close(actual, expected, dtype, what="", scale=None):
    """Relative agreement at the dtype's tolerance, scaled by the largest reference value (or
    by ``scale``: for a sum over samples, the largest sum of the terms' magnitudes)."""
    expected = np.asarray(expected, dtype=np.float64)
    tol = TOLERANCE[dtype]
    if scale is None:
        scale = np.max(np.abs(expected), initial=0.0)
    scale = max(float(scale), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def numeric_gradient(net, cost, h=1e-6):
    """Central differences ``(C(θ + h) − C(θ − h)) / 2h`` of ``cost()`` for every parameter."""
    numeric = np.empty_like(net.params, dtype=np.float64)
    for i in range(net.params.size):
        saved = net.params[i]
        net.params[i] = saved + h
        up = cost()
        net.params[i] = saved - h
        down = cost()
        net.params[i] = saved
        numeric[i] = (up - down) / (2 * h)
    return numeric


def flat(nabla_b, nabla_w):
    """Per-layer gradients flattened in the layout of ``params``."""
    return np.concatenate(
        [np.concatenate([w.ravel(), b]) for w, b in zip(nabla_w, nabla_b, strict=True)]
    )


def central_differences(net, X, Y):
    """``(analytic, numeric)``: the compiled mean gradient of every parameter (the flat buffer
    ``gradients`` is cut from, projections and ``γ``/``β`` included), and the central
    differences of ``total_cost``."""
    Xc = net._inputs(X)
    analytic = net._gradient_sum(Xc, net._targets(Y, len(Xc), "Y")) / len(Xc)
    return analytic, numeric_gradient(net, lambda: net.total_cost(X, Y))


def random_problem(sizes, n, dtype, seed):
    rng = np.random.default_rng(seed)
    net = Network(sizes, seed=seed, dtype=dtype)
    X = rng.standard_normal((n, sizes[0]))
    Y = rng.random((n, sizes[-1]))
    return net, X.astype(dtype), Y.astype(dtype)


# --- the reference comparison -------------------------------------------------------------


def term_scales(net, ref, X, Y, cost="quadratic"):
    """Per layer, the size of the terms each reference value is a sum of: the scale of the
    rounding error of a value whose terms cancel (BP2's ``Σⱼ wⱼᵢ δⱼ`` can be far smaller than
    its terms, ``a − y`` where the output is close to its target, and a softmax output's ``δ``
    always sums to 0). From the output's ``|a| + |y|`` (the terms of ``g = a − y``), times
    ``|f'(zᴸ)|`` for the quadratic cost, or ``a ⊙ (|g| + Σ|g|a)`` with a softmax output,
    through ``|w|ᵀ`` and ``|f'(z)|``; for ``z = w a + b``, ``|w||a| + |b|``, and for
    ``f(z)``, that times ``|f'(z)|``; for BP4's ``δ aᵀ``, the terms of ``δ`` times those of
    ``a``. Returns one number per layer for each key of a trace."""
    a_out = ref["activations"][-1]
    g = np.abs(a_out) + np.abs(np.asarray(Y, dtype=np.float64))
    if cost != "quadratic":
        size = g
    elif net.activations[-1] == "softmax":
        size = a_out * (g + (g * a_out).sum(axis=1, keepdims=True))
    else:
        size = g * np.abs(naive.derivative(net.activations[-1], ref["zs"][-1], 0.2))
    deltas = [size]
    for l in range(len(net.weights) - 2, -1, -1):
        f_prime = naive.derivative(net.activations[l], ref["zs"][l], 0.2)
        size = (size @ np.abs(net.weights[l + 1].astype(np.float64))) * np.abs(f_prime)
        deltas.insert(0, size)
    inputs = [np.asarray(X, dtype=np.float64), *ref["activations"][:-1]]
    z_terms = [
        np.abs(a) @ np.abs(w.T.astype(np.float64)) + np.abs(b)
        for a, w, b in zip(inputs, net.weights, net.biases, strict=True)
    ]
    derivatives = [
        naive.derivative(name, z, 0.2) if name != "softmax" else np.ones_like(z)
        for name, z in zip(net.activations, ref["zs"], strict=True)
    ]
    # Each activation, with the rounding error of its z (whose terms may cancel) carried
    # through f: BP4's a δᵀ inherits it.
    a_terms = [
        np.maximum(t * np.abs(d), np.abs(a))
        for t, d, a in zip(z_terms, derivatives, ref["activations"], strict=True)
    ]
    a_in_terms = [np.abs(inputs[0]), *a_terms[:-1]]
    return {
        "zs": [t.max() for t in z_terms],
        "activations": [t.max() for t in a_terms],
        "deltas": [d.max() for d in deltas],
        "nabla_b": [d.sum(axis=0).max() for d in deltas],
        "nabla_w": [(d.T @ a).max() for d, a in zip(deltas, a_in_terms, strict=True)],
    }


architectures = st.lists(st.integers(1, 64), min_size=2, max_size=6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=40, deadline=None)
@given(sizes=architectures, n=st.integers(1, 33), seed=st.integers(0, 2**32 - 1))
def test_every_activation_delta_and_gradient_match_reference(dtype, sizes, n, seed):
    net, X, Y = random_problem(sizes, n, dtype, seed)
    trace = net._trace(X, Y)
    ref = naive.batch(net.weights, net.biases, X, Y)
    scales = term_scales(net, ref, X, Y)
    for key in ("zs", "activations", "deltas", "nabla_b", "nabla_w"):
        for l, (got, want) in enumerate(zip(trace[key], ref[key], strict=True)):
            assert got.shape == want.shape
            scale = scales[key][l] if key in scales else None
            assert_close(got, want, dtype, f"{key}[{l}] sizes={sizes} n={n}", scale)
    nabla_b, nabla_w = net.gradients(X, Y)
    got = nabla_b + nabla_w
    want = ref["nabla_b"] + ref["nabla_w"]
    magnitude = scales["nabla_b"] + scales["nabla_w"]
    for g, w, a in zip(got, want, magnitude, strict=True):
        assert_close(g, w / n, dtype, f"gradients() sizes={sizes} n={n}", a / n)


PAIRS = [
    ("sigmoid", "quadratic"),
    ("tanh", "quadratic"),
    ("linear", "quadratic"),
    ("relu", "quadratic"),
    ("softmax", "quadratic"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "log_likelihood"),
]


def pair_problem(sizes, hidden, output, cost, n, dtype, seed):
    rng = np.random.default_rng(seed)
    net = Network(
        sizes, activation=hidden, output=output, cost=cost, init="scaled", alpha=0.2,
        seed=seed, dtype=dtype,
    )  # fmt: skip
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if cost == "log_likelihood":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    else:
        Y = rng.random((n, sizes[-1])).astype(dtype)
    return net, X, Y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=2, max_size=5),
    hidden=st.sampled_from(ELEMENTWISE),
    pair=st.sampled_from(PAIRS),
    n=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_activation_and_cost_matches_reference(dtype, sizes, hidden, pair, n, seed):
    output, cost = pair
    if output == "softmax" and sizes[-1] == 1:
        sizes = [*sizes[:-1], 2]
    net, X, Y = pair_problem(sizes, hidden, output, cost, n, dtype, seed)
    names = list(net.activations)
    trace = net._trace(X, Y)
    ref = naive.batch(net.weights, net.biases, X, Y, activations=names, cost=cost, alpha=0.2)
    if dtype == "float32":
        # At a kink (ReLU, leaky ReLU, ELU at 0) f' jumps: a z within float32's rounding of 0
        # may fall on either side in the two computations. Such draws compare nothing.
        inputs = [X, *ref["activations"][:-1]]
        for name, z, w, b, a in zip(names, ref["zs"], net.weights, net.biases, inputs,
                                    strict=True):  # fmt: skip
            if name in ("relu", "leaky_relu", "elu"):
                terms = np.abs(a) @ np.abs(w.T.astype(np.float64)) + np.abs(b)
                assume(np.all(np.abs(z) > 1e-5 * terms))
    scales = term_scales(net, ref, X, Y, cost)
    for key in ("zs", "activations", "deltas", "nabla_b", "nabla_w"):
        for l, (got, want) in enumerate(zip(trace[key], ref[key], strict=True)):
            scale = scales[key][l] if key in scales else None
            assert_close(got, want, dtype, f"{key}[{l}] {names} {cost}", scale)


@pytest.mark.parametrize("hidden", ELEMENTWISE)
@pytest.mark.parametrize(("output", "cost"), PAIRS)
def test_every_pair_matches_central_differences(hidden, output, cost):
    sizes = [4, 5, 3, 3]
    net, X, Y = pair_problem(sizes, hidden, output, cost, 7, "float64", 3)
    analytic, numeric = central_differences(net, X, Y)
    relative = np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric)
    assert relative < 1e-6, f"{hidden} {output} {cost}: {relative:.2e}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 20), min_size=2, max_size=4),
    n=st.integers(1, 70),
    batch_size=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_epoch_matches_reference_sgd(dtype, sizes, n, batch_size, seed):
    """The compiled epoch, last partial mini-batch included, is the book's update rule."""
    net, X, Y = random_problem(sizes, n, dtype, seed)
    weights, biases = naive.sgd_epoch(net.weights, net.biases, X, Y, np.arange(n), batch_size, 0.5)
    net.fit(X, Y, epochs=1, batch_size=batch_size, lr=0.5, shuffle=False)
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        # float32 rounding compounds over the steps of an epoch: allow 10 steps' worth.
        tol = TOLERANCE[dtype] * (10 if dtype == "float32" else 1)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize(("lmbda", "l1"), [(5.0, 0.0), (0.0, 2.0), (1.0, 1.0)])
@pytest.mark.parametrize(
    ("hidden", "output", "cost"),
    [("relu", "softmax", "log_likelihood"), ("tanh", "sigmoid", "cross_entropy")],
)
def test_regularised_epoch_matches_reference(lmbda, l1, hidden, output, cost):
    net, X, Y = pair_problem([6, 5, 3], hidden, output, cost, 23, "float64", 8)
    weights, biases = naive.sgd_epoch(
        net.weights, net.biases, X, Y, np.arange(23), 4, 0.3, lmbda, l1,
        activations=list(net.activations), cost=cost, alpha=0.2,
    )  # fmt: skip
    net.fit(X, Y, epochs=1, batch_size=4, lr=0.3, lmbda=lmbda, l1=l1, shuffle=False)
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        assert_close(got, want, "float64")


def test_monitoring_and_callback():
    net, X, Y = pair_problem([6, 5, 3], "sigmoid", "softmax", "log_likelihood", 30, "float64", 2)
    labels = Y.argmax(axis=1)
    seen = []
    history = net.fit(
        X, labels, epochs=3, batch_size=5, lr=0.5, lmbda=2.0, validation_data=(X[:10], labels[:10]),
        monitor_training=True, callback=lambda n, e, h: seen.append((e, h["train_cost"][-1])),
    )  # fmt: skip
    assert [e for e, _ in seen] == [0, 1, 2]
    # The costs are the data term alone, on the same footing; the penalty, over the n = 30
    # training samples, is apart: train_cost + penalty is the book's total_cost.
    assert history["train_cost"][-1] == pytest.approx(net.total_cost(X, labels))
    assert history["val_cost"][-1] == pytest.approx(net.total_cost(X[:10], labels[:10]))
    penalty = history["penalty"][-1]
    assert penalty == pytest.approx(
        sum(float(np.sum(w.astype(float) ** 2)) for w in net.weights) / 30
    )
    assert history["train_cost"][-1] + penalty == pytest.approx(
        net.total_cost(X, labels, lmbda=2.0)
    )
    assert history["train_accuracy"][-1] == pytest.approx(net.accuracy(X, labels))


@pytest.mark.parametrize("n_in", [50, 70])  # short rows (under NARROW) and long ones
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_products_equal_single_threaded_bitwise(dtype, n_in):
    """Sharing neurons out over threads changes no rounding: each value is computed whole
    (and the one-thread BP4's prefetching of other rows changes nothing either)."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((37, n_in)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    x = rng.random((40, n_in)).astype(dtype)
    delta = rng.standard_normal((13, 37)).astype(dtype)
    rows = rng.permutation(40)[:13]
    coef = np.empty((19, 2, 5), dtype=dtype)
    z_in = rng.standard_normal((40, 60)).astype(dtype)  # three chunks of 1024
    results = []
    for threaded in (False, True):
        z, z_narrow = np.empty((13, 37), dtype=dtype), np.empty((13, 37), dtype=dtype)
        a, da = np.empty((40, 60), dtype=dtype), np.empty((40, 60), dtype=dtype)
        scratch = np.empty(w.size, dtype=dtype)
        out = w.copy()
        step = w.dtype.type(-0.1)
        if threaded:
            kernels.weighted_input(w, b, x, rows, z)
            kernels.weighted_input_narrow(w, b, x, rows, z_narrow, scratch)
            kernels.accumulate_weight_gradient(delta, x, rows, out, step, coef)
            kernels.activate(z_in, a, da, kernels.SIGMOID, w.dtype.type(0))
        else:
            kernels.weighted_input_serial(w, b, x, rows, z)
            kernels.weighted_input_narrow_serial(w, b, x, rows, z_narrow, scratch)
            ahead = rng.permutation(40)[:13]  # prefetched rows: a hint, no result changes
            kernels.accumulate_weight_gradient_serial(delta, x, rows, out, step, coef, ahead)
            kernels.activate_serial(z_in, a, da, kernels.SIGMOID, w.dtype.type(0))
        results.append((z, out, z_narrow, a, da))
    for single, threaded in zip(results[0], results[1], strict=True):
        assert single.tobytes() == threaded.tobytes()
    x64, w64 = x[rows].astype(np.float64), w.astype(np.float64)
    assert_close(results[0][0], x64 @ w64.T + b, dtype)
    assert_close(results[0][1], w64 - 0.1 * delta.T.astype(np.float64) @ x64, dtype)
    assert_close(results[0][2], x64 @ w64.T + b, dtype)


@pytest.mark.parametrize(("n_in", "n_out"), [(64, 30), (70, 23), (100, 70), (96, 9)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_one_in_columns_matches_reference(dtype, n_in, n_out):
    """Layer 1 from its weights in columns (``wᵀ``, rows padded to whole vectors): the partial
    weighted inputs of its blocks of inputs add up to ``w x + b``, BP4's step is
    ``w − η δ xᵀ``, the padding stays 0, and how the inputs are cut into blocks, or which rows
    are prefetched, changes no value. Mini-batches of 13 (a partial block of ten samples) and
    n_out from under one SIMD vector to over two pairs of them, in pairs of vectors and in an
    odd one (float32: 70 is five vectors, 9 one; float64: 23 is three, 70 nine)."""
    rng = np.random.default_rng(n_in + n_out)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    x = rng.random((40, n_in)).astype(dtype)
    delta = rng.standard_normal((13, n_out)).astype(dtype)
    rows = rng.permutation(40)[:13]
    wt, parts, _ = kernels.column_buffers([n_in, n_out], 13, dtype)
    assert wt.ctypes.data % 64 == 0 and wt.shape[1] % (64 // wt.itemsize) == 0  # vectors
    assert wt.shape[1] - n_out < 64 // wt.itemsize  # padded by less than one vector
    kernels.rows_to_columns(w, wt, 0, n_in)
    z = np.empty((13, n_out), dtype=dtype)
    width = 64 // wt.itemsize
    for c in range(kernels.COLUMN_BLOCKS):
        lo, hi = kernels.block_bounds(n_in, c, width)
        kernels.weighted_input_columns(wt, x, rows, parts[c], lo, hi)
    kernels.add_partial_sums(b, parts, z)
    x64, w64 = x[rows].astype(np.float64), w.astype(np.float64)
    assert_close(z, x64 @ w64.T + b, dtype)
    whole = np.empty((13, wt.shape[1]), dtype=dtype)
    kernels.weighted_input_columns(wt, x, rows, whole, 0, n_in)  # one block: other rounding
    assert_close(whole[:, :n_out], x64 @ w64.T, dtype)

    eta = w.dtype.type(-0.1)
    updated = []
    for cuts, ahead in ([(0, n_in)], rows[:0]), ([(0, 16), (16, n_in)], rng.permutation(40)):
        out = wt.copy()
        for lo, hi in cuts:
            kernels.accumulate_weight_gradient_columns(delta, x, rows, out, eta, lo, hi, ahead)
        updated.append(out)
    assert updated[0].tobytes() == updated[1].tobytes()
    assert not updated[0][:, n_out:].any()
    back = np.empty_like(w)
    kernels.columns_to_rows(updated[0], back, 0, n_in)
    assert_close(back, w64 - 0.1 * delta.T.astype(np.float64) @ x64, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_one_in_columns_on_threads_equals_one_thread_bitwise(dtype):
    """The threaded column kernels (tasks of ten samples × one block of inputs; of ``2v`` rows
    of ``wᵀ``) give the bits of the block-by-block kernels ``train_epoch_columns`` runs on one
    thread, weight decay and L1 included; 23 samples: a partial group of ten."""
    rng = np.random.default_rng(5)
    n_in, n_out, m = 100, 40, 23
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    x = rng.random((60, n_in)).astype(dtype)
    delta = rng.standard_normal((m, n_out)).astype(dtype)
    rows = rng.permutation(60)[:m]
    wt, parts, _ = kernels.column_buffers([n_in, n_out], m, dtype)
    kernels.rows_to_columns(w, wt, 0, n_in)
    width = 64 // wt.itemsize
    single, threaded = np.zeros_like(parts), np.zeros_like(parts)
    for c in range(kernels.COLUMN_BLOCKS):
        lo, hi = kernels.block_bounds(n_in, c, width)
        kernels.weighted_input_columns(wt, x, rows, single[c], lo, hi)
    kernels.weighted_input_columns_threaded(wt, x, rows, threaded)
    assert single.tobytes() == threaded.tobytes()
    assert single.any()

    eta, decay, shrink = (w.dtype.type(v) for v in (-0.1, 0.99, 0.001))
    one_thread, on_threads = wt.copy(), wt.copy()
    for c in range(kernels.COLUMN_BLOCKS):
        lo, hi = kernels.block_bounds(n_in, c, width)
        block = one_thread[lo:hi]
        kernels.regularise_weights(block.reshape(block.size), decay, shrink)
        kernels.accumulate_weight_gradient_columns(delta, x, rows, one_thread, eta, lo, hi, rows)
    kernels.accumulate_weight_gradient_columns_threaded(
        delta, x, rows, on_threads, eta, decay, shrink, rows[:0]
    )
    assert one_thread.tobytes() == on_threads.tobytes()
    assert not np.array_equal(one_thread, wt)


@pytest.mark.parametrize(
    ("sizes", "options"),
    [
        ([64, 30, 10], {}),
        ([70, 23, 5], {"lmbda": 5.0, "l1": 1.0}),
        ([100, 40], {"activation": "tanh"}),
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_epoch_with_layer_one_in_columns_matches_reference_sgd(dtype, sizes, options):
    """Networks whose first layer has rows of at least ``NARROW`` inputs train layer 1 in
    columns (``uses_columns``): the epoch is still the book's update rule, regularised too."""
    assert kernels.uses_columns(sizes, None)
    activation = options.pop("activation", "sigmoid")
    rng = np.random.default_rng(3)
    net = Network(sizes, seed=3, dtype=dtype, activation=activation, output=activation)
    X = (rng.random((57, sizes[0])) / 4).astype(dtype)  # like pixels: no layer saturates
    Y = rng.random((57, sizes[-1])).astype(dtype)
    weights, biases = naive.sgd_epoch(
        net.weights, net.biases, X, Y, np.arange(57), 10, 0.5, options.get("lmbda", 0.0),
        options.get("l1", 0.0), activations=list(net.activations),
    )  # fmt: skip
    net.fit(X, Y, epochs=1, batch_size=10, lr=0.5, shuffle=False, threads=1, **options)
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        tol = TOLERANCE[dtype] * (10 if dtype == "float32" else 1)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


# --- finite differences ---------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[3, 4, 2], [5, 3, 4, 3], [2, 1, 1, 2, 1]])
def test_gradient_matches_central_differences(sizes):
    rng = np.random.default_rng(7)
    net = Network(sizes, seed=11, dtype="float64")
    X = rng.standard_normal((6, sizes[0]))
    Y = rng.random((6, sizes[-1]))
    analytic, numeric = central_differences(net, X, Y)
    relative = np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric)
    assert relative < 1e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


# --- a hand-worked example ------------------------------------------------------------------


def hand_network():
    """2-2-1, w¹ = 0, b¹ = 0, w² = [1, −1], b² = 0: every z is 0, so σ = ½ and σ' = ¼."""
    net = Network([2, 2, 1], dtype="float64")
    net.params[:] = 0
    net.weights[1][...] = [[1.0, -1.0]]
    return net


def test_hand_worked_one_sample_step():
    # x = (1, 0), y = 1.  a¹ = (½, ½), z² = ½ − ½ = 0, a² = ½.
    # BP1: δ² = (a² − y) σ'(z²) = (½ − 1) · ¼ = −⅛.
    # BP2: δ¹ = (w²)ᵀ δ² ⊙ σ'(z¹) = (1, −1) · (−⅛) · ¼ = (−1/32, 1/32).
    # BP3/BP4: ∂C/∂b² = −⅛, ∂C/∂w² = δ² (a¹)ᵀ = (−1/16, −1/16),
    #          ∂C/∂b¹ = δ¹,  ∂C/∂w¹ = δ¹ xᵀ = [[−1/32, 0], [1/32, 0]].
    net = hand_network()
    nabla_b, nabla_w = net.backprop(np.array([[1.0], [0.0]]), np.array([[1.0]]))
    np.testing.assert_array_equal(nabla_b[1], [-0.125])
    np.testing.assert_array_equal(nabla_w[1], [[-0.0625, -0.0625]])
    np.testing.assert_array_equal(nabla_b[0], [-0.03125, 0.03125])
    np.testing.assert_array_equal(nabla_w[0], [[-0.03125, 0.0], [0.03125, 0.0]])
    # One SGD step with η = 1, m = 1: θ ← θ − ∇θ.
    net.SGD([(np.array([[1.0], [0.0]]), np.array([[1.0]]))], 1, 1, 1.0)
    np.testing.assert_array_equal(net.weights[1], [[1.0625, -0.9375]])
    np.testing.assert_array_equal(net.biases[1], [0.125])
    np.testing.assert_array_equal(net.weights[0], [[0.03125, 0.0], [-0.03125, 0.0]])
    np.testing.assert_array_equal(net.biases[0], [0.03125, -0.03125])


def test_hand_worked_two_sample_step():
    # Adding x = (0, 1), y = 0 gives δ² = ½ · ¼ = ⅛ and δ¹ = (1/32, −1/32): the bias and w²
    # gradients of the two samples cancel; ∂C/∂w¹ sums to [[−1/32, 1/32], [1/32, −1/32]].
    # With η = 2 and m = 2 the step is θ ← θ − Σₓ∇Cₓ.
    net = hand_network()
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    net.fit(X, np.array([1.0, 0.0]), epochs=1, batch_size=2, lr=2.0, shuffle=False)
    np.testing.assert_array_equal(net.weights[0], [[0.03125, -0.03125], [-0.03125, 0.03125]])
    np.testing.assert_array_equal(net.biases[0], [0.0, 0.0])
    np.testing.assert_array_equal(net.weights[1], [[1.0, -1.0]])
    np.testing.assert_array_equal(net.biases[1], [0.0])


# --- races and reproducibility --------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [[3, 1, 1], [2, 2, 1], [1, 2, 2]])
def test_tiny_layers_with_a_large_batch_lose_no_update(sizes, dtype):
    """Summing 20,000 samples into one or two cells in parallel must equal the serial sum."""
    net, X, Y = random_problem(sizes, 20_000, dtype, 5)
    ref = naive.batch(net.weights, net.biases, X, Y)
    nabla_b, nabla_w = net.gradients(X, Y)
    # float32 sums of 20,000 terms round at about √n·ε relative to the sum of magnitudes.
    tol = 1e-10 if dtype == "float64" else 1e-4
    for got, want in zip(nabla_b + nabla_w, ref["nabla_b"] + ref["nabla_w"], strict=True):
        np.testing.assert_allclose(got, want / 20_000, rtol=tol, atol=tol * np.abs(want).max())


def test_same_seed_gives_bitwise_identical_weights():
    rng = np.random.default_rng(0)
    X = rng.random((500, 12))
    y = rng.integers(0, 4, 500)
    nets = [Network([12, 8, 4], seed=42) for _ in range(2)]
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=7, lr=1.0)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    other = Network([12, 8, 4], seed=43)
    other.fit(X, y, epochs=2, batch_size=7, lr=1.0)
    assert other.params.tobytes() != nets[0].params.tobytes()


REPRODUCE = textwrap.dedent(
    """
    import hashlib, numpy as np, numba
    from fastbp import Network
    rng = np.random.default_rng(0)
    X = rng.random((3000, 20)); y = rng.integers(0, 5, 3000)
    net = Network([20, 16, 5], seed=3)
    net.fit(X, y, epochs=1, batch_size=10, lr=2.0)
    nabla_b, nabla_w = net.gradients(X, y)
    out = net.feedforward(X)
    wide = Network([20, 1000, 5], seed=4)  # 64 · 20 · 1000 multiply-adds: threaded
    wide.fit(X, y, epochs=1, batch_size=64, lr=0.5)
    # Saturated: σ'(z) = e^(-|z|)/(1 + e^(-|z|))² is subnormal in float32 for 87 < |z| < 104,
    # so the threaded kernels meet subnormal numbers (flushed to zero on every thread).
    saturated = Network([20, 1000, 5], seed=5, dtype="float32")
    X_big = (40 * X).astype(np.float32)
    z = np.abs(X_big @ saturated.weights[0].T + saturated.biases[0])
    assert np.count_nonzero((z > 88) & (z < 103)) > 1000
    saturated.fit(X_big, y, epochs=1, batch_size=64, lr=3.0)
    # Rows of 64 inputs, 30 neurons, batch 10: on two threads, a team epoch.
    X64 = rng.random((3000, 64))
    team = Network([64, 30, 5], seed=6)
    team.fit(X64, y, epochs=1, batch_size=10, lr=2.0, dropout=0.1)
    # Rows of 64 inputs, layers big enough to thread: layer 1 in columns on one thread, and on
    # two with Numba's threads (8.2M multiply-adds per mini-batch), then the rest by neuron.
    columns = Network([64, 2000, 5], seed=8)
    columns.fit(X64, y, epochs=1, batch_size=64, lr=0.5, lmbda=1.0)
    # 40 neurons: five float64 vectors in layer 1's columns, the last in a pass of its own;
    # two hidden layers, 88% of the work in layer 1: a team on two threads.
    odd = Network([64, 40, 8, 5], seed=9)
    odd.fit(X64, y, epochs=1, batch_size=10, lr=0.5)
    h = hashlib.sha256(net.params.tobytes() + wide.params.tobytes() + saturated.params.tobytes())
    h.update(team.params.tobytes() + columns.params.tobytes() + odd.params.tobytes())
    for a in nabla_b + nabla_w + [out, saturated.feedforward(X_big)]:
        h.update(a.tobytes())
    print(numba.get_num_threads(), h.hexdigest())
    """
)


def test_same_weights_whatever_the_thread_count():
    digests = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        result = subprocess.run(
            [sys.executable, "-c", REPRODUCE], env=env, capture_output=True, text=True, check=True
        )
        reported, digest = result.stdout.split()
        assert int(reported) == threads
        digests[threads] = digest
    assert digests[1] == digests[2]


ALLOCATIONS = textwrap.dedent(
    """
    import numpy as np
    from numba.core.runtime import rtsys
    from fastbp import Network
    rng = np.random.default_rng(0)
    X = rng.random((4000, 30)); y = rng.integers(0, 4, 4000)
    net = Network([30, 20, 4], seed=0)
    def allocations(n):
        net.fit(X[:n], y[:n], epochs=1, batch_size=10, lr=1.0)  # compile first
        before = rtsys.get_allocation_stats()
        net.fit(X[:n], y[:n], epochs=1, batch_size=10, lr=1.0)
        after = rtsys.get_allocation_stats()
        return after.alloc - before.alloc
    print(allocations(100), allocations(4000))
    """
)


def test_the_compiled_epoch_allocates_nothing_per_mini_batch():
    """Numba's allocation count for an epoch of 10 mini-batches equals that for 400."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run(
        [sys.executable, "-c", ALLOCATIONS], env=env, capture_output=True, text=True, check=True
    )
    few, many = map(int, result.stdout.split())
    assert few == many


# --- numerical safety -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activations_are_stable_at_extreme_inputs(name, dtype):
    z = np.array([[-1e4, -800.0, -100.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 100.0, 800.0, 1e4]], dtype)
    a, da = np.empty_like(z), np.empty_like(z)
    alpha = 0.3
    with np.errstate(all="raise"):
        kernels.activate_serial(z, a, da, ACTIVATIONS[name].code, dtype(alpha))
    assert a.dtype == dtype and np.isfinite(a).all() and np.isfinite(da).all()
    z64 = z.astype(np.float64)
    want_a = naive.activation(name, z64, alpha)
    want_da = naive.derivative(name, z64, alpha)
    np.testing.assert_allclose(a, want_a, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(da, want_da, rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_sigmoid_matches_the_scalar_formula(dtype):
    """The SIMD sigmoid (its own ``exp``) agrees with ``sigmoid_and_prime`` to a few units in
    the last place, subnormal results included; NaN stays NaN, ±∞ give 0 and 1."""
    z = np.concatenate([np.linspace(-800, 800, 20_001), [-103.9, -745.0, -88.5]]).astype(dtype)
    a, da = np.empty_like(z), np.empty_like(z)
    kernels.activate_serial(z[None], a[None], da[None], kernels.SIGMOID, dtype(0))
    want = np.array([kernels.sigmoid_and_prime.py_func(v) for v in z.astype(np.float64)])
    tiny = np.finfo(dtype).smallest_subnormal
    for got, ref in ((a, want[:, 0]), (da, want[:, 1])):
        ulps = np.abs(got - ref) / np.maximum(np.abs(ref) * np.finfo(dtype).eps, tiny)
        assert ulps.max() <= 4
    special = np.array([np.nan, np.inf, -np.inf], dtype)
    a, da = np.empty_like(special), np.empty_like(special)
    kernels.activate_serial(special[None], a[None], da[None], kernels.SIGMOID, dtype(0))
    assert np.isnan(a[0]) and np.isnan(da[0]) and a[1:].tolist() == [1, 0] and da[1] == da[2] == 0


def test_sigmoid_exact_values():
    z = np.array([[-1e4, 0.0, 1e4]], dtype=np.float32)
    a, da = np.empty_like(z), np.empty_like(z)
    kernels.activate_serial(z, a, da, kernels.SIGMOID, np.float32(0))
    assert a.tolist() == [[0.0, 0.5, 1.0]] and da[0, 1] == 0.25


def test_softmax_rows_sum_to_one_without_overflow():
    z = np.array([[1000.0, 1000.0, -1000.0]])
    a, da = np.empty_like(z), np.empty_like(z)
    with np.errstate(all="raise"):
        kernels.activate_serial(z, a, da, kernels.SOFTMAX, 0.0)
    np.testing.assert_allclose(a, [[0.5, 0.5, 0.0]], atol=1e-300)


def test_saturated_network_trains_without_nan():
    net = Network([3, 4, 2], seed=0, dtype="float32")
    X = np.full((20, 3), 1e4, dtype=np.float32)
    y = np.arange(20) % 2
    net.fit(X, y, epochs=3, batch_size=5, lr=3.0)
    assert np.isfinite(net.params).all()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_non_finite_training_names_the_mini_batch_and_keeps_the_last_finite_step(optimizer):
    # With w¹ = 0 every hidden unit has σ'(z) = σ'(b) > 0, so ∂C/∂w¹ = δ¹xᵀ is of the order of
    # x = 1e300 and one step of η = 1e12 overflows w¹ to infinity: at mini-batch 1 here. The
    # first sample's target is the network's own output, so its step changes nothing (δ = 0).
    def network():
        net = Network([2, 3, 1], seed=0, dtype="float64")
        net.weights[0][...] = 0
        return net

    X = np.array([[1.0, 0.0], [1e300, 1e300], [0.0, 1.0]])
    net = network()
    y = np.array([net.feedforward(X[0])[0], 0.0, 1.0])
    with pytest.raises(FloatingPointError, match="epoch 0, mini-batch 1, layer 1:"):
        net.fit(X, y, epochs=2, batch_size=1, lr=1e12, shuffle=False, optimizer=optimizer)
    one_step = network()
    one_step.fit(X[:1], y[:1], epochs=1, batch_size=1, lr=1e12, optimizer=optimizer)
    assert np.isfinite(net.params).all()
    assert net.params.tobytes() == one_step.params.tobytes()


# --- the Network's structure ----------------------------------------------------------------


def test_parameters_are_views_of_one_flat_buffer():
    net = Network([4, 3, 2], seed=1)
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(3,), (2,)]
    assert net.params.size == 4 * 3 + 3 + 3 * 2 + 2
    for a in net.weights + net.biases:
        assert np.shares_memory(a, net.params)
    net.params[:] = 0.5
    assert all((a == 0.5).all() for a in net.weights + net.biases)
    assert net.num_layers == 3 and net.sizes == (4, 3, 2)
    assert repr(net).startswith("Network([4, 3, 2]")


def test_initialisation_is_standard_normal_and_shared_across_dtypes():
    a = Network([200, 100, 10], seed=5, dtype="float64")
    b = Network([200, 100, 10], seed=5, dtype="float32")
    assert b.params.dtype == np.float32
    np.testing.assert_array_equal(b.params, a.params.astype(np.float32))
    assert abs(a.params.mean()) < 0.02 and abs(a.params.std() - 1) < 0.02


def test_feedforward_accepts_a_vector_a_column_and_a_batch():
    net = Network([3, 5, 2], seed=2, dtype="float64")
    X = np.random.default_rng(1).random((4, 3))
    batch = net.feedforward(X)
    assert batch.shape == (4, 2)
    np.testing.assert_allclose(
        batch, naive.batch(net.weights, net.biases, X, np.zeros((4, 2)))["activations"][-1]
    )
    assert net.feedforward(X[0]).shape == (2,)
    np.testing.assert_array_equal(net.feedforward(X[0]), batch[0])
    column = net.feedforward(X[0].reshape(3, 1))
    assert column.shape == (2, 1)
    np.testing.assert_array_equal(column[:, 0], batch[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("sizes", "hidden", "output"),
    [
        ([784, 30, 10], "sigmoid", "sigmoid"),  # layer 1 in columns (rows of ≥ NARROW inputs)
        ([100, 37, 33, 4], "relu", "softmax"),  # columns, neurons not a whole vector
        ([64, 300, 5], "tanh", "sigmoid"),  # columns wider than a pair of vectors
        ([63, 20, 3], "elu", "sigmoid"),  # rows of under NARROW inputs: layer 1 by rows
    ],
)
def test_feedforward_matches_the_equations_on_every_row(dtype, sizes, hidden, output):
    """``feedforward`` (and so ``predict``) against ``aˡ = f(wˡaˡ⁻¹ + bˡ)`` in float64 for
    rows in two whole blocks of ``FEEDFORWARD_ROWS``, a partial block and a partial group of ten."""
    net = Network(
        sizes, activation=hidden, output=output, init="scaled", alpha=0.2, seed=3, dtype=dtype
    )
    n = 2 * kernels.FEEDFORWARD_ROWS + 13
    X = np.random.default_rng(7).standard_normal((n, sizes[0])).astype(dtype)
    ref = naive.batch(
        net.weights, net.biases, X, np.zeros((n, sizes[-1])),
        activations=list(net.activations), alpha=0.2,
    )  # fmt: skip
    assert_close(net.feedforward(X), ref["activations"][-1], dtype)


def test_predict_evaluate_and_accuracy_agree():
    net = Network([3, 5, 4], seed=2)
    X = np.random.default_rng(1).random((50, 3))
    predicted = net.predict(X)
    assert predicted.shape == (50,) and predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, net.feedforward(X).argmax(axis=1))
    labels = predicted.copy()
    labels[:10] = (labels[:10] + 1) % 4
    assert net.accuracy(X, labels) == pytest.approx(0.8)
    assert net.evaluate((X, labels)) == 40
    assert net.evaluate([(x.reshape(3, 1), int(c)) for x, c in zip(X, labels, strict=True)]) == 40
    one_hot = np.eye(4)[labels]
    assert net.accuracy(X, one_hot) == pytest.approx(0.8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_argmax_rows_matches_numpy_with_ties_and_nan(dtype):
    """``argmax_rows`` (``predict``'s classes) against ``np.argmax``: the first of tied
    maxima, the first NaN of a row, rows of one and of many values."""
    rng = np.random.default_rng(4)
    for n_out in (1, 2, 10, 37):
        out = rng.integers(0, 4, size=(300, n_out)).astype(dtype)  # many ties
        out[::7, n_out // 2] = np.nan
        out[::11, -1] = np.nan
        out[5] = -np.inf
        classes = np.full(out.shape[0], -1, dtype=np.int64)
        kernels.argmax_rows(out, classes)
        np.testing.assert_array_equal(classes, out.argmax(axis=1))


def test_sgd_takes_the_books_data_and_prints_its_progress(capsys):
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    labels = (X.sum(axis=1) > 1.5).astype(int)
    training = [
        (x.reshape(3, 1), np.eye(2)[c].reshape(2, 1)) for x, c in zip(X, labels, strict=True)
    ]
    test = [(x.reshape(3, 1), int(c)) for x, c in zip(X[:10], labels[:10], strict=True)]
    net = Network([3, 4, 2], seed=0, dtype="float64")
    same = Network([3, 4, 2], seed=0, dtype="float64")
    history = net.SGD(training, 2, 5, 1.0, test_data=test)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Epoch {j}: {history['val_correct'][j]} / 10" for j in range(2)]
    same.fit(X, labels, epochs=2, batch_size=5, lr=1.0, validation_data=(X[:10], labels[:10]))
    assert same.params.tobytes() == net.params.tobytes()


# --- learning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "truth"),
    [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1]), ("NAND", [1, 1, 1, 0]), ("XOR", [0, 1, 1, 0])],
)
def test_learns_logic_gates(name, truth):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array(truth, dtype=float)
    net = Network([2, 4, 1], seed=1, dtype="float64")
    net.fit(X, y, epochs=3000, batch_size=4, lr=4.0)
    np.testing.assert_array_equal(net.predict(X), truth, err_msg=name)
    assert net.total_cost(X, y) < 0.01


def test_mnist_one_epoch_reaches_the_books_accuracy(mnist_book):
    (X, y), _, (X_test, y_test) = mnist_book
    net = Network([784, 30, 10], seed=1)
    net.fit(X, y, epochs=1, batch_size=10, lr=3.0)
    assert net.accuracy(X_test, y_test) >= 0.89


PARALLEL_KERNELS = (
    "weighted_input",
    "weighted_input_narrow",
    "activate",
    "accumulate_weight_gradient",
)


@pytest.fixture(scope="module")
def uncached_compile():
    """Compile every entry point in float32 in a fresh process with Numba's cache off (so its
    LLVM IR can be read): first a network that trains layer 1 in columns on a team, then small
    networks, recording which kernels that compiled, then a network big enough to thread.
    Returns the JSON the process prints."""
    script = textwrap.dedent(
        """
        import json, re, sys
        import numpy as np
        from fastbp import Network, kernels as K
        parallel = sys.argv[1:]
        # Rows of 64 inputs (layer 1 in columns), a hidden layer of narrow rows, 256
        # mini-batches of 10: a team of two, which needs no kernel for long rows after layer 1.
        X64 = np.random.default_rng(1).random((2560, 64), dtype=np.float32)
        Network([64, 16, 3], seed=0).fit(X64, np.arange(2560) % 3, epochs=1, batch_size=10,
                                         lr=0.5, lmbda=0.1, threads=2)
        rows = [name for name in ("weighted_input_serial", "accumulate_weight_gradient_serial")
                if getattr(K, name).signatures]
        X = np.random.default_rng(0).random((20, 6), dtype=np.float32)
        y = np.arange(20) % 3
        Network([6, 5, 4, 3], seed=0).fit(X, y, epochs=1, batch_size=5, lr=0.5)
        extras = ("batch_norm_forward", "batch_norm_backward", "add_projection", "drop_out")
        plain = [name for name in (*parallel, *extras) if getattr(K, name).signatures]
        plain += rows
        for options in ({"optimizer": "adam", "clip_norm": 1.0}, {}, {"dropout": 0.2}):
            net = Network([6, 5, 4, 3], seed=0, batch_norm=True)
            net.fit(X, y, epochs=1, batch_size=5, lr=0.5, lmbda=0.1, l1=0.1, **options)
            net.gradients(X, y)
            net.predict(X)
        net = Network([6, 5, 5, 3], seed=0, residual=True, activation="tanh")
        net.fit(X, y, epochs=1, batch_size=5, lr=0.5)
        net.gradients(X, y)
        net.predict(X)
        small = [name for name in parallel if getattr(K, name).signatures]
        # 100 · 6 · 2000 multiply-adds per mini-batch: layer 1 threads (its rows are narrow);
        # 100 · 2000 · 600 for layer 2 (long rows).
        wide = Network([6, 2000, 600], seed=0)
        wide.fit(X, y, epochs=1, batch_size=100, lr=0.5, threads=2)
        wide.fit(X, y, epochs=1, batch_size=100, lr=0.5, optimizer="adam", threads=2)
        big = [name for name in parallel if getattr(K, name).signatures]
        promoted = []
        for name in ("train_epoch", "train_epoch_general", "feedforward", "batch_gradient",
                     "backward_pass", "train_epoch_columns"):
            kernel = getattr(K, name)
            for signature in kernel.signatures:
                if "float32" not in str(signature):
                    continue
                where = None
                for line in kernel.inspect_llvm(signature).splitlines():
                    if line.startswith("define"):
                        found = re.search(r"kernels\\d+([a-z_]+)", line)
                        where = found.group(1) if found else "Numba's " + line[:60]
                    allowed = where == "drop_out" or "float %arg.dropout to" in line
                    if "fpext float" in line and "double" in line and not allowed:
                        promoted.append(f"{name}: {where}")
        print(json.dumps({"plain": plain, "small": small, "big": big, "promoted": promoted}))
        """
    )
    env = {**os.environ, "FASTBP_CACHE": "0", "NUMBA_NUM_THREADS": "2"}  # even on one core
    result = subprocess.run(
        [sys.executable, "-c", script, *PARALLEL_KERNELS],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_float32_kernels_do_no_float64_arithmetic(uncached_compile):
    # A literal of another type (``x * 0``, ``1 - a``, ``v / m`` with an integer ``m``) makes
    # Numba compute in float64 and round back, silently slowing float32 code. Look for float →
    # double conversions in the LLVM IR of every float32 entry point, parallel kernels
    # included. The one allowed is in ``drop_out``, where Numba's generator draws a double and
    # compares it with the dropout rate (``%arg.dropout`` where LLVM inlines ``drop_out``).
    promoted = uncached_compile["promoted"]
    assert promoted == [], "float64 arithmetic in float32 kernels:\n" + "\n".join(promoted)


def test_kernels_are_compiled_only_for_networks_that_use_them(uncached_compile):
    # ``threads_from``, ``dropout`` and ``extras`` are None where a network does not thread,
    # drop out, or have residual connections or batch norm, and Numba prunes those branches,
    # which saves seconds of a cold start; ``wide`` is None where no layer after a first one
    # trained in columns has long rows. A network that threads compiles them all.
    assert uncached_compile["plain"] == []
    assert uncached_compile["small"] == []
    assert uncached_compile["big"] == list(PARALLEL_KERNELS)
