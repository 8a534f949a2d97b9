"""fastbp: backpropagation for feed-forward networks, written from the equations and compiled.

>>> from fastbp import Network
>>> net = Network([784, 30, 10], seed=1)

The model and the names are those of Michael Nielsen's *Neural Networks and Deep Learning*;
each equation of backpropagation is a Numba kernel in ``fastbp.kernels``.
"""

from . import datasets, gates
from ._version import __version__
from .diagnostics import CollapseWarning, GradientWarning, diagnose_collapse, diagnose_gradients
from .network import Network
from .perceptron import Perceptron, PerceptronResult

__all__ = [
    "CollapseWarning",
    "GradientWarning",
    "Network",
    "Perceptron",
    "PerceptronResult",
    "__version__",
    "datasets",
    "diagnose_collapse",
    "diagnose_gradients",
    "gates",
]
