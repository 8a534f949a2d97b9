"""The codes by which the compiled kernels select an activation, a cost or an optimiser.

``fastbp.registry`` and ``fastbp.costs`` give them names; the kernels branch on them.
"""

from __future__ import annotations

#: Activation codes. ``alpha`` is the slope of the leaky ReLU for ``x < 0`` or the scale of the
#: ELU. Softmax is only an output layer (it couples the neurons of a row); the step function
#: has no useful derivative (its ``f'`` is 0) and is refused for training.
SIGMOID, TANH, RELU, LEAKY_RELU, ELU, LINEAR, SOFTMAX, STEP = 0, 1, 2, 3, 4, 5, 6, 7

#: Cost codes: quadratic ``½‖a − y‖²``, cross-entropy ``−Σ[y ln a + (1 − y) ln(1 − a)]``
#: (sigmoid output), log-likelihood ``−ln a_y`` (softmax output).
QUADRATIC, CROSS_ENTROPY, LOG_LIKELIHOOD = 0, 1, 2

#: Optimiser codes (``optimizers.optimizer_step``).
SGD, MOMENTUM, NESTEROV, ADAM, RMSPROP = 0, 1, 2, 3, 4
