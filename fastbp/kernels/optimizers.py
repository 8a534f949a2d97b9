"""The optimisers' steps on the flat buffers: SGD, momentum, Nesterov, Adam and RMSprop."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._config import kernel
from .codes import ADAM, MOMENTUM, NESTEROV, SGD


class Hyper(NamedTuple):
    """The optimisers' hyper-parameters, as scalars of the parameters' dtype: momentum's and
    Nesterov's ``μ``, Adam's ``β₁``, ``β₂``, Adam's and RMSprop's ``ε``, RMSprop's ``ρ``."""

    momentum: float
    beta1: float
    beta2: float
    eps: float
    rho: float


@kernel(inline=True)
def optimizer_step(params, grad, state, optimizer, eta, hyper, t):
    """One step of the optimiser on the flat buffers, ``grad`` being the mean gradient ``g``.

    - SGD: ``θ ← θ − η g``;
    - momentum (the book's chapter 3): ``v ← μ v − η g``, ``θ ← θ + v``;
    - Nesterov: ``v' = μ v − η g``, ``θ ← θ − μ v + (1 + μ) v'`` (the look-ahead form, with
      ``g`` taken at ``θ``), ``v ← v'``;
    - Adam: ``m ← β₁ m + (1 − β₁) g``, ``s ← β₂ s + (1 − β₂) g²``,
      ``θ ← θ − η m̂ / (√ŝ + ε)`` with ``m̂ = m/(1 − β₁ᵗ)``, ``ŝ = s/(1 − β₂ᵗ)``;
    - RMSprop: ``s ← ρ s + (1 − ρ) g²``, ``θ ← θ − η g / (√s + ε)``.

    ``hyper`` is a ``Hyper``; ``state[0]`` holds ``v``, ``m`` or RMSprop's ``s``,
    ``state[1]`` Adam's ``s``; ``t`` is the 1-based step number (Adam's bias correction).
    """
    one = type(eta)(1.0)
    mu, beta1, beta2, eps = hyper.momentum, hyper.beta1, hyper.beta2, hyper.eps
    if optimizer == SGD:
        for i in range(params.shape[0]):
            params[i] -= eta * grad[i]
    elif optimizer == MOMENTUM:
        v = state[0]
        for i in range(params.shape[0]):
            v[i] = mu * v[i] - eta * grad[i]
            params[i] += v[i]
    elif optimizer == NESTEROV:
        v = state[0]
        for i in range(params.shape[0]):
            new = mu * v[i] - eta * grad[i]
            params[i] += -mu * v[i] + (one + mu) * new
            v[i] = new
    elif optimizer == ADAM:
        m, s = state[0], state[1]
        c1 = one - beta1 ** type(eta)(t)
        c2 = one - beta2 ** type(eta)(t)
        for i in range(params.shape[0]):
            g = grad[i]
            m[i] = beta1 * m[i] + (one - beta1) * g
            s[i] = beta2 * s[i] + (one - beta2) * g * g
            params[i] -= eta * (m[i] / c1) / (np.sqrt(s[i] / c2) + eps)
    else:
        rho, s = hyper.rho, state[0]
        for i in range(params.shape[0]):
            g = grad[i]
            s[i] = rho * s[i] + (one - rho) * g * g
            params[i] -= eta * g / (np.sqrt(s[i]) + eps)
