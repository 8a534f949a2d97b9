"""fastbp's ``RecurrentNetwork`` (LSTM) beside PyTorch's ``nn.LSTM`` and the same LSTM in JAX:
seconds per epoch of row-by-row MNIST, float32, SGD, for the issue's three configurations.

    python -m benchmarks.compare_recurrent [--sequences 2000] [--rounds 3] [--no-torch] [--no-jax]

Times ``--sequences`` sequences per epoch (the first of the bundled mini MNIST, as 28 steps of
28 pixels) and scales to 50,000 (the book's MNIST training set); the systems run in turns, round
after round, each timed call after a rest of ``--pause`` seconds (0.3), and the table gives
medians. fastbp and PyTorch each run on one thread and on their default threads; JAX
(``peers/jax_lstm.py``: ``jax.jit``, ``lax.scan`` over the steps and over the mini-batches,
``jax.grad``; checked first against fastbp in float64) on its default threads, XLA's thread
pool over all usable CPUs. PyTorch and JAX start from fastbp's initial parameters and visit the
sequences in one shuffled order; a peer that is not installed is left out, with the reason
printed. The ratios are the peers' times over fastbp's on its default threads. The FLOP bound
is an epoch's multiply-adds (forward ``2·4H(d + H)`` per step and sample, backward that again
plus ``2·4H·H``) at this machine's single-thread SGEMM rate (``gemm_rate.py``), and half that
for two cores.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

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
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--pause", type=float, default=0.3, help="rest before each timed call")
    args = parser.parse_args(argv)
    if args.pause < 0:
        parser.error("--pause must be 0 or more")

    def rested(function, *call_args) -> float:
        """Wall seconds of ``function(*call_args)``, after ``--pause`` seconds' rest (so that
        worker threads left spinning by the previous system do not eat into this one's time)."""
        time.sleep(args.pause)
        return timed(function, *call_args)[0]

    from fastbp import RecurrentNetwork
    from fastbp.datasets import as_rows, load_mini_mnist

    (X, y), _ = load_mini_mnist()
    X, y = np.ascontiguousarray(as_rows(X[: args.sequences])), y[: args.sequences]
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: no PyTorch columns")
    jax = None
    if not args.no_jax:
        from .peers.threads import import_jax

        jax, jax_threads = import_jax(threads=0)  # 0: not 1, XLA's default thread pool
        if jax is None:
            print("JAX is not installed (python -m pip install jax): no JAX column")
        else:
            from .peers.jax_lstm import check_against_fastbp

            error = check_against_fastbp(jax)
            print(f"JAX peer against fastbp, float64, an epoch of SGD: max difference {error:.1e}")
            if not error < 1e-9:
                raise RuntimeError(f"the JAX peer differs from fastbp by {error:.1e} (> 1e-9)")
    rate = gemm_rates(with_jax=False)["numpy"]["float32"] * 1e9  # FLOP/s
    scale = FULL / args.sequences
    order = np.random.default_rng(0).permutation(args.sequences).astype(np.int64)
    default_threads = torch.get_num_threads() if torch is not None else None
    print(
        f"seconds per epoch of {FULL:,} row-MNIST sequences (timed on {args.sequences:,}, "
        f"scaled), float32, SGD; medians of {args.rounds}; SGEMM {rate / 1e9:.1f} GFLOP/s"
    )
    if jax is not None:
        print(f"JAX {jax.__version__}, threads: {jax_threads}")
    header = (
        "| H | B | fastbp 1 thread | fastbp default | torch 1 thread | torch default "
        "| jax default | torch1/fastbp | torch/fastbp | jax/fastbp | FLOP bound 1 core | 2 cores |"
    )
    print(header + "\n|" + "---|" * 12)
    for hidden, batch in CONFIGS:
        net = RecurrentNetwork(28, hidden, 10, cell="lstm", seed=1)
        warm = RecurrentNetwork(28, hidden, 10, cell="lstm", seed=0)
        warm.fit(X[: 2 * batch], y[: 2 * batch], epochs=1, batch_size=batch, lr=0.1)
        times: dict[str, list[float]] = {
            "fastbp1": [], "fastbp": [], "torch1": [], "torch": [], "jax": []
        }  # fmt: skip
        trainer = jax_trainer = None
        if torch is not None:
            from .peers.torch_lstm import TorchLSTMTrainer

            trainer = TorchLSTMTrainer(torch, net, X, y, batch, 0.1)
            trainer.epoch(order[: 2 * batch])  # warm-up
        if jax is not None:
            from .peers.jax_lstm import JaxLSTMTrainer

            jax_trainer = JaxLSTMTrainer(jax, net, X, y, batch, 0.1)
            jax_trainer.compile(order)  # compiled for this epoch's shapes, outside the timing
        for _ in range(args.rounds):
            for key, threads in (("fastbp1", 1), ("fastbp", None)):
                fit = functools.partial(
                    net.fit, X, y, epochs=1, batch_size=batch, lr=0.1, threads=threads
                )
                times[key].append(rested(fit) * scale)
            if trainer is not None:
                torch.set_num_threads(1)
                times["torch1"].append(rested(trainer.epoch, order) * scale)
                torch.set_num_threads(default_threads)
                times["torch"].append(rested(trainer.epoch, order) * scale)
            if jax_trainer is not None:
                times["jax"].append(rested(jax_trainer.epoch, order) * scale)
        med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
        bound = flops(hidden) * FULL / rate
        fast = med["fastbp"]
        print(f"| {hidden} | {batch} | {med['fastbp1']:.2f} | {fast:.2f} | "
              f"{med['torch1']:.2f} | {med['torch']:.2f} | {med['jax']:.2f} | "
              f"{med['torch1'] / fast:.2f} | {med['torch'] / fast:.2f} | {med['jax'] / fast:.2f} | "
              f"{bound:.2f} | {bound / 2:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
