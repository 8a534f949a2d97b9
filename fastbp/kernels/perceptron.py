"""The book's section 1.1: a perceptron's output and the perceptron learning rule."""

from __future__ import annotations

import numpy as np

from .._config import kernel


@kernel(allocates=True)
def perceptron_output(w, b, x):
    """Step output of a perceptron: ``1`` if ``w · x + b > 0`` else ``0`` (for each row of x)."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for k in range(x.shape[0]):
        s = b
        for i in range(w.shape[0]):
            s += w[i] * x[k, i]
        out[k] = 1 if s > 0 else 0
    return out


@kernel()
def perceptron_epoch(w, b, x, y, eta):
    """One pass of the perceptron learning rule over the rows of ``x``, in order.

    For each sample: ``output = step(w · x + b)``, then ``w ← w + η (y − output) x`` and
    ``b ← b + η (y − output)``. Returns the new bias and the number of misclassified samples
    (0 means the pass changed nothing: the rule has converged).
    """
    errors = 0
    for k in range(x.shape[0]):
        s = b
        for i in range(w.shape[0]):
            s += w[i] * x[k, i]
        miss = y[k] - (1 if s > 0 else 0)
        if miss != 0:
            errors += 1
            for i in range(w.shape[0]):
                w[i] += eta * miss * x[k, i]
            b += eta * miss
    return b, errors
