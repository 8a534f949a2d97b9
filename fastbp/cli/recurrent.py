"""``fastbp train --model rnn|lstm|gru``: a recurrent network on the adding problem or on
row-by-row MNIST, one line per epoch."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .. import __version__
from .common import CommandError

MODELS = ("mlp", "rnn", "lstm", "gru")


def _add_recurrent_options(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("recurrent networks (--model rnn, lstm or gru)")
    group.add_argument(
        "--model", choices=MODELS, default="mlp",
        help="mlp: the feed-forward Network (default); rnn, lstm, gru: a RecurrentNetwork on "
        "--data adding, mnist-rows or mini-rows",
    )  # fmt: skip
    group.add_argument("--hidden", default="128", help="units per recurrent layer: 128 or 64,64")
    group.add_argument("--steps", type=int, default=100, help="--data adding: steps T (100)")
    group.add_argument(
        "--sequences", type=int, default=10000, help="--data adding: training sequences (10000)"
    )
    group.add_argument("--bptt", type=int, help="truncated BPTT: cut the δ recursion every K steps")
    group.add_argument(
        "--forget-bias", type=float, default=1.0, help="--model lstm: initial forget-gate bias (1)"
    )
    group.add_argument(
        "--chrono", type=int, metavar="T",
        help="--model lstm or gru: the chrono initialisation for dependencies up to T steps",
    )  # fmt: skip


def _load(args: argparse.Namespace) -> tuple[str, Any, Any, Any, str]:
    from ..datasets import adding_problem, as_rows, load_mini_mnist, load_mnist

    data = "mini-rows" if args.data == "mini" else args.data
    if data == "adding":
        train = adding_problem(args.sequences, args.steps, seed=args.seed, dtype=args.dtype)
        test = adding_problem(1000, args.steps, seed=args.seed + 1, dtype=args.dtype)
        return f"adding problem, T={args.steps}", train, test, test, "linear"
    if data == "mnist-rows":
        train, val, test = load_mnist(args.data_dir, split="book", dtype=args.dtype,
                                      download=args.download)  # fmt: skip
        rows = [(as_rows(x), y) for x, y in (train, val, test)]
        return "row-by-row MNIST (the book's split)", *rows, "softmax"
    if data == "mini-rows":
        train, test = load_mini_mnist(dtype=args.dtype)
        rows = [(as_rows(x), y) for x, y in (train, test)]
        return "row-by-row bundled mini MNIST", rows[0], rows[1], rows[1], "softmax"
    raise CommandError(
        f"--data {args.data}: a recurrent --model trains on 'adding', 'mnist-rows' or 'mini-rows'"
    )


def _train_recurrent(args: argparse.Namespace) -> int:
    from ..recurrent import RecurrentNetwork

    out = sys.stderr if args.json else sys.stdout
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        raise CommandError(
            f"--hidden: expected widths such as 128 or 64,64, got {args.hidden!r}"
        ) from None
    description, (X, y), (X_val, y_val), (X_test, y_test), output = _load(args)
    n_out = 1 if output == "linear" else 10
    net = RecurrentNetwork(X.shape[2], hidden, n_out, cell=args.model, output=output,
                           bptt=args.bptt, forget_bias=args.forget_bias, chrono=args.chrono,
                           seed=args.seed, dtype=args.dtype)  # fmt: skip
    print(f"fastbp {__version__}: {net}", file=out)
    print(f"{description}: {len(X)} training and {len(X_val)} validation sequences", file=out)

    def report(net: Any, epoch: int, history: dict[str, list]) -> None:
        if args.json:
            return
        line = f"Epoch {epoch}: val cost {history['val_cost'][-1]:.4f}"
        if output == "softmax":
            line += f", accuracy {history['val_accuracy'][-1]:.2%}"
        print(f"{line} | {history['seconds'][-1]:.2f} s", flush=True)

    start = time.perf_counter()
    history = net.fit(
        X, y, epochs=args.epochs, batch_size=args.batch_size,
        lr=0.3 if args.lr is None else args.lr,
        validation_data=(X_val, y_val), optimizer=args.optimizer, momentum=args.momentum,
        lmbda=args.lmbda, l1=args.l1, clip_norm=args.clip_norm, clip_value=args.clip_value,
        schedule=args.schedule, early_stopping=args.early_stopping, callback=report,
        checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
    )  # fmt: skip
    total = time.perf_counter() - start
    if args.json:
        print(json.dumps(history, default=float))
    print(f"total {total:.1f} s (the first epoch includes compilation)", file=out)
    if X_test is not X_val and output == "softmax":
        accuracy = (net.predict(X_test) == y_test).mean()
        print(f"test accuracy: {accuracy:.2%} ({len(X_test)} sequences)", file=out)
    if args.plot:
        from .plots import _figure

        fig = _figure()(figsize=(7, 4), layout="constrained")
        ax = fig.subplots()
        norms = net.gradient_norms(X_val[:200], y_val[:200])[-1]
        ax.semilogy(range(1, len(norms) + 1), norms)
        ax.set(xlabel="step t", ylabel="‖∂C/∂hₜ‖", title=f"{net!r}"[:80])
        fig.savefig(args.plot)
        print(f"wrote ‖∂C/∂hₜ‖ per step (after training) to {args.plot}", file=out)
    if args.save:
        net.save(args.save)
        print(f"saved the network to {args.save}", file=out)
    return 0
