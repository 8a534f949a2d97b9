"""``jax-lstm``: the LSTM of ``compare_recurrent.py`` as a JAX user writes it — ``jax.grad`` of
the loss, ``jax.lax.scan`` over the steps, the whole epoch one ``jax.jit`` function (a
``lax.scan`` over the mini-batches); the peer of fastbp's ``RecurrentNetwork``.

The parameters keep fastbp's layout (``fastbp/recurrent.py``, ``RecurrentLayout.views``):
``W`` ``(d + H, 4H)`` acting on ``[xₜ, hₜ₋₁]`` with the gate columns in the order ``i, f, g, o``,
``b`` ``(4H,)``, the output layer's ``V`` ``(H, n_out)`` and ``c``; so fastbp's parameters are
copied over as they are. The model: ``zₜ = [xₜ, hₜ₋₁] W + b``, ``cₜ = σ(f) ⊙ cₜ₋₁ + σ(i) ⊙
tanh(g)``, ``hₜ = σ(o) ⊙ tanh(cₜ)`` from ``h₀ = c₀ = 0``; softmax of ``h_T V + c``; the
log-likelihood cost, mean over the mini-batch; plain SGD ``p ← p − η ∇C``.

The epoch as one ``lax.scan`` over the mini-batches was faster than a Python loop over the
jitted step (1.6, 1.1 and 1.05 times at H = 32, 64, 128 with B = 10, 32, 64; 500 sequences,
medians of 3, a shared 2-core machine), and so is what ``compare_recurrent.py`` times.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def lstm_functions(jax) -> tuple[Any, Any, Any]:
    """``(loss, step, epoch)``: the mean log-likelihood of a mini-batch, one jitted SGD step on
    a mini-batch, and one jitted epoch of SGD steps over ``batches`` (a ``lax.scan``)."""
    jnp = jax.numpy

    def loss(params, X, y):
        """Mean log-likelihood cost of sequences ``X`` ``(B, T, d)`` with labels ``y``."""
        W, b, V, c = params
        hidden = V.shape[0]
        zeros = jnp.zeros((X.shape[0], hidden), X.dtype)

        def cell(carry, x):
            h, state = carry
            z = jnp.concatenate([x, h], axis=1) @ W + b
            i, f, g, o = jnp.split(z, 4, axis=1)
            state = jax.nn.sigmoid(f) * state + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(state)
            return (h, state), None

        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(X, 0, 1))
        log_p = jax.nn.log_softmax(h @ V + c, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    def sgd(params, X, y, eta):
        grads = jax.grad(loss)(params, X, y)
        return tuple(p - eta * g for p, g in zip(params, grads, strict=True))

    def epoch(params, X, y, batches, eta):
        """SGD over the mini-batches, ``batches[k]`` holding the row indices of batch ``k``."""

        def one(params, rows):
            return sgd(params, X[rows], y[rows], eta), None

        params, _ = jax.lax.scan(one, params, batches)
        return params

    return jax.jit(loss), jax.jit(sgd), jax.jit(epoch)


class JaxLSTMTrainer:
    """fastbp's LSTM ``net`` (one layer) in JAX, its parameters copied over, trained on ``X``,
    ``y`` by mini-batch SGD.

    An epoch over ``order`` is one compiled call for the full mini-batches (a ``lax.scan``)
    and, when ``len(order)`` is not a multiple of ``batch``, one compiled SGD step on the last,
    smaller mini-batch — the same steps as fastbp's and PyTorch's epochs. ``compile(order)``
    compiles both for ``order``'s length (JAX compiles per shape); call it before timing.
    """

    def __init__(self, jax, net, X: np.ndarray, y: np.ndarray, batch: int, lr: float) -> None:
        if len(net.widths) != 3 or net.cell != "lstm":
            raise ValueError(f"net: expected a one-layer LSTM, got {net!r}")
        jnp = jax.numpy
        self.jax, self.batch, self.lr = jax, batch, lr
        self.dtype = net.dtype
        W, b = net.layers[0]["W"], net.layers[0]["b"]
        V, c = net.layers[1]["V"], net.layers[1]["c"]
        self.params = tuple(jnp.asarray(np.array(p, dtype=net.dtype)) for p in (W, b, V, c))
        self.X, self.y = jnp.asarray(X.astype(net.dtype)), jnp.asarray(y.astype(np.int32))
        self.loss, self.sgd, self.train_epoch = lstm_functions(jax)

    def _split(self, order: np.ndarray) -> tuple[Any, Any]:
        full = len(order) // self.batch * self.batch
        order = order.astype(np.int32)
        batches = self.jax.numpy.asarray(order[:full].reshape(-1, self.batch))
        rest = self.jax.numpy.asarray(order[full:]) if full < len(order) else None
        return batches, rest

    def _run(self, order: np.ndarray) -> tuple[Any, ...]:
        """The parameters after an epoch over ``order`` from ``self.params``."""
        batches, rest = self._split(order)
        eta = np.asarray(self.lr, dtype=self.dtype)
        params = self.train_epoch(self.params, self.X, self.y, batches, eta)
        if rest is not None:
            params = self.sgd(params, self.X[rest], self.y[rest], eta)
        return self.jax.block_until_ready(params)

    def compile(self, order: np.ndarray) -> None:
        """Compile the epoch for sequences ``order`` (its length and batching) by running it
        once and dropping the result: the parameters stay as they are."""
        self._run(order)

    def epoch(self, order: np.ndarray) -> None:
        """One pass of mini-batch SGD over the sequences in ``order``."""
        self.params = self._run(order)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays, in fastbp's layout: ``W``, ``b``, ``V``, ``c``."""
        return {k: np.asarray(p) for k, p in zip("W b V c".split(), self.params, strict=True)}


def check_against_fastbp(jax, n: int = 7, batch: int = 3, hidden: int = 5, steps: int = 4) -> float:
    """The largest difference between fastbp's float64 LSTM and this peer from the same
    parameters: the costs, then every parameter after an epoch of SGD on ``n`` sequences in
    order (mini-batches of ``batch``: the scan over the full ones, then the step on the rest).

    float64 through ``jax_enable_x64``, restored afterwards. ``compare_recurrent.py`` requires
    it under 1e-9.
    """
    from fastbp import RecurrentNetwork

    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, steps, 3))
    y = rng.integers(0, 4, n)
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        net = RecurrentNetwork(3, hidden, 4, cell="lstm", seed=7, dtype="float64")
        peer = JaxLSTMTrainer(jax, net, X, y, batch=batch, lr=0.5)
        differences = [abs(float(peer.loss(peer.params, peer.X, peer.y)) - net.cost_of(X, y))]
        peer.epoch(np.arange(n))
        net.fit(X, y, epochs=1, batch_size=batch, lr=0.5, shuffle=False)
        mine = {**net.layers[0], **net.layers[1]}
        for name, theirs in peer.arrays().items():
            if theirs.dtype != np.float64:
                raise RuntimeError(f"the JAX peer ran in {theirs.dtype}, not float64")
            differences.append(float(np.abs(theirs - mine[name]).max()))
    finally:
        jax.config.update("jax_enable_x64", before)
    return max(differences)
