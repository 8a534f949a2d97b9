"""The command line: the parser of every command, the default command, and ``main``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import __version__
from .common import (
    _ERRORS,
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    SIGINT_SEEN,
    CommandError,
    _Parser,
)
from .data import _add_data_options
from .evaluate import _evaluate
from .export import _export
from .info import _info
from .predict import _predict
from .recurrent import _add_recurrent_options
from .search import _add_search_parser, _search
from .train import _betas, _name, _sizes, _train

COMMANDS = ("train", "evaluate", "predict", "export", "info", "search")


def build_parser() -> argparse.ArgumentParser:
    from ..costs import COSTS
    from ..network import ACTIVATIONS, INITIALISATIONS, OPTIMIZERS

    common = _Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    parser = _Parser(
        prog="fastbp",
        description="Train, evaluate and use fastbp networks (no command: 'fastbp train').",
        epilog="Errors print one line on stderr and exit with status 2 (130 on Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a network (default: 784-30-10 on the bundled mini MNIST, in seconds)",
        description="Train a network, one line per epoch: training cost, validation cost and "
        "accuracy, epoch time and samples/s.",
    )
    _add_data_options(train)
    net = train.add_argument_group("network")
    net.add_argument(
        "--sizes",
        type=_sizes,
        default=[784, 30, 10],
        help="layer widths, 784,30,10 (default). With --init gaussian (the default, the book's "
        "N(0, 1)) wider hidden layers start with saturated neurons and may stall at η = 3 "
        "(784,100,10: about half the images right after 6 epochs on mini, as the book warns); "
        "--init scaled avoids that",
    )
    net.add_argument(
        "--activation",
        default="sigmoid",
        help=f"hidden activation, or one per hidden layer comma-separated: "
        f"{', '.join(a for a in ACTIVATIONS if a != 'softmax')} (sigmoid)",
    )
    net.add_argument(
        "--output",
        type=_name,
        choices=list(ACTIVATIONS),
        help="output activation (default: softmax with --cost log_likelihood, else sigmoid)",
    )
    net.add_argument(
        "--cost",
        type=_name,
        choices=list(COSTS),
        default="quadratic",
        help="the cost (quadratic; log_likelihood implies a softmax output; hyphens or "
        "underscores)",
    )
    net.add_argument(
        "--init",
        type=_name,
        choices=list(INITIALISATIONS),
        default="gaussian",
        help="initial weights: gaussian N(0, 1) (the book's network.py; default), scaled "
        "N(0, 1/n_in) (network2.py), glorot, he",
    )
    net.add_argument(
        "--bias-init",
        type=_name,
        choices=["gaussian", "zeros"],
        help="initial biases (default: gaussian for the gaussian and scaled inits, else zeros)",
    )
    net.add_argument(
        "--alpha", type=float, help="the leaky ReLU's slope below 0 (0.01) or the ELU's scale (1)"
    )
    net.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="floating type of the parameters and computations (float32)",
    )
    net.add_argument("--seed", type=int, default=1, help="seed of the weights and order (1)")
    fit = train.add_argument_group("training")
    fit.add_argument(
        "--optimizer",
        type=_name,
        choices=list(OPTIMIZERS),
        default="sgd",
        help="the step rule (sgd)",
    )
    fit.add_argument(
        "--lr",
        "--eta",
        dest="lr",
        type=float,
        help="learning rate η (3.0 for --model mlp, 0.3 for a recurrent --model); --eta is the "
        "same option, by the book's name",
    )
    fit.add_argument(
        "--epochs",
        type=int,
        default=5,
        help="passes over the training data (5; 0 only scores the initial network)",
    )
    fit.add_argument("--batch-size", type=int, default=10, help="mini-batch size (10)")
    fit.add_argument("--lmbda", type=float, default=0.0, help="L2 regularisation λ (0)")
    fit.add_argument("--l1", type=float, default=0.0, help="L1 regularisation (0)")
    fit.add_argument("--dropout", type=float, default=0.0, help="hidden dropout rate (0)")
    fit.add_argument("--momentum", type=float, default=0.9, help="μ of momentum/nesterov (0.9)")
    fit.add_argument(
        "--betas",
        type=_betas,
        default=(0.9, 0.999),
        metavar="B1,B2",
        help="Adam's β₁,β₂ (0.9,0.999)",
    )
    fit.add_argument("--eps", type=float, default=1e-8, help="ε of Adam and RMSprop (1e-8)")
    fit.add_argument("--rho", type=float, default=0.99, help="ρ of RMSprop (0.99)")
    fit.add_argument(
        "--shuffle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="visit the samples in a new random order each epoch (on)",
    )
    fit.add_argument("--clip-norm", type=float, help="clip each gradient to this L2 norm")
    fit.add_argument("--clip-value", type=float, help="clip each gradient component")
    fit.add_argument(
        "--schedule",
        choices=["constant", "halve"],
        default="constant",
        help="constant η, or halve it after --patience epochs without a better validation "
        "accuracy, stopping after --max-halvings halvings (constant)",
    )
    fit.add_argument(
        "--patience", type=int, default=10, metavar="N", help="epochs without improvement "
        "before --schedule halve halves η (10)",
    )  # fmt: skip
    fit.add_argument(
        "--max-halvings", type=int, default=7, metavar="N", help="--schedule halve stops "
        "after N halvings (7)",
    )  # fmt: skip
    fit.add_argument(
        "--early-stopping",
        type=int,
        metavar="N",
        help="stop after N epochs without a better validation accuracy, keeping the best "
        "epoch's parameters",
    )
    fit.add_argument("--threads", type=int, help="Numba threads (default: Numba's setting)")
    fit.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="train on the CPU or on an NVIDIA GPU (cuda: pip install 'fastbp[cuda]')",
    )
    fit.add_argument(
        "--batch-progress",
        action="store_true",
        help="a progress bar over each epoch's mini-batches too (tqdm, on a terminal; the "
        "epoch runs as up to 50 compiled calls)",
    )
    fit.add_argument(
        "--monitor-training",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the training data after each epoch, for the line's train cost (on; "
        "--no-monitor-training saves a forward pass over it per epoch)",
    )
    fit.add_argument(
        "--monitor-gradients",
        action="store_true",
        help="per-layer gradient norms each epoch (in the line and --plot); warns of "
        "vanishing or exploding gradients",
    )
    fit.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    fit.add_argument(
        "--residual",
        action="store_true",
        help="residual connections in every hidden layer after the first (projected where the "
        "widths differ)",
    )
    fit.add_argument(
        "--pretrain",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="greedy layer-wise pre-training of the hidden layers as autoencoders first (0)",
    )
    _add_recurrent_options(train)
    outputs = train.add_argument_group("output")
    outputs.add_argument("--save", metavar="FILE", help="save the trained network (net.save)")
    outputs.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="save the whole training state to FILE after every --checkpoint-every epochs "
        "(and on Ctrl-C)",
    )
    outputs.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="K",
        help="epochs between checkpoints (1)",
    )
    outputs.add_argument(
        "--resume",
        metavar="FILE",
        help="continue from a checkpoint of a run with the same options, up to --epochs",
    )
    outputs.add_argument("--plot", metavar="FILE.png", help="plot cost and accuracy per epoch")
    outputs.add_argument(
        "--json", action="store_true", help="print the history as JSON instead of the lines"
    )

    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="accuracy, cost and confusion matrix of a saved network",
        description="Accuracy, cost and confusion matrix of a saved network on the test data.",
    )
    evaluate.add_argument("model", metavar="MODEL", help="a file written by --save / net.save")
    _add_data_options(evaluate)
    evaluate.add_argument("--plot", metavar="FILE.png", help="draw the confusion matrix")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="classify images with a saved network",
        description="Classify INPUT: a .npy file (one image of 784 values, or a batch), an "
        "IDX file, or a PNG of a digit (needs Pillow; scaled to 28x28 grey, inverted if the "
        "background is light).",
    )
    predict.add_argument("model", metavar="MODEL", help="a file written by --save / net.save")
    predict.add_argument("input", metavar="INPUT", help="a .npy, IDX or PNG file")
    predict.add_argument("--json", action="store_true", help="print the results as JSON")

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write a saved network as an ONNX model",
        description="Write MODEL's prediction path as an ONNX model (needs "
        "pip install 'fastbp[onnx]'): input 'input' of shape (N, inputs), outputs 'output' "
        "(the output layer's activations) and 'label' (the predicted class).",
    )
    export.add_argument("model", metavar="MODEL", help="a file written by --save / net.save")
    export.add_argument("output", metavar="OUTPUT.onnx", help="the ONNX file to write")

    commands.add_parser(
        "info",
        parents=[common],
        help="versions, threads, the Numba cache and the data directory",
        description="Versions, threads, the Numba cache and the data directory.",
    )
    _add_search_parser(commands, common)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """``fastbp [--debug] [train options]`` means ``fastbp [--debug] train [options]``."""
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    if i == len(argv) or (argv[i] not in COMMANDS and argv[i] not in ("-h", "--help", "--version")):
        return [*argv[:i], "train", *argv[i:]]
    return argv


def _discard_closed_streams() -> None:
    """A process started with stdout or stderr closed (``fastbp train >&-``) has None there:
    what would go to it is discarded, as ``print`` itself does, and the command runs on."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))


def _quiet_on_closed_pipe() -> int:
    """After a write to a pipe whose reader has gone (``fastbp predict ... | head -1``):
    nothing more is written there, and the status is a killed-by-SIGPIPE tool's."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_BROKEN_PIPE


@contextmanager
def _interrupts_noticed() -> Iterator[list[bool]]:
    """Ctrl-C raises ``KeyboardInterrupt`` as usual and is also recorded, so that one that a
    library swallowed (llvmlite during a compilation prints "Exception ignored" and goes on)
    still ends the command with status 130. Only in the main thread, where signals arrive."""
    seen = SIGINT_SEEN
    seen.clear()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # SIGINT ignored or handled by the caller
        yield seen
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    _discard_closed_streams()
    argv = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv
    try:
        with _interrupts_noticed() as interrupted:
            status = _main(argv)
            if interrupted:
                raise KeyboardInterrupt
            sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _quiet_on_closed_pipe()
    except KeyboardInterrupt:
        if debug:
            raise
        print("fastbp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, *_ERRORS) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"fastbp: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        run = {
            "train": _train, "evaluate": _evaluate, "predict": _predict, "export": _export,
            "info": _info, "search": _search,
        }  # fmt: skip
        return run[args.command](args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
