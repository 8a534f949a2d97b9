"""ONNX export of ``RecurrentNetwork`` (``to_onnx``, ``fastbp export``): for every cell, in
float32 (ONNX's ``RNN``/``LSTM``/``GRU`` operators) and float64 (a ``Scan`` of the cell in
plain operators), the graph passes ``onnx.checker`` and onnxruntime's outputs on random
sequences equal ``feedforward`` (within 1e-5 in float32, 1e-12 in float64) with the labels
of ``predict``."""

from __future__ import annotations

import numpy as np
import pytest

from fastbp import RecurrentNetwork
from fastbp.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

N, T, D, H = 6, 7, 3, 5
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def random_net(cell, dtype, *, hidden=(H, 4), n_out=3, output="softmax", many_to_many=False):
    net = RecurrentNetwork(
        D, list(hidden), n_out, cell=cell, output=output, many_to_many=many_to_many,
        seed=7, dtype=dtype,
    )  # fmt: skip
    # Parameters of a trained network's size, every one distinct (the gates' order matters).
    net.params[...] = np.random.default_rng(1).normal(0, 0.6, net.params.size)
    return net


def run_onnx(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output", "label"], {"input": X})


def check_export(net, tmp_path, X=None):
    if X is None:
        X = np.random.default_rng(2).normal(0, 1, (N, T, D)).astype(net.dtype)
    path = tmp_path / "net.onnx"
    net.to_onnx(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    out, label = run_onnx(path, X)
    expected = net.feedforward(X)
    assert out.dtype == net.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOLERANCE[net.dtype.name])
    np.testing.assert_array_equal(label, net.predict(X))
    return model_ops(path)


def model_ops(path):
    """The operators of the graph, those of subgraphs (``Scan``'s body) included."""
    ops = set()
    graphs = [onnx.load(str(path)).graph]
    while graphs:
        for node in graphs.pop().node:
            ops.add(node.op_type)
            graphs.extend(a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH)
    return ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_stacked_layers_classification(tmp_path, cell, dtype):
    ops = check_export(random_net(cell, dtype), tmp_path)
    operator = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    if dtype == "float32":  # ONNX's own operator; float64 (not run by onnxruntime): a Scan
        assert operator in ops and "Scan" not in ops
    else:
        assert "Scan" in ops and operator not in ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_regression_many_to_many(tmp_path, cell, dtype):
    net = random_net(cell, dtype, output="linear", many_to_many=True)
    check_export(net, tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_layer_sigmoid_outputs_and_other_lengths(tmp_path, cell):
    net = random_net(cell, "float32", hidden=(H,), n_out=2, output="sigmoid")
    X = np.random.default_rng(3).normal(0, 1, (2, 11, D)).astype(np.float32)
    check_export(net, tmp_path, X)  # the graph's N and T are free
    check_export(net, tmp_path, X[:1, :1])


def test_cli_export_of_a_recurrent_model_file(tmp_path, capsys):
    net = random_net("gru", "float32")
    net.save(tmp_path / "model.npz")
    status = main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")])
    assert status == 0
    assert "RecurrentNetwork" in capsys.readouterr().out
    X = np.random.default_rng(4).normal(0, 1, (N, T, D)).astype(np.float32)
    out, label = run_onnx(tmp_path / "model.onnx", X)
    np.testing.assert_allclose(out, net.feedforward(X), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label, net.predict(X))
