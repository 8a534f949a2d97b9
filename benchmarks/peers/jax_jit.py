"""``jax``: the whole epoch under ``jax.jit``, ``jax.lax.scan`` over the mini-batches."""

from __future__ import annotations

from ..workload import ETA, Config, Data, epoch_order


def jax_functions(jax):
    """The jitted epoch and forward pass, as a JAX user writes them."""
    jnp = jax.numpy

    def forward(params, x):
        for w, b in params:
            x = jax.nn.sigmoid(x @ w.T + b)
        return x

    def loss(params, x, y):  # the book's quadratic cost, mean over the mini-batch
        return 0.5 * jnp.sum((forward(params, x) - y) ** 2) / x.shape[0]

    def train_epoch(params, X, Y, batches):
        """SGD over the mini-batches, ``batches[k]`` holding the row indices of batch k."""

        def step(params, rows):
            grads = jax.grad(loss)(params, X[rows], Y[rows])
            return jax.tree.map(lambda p, g: p - ETA * g, params, grads), None

        params, _ = jax.lax.scan(step, params, batches)
        return params

    return jax.jit(train_epoch), jax.jit(forward)


class JaxTrainer:
    """The whole epoch under ``jax.jit`` + ``jax.lax.scan``; a last partial batch is dropped."""

    name = "jax"

    def __init__(self, jax, config: Config, data: Data, seed: int, weights, biases) -> None:
        import numpy as np

        self.jax, self.config, self.data, self.seed = jax, config, data, seed
        self.x64_before = bool(jax.config.jax_enable_x64)
        jax.config.update("jax_enable_x64", config.dtype == "float64")
        jnp = jax.numpy
        self.X, self.Y = jnp.asarray(data.X_train), jnp.asarray(data.Y_train)
        self.params = [
            (jnp.asarray(w), jnp.asarray(b)) for w, b in zip(weights, biases, strict=True)
        ]
        n, m = data.X_train.shape[0], config.batch_size
        self.n_batches, self.dropped = divmod(n, m)
        train_epoch, self.forward = jax_functions(jax)
        # Compile ahead of time for these shapes, so that no timed epoch includes compilation.
        batches = jnp.zeros((self.n_batches, m), dtype=np.int32)
        self.train_epoch = train_epoch.lower(self.params, self.X, self.Y, batches).compile()
        self.forward(self.params, jnp.asarray(data.X_test[:10])).block_until_ready()

    def epoch(self, epoch: int) -> None:
        import numpy as np

        order = epoch_order(self.seed, epoch, self.data.X_train.shape[0]).astype(np.int32)
        m = self.config.batch_size
        batches = self.jax.numpy.asarray(order[: self.n_batches * m].reshape(-1, m))
        self.params = self.train_epoch(self.params, self.X, self.Y, batches)
        self.jax.block_until_ready(self.params)

    def accuracy(self) -> float:
        import numpy as np

        dtype = str(self.params[0][0].dtype)
        if dtype != self.config.dtype:
            raise RuntimeError(f"jax trained in {dtype}, not {self.config.dtype}")
        out = np.asarray(self.forward(self.params, self.jax.numpy.asarray(self.data.X_test)))
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))

    def close(self) -> None:
        self.jax.config.update("jax_enable_x64", self.x64_before)
