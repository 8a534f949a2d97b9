"""``book``: the per-sample algorithm of the book's ``network.py``, in Python lists."""

from __future__ import annotations

from ..workload import ETA, Config, Data, epoch_order
from .numpy_matrix import numpy_forward, sigmoid


class BookTrainer:
    """The book's ``network.py``: per-sample backprop on column vectors, in Python lists.

    ``update_mini_batch`` and ``backprop`` follow the book's code line by line (Nielsen,
    chapter 1), with the same starting parameters and sample order as the other systems. Each
    epoch trains on the first ``samples`` samples of the epoch's order.
    """

    name = "book"

    def __init__(self, config: Config, data: Data, seed: int, weights, biases, samples: int):
        import numpy as np

        self.config, self.data, self.seed = config, data, seed
        self.samples = min(samples, data.X_train.shape[0])
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.biases = [np.array(b, dtype=np.float64).reshape(-1, 1) for b in biases]
        self.num_layers = len(weights) + 1
        # The book's data: a list of (x, y) pairs of column vectors.
        self.training_data = [
            (x.reshape(-1, 1), y.reshape(-1, 1))
            for x, y in zip(data.X_train, data.Y_train, strict=True)
        ]
        saved = [w.copy() for w in self.weights], [b.copy() for b in self.biases]
        self.update_mini_batch(self.training_data[: config.batch_size], ETA)  # warm-up
        self.weights, self.biases = saved

    def epoch(self, epoch: int) -> None:
        order = epoch_order(self.seed, epoch, len(self.training_data))[: self.samples]
        training_data = [self.training_data[i] for i in order]  # the book's random.shuffle
        m = self.config.batch_size
        mini_batches = [training_data[k : k + m] for k in range(0, len(training_data), m)]
        for mini_batch in mini_batches:
            self.update_mini_batch(mini_batch, ETA)

    def update_mini_batch(self, mini_batch, eta):
        import numpy as np

        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b, strict=True)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w, strict=True)]
        self.weights = [
            w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w, strict=True)
        ]
        self.biases = [
            b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b, strict=True)
        ]

    def backprop(self, x, y):
        import numpy as np

        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights, strict=True):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            sp = sigmoid(zs[-l]) * (1 - sigmoid(zs[-l]))
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    def accuracy(self) -> float:
        import numpy as np

        weights = self.weights
        out = numpy_forward(weights, [b.ravel() for b in self.biases], self.data.X_test)
        return float(np.mean(out.argmax(axis=1) == self.data.y_test))
