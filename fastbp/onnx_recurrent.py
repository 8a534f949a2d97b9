"""Export a ``RecurrentNetwork`` to ONNX (``RecurrentNetwork.to_onnx``).

The graph is the network's prediction path on full-length sequences, built with the ``onnx``
package's helper API (``pip install "fastbp[onnx]"``):

- the input ``input`` ``(N, T, d)`` is transposed to ONNX's step-major ``(T, N, d)``;
- each recurrent layer, in float32, is ONNX's own ``RNN`` (``tanh``), ``LSTM`` or ``GRU``
  operator (``linear_before_reset = 1``: the reset gate scales ``W_hn hₜ₋₁ + b_hn``, as here
  and in PyTorch), with the weights regrouped into ONNX's layout: ``W[1, G·H, d]`` and
  ``R[1, G·H, H]`` (``W``'s input and recurrent rows, transposed), ``B = [W_b, R_b]``, and
  the gates reordered (LSTM ``i, f, g, o`` → ``i, o, f, c``; GRU ``r, z, n`` → ``z, r, h``);
- in float64, which onnxruntime's recurrent operators do not run, each layer is a ``Scan``
  over the steps whose body is the cell's equations in plain operators (``MatMul``, ``Add``,
  ``Sigmoid``, ``Tanh``, ``Mul``, ``Sub``), with the weights in fastbp's own layout;
- the output layer ``a = f(Vᵀ h + c)`` (``MatMul``, ``Add``, then ``Softmax`` over the last
  axis, ``Sigmoid`` or ``Identity``) on the last layer's final state ``h_T`` (many-to-one),
  or on its state at every step (many-to-many).

Outputs: ``output``, ``feedforward``'s ``(N, n_out)`` (many-to-many ``(N, T, n_out)``), in the
network's dtype, and ``label``, ``predict``'s index of the largest output, int64. The initial
states are zero, as in training. Every sequence is taken at its full length ``T`` (there is no
``lengths`` input: pad nothing, or cut the batch to sequences of one length).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._storage import write_atomically
from .onnx_export import _onnx, checked_model

if TYPE_CHECKING:
    from .recurrent import RecurrentNetwork

#: fastbp's gate blocks in ONNX's order: LSTM ``i, f, g, o`` → ``i, o, f, c``;
#: GRU ``r, z, n`` → ``z, r, h``.
_ONNX_GATES = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}
_OPERATORS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_OUTPUT_OPS = {"softmax": "Softmax", "sigmoid": "Sigmoid", "linear": "Identity"}


class _Graph:
    """Nodes and initialisers of one (sub)graph, with unique names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.weights: list[Any] = []

    def constant(self, name: str, array: Any, dtype: Any = None) -> str:
        from onnx import numpy_helper

        data = np.ascontiguousarray(array, self.dtype if dtype is None else dtype)
        self.weights.append(numpy_helper.from_array(data, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: str | list[str], **attrs: Any) -> Any:
        from onnx import helper

        names = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op, inputs, names, name=names[0], **attrs))
        return outputs


def to_model(net: RecurrentNetwork) -> Any:
    """The ONNX ``ModelProto`` of ``net``'s prediction path (checked by ``onnx.checker``)."""
    _onnx()  # a clear ImportError without the onnx extra
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if net.dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(net.dtype)
    d, n_out = net.widths[0], net.widths[-1]
    x = g.node("Transpose", ["input"], "steps", perm=[1, 0, 2])  # (T, N, d)
    zeros = None
    if elem == TensorProto.DOUBLE:  # the zero initial state, (N, H) for each H
        zeros = g.node("Shape", ["input"], "batch", start=0, end=1)
    last = x
    for l in range(len(net.widths) - 2):
        if elem == TensorProto.FLOAT:
            x, last = _operator_layer(g, net, l, x)
        else:
            x, last = _scan_layer(g, net, l, x, zeros, elem)
    V = net.layers[-1]
    if net.many_to_many:
        h = g.node("Transpose", [x], "top_states", perm=[1, 0, 2])  # (N, T, H)
        shape: list[Any] = ["N", "T", n_out]
        label_shape: list[Any] = ["N", "T"]
    else:
        h = last
        shape, label_shape = ["N", n_out], ["N"]
    z = g.node("MatMul", [h, g.constant("V", V["V"])], "output_Vh")
    z = g.node("Add", [z, g.constant("c", V["c"])], "output_z")
    attrs = {"axis": -1} if net.output == "softmax" else {}
    g.node(_OUTPUT_OPS[net.output], [z], "output", **attrs)
    g.node("ArgMax", ["output"], "label", axis=-1, keepdims=0)
    graph = helper.make_graph(
        g.nodes,
        "fastbp_recurrent",
        [helper.make_tensor_value_info("input", elem, ["N", "T", d])],
        [
            helper.make_tensor_value_info("output", elem, shape),
            helper.make_tensor_value_info("label", TensorProto.INT64, label_shape),
        ],
        initializer=g.weights,
    )
    return checked_model(graph, net)


def _operator_layer(g: _Graph, net: RecurrentNetwork, l: int, x: str) -> tuple[str, str]:
    """Layer ``l`` as ONNX's ``RNN``/``LSTM``/``GRU`` operator; returns the names of its
    states at every step ``(T, N, H)`` and of its final state ``(N, H)``."""
    views = net.layers[l]
    n_in, H = net.widths[l], net.widths[l + 1]
    W = views["W"]
    cols = np.concatenate([np.arange(k * H, (k + 1) * H) for k in _ONNX_GATES[net.cell]])
    w_b = views["b"][cols]
    r_b = np.zeros_like(w_b)
    if net.cell == "gru":  # ONNX's Rbh, inside the reset gate's product
        r_b[2 * H :] = views["b_hn"]
    inputs = [
        x,
        g.constant(f"W{l}", W[:n_in, cols].T[None]),
        g.constant(f"R{l}", W[n_in:, cols].T[None]),
        g.constant(f"B{l}", np.concatenate([w_b, r_b])[None]),
    ]
    attrs: dict[str, Any] = {"hidden_size": H}
    if net.cell == "gru":
        attrs["linear_before_reset"] = 1
    y, y_h = g.node(_OPERATORS[net.cell], inputs, [f"Y{l}", f"Y_h{l}"], **attrs)
    axis = g.constant(f"direction_axis{l}", np.array([1]), np.int64)
    states = g.node("Squeeze", [y, axis], f"h{l}")  # (T, 1, N, H) → (T, N, H)
    axis0 = g.constant(f"direction_axis0_{l}", np.array([0]), np.int64)
    final = g.node("Squeeze", [y_h, axis0], f"h_last{l}")  # (1, N, H) → (N, H)
    return states, final


def _scan_layer(
    g: _Graph, net: RecurrentNetwork, l: int, x: str, batch: Any, elem: int
) -> tuple[str, str]:
    """Layer ``l`` as a ``Scan`` whose body is the cell in plain operators (float64)."""
    from onnx import helper

    views = net.layers[l]
    n_in, H = net.widths[l], net.widths[l + 1]
    W, b = views["W"], views["b"]
    dims = g.constant(f"state_width{l}", np.array([H]), np.int64)
    shape = g.node("Concat", [batch, dims], f"state_shape{l}", axis=0)
    zero = g.node("Expand", [g.constant(f"zero{l}", np.zeros(1)), shape], f"h0_{l}")
    wx = g.constant(f"Wx{l}", W[:n_in])
    p = f"l{l}_"  # body names: unique across the whole model
    body = _Graph(net.dtype)
    lstm, gru = net.cell == "lstm", net.cell == "gru"
    state_names = [f"{p}h", f"{p}c"] if lstm else [f"{p}h"]
    h, xt = f"{p}h", f"{p}x"
    zx = body.node("MatMul", [xt, wx], f"{p}Wx_x")
    zx = body.node("Add", [zx, g.constant(f"b{l}", b)], f"{p}zx")
    if gru:
        wh_rz = g.constant(f"Wh_rz{l}", W[n_in:, : 2 * H])
        wh_n = g.constant(f"Wh_n{l}", W[n_in:, 2 * H :])
        split = g.constant(f"gru_split{l}", np.array([2 * H, H]), np.int64)
        zx_rz, zx_n = body.node("Split", [zx, split], [f"{p}zx_rz", f"{p}zx_n"], axis=1)
        hr = body.node("MatMul", [h, wh_rz], f"{p}Wh_rz_h")
        rz = body.node("Sigmoid", [body.node("Add", [zx_rz, hr], f"{p}z_rz")], f"{p}rz")
        halves = g.constant(f"gru_halves{l}", np.array([H, H]), np.int64)
        r, u = body.node("Split", [rz, halves], [f"{p}r", f"{p}u"], axis=1)
        hn = body.node("MatMul", [h, wh_n], f"{p}Wh_n_h")
        hn = body.node("Add", [hn, g.constant(f"b_hn{l}", views["b_hn"])], f"{p}hn")
        z_n = body.node("Add", [zx_n, body.node("Mul", [r, hn], f"{p}r_hn")], f"{p}z_n")
        n = body.node("Tanh", [z_n], f"{p}n")
        # hₜ = (1 − u) n + u hₜ₋₁ = n + u (hₜ₋₁ − n)
        step = body.node("Mul", [u, body.node("Sub", [h, n], f"{p}h_minus_n")], f"{p}u_step")
        new = [body.node("Add", [n, step], f"{p}h_new")]
    else:
        zh = body.node("MatMul", [h, g.constant(f"Wh{l}", W[n_in:])], f"{p}Wh_h")
        z = body.node("Add", [zx, zh], f"{p}z")
        if not lstm:
            new = [body.node("Tanh", [z], f"{p}h_new")]
        else:
            quarters = g.constant(f"lstm_split{l}", np.array([H] * 4), np.int64)
            zs = body.node("Split", [z, quarters], [f"{p}z{k}" for k in "ifgo"], axis=1)
            i, f, o = (body.node("Sigmoid", [zs[k]], f"{p}{zs[k][-1]}") for k in (0, 1, 3))
            gg = body.node("Tanh", [zs[2]], f"{p}g")
            fc = body.node("Mul", [f, f"{p}c"], f"{p}f_c")
            c_new = body.node("Add", [fc, body.node("Mul", [i, gg], f"{p}i_g")], f"{p}c_new")
            tc = body.node("Tanh", [c_new], f"{p}tanh_c")
            new = [body.node("Mul", [o, tc], f"{p}h_new"), c_new]
    body.node("Identity", [new[0]], f"{p}h_out")

    def info(name: str, width: int) -> Any:
        return helper.make_tensor_value_info(name, elem, ["N", width])

    graph = helper.make_graph(
        body.nodes,
        f"layer{l}",
        [info(s, H) for s in state_names] + [info(xt, n_in)],
        [info(s, H) for s in new] + [info(f"{p}h_out", H)],
    )
    outputs = [f"h_last{l}"] + ([f"c_last{l}"] if lstm else []) + [f"h{l}"]
    g.node("Scan", [zero] * len(state_names) + [x], outputs, body=graph, num_scan_inputs=1)
    return outputs[-1], outputs[0]


def export(net: RecurrentNetwork, path: str | os.PathLike[str]) -> None:
    """Write ``net``'s ONNX model to ``path`` atomically."""
    write_atomically(path, to_model(net).SerializeToString())
