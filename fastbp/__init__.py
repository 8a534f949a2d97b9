"""fastbp: backpropagation for feed-forward networks, written from the equations and compiled.

>>> from fastbp import Network
>>> net = Network([784, 30, 10], seed=1)

The model and the names are those of Michael Nielsen's *Neural Networks and Deep Learning*;
each equation of backpropagation is a Numba kernel in ``fastbp.kernels``.

``import fastbp`` imports none of the models or kernels (nor Numba): each name below is
imported on first use, so that ``fastbp info`` or ``fastbp --help`` starts at once. It sets
``GOMP_SPINCOUNT`` (``fastbp._openmp``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _openmp  # noqa: F401  (GOMP_SPINCOUNT, before Numba can load libgomp)
from ._version import __version__

if TYPE_CHECKING:
    from . import datasets, gates
    from .diagnostics import (
        CollapseWarning,
        GradientWarning,
        diagnose_collapse,
        diagnose_gradients,
    )
    from .network import Network
    from .perceptron import Perceptron, PerceptronResult
    from .recurrent import RecurrentNetwork
    from .training import StopTraining

#: Each public name and the module that defines it (a module's name for a module).
_LAZY = {
    "CollapseWarning": ".diagnostics",
    "GradientWarning": ".diagnostics",
    "Network": ".network",
    "Perceptron": ".perceptron",
    "PerceptronResult": ".perceptron",
    "RecurrentNetwork": ".recurrent",
    "StopTraining": ".training",
    "datasets": None,
    "diagnose_collapse": ".diagnostics",
    "diagnose_gradients": ".diagnostics",
    "gates": None,
}


def search(*args: Any, **kwargs: Any) -> Any:
    """A hyper-parameter search on Dask with Optuna: ``fastbp.sweep.search`` (needs
    ``pip install "fastbp[search]"``), imported when first called."""
    from .sweep import search as _search

    return _search(*args, **kwargs)


__all__ = [
    "CollapseWarning",
    "GradientWarning",
    "Network",
    "Perceptron",
    "PerceptronResult",
    "RecurrentNetwork",
    "StopTraining",
    "__version__",
    "datasets",
    "diagnose_collapse",
    "diagnose_gradients",
    "gates",
    "search",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
    module = _LAZY[name]
    value = importlib.import_module(f".{name}" if module is None else module, __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
