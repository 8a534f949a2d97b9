"""Gradient health: the book's chapter 5 speeds of learning, and what they say.

``diagnose_gradients`` reads per-layer gradient norms (``Network.gradient_norms``) and names
vanishing or exploding gradients; ``fit(monitor_gradients=True)`` records the norms every epoch
and warns with a ``GradientWarning``.
"""

from __future__ import annotations

import numpy as np


class GradientWarning(RuntimeWarning):
    """Vanishing or exploding gradients, reported by ``fit(monitor_gradients=True)``."""


#: The first layer learning this many times slower than the last (the ratio of their
#: ``‖∂C/∂b‖``, the book's speeds of learning) is reported as vanishing gradients. The book's
#: [784, 30, 30, 30, 10] sigmoid network shows about 24.
VANISHING_RATIO = 10.0
#: The first layer's ``‖∂C/∂b‖`` this many times the last's, or a norm growing this many times
#: from one epoch to the next, is reported as exploding gradients.
EXPLODING_RATIO = 100.0


def diagnose_gradients(
    norms: dict[str, np.ndarray], previous: dict[str, np.ndarray] | None = None
) -> str | None:
    """A diagnosis of per-layer gradient norms (``Network.gradient_norms``), or None.

    - vanishing: the first layer's ``‖∂C/∂b‖`` is under ``1/VANISHING_RATIO`` of the last's;
    - exploding: it is over ``EXPLODING_RATIO`` times the last's, or any layer's norm grew
      more than ``EXPLODING_RATIO`` times since ``previous`` (the epoch before), or a norm is
      not finite.
    The message gives the numbers.
    """
    b = norms["bias"]
    if not (np.isfinite(b).all() and np.isfinite(norms["weight"]).all()):
        return f"exploding gradients: non-finite norms {b.tolist()}"
    if len(b) >= 2 and b[-1] > 0:
        ratio = b[0] / b[-1]
        speeds = ", ".join(f"{v:.3g}" for v in b)
        if ratio < 1 / VANISHING_RATIO:
            return (
                f"vanishing gradients: the first layer learns {1 / ratio:.3g} times slower than "
                f"the last (‖∂C/∂b‖ per layer: {speeds})"
            )
        if ratio > EXPLODING_RATIO:
            return (
                f"exploding gradients: the first layer's gradient is {ratio:.3g} times the "
                f"last's (‖∂C/∂b‖ per layer: {speeds})"
            )
    if previous is not None:
        growth = np.max(b / np.maximum(previous["bias"], np.finfo(np.float64).tiny))
        if growth > EXPLODING_RATIO:
            return f"exploding gradients: a layer's ‖∂C/∂b‖ grew {growth:.3g} times in one epoch"
    return None


def record_gradient_norms(history: dict[str, list], norms: dict[str, np.ndarray]) -> str | None:
    """Append an epoch's per-layer gradient norms to ``history`` and return what
    ``diagnose_gradients`` finds, comparing with the epoch before."""
    previous = None
    if history["grad_norm_b"]:
        previous = {"bias": np.array(history["grad_norm_b"][-1])}
    history["grad_norm_b"].append(norms["bias"].tolist())
    history["grad_norm_w"].append(norms["weight"].tolist())
    return diagnose_gradients(norms, previous)
