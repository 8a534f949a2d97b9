"""``numpy``: the book's equations in NumPy, each mini-batch as one matrix.

Its forward pass (``numpy_forward``) also scores the ``book`` system and is what ``predict`` is
timed against."""

from __future__ import annotations

from ..workload import ETA, Config, Data, epoch_order


def sigmoid(z):
    import numpy as np

    with np.errstate(over="ignore"):  # exp(-z) → inf for z ≪ 0 gives σ = 0, as it should
        return 1 / (1 + np.exp(-z))


def numpy_forward(weights, biases, a):
    """The network's output for the rows of ``a``, in NumPy: ``A = σ(A @ Wᵀ + b)`` per layer."""
    for w, b in zip(weights, biases, strict=True):
        a = sigmoid(a @ w.T + b)
    return a


class NumpyTrainer:
    """The book's equations in plain NumPy, a mini-batch as one matrix."""

    name = "numpy"

    def __init__(self, config: Config, data: Data, seed: int, weights, biases) -> None:
        self.config, self.data, self.seed = config, data, seed
        self.weights = [w.copy() for w in weights]  # (n_out, n_in), the book's orientation
        self.biases = [b.copy() for b in biases]
        # Warm-up: one mini-batch step on copies (first-call costs of BLAS and the allocator).
        saved = [w.copy() for w in self.weights], [b.copy() for b in self.biases]
        self.train(self.data.X_train[:64], self.data.Y_train[:64], range(64))
        self.weights, self.biases = saved

    def train(self, X, Y, order) -> None:
        """One pass of mini-batch SGD over the rows of ``X`` in ``order``."""
        import numpy as np

        order = np.asarray(order)
        batch = self.config.batch_size
        W, B = self.weights, self.biases
        L = len(W)  # layers with parameters
        for start in range(0, order.shape[0], batch):
            rows = order[start : start + batch]
            m = rows.shape[0]
            A = [X[rows]]  # A[l]: activations of layer l, one row per sample
            for w, b in zip(W, B, strict=True):
                A.append(sigmoid(A[-1] @ w.T + b))  # Z = A @ Wᵀ + b, A = σ(Z)
            a = A[-1]
            delta = (a - Y[rows]) * a * (1 - a)  # BP1, with σ'(Z) = A ⊙ (1 − A)
            grad_w, grad_b = [None] * L, [None] * L
            for l in range(L - 1, -1, -1):
                grad_b[l] = delta.sum(axis=0)  # BP3
                grad_w[l] = delta.T @ A[l]  # BP4
                if l:
                    delta = (delta @ W[l]) * A[l] * (1 - A[l])  # BP2
            step = ETA / m
            for w, b, gw, gb in zip(W, B, grad_w, grad_b, strict=True):
                w -= step * gw
                b -= step * gb

    def epoch(self, epoch: int) -> None:
        n = self.data.X_train.shape[0]
        self.train(self.data.X_train, self.data.Y_train, epoch_order(self.seed, epoch, n))

    def accuracy(self) -> float:
        import numpy as np

        out = numpy_forward(self.weights, self.biases, self.data.X_test)
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))
