"""ONNX export (``Network.to_onnx``, ``fastbp export``): the exported graph passes
``onnx.checker`` and, run by onnxruntime on the MNIST test set (``FASTBP_DATA``; the bundled
mini MNIST's test images when it is unset), predicts the same classes as the network with
outputs within 1e-6 (float32)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from fastbp import Network
from fastbp.cli import main
from fastbp.datasets import load_mini_mnist, load_mnist
from fastbp.registry import ACTIVATIONS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

HIDDEN = [name for name, a in ACTIVATIONS.items() if not a.output_only]


@pytest.fixture(scope="module")
def data():
    """A little training data, and the test images to compare on."""
    (X, y), (X_test, _) = load_mini_mnist()
    if os.environ.get("FASTBP_DATA"):
        X_test = load_mnist(split="book")[2][0]
    return X[:300], y[:300], X_test


def run_onnx(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output", "label"], {"input": X})


def check_export(net, X_test, tmp_path, atol):
    path = tmp_path / "net.onnx"
    net.to_onnx(path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    out, label = run_onnx(path, X_test.astype(net.dtype))
    expected = net.feedforward(X_test)
    assert out.dtype == net.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol)
    np.testing.assert_array_equal(label, net.predict(X_test))


def trained(data, sizes, dtype="float32", **kwargs):
    X, y, _ = data
    net = Network(sizes, seed=3, dtype=dtype, init="scaled", **kwargs)
    if "step" not in net.activations:
        net.fit(X, y, epochs=1, batch_size=20, lr=0.05, seed=0)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", HIDDEN)
def test_every_hidden_activation(data, tmp_path, activation, dtype):
    alpha = 0.2 if activation in ("leaky_relu", "elu") else None
    net = trained(data, [784, 24, 16, 10], dtype, activation=activation, alpha=alpha)
    check_export(net, data[2], tmp_path, 1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize(
    "output, cost",
    [("sigmoid", "quadratic"), ("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
     ("softmax", "quadratic"), ("tanh", "quadratic"), ("relu", "quadratic"),
     ("leaky_relu", "quadratic"), ("elu", "quadratic"), ("linear", "quadratic")],
)  # fmt: skip
def test_every_output_and_cost(data, tmp_path, output, cost):
    net = trained(data, [784, 20, 10], activation="tanh", output=output, cost=cost)
    check_export(net, data[2], tmp_path, 1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_and_residual_connections(data, tmp_path, dtype):
    # Layer 2: an identity skip (30 → 30); layer 3: a projected one (30 → 20).
    net = trained(
        data, [784, 30, 30, 20, 10], dtype, activation="relu", batch_norm=True, residual=True
    )
    assert net.layout.skips[1:3] == (1, 2)
    assert not np.all(net._bn_stats[1] == 1)  # running statistics gathered in training
    check_export(net, data[2], tmp_path, 1e-6 if dtype == "float32" else 1e-12)


def test_single_output_neuron_predicts_above_half(data, tmp_path):
    X, y, X_test = data
    net = Network([784, 10, 1], seed=1, init="scaled")
    net.fit(X, (y == 0).astype(np.float32).reshape(-1, 1), epochs=1, batch_size=20, lr=0.5)
    check_export(net, X_test, tmp_path, 1e-6)


def test_cli_export(data, tmp_path, capsys):
    net = trained(data, [784, 20, 10], activation="relu", batch_norm=True)
    net.save(tmp_path / "model.npz")
    status = main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")])
    assert status == 0
    assert "model.onnx" in capsys.readouterr().out
    out, label = run_onnx(tmp_path / "model.onnx", data[2])
    np.testing.assert_allclose(out, net.feedforward(data[2]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(label, net.predict(data[2]))


def test_cli_export_missing_model(tmp_path, capsys):
    status = main(["export", str(tmp_path / "none.npz"), str(tmp_path / "out.onnx")])
    assert status == 2
    assert "none.npz" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists()


def test_without_onnx_installed_the_message_says_what_to_install(tmp_path, capsys, monkeypatch):
    net = Network([4, 3, 2], seed=1)
    net.save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'fastbp\[onnx\]'"):
        net.to_onnx(tmp_path / "net.onnx")
    status = main(["export", str(tmp_path / "model.npz"), str(tmp_path / "net.onnx")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("fastbp: error: ") and "fastbp[onnx]" in err
    assert not (tmp_path / "net.onnx").exists()
