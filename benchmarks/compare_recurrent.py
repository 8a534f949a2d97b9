"""fastbp's ``RecurrentNetwork`` (LSTM) beside PyTorch's ``nn.LSTM``: seconds per epoch of
row-by-row MNIST, float32, SGD, for the issue's three configurations.

    python -m benchmarks.compare_recurrent [--sequences 2000] [--rounds 3]

Times ``--sequences`` sequences per epoch (the first of the bundled mini MNIST, as 28 steps
of 28 pixels) and scales to 50,000 (the book's MNIST training set); the systems run in turns,
round after round, and the table gives medians. fastbp and PyTorch each run on one thread and
on their default threads. The FLOP bound is an epoch's multiply-adds (forward ``2·4H(d + H)``
per step and sample, backward that again plus ``2·4H·H``) at this machine's single-thread
SGEMM rate (``gemm_rate.py``), and half that for two cores.
"""

from __future__ import annotations

import argparse
import functools
import statistics

import numpy as np

from .gemm_rate import gemm_rates
from .measure import timed

CONFIGS = [(32, 10), (64, 32), (128, 64)]
FULL = 50_000


def flops(hidden: int, d: int = 28, steps: int = 28) -> float:
    """Floating-point operations of one sequence's forward and backward pass."""
    forward = 2 * 4 * hidden * (d + hidden)
    return steps * (2 * forward + 2 * 4 * hidden * hidden)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    from fastbp import RecurrentNetwork
    from fastbp.datasets import as_rows, load_mini_mnist

    (X, y), _ = load_mini_mnist()
    X, y = np.ascontiguousarray(as_rows(X[: args.sequences])), y[: args.sequences]
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: fastbp alone")
    rate = gemm_rates(with_jax=False)["numpy"]["float32"] * 1e9  # FLOP/s
    scale = FULL / args.sequences
    order = np.random.default_rng(0).permutation(args.sequences).astype(np.int64)
    default_threads = torch.get_num_threads() if torch is not None else None
    print(
        f"seconds per epoch of {FULL:,} row-MNIST sequences (timed on {args.sequences:,}, "
        f"scaled), float32, SGD; medians of {args.rounds}; SGEMM {rate / 1e9:.1f} GFLOP/s"
    )
    header = (
        "| H | B | fastbp 1 thread | fastbp default | torch 1 thread | torch default "
        "| torch1/fastbp1 | torch/fastbp | FLOP bound 1 core | 2 cores |"
    )
    print(header + "\n|" + "---|" * 10)
    for hidden, batch in CONFIGS:
        net = RecurrentNetwork(28, hidden, 10, cell="lstm", seed=1)
        warm = RecurrentNetwork(28, hidden, 10, cell="lstm", seed=0)
        warm.fit(X[: 2 * batch], y[: 2 * batch], epochs=1, batch_size=batch, lr=0.1)
        times: dict[str, list[float]] = {"fastbp1": [], "fastbp": [], "torch1": [], "torch": []}
        trainer = None
        if torch is not None:
            from .peers.torch_lstm import TorchLSTMTrainer

            trainer = TorchLSTMTrainer(torch, net, X, y, batch, 0.1)
            trainer.epoch(order[: 2 * batch])  # warm-up
        for _ in range(args.rounds):
            for key, threads in (("fastbp1", 1), ("fastbp", None)):
                fit = functools.partial(
                    net.fit, X, y, epochs=1, batch_size=batch, lr=0.1, threads=threads
                )
                wall, _ = timed(fit)
                times[key].append(wall * scale)
            if trainer is not None:
                torch.set_num_threads(1)
                times["torch1"].append(timed(trainer.epoch, order)[0] * scale)
                torch.set_num_threads(default_threads)
                times["torch"].append(timed(trainer.epoch, order)[0] * scale)
        med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
        bound = flops(hidden) * FULL / rate
        one, both = med["torch1"] / med["fastbp1"], med["torch"] / med["fastbp"]
        print(f"| {hidden} | {batch} | {med['fastbp1']:.2f} | {med['fastbp']:.2f} | "
              f"{med['torch1']:.2f} | {med['torch']:.2f} | {one:.2f} | {both:.2f} | "
              f"{bound:.2f} | {bound / 2:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
