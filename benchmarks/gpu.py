"""fastbp on an NVIDIA GPU beside PyTorch CUDA eager, in one run: seconds per epoch and ratios.

    python benchmarks/gpu.py                      # both networks, 50,000 MNIST-shaped samples
    python benchmarks/gpu.py --samples 2000 --epochs 2 --json out.json

Each system trains the same network (sigmoid, quadratic cost, SGD, η = 3) on the same data,
already in GPU memory, one epoch per call; the time of an epoch is the median over
``--epochs`` epochs after a first one that compiles (fastbp) or warms the caching allocator
(PyTorch). The data is real MNIST when ``FASTBP_DATA`` names its directory, else uniform random
pixels of MNIST's shape (the time of an epoch does not depend on the values). PyTorch is written
as its users write it: ``nn.Sequential``, ``loss.backward()``, ``torch.optim.SGD``, a
``randperm`` on the device for the shuffle. Without PyTorch or without its CUDA build the
comparison column is left out. Issue 7's targets: at batch 10 fastbp beats PyTorch; on the
wide network at batch 1000 it is within 2x of it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastbp import Network

CASES = [((784, 30, 10), 10), ((784, 1000, 10), 1000)]
ETA = 3.0


def load(samples: int) -> tuple[np.ndarray, np.ndarray, str]:
    directory = os.environ.get("FASTBP_DATA")
    if directory and Path(directory).is_dir():
        from fastbp.datasets import load_mnist

        (X, y), *_ = load_mnist(directory, split="book")
        return X[:samples], y[:samples], "MNIST"
    rng = np.random.default_rng(0)
    X = rng.random((samples, 784), dtype=np.float32)
    return X, rng.integers(0, 10, samples), "random MNIST-shaped data"


def fastbp_epochs(sizes, batch: int, X, y, epochs: int) -> list[float]:
    net = Network(list(sizes), seed=1, device="cuda")
    history = net.fit(X, y, epochs=epochs + 1, batch_size=batch, lr=ETA, seed=1)
    return history["seconds"][1:]


def torch_epochs(torch, sizes, batch: int, X, y, epochs: int) -> list[float]:
    device = torch.device("cuda")
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=ETA)
    X_d = torch.as_tensor(X, device=device)
    Y_d = torch.nn.functional.one_hot(torch.as_tensor(y, device=device), sizes[-1]).float()
    times = []
    for _ in range(epochs + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(X_d.shape[0], device=device)
        for i in range(0, X_d.shape[0], batch):
            rows = order[i : i + batch]
            out = model(X_d[rows])
            loss = 0.5 * ((out - Y_d[rows]) ** 2).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after a warm one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    X, y, description = load(args.samples)
    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    print(f"{len(X)} samples of {description}; median seconds per epoch of {args.epochs}")
    if torch is None:
        print("PyTorch with CUDA is not available here: its column is left out")
    else:
        print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}")
    results = []
    print(
        f"{'network':<16} {'batch':>6} {'fastbp-cuda':>12} {'torch-cuda':>11} {'torch/fastbp':>13}"
    )
    for sizes, batch in CASES:
        ours = statistics.median(fastbp_epochs(sizes, batch, X, y, args.epochs))
        theirs = None
        if torch is not None:
            theirs = statistics.median(torch_epochs(torch, sizes, batch, X, y, args.epochs))
        name = "-".join(map(str, sizes))
        ratio = f"{theirs / ours:13.2f}" if theirs else f"{'-':>13}"
        other = f"{theirs:11.4f}" if theirs else f"{'-':>11}"
        print(f"{name:<16} {batch:>6} {ours:12.4f} {other} {ratio}")
        results.append({"sizes": name, "batch": batch, "fastbp_cuda": ours, "torch_cuda": theirs})
    if args.json:
        args.json.write_text(json.dumps({"data": description, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
