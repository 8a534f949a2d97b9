"""The toolbox by name: activations, initialisations and optimisers (costs: ``fastbp.costs``).

Each entry is a small frozen record of what the rest of fastbp needs to know about it: the
code by which the compiled kernels (``fastbp.kernels``, ``fastbp._cuda``) select its branch,
and its parameters. A new activation or optimiser is an entry here and its branch in the
kernels' code; nothing else names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .kernels import codes


@dataclass(frozen=True)
class Activation:
    """``f`` of a layer: ``code`` selects it in ``activation_and_derivative``; ``alpha`` is
    its parameter's default (the leaky ReLU's slope below 0, the ELU's scale)."""

    name: str
    code: int
    alpha: float = 0.0
    #: Only for the output layer (softmax couples a layer's neurons).
    output_only: bool = False
    #: Has a useful derivative (the step function's is 0 wherever it exists).
    trainable: bool = True


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", codes.SIGMOID),
        Activation("tanh", codes.TANH),
        Activation("relu", codes.RELU),
        Activation("leaky_relu", codes.LEAKY_RELU, alpha=0.01),
        Activation("elu", codes.ELU, alpha=1.0),
        Activation("linear", codes.LINEAR),
        Activation("softmax", codes.SOFTMAX, output_only=True),
        Activation("step", codes.STEP, trainable=False),
    )
}


@dataclass(frozen=True)
class Initialisation:
    """Initial weights of a layer with ``n_in`` inputs and ``n_out`` neurons: N(0, ``std``²),
    biases ``bias`` ("gaussian": N(0, 1); "zeros") unless the network says otherwise."""

    name: str
    std: Callable[[int, int], float]
    bias: str


INITIALISATIONS: dict[str, Initialisation] = {
    i.name: i
    for i in (
        Initialisation("gaussian", lambda n_in, n_out: 1.0, "gaussian"),  # the book's network.py
        Initialisation("scaled", lambda n_in, n_out: 1.0 / np.sqrt(n_in), "gaussian"),  # network2
        Initialisation("glorot", lambda n_in, n_out: np.sqrt(2.0 / (n_in + n_out)), "zeros"),
        Initialisation("he", lambda n_in, n_out: np.sqrt(2.0 / n_in), "zeros"),
    )
}


@dataclass(frozen=True)
class Optimizer:
    """A step rule: ``code`` selects it in ``optimizer_step`` (CPU and CUDA); ``slots`` is the
    number of state buffers of the parameters' size it keeps (``v``; Adam's ``m`` and ``s``);
    ``options`` the ``fit`` options that are its hyper-parameters."""

    name: str
    code: int
    slots: int
    options: tuple[str, ...] = ()


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", codes.SGD, 0),
        Optimizer("momentum", codes.MOMENTUM, 1, ("momentum",)),
        Optimizer("nesterov", codes.NESTEROV, 1, ("momentum",)),
        Optimizer("adam", codes.ADAM, 2, ("betas", "eps")),
        Optimizer("rmsprop", codes.RMSPROP, 1, ("rho", "eps")),
    )
}
