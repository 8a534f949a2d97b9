"""The perceptron of the book's section 1.1: a step neuron trained by the perceptron rule.

A perceptron outputs ``1`` if ``w · x + b > 0`` and ``0`` otherwise (equivalently
``w · x > threshold`` with ``threshold = −b``). It has no useful derivative, so it is trained
not by backpropagation but by the perceptron learning rule, which converges exactly when the
two classes are linearly separable; on data that is not (XOR, say), ``fit`` stops after
``max_epochs`` and says so, keeping the weights that misclassified the fewest samples.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import kernels
from ._checks import _as_float_array, _asarray, _check_positive_int, _check_rate


@dataclass(frozen=True)
class PerceptronResult:
    """What ``Perceptron.fit`` found.

    Attributes
    ----------
    converged : bool
        Whether a whole pass classified every sample correctly.
    epochs : int
        Passes made over the data.
    errors : list of int
        Misclassified samples in each pass (during the pass, as the rule updated).
    misclassified : int
        Samples the final weights misclassify (0 when converged).
    """

    converged: bool
    epochs: int
    errors: list[int]
    misclassified: int


class Perceptron:
    """A perceptron: ``output = 1 if w · x + b > 0 else 0``.

    Parameters
    ----------
    weights : array_like of float
        One weight per input.
    bias : float
        The bias ``b`` (the book's ``−threshold``).

    Examples
    --------
    The book's NAND gate:

    >>> nand = Perceptron([-2, -2], 3)
    >>> nand([[0, 0], [0, 1], [1, 0], [1, 1]]).tolist()
    [1, 1, 1, 0]
    """

    def __init__(self, weights: Any, bias: float = 0.0) -> None:
        w = _as_float_array(weights, "weights", np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights: expected a 1-D array of weights, got shape {w.shape}")
        if isinstance(bias, bool) or not isinstance(bias, numbers.Real):
            raise TypeError(f"bias: expected a finite number, got {bias!r}")
        if not np.isfinite(bias):
            raise ValueError(f"bias: expected a finite number, got {bias!r}")
        self.weights = w.copy()
        self.bias = float(bias)

    @classmethod
    def zeros(cls, n_inputs: int) -> Perceptron:
        """A perceptron with ``n_inputs`` zero weights and zero bias, ready to ``fit``."""
        return cls(np.zeros(_check_positive_int(n_inputs, "n_inputs")), 0.0)

    @property
    def threshold(self) -> float:
        """The book's threshold: the output is 1 when ``w · x > threshold``."""
        return -self.bias

    def __repr__(self) -> str:
        return f"Perceptron(weights={self.weights.tolist()}, bias={self.bias})"

    def _inputs(self, X: Any, name: str = "X") -> np.ndarray:
        arr = _as_float_array(X, name, np.float64)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"{name}: expected rows of {self.weights.shape[0]} inputs, got shape {arr.shape}"
            )
        return arr

    def __call__(self, X: Any) -> np.ndarray:
        """Outputs (0 or 1, as int64) for each row of ``X`` (or for one input vector)."""
        return kernels.perceptron_output(self.weights, self.bias, self._inputs(X))

    predict = __call__

    def fit(self, X: Any, y: Any, *, eta: float = 1.0, max_epochs: int = 100) -> PerceptronResult:
        """Train by the perceptron learning rule until a pass makes no mistake.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_inputs)
        y : array_like of 0/1, shape (n_samples,)
        eta : float
            Step of the rule, ``w ← w + η (y − output) x``.
        max_epochs : int
            Passes before giving up on data that is not linearly separable.

        Returns
        -------
        PerceptronResult
            ``converged`` is False when ``max_epochs`` passes did not separate the data; the
            weights are then those of the pass end that misclassified the fewest samples.
        """
        X = self._inputs(X)
        labels = _asarray(y, "y")
        if labels.shape != (X.shape[0],):
            raise ValueError(f"y: expected {X.shape[0]} labels, got shape {labels.shape}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("y: expected labels 0 or 1")
        labels = labels.astype(np.int64)
        eta = _check_rate(eta, "eta")
        max_epochs = _check_positive_int(max_epochs, "max_epochs")

        best = (self.weights.copy(), self.bias, int(np.sum(self(X) != labels)))
        errors: list[int] = []
        for _ in range(max_epochs):
            self.bias, n_errors = kernels.perceptron_epoch(self.weights, self.bias, X, labels, eta)
            errors.append(int(n_errors))
            if n_errors == 0:
                return PerceptronResult(True, len(errors), errors, 0)
            wrong = int(np.sum(self(X) != labels))
            if wrong < best[2]:
                best = (self.weights.copy(), self.bias, wrong)
        self.weights[...], self.bias = best[0], best[1]
        return PerceptronResult(False, len(errors), errors, best[2])
