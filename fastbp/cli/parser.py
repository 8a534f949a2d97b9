"""The command line: the parser of every command, the default command, and ``main``."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from .common import _ERRORS, EXIT_ERROR, EXIT_INTERRUPTED, CommandError, _Parser
from .data import _add_data_options
from .evaluate import _evaluate
from .info import _info
from .predict import _predict
from .search import _add_search_parser, _search
from .train import _sizes, _train

COMMANDS = ("train", "evaluate", "predict", "info", "search")


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
    net.add_argument("--sizes", type=_sizes, default=[784, 30, 10], help="784,30,10 (default)")
    net.add_argument(
        "--activation",
        default="sigmoid",
        help=f"hidden activation, or one per hidden layer comma-separated: "
        f"{', '.join(a for a in ACTIVATIONS if a != 'softmax')} (sigmoid)",
    )
    net.add_argument("--output", choices=list(ACTIVATIONS), help="output activation")
    net.add_argument(
        "--cost",
        type=lambda s: s.replace("-", "_"),
        choices=list(COSTS),
        default="quadratic",
        help="(quadratic; log_likelihood implies a softmax output)",
    )
    net.add_argument("--init", choices=list(INITIALISATIONS), default="gaussian")
    net.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    net.add_argument("--seed", type=int, default=1, help="seed of the weights and order (1)")
    fit = train.add_argument_group("training")
    fit.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    fit.add_argument("--eta", type=float, default=3.0, help="learning rate η (3.0)")
    fit.add_argument("--epochs", type=int, default=5, help="(5)")
    fit.add_argument("--batch-size", type=int, default=10, help="mini-batch size (10)")
    fit.add_argument("--lmbda", type=float, default=0.0, help="L2 regularisation λ (0)")
    fit.add_argument("--l1", type=float, default=0.0, help="L1 regularisation (0)")
    fit.add_argument("--dropout", type=float, default=0.0, help="hidden dropout rate (0)")
    fit.add_argument("--momentum", type=float, default=0.9, help="μ of momentum/nesterov (0.9)")
    fit.add_argument("--clip-norm", type=float, help="clip each gradient to this L2 norm")
    fit.add_argument("--clip-value", type=float, help="clip each gradient component")
    fit.add_argument("--schedule", choices=["constant", "halve"], default="constant")
    fit.add_argument("--early-stopping", type=int, metavar="N", help="stop after N stale epochs")
    fit.add_argument("--threads", type=int, help="Numba threads (default: Numba's setting)")
    fit.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="train on the CPU or on an NVIDIA GPU (cuda: pip install 'fastbp[cuda]')",
    )
    fit.add_argument(
        "--monitor-gradients",
        action="store_true",
        help="per-layer gradient norms each epoch (in the line and --plot); warns of "
        "vanishing or exploding gradients",
    )
    fit.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    fit.add_argument(
        "--residual", action="store_true", help="residual connections between equal widths"
    )
    fit.add_argument(
        "--pretrain",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="greedy layer-wise pre-training of the hidden layers as autoencoders first (0)",
    )
    outputs = train.add_argument_group("output")
    outputs.add_argument("--save", metavar="FILE", help="save the trained network (net.save)")
    outputs.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="save the whole training state to FILE after every --checkpoint-every epochs "
        "(and on Ctrl-C)",
    )
    outputs.add_argument("--checkpoint-every", type=int, default=1, metavar="K", help="(1)")
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


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        run = {
            "train": _train,
            "evaluate": _evaluate,
            "predict": _predict,
            "info": _info,
            "search": _search,
        }
        return run[args.command](args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
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
