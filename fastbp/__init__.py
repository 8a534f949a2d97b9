"""fastbp: backpropagation for feed-forward networks, written from the equations and compiled.

>>> from fastbp import Network
>>> net = Network([784, 30, 10], seed=1)

The model and the names are those of Michael Nielsen's *Neural Networks and Deep Learning*;
each equation of backpropagation is a Numba kernel in ``fastbp.kernels``.
"""

from typing import Any

from . import datasets, gates
from ._version import __version__
from .diagnostics import GradientWarning, diagnose_gradients
from .network import Network
from .perceptron import Perceptron, PerceptronResult


def search(*args: Any, **kwargs: Any) -> Any:
    """A hyper-parameter search on Dask with Optuna: ``fastbp.sweep.search`` (needs
    ``pip install "fastbp[search]"``), imported when first called."""
    from .sweep import search as _search

    return _search(*args, **kwargs)


__all__ = [
    "GradientWarning",
    "Network",
    "Perceptron",
    "PerceptronResult",
    "__version__",
    "datasets",
    "diagnose_gradients",
    "gates",
    "search",
]
