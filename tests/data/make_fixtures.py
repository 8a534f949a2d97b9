"""Write the model files and checkpoint that ``tests/test_file_fixtures.py`` loads.

They were written by fastbp 0.1.0 at commit 1e159ef, before the code was split into a trainer,
registries and a kernels package (issue 18): files saved by that release must load, predict
and resume the same ever after. Run from the repository root only to add a fixture (the
existing files must not be rewritten):

    PYTHONPATH=. python tests/data/make_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastbp import Network

HERE = Path(__file__).resolve().parent


def data(n: int, n_in: int, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def main() -> None:
    X, y = data(200, 20, 4, seed=0)
    nets = {
        "plain": Network([20, 8, 4], seed=1),
        "toolbox": Network(
            [20, 12, 12, 8, 4],
            activation="relu",
            cost="log_likelihood",
            init="he",
            residual=True,
            batch_norm=True,
            dtype="float64",
            seed=2,
        ),
    }
    nets["plain"].fit(X, y, epochs=2, batch_size=10, lr=1.0)
    nets["toolbox"].fit(X, y, epochs=2, batch_size=10, lr=0.05, optimizer="adam", lmbda=1.0)
    for name, net in nets.items():
        net.save(HERE / f"model_{name}_0.1.0.npz")
        np.save(HERE / f"model_{name}_0.1.0_outputs.npy", net.feedforward(X))
    net = Network([20, 8, 4], activation="tanh", seed=3)
    options = dict(batch_size=10, lr=0.1, optimizer="momentum", seed=4, lmbda=0.5)
    net.fit(X, y, epochs=2, checkpoint=HERE / "checkpoint_0.1.0.npz", **options)
    net.fit(X, y, epochs=4, resume=HERE / "checkpoint_0.1.0.npz", **options)
    np.save(HERE / "checkpoint_0.1.0_resumed_params.npy", net.params)


if __name__ == "__main__":
    main()
