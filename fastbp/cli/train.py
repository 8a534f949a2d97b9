"""``fastbp train``: a network trained and reported one line per epoch."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import __version__
from .._storage import output_target
from ..progress import epoch_line, progress_bar
from .common import SIGINT_SEEN, CommandError
from .data import _load_data
from .plots import _figure, plot_history

#: ``fastbp train``'s option for each parameter of ``Network``/``fit`` that an error may name.
_OPTIONS = {
    "sizes": "--sizes", "activation": "--activation", "output": "--output", "cost": "--cost",
    "init": "--init", "dtype": "--dtype", "threads": "--threads", "lr": "--lr",
    "bias_init": "--bias-init", "alpha": "--alpha", "betas": "--betas", "eps": "--eps",
    "rho": "--rho", "patience": "--patience", "max_halvings": "--max-halvings",
    "device": "--device",
    "epochs": "--epochs", "batch_size": "--batch-size", "lmbda": "--lmbda", "l1": "--l1",
    "dropout": "--dropout", "optimizer": "--optimizer", "momentum": "--momentum",
    "clip_norm": "--clip-norm", "clip_value": "--clip-value", "schedule": "--schedule",
    "early_stopping": "--early-stopping", "X": "the training images", "y": "the training labels",
    "validation_data": "the validation data", "seed": "--seed", "checkpoint": "--checkpoint",
    "checkpoint_every": "--checkpoint-every", "resume": "--resume",
    "hidden": "--hidden", "bptt": "--bptt", "cell": "--model", "forget_bias": "--forget-bias",
    "chrono": "--chrono",
}  # fmt: skip


#: The parameters of ``Network`` and ``fit`` that have no ``fastbp train`` option, and why.
NO_OPTION = {
    "X": "the training data is --data's",
    "y": "the training labels are --data's",
    "validation_data": "--data's validation part (X_val, y_val), else its test part",
    "eta": "--eta is --lr by the book's name",
    "seed": "--seed seeds the weights and the order of the samples alike",
    "callback": "the command's callback prints its per-epoch line",
    "verbose": "the command prints its per-epoch line (--json: the history instead)",
}


def _name(text: str) -> str:
    """A toolbox name with hyphens or underscores: ``leaky-relu`` is ``leaky_relu``."""
    return text.replace("-", "_")


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two comma-separated numbers such as 0.9,0.999, got {text!r}"
        ) from None
    return b1, b2


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 784,30,10, got {text!r}"
        ) from None
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two layer sizes, got {text!r}")
    return sizes


#: The per-epoch line and the bar, shared with ``fit(verbose=True)``.
_epoch_line, _progress = epoch_line, progress_bar


def _train(args: argparse.Namespace) -> int:
    try:
        return _run_training(args)
    except (ValueError, TypeError, OSError) as exc:  # name the option, not fit's parameter
        name, sep, rest = str(exc).partition(":")
        option = _OPTIONS.get(name.split("[")[0]) if sep else None
        if option is None:
            raise
        raise type(exc)(f"{option}{name[len(name.split('[')[0]) :]}:{rest}") from exc


def _run_training(args: argparse.Namespace) -> int:
    from ..network import Network

    if getattr(args, "model", "mlp") != "mlp":
        from .recurrent import _train_recurrent

        return _train_recurrent(args)

    out = sys.stderr if args.json else sys.stdout
    if args.plot:
        _figure()  # a missing matplotlib fails now, not after the training
    # Every path the run writes is checked now, so that a typo does not lose a trained network.
    for option, path in (("--save", args.save), ("--plot", args.plot)):
        if path is not None:
            output_target(path, option)
    if args.pretrain < 0:
        raise ValueError(
            f"--pretrain: expected a non-negative number of epochs, got {args.pretrain}"
        )
    if args.resume is not None and not Path(args.resume).expanduser().exists():
        # Nothing to resume yet (a run killed before its first checkpoint): start afresh, so
        # that the same command can simply be run again after any interruption.
        print(f"fastbp: no checkpoint {args.resume} yet: starting from scratch", file=sys.stderr)
        args.resume = None
    description, data = _load_data(args, args.dtype)
    (X, y), (X_val, y_val) = data["train"], data["val"]
    activation = args.activation.split(",") if "," in args.activation else args.activation
    net = Network(
        args.sizes,
        activation=activation,
        output=args.output,
        cost=args.cost,
        init=args.init,
        bias_init=args.bias_init,
        alpha=args.alpha,
        seed=args.seed,
        dtype=args.dtype,
        threads=args.threads,
        batch_norm=args.batch_norm,
        residual=args.residual,
    )
    try:
        net.to(args.device)
    except RuntimeError as exc:  # no GPU or no numba-cuda: say what is missing, in one line
        raise CommandError(f"--device {str(exc).partition(': ')[2]}") from exc
    print(f"fastbp {__version__}: {net}", file=out)
    print(f"{description}: {len(X)} training and {len(X_val)} validation images", file=out)

    if args.pretrain and not args.resume:
        for l, h in enumerate(net.pretrain(X, epochs=args.pretrain, seed=args.seed), start=1):
            costs = ", ".join(f"{c:.4f}" for c in h["train_cost"])
            print(f"pre-trained hidden layer {l}: reconstruction cost {costs}", file=out)
    bar = _progress(args.epochs)
    write = bar.write if bar is not None else print

    def report(net: Network, epoch: int, history: dict[str, list]) -> None:
        if SIGINT_SEEN:  # a Ctrl-C swallowed during a compilation: stop now
            raise KeyboardInterrupt
        if not args.json:
            write(_epoch_line(history, -1, len(X), len(X_val)))
            sys.stdout.flush()
        if bar is not None:
            bar.set_postfix(val_accuracy=f"{history['val_accuracy'][-1]:.2%}", refresh=False)
            bar.update(1)

    start = time.perf_counter()
    try:
        history = net.fit(
            X,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=3.0 if args.lr is None else args.lr,
            validation_data=(X_val, y_val),
            lmbda=args.lmbda,
            l1=args.l1,
            dropout=args.dropout,
            optimizer=args.optimizer,
            momentum=args.momentum,
            betas=args.betas,
            eps=args.eps,
            rho=args.rho,
            shuffle=args.shuffle,
            patience=args.patience,
            max_halvings=args.max_halvings,
            batch_progress=args.batch_progress,
            clip_norm=args.clip_norm,
            clip_value=args.clip_value,
            schedule=args.schedule,
            early_stopping=args.early_stopping,
            monitor_training=args.monitor_training,
            monitor_gradients=args.monitor_gradients,
            callback=report,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
        )
    finally:
        if bar is not None:
            bar.close()
    total = time.perf_counter() - start
    if args.json:
        print(json.dumps(history, default=float))
    if not history["epoch"]:  # --epochs 0: say what was done
        print(
            f"no epoch trained (--epochs {args.epochs}): the network as initialised classifies "
            f"{net.accuracy(X_val, y_val):.2%} of the {len(X_val)} validation images",
            file=out,
        )
    else:
        print(f"total {total:.1f} s (the first epoch includes compilation)", file=out)
    if data["test"] is not data["val"]:
        X_test, y_test = data["test"]
        print(f"test accuracy: {net.accuracy(X_test, y_test):.2%} ({len(X_test)} images)", file=out)
    if args.save:
        net.save(args.save)
        print(f"saved the network to {args.save}", file=out)
    if args.plot:
        plot_history(history, args.plot, f"{net!r}\non {description}")
        print(f"wrote the training curves to {args.plot}", file=out)
    return 0
