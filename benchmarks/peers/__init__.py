"""The systems ``compare.py`` times, one module each, and which of them train a configuration."""

from __future__ import annotations

from typing import Any

from ..workload import BOOK_CONFIG, Config, Data
from .book import BookTrainer
from .fastbp_api import FastbpTrainer
from .jax_jit import JaxTrainer
from .numpy_matrix import NumpyTrainer
from .sklearn_mlp import SklearnTrainer
from .torch_eager import TorchTrainer

SYSTEMS = ("fastbp", "book", "numpy", "torch", "jax", "sklearn")


def make_trainers(config: Config, data: Data, args, peers: dict[str, Any]) -> list[Any]:
    fastbp = FastbpTrainer(config, data, args.seed, args.fastbp_threads)
    weights, biases = fastbp.initial_parameters()
    trainers: list[Any] = [fastbp]
    if "book" in args.systems and config == BOOK_CONFIG:
        trainers.append(BookTrainer(config, data, args.seed, weights, biases, args.book_samples))
    if "numpy" in args.systems:
        trainers.append(NumpyTrainer(config, data, args.seed, weights, biases))
    if peers.get("torch") is not None:
        trainers.append(TorchTrainer(peers["torch"], config, data, args.seed, weights, biases))
    if peers.get("jax") is not None:
        trainers.append(JaxTrainer(peers["jax"], config, data, args.seed, weights, biases))
    if peers.get("sklearn") is not None:
        trainers.append(SklearnTrainer(peers["sklearn"], config, data, args.seed))
    return trainers
