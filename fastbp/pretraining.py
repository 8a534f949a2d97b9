"""Greedy layer-wise pre-training of a network's hidden layers as autoencoders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .network import Network


def pretrain(
    net: Network, X: Any, *, epochs: int, batch_size: int, lr: float, seed: int | None
) -> list[dict[str, list]]:
    """``Network.pretrain``: train an autoencoder per hidden layer of ``net`` and copy its
    encoder into the layer; returns the autoencoders' histories."""
    net._check_trainable()
    if net.batch_norm:
        raise ValueError("batch_norm: pre-training is for networks without batch norm")
    inputs = net._inputs(X)
    histories = []
    for l in range(1, len(net.sizes) - 1):
        in_unit = bool(inputs.min() >= 0 and inputs.max() <= 1)
        autoencoder = type(net)(
            [net.sizes[l - 1], net.sizes[l], net.sizes[l - 1]],
            activation=net.activations[l - 1],
            output="sigmoid" if in_unit else "linear",
            cost="cross_entropy" if in_unit else "quadratic",
            init="scaled",
            alpha=net.alpha,
            dtype=net.dtype.name,
            seed=seed,
            threads=net.threads,
            device=net.device,
        )
        autoencoder.weights[0][...] = net.weights[l - 1]
        autoencoder.biases[0][...] = net.biases[l - 1]
        history = autoencoder.fit(
            inputs, inputs, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            monitor_training=True,
        )  # fmt: skip
        histories.append(history)
        net.weights[l - 1][...] = autoencoder.weights[0]
        net.biases[l - 1][...] = autoencoder.biases[0]
        encoder = type(net)(
            net.sizes[l - 1 : l + 1], activation=[], output=net.activations[l - 1],
            alpha=net.alpha, dtype=net.dtype.name, threads=net.threads,
            device=net.device,
        )  # fmt: skip
        encoder.params[...] = autoencoder.params[: encoder.params.size]
        inputs = encoder.feedforward(inputs)
    return histories
