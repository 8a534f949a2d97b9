"""Batch normalisation of a layer's weighted input over a mini-batch: forward and backward."""

from __future__ import annotations

import numpy as np

from .._config import kernel


# ``inline``: the batch-norm kernels have one compiled copy per caller, the same whether it
# was compiled or loaded from the cache (see ``_config.kernel``).
@kernel(inline=True)
def batch_norm_forward(z, gamma, beta, h, inv, mean, var, mode):
    """Batch normalisation of a layer's weighted input, in place: ``z ← γ ẑ + β``.

    ``ẑ = (z − μ)/√(σ² + ε)`` per neuron, with ``μ``, ``σ²`` the mini-batch's mean and
    variance (``mode`` 1; ``mode`` 2 also moves the running statistics ``mean``, ``var``
    a tenth of the way towards them, with the unbiased variance) or the running statistics
    (``mode`` 0, for prediction). ``ẑ`` is kept in ``h`` and ``1/√(σ² + ε)`` in ``inv`` for
    ``batch_norm_backward``. ``ε = 1e-5``.
    """
    m, n = z.shape
    eps = type(gamma[0])(1e-5)
    mf = type(gamma[0])(m)  # an integer in float arithmetic would promote it to float64
    for j in range(n):
        if mode == 0:
            mu = mean[j]
            v = var[j]
        else:
            mu = z[0, j] - z[0, j]
            for k in range(m):
                mu += z[k, j]
            mu /= mf
            v = mu - mu
            for k in range(m):
                v += (z[k, j] - mu) * (z[k, j] - mu)
            v /= mf
            if mode == 2:
                unbiased = v * mf / (mf - type(mf)(1.0)) if m > 1 else v
                mean[j] += type(mu)(0.1) * (mu - mean[j])
                var[j] += type(mu)(0.1) * (unbiased - var[j])
        iv = type(v)(1.0) / np.sqrt(v + eps)
        inv[j] = iv
        for k in range(m):
            hk = (z[k, j] - mu) * iv
            h[k, j] = hk
            z[k, j] = gamma[j] * hk + beta[j]


@kernel(inline=True)
def batch_norm_backward(delta, h, inv, gamma, sums):
    """From ``δ`` with respect to ``y = γ ẑ + β`` to ``δ`` with respect to ``z``, in place.

    ``∂C/∂γ = Σₖ δₖ ẑₖ`` and ``∂C/∂β = Σₖ δₖ`` go to ``sums[0]``, ``sums[1]``; then, with the
    mini-batch statistics depending on every sample,
    ``δ_z = (γ/(m √(σ² + ε))) (m δ − Σₖ δₖ − ẑ Σₖ δₖ ẑₖ)``.
    """
    m, n = delta.shape
    mf = type(gamma[0])(m)
    for j in range(n):
        s_d = delta[0, j] - delta[0, j]
        s_dh = s_d
        for k in range(m):
            s_d += delta[k, j]
            s_dh += delta[k, j] * h[k, j]
        sums[0, j] = s_dh
        sums[1, j] = s_d
        c = gamma[j] * inv[j] / mf
        for k in range(m):
            delta[k, j] = c * (mf * delta[k, j] - s_d - h[k, j] * s_dh)
