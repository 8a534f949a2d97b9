"""Cost functions with the book's interface: ``fn(a, y)`` and ``delta(z, a, y)``.

As in ``network2.py`` of Nielsen's *Neural Networks and Deep Learning*, each cost is a small
class of static methods. ``fn`` is the cost of one sample, ``a`` and ``y`` its output and target
(vectors, columns, or rows of a batch: the sum runs over the last axis); ``delta`` is the
output error ``δᴸ`` that starts backpropagation. The compiled training code computes the same
``δᴸ`` (``fastbp.kernels.output_error``, chosen by ``code``); these NumPy versions serve
monitoring, reports and anyone reading along with the book. Logarithms are clipped, so a
saturated output gives a large finite cost, never ``inf`` or NaN.
"""

from __future__ import annotations

import numpy as np

from . import kernels

#: Outputs are clipped to ``[EPS, 1 − EPS]`` inside logarithms.
EPS = 1e-12


def _rows(a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(a, dtype=np.float64), np.asarray(y, dtype=np.float64)


class QuadraticCost:
    """``C = ½‖y − a‖²``; ``δᴸ = (a − y) ⊙ σ'(zᴸ)`` for a sigmoid output."""

    name = "quadratic"
    code = kernels.QUADRATIC

    @staticmethod
    def fn(a: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, y = _rows(a, y)
        return 0.5 * np.sum((a - y) ** 2, axis=-1)

    @staticmethod
    def delta(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(np.asarray(z, dtype=np.float64)))
        return (np.asarray(a) - np.asarray(y)) * e / (1 + e) ** 2


class CrossEntropyCost:
    """``C = −Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)]`` with sigmoid outputs; ``δᴸ = a − y``."""

    name = "cross_entropy"
    code = kernels.CROSS_ENTROPY

    @staticmethod
    def fn(a: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, y = _rows(a, y)
        a = np.clip(a, EPS, 1 - EPS)
        return -np.sum(y * np.log(a) + (1 - y) * np.log1p(-a), axis=-1)

    @staticmethod
    def delta(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(a) - np.asarray(y)


class LogLikelihoodCost:
    """``C = −ln a_y`` (``−Σⱼ yⱼ ln aⱼ`` for one-hot ``y``) with softmax outputs; ``δᴸ = a − y``."""

    name = "log_likelihood"
    code = kernels.LOG_LIKELIHOOD

    @staticmethod
    def fn(a: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, y = _rows(a, y)
        return -np.sum(y * np.log(np.clip(a, EPS, 1.0)), axis=-1)

    @staticmethod
    def delta(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(a) - np.asarray(y)


COSTS = {c.name: c for c in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}
