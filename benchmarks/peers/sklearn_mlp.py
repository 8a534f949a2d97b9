"""``sklearn``: ``MLPClassifier`` with plain SGD, a related model timed for reference."""

from __future__ import annotations

from ..workload import Config, Data

#: Learning rate for sklearn's MLPClassifier (softmax + log-loss: η = 3.0 is too large for it).
SKLEARN_ETA = 0.5


class SklearnTrainer:
    """sklearn's MLPClassifier with plain SGD: a related model, timed for reference."""

    name = "sklearn"

    def __init__(self, neural_network, config: Config, data: Data, seed: int) -> None:
        import numpy as np

        self.config, self.data = config, data
        self.classes = np.arange(10)

        def make():
            return neural_network.MLPClassifier(
                hidden_layer_sizes=config.sizes[1:-1], activation="logistic", solver="sgd",
                batch_size=config.batch_size, learning_rate="constant",
                learning_rate_init=SKLEARN_ETA, momentum=0.0, nesterovs_momentum=False,
                alpha=0.0, max_iter=1, shuffle=True,
                # An instance, not an int: an int would re-seed every partial_fit, so every
                # epoch would visit the samples in the same order.
                random_state=np.random.RandomState(seed),
            )  # fmt: skip

        rows = 2 * config.batch_size + 3  # warm-up: a few mini-batches on a throwaway model
        make().partial_fit(data.X_train[:rows], data.y_train[:rows], classes=self.classes)
        self.model = make()

    def epoch(self, epoch: int) -> None:
        # partial_fit with an SGD solver is one pass over the data (sklearn's "iteration").
        if epoch == 0:
            self.model.partial_fit(self.data.X_train, self.data.y_train, classes=self.classes)
        else:
            self.model.partial_fit(self.data.X_train, self.data.y_train)

    def accuracy(self) -> float:
        return float(self.model.score(self.data.X_test, self.data.y_test))
