"""Gradient health: the book's chapter 5 speeds of learning, and what they say.

``diagnose_gradients`` reads per-layer gradient norms (``Network.gradient_norms``) and names
vanishing or exploding gradients; ``fit(monitor_gradients=True)`` records the norms every epoch
and warns with a ``GradientWarning``.
"""

from __future__ import annotations

import numpy as np


class GradientWarning(RuntimeWarning):
    """Vanishing or exploding gradients, reported by ``fit(monitor_gradients=True)``."""


class CollapseWarning(RuntimeWarning):
    """Training that collapsed to chance (``diagnose_collapse``), reported by every ``fit``."""


#: Outputs whose spread (standard deviation over the samples) is below this for every output
#: neuron are taken as the same for every input: the neurons have saturated.
COLLAPSE_SPREAD = 1e-4


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


def diagnose_collapse(
    outputs: np.ndarray, predicted: np.ndarray, labels: np.ndarray, inputs: np.ndarray
) -> str | None:
    """What is wrong with a network whose ``outputs`` on some ``inputs`` (with the classes
    it ``predicted`` and the true ``labels``) no longer depend on the input, or None.

    A collapse is the book's chapter 3 failure of a rate too large for the initialisation:
    every output neuron gives the same value for every input (spread below
    ``COLLAPSE_SPREAD``), saturated, and the accuracy is chance (no better than always
    answering the commonest class). Data of a single class, or inputs that are all the same,
    are never called a collapse.
    """
    labels = np.asarray(labels)
    if outputs.shape[0] < 2 or np.unique(labels).size < 2:
        return None
    if not (np.ptp(inputs, axis=0) > 0).any():  # the same input everywhere: the same output
        return None
    spread = float(np.std(outputs.astype(np.float64), axis=0).max())
    if not spread < COLLAPSE_SPREAD:
        return None
    accuracy = float(np.mean(predicted == labels))
    commonest = float(np.bincount(labels).max() / labels.size)
    if accuracy > commonest + 0.01:
        return None
    return (
        f"training collapsed: the network's outputs are the same for every input (spread "
        f"{spread:.1g}) and its accuracy, {accuracy:.1%}, is chance (the commonest class is "
        f"{commonest:.1%} of the samples): its neurons have saturated"
    )
