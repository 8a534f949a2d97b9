"""Export a ``Network`` to ONNX, for inference in any ONNX runtime (``Network.to_onnx``).

The graph is the network's prediction path, built with the ``onnx`` package's helper API
(``pip install "fastbp[onnx]"``), one node (or a few) per equation:

- each layer's weighted input ``zˡ = wˡ aˡ⁻¹ + bˡ``: ``Gemm`` with ``transB = 1`` (the
  weights keep the book's orientation, ``(n_out, n_in)``);
- a batch-normalised layer in inference form, with the running statistics gathered in
  training: ``BatchNormalization`` (``γ (z − μ)/√(σ² + ε) + β``, ``ε = 1e-5``);
- the activation ``f``: ``Sigmoid``, ``Tanh``, ``Relu``, ``LeakyRelu`` and ``Elu`` (with the
  network's ``α``), ``Softmax`` over each row, ``Identity`` (linear), and the step function as
  ``Cast(z > 0)``;
- a residual connection ``aˡ = f(zˡ) + aˡ⁻¹`` (``Add``), or ``+ P aˡ⁻¹`` through the learnt
  projection (``Gemm`` without bias, then ``Add``).

Dropout is not part of prediction (its scaling is inverted in training). The graph has one
input, ``input`` of shape ``(N, sizes[0])``, and two outputs: ``output``, the activations of
the output layer ``aᴸ`` (``feedforward``), and ``label``, the predicted class (``predict``:
the most active output neuron, or ``aᴸ > 0.5`` for a single output neuron), as int64. The
element type is the network's dtype (float32 or float64).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._storage import write_atomically
from .layout import IDENTITY, PROJECTED

if TYPE_CHECKING:
    from .network import Network

#: The ONNX operator set the graph uses (``Softmax`` over the last axis needs 13 or later).
OPSET = 17
#: The ONNX IR version written (that of opset 17), so that runtimes of 2022 on can load it.
IR_VERSION = 8
#: ``ε`` of batch normalisation (``fastbp.kernels.batch_norm_forward``).
BN_EPSILON = 1e-5


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the onnx package, which is not installed; install it with: "
            "python -m pip install 'fastbp[onnx]'"
        ) from None
    return onnx


def to_model(net: Network) -> Any:
    """The ONNX ``ModelProto`` of ``net``'s prediction path (checked by ``onnx.checker``)."""
    _onnx()  # a clear ImportError without the onnx extra
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if net.dtype == np.float32 else TensorProto.DOUBLE
    nodes: list[Any] = []
    weights: list[Any] = []

    def constant(name: str, array: Any, dtype: Any = net.dtype) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    layout = net.layout
    stats = net._bn_stats
    a = "input"
    for l in range(1, net.num_layers):
        w = constant(f"w{l}", net.weights[l - 1])
        b = constant(f"b{l}", net.biases[l - 1])
        z = node("Gemm", [a, w, b], f"z{l}", transB=1)
        if layout.batch_norm[l - 1]:
            lo, hi = int(layout.units[l - 1]), int(layout.units[l])
            inputs = [
                z,
                constant(f"gamma{l}", net.gammas[l - 1]),
                constant(f"beta{l}", net.betas[l - 1]),
                constant(f"mean{l}", stats[0, lo:hi]),
                constant(f"var{l}", stats[1, lo:hi]),
            ]
            z = node("BatchNormalization", inputs, f"bn{l}", epsilon=BN_EPSILON)
        act = _activation(node, constant, net.activations[l - 1], net._model.alphas[l], z, l, elem)
        skip = layout.skips[l - 1]
        if skip == IDENTITY:
            act = node("Add", [act, a], f"res{l}")
        elif skip == PROJECTED:
            p = constant(f"p{l}", net.projections[l])
            projected = node("Gemm", [a, p], f"proj{l}", transB=1)
            act = node("Add", [act, projected], f"res{l}")
        a = act
    nodes.append(helper.make_node("Identity", [a], ["output"], name="output"))
    if net.sizes[-1] == 1:
        half = constant("half", np.array([0.5]))
        above = node("Greater", [a, half], "above_half")
        flag = node("Cast", [above], "flag", to=TensorProto.INT64)
        axes = constant("axes", np.array([1]), np.int64)  # an input from opset 13 on
        nodes.append(helper.make_node("Squeeze", [flag, axes], ["label"], name="label"))
    else:
        nodes.append(helper.make_node("ArgMax", [a], ["label"], name="label", axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes,
        "fastbp",
        [helper.make_tensor_value_info("input", elem, ["N", net.sizes[0]])],
        [
            helper.make_tensor_value_info("output", elem, ["N", net.sizes[-1]]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        initializer=weights,
    )
    return checked_model(graph, net)


def checked_model(graph: Any, net: Any) -> Any:
    """``graph`` as a model of this module's opset and IR version, named for fastbp and
    described by ``repr(net)``, after ``onnx.checker``'s full check."""
    onnx = _onnx()
    from onnx import helper

    from ._version import __version__

    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fastbp",
        producer_version=__version__,
        doc_string=repr(net),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _activation(node: Any, constant: Any, name: str, alpha: Any, z: str, l: int, elem: int) -> str:
    """The nodes of layer ``l``'s ``aˡ = f(zˡ)`` for the activation ``name``; returns
    ``aˡ``'s name."""
    from onnx import TensorProto

    out = f"a{l}"
    alpha = float(alpha)
    if name == "sigmoid":
        return node("Sigmoid", [z], out)
    if name == "tanh":
        return node("Tanh", [z], out)
    if name == "relu":
        return node("Relu", [z], out)
    if name in ("leaky_relu", "elu") and elem == TensorProto.FLOAT:
        op = "LeakyRelu" if name == "leaky_relu" else "Elu"
        return node(op, [z], out, alpha=alpha)
    if name in ("leaky_relu", "elu"):
        # In float64 from elementary operators: an attribute's α is a float32, and
        # onnxruntime has no float64 Elu. z for z > 0, else α z (leaky ReLU), α (eᶻ − 1) (ELU).
        positive = node("Greater", [z, constant(f"zero{l}", np.array([0.0]))], f"{out}_positive")
        below = z
        if name == "elu":
            e = node("Exp", [z], f"{out}_exp")
            below = node("Sub", [e, constant(f"one{l}", np.array([1.0]))], f"{out}_expm1")
        scaled = node("Mul", [below, constant(f"alpha{l}", np.array([alpha]))], f"{out}_below")
        return node("Where", [positive, z, scaled], out)
    if name == "linear":
        return node("Identity", [z], out)
    if name == "softmax":
        return node("Softmax", [z], out, axis=-1)
    if name == "step":  # 1 for z > 0, else 0
        positive = node("Greater", [z, constant(f"zero{l}", np.array([0.0]))], f"{out}_positive")
        return node("Cast", [positive], out, to=elem)
    raise ValueError(f"activation: {name!r} has no ONNX export")


def export(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net``'s ONNX model to ``path`` atomically."""
    write_atomically(path, to_model(net).SerializeToString())
