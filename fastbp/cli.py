"""The ``fastbp`` command (also ``python -m fastbp``): train, evaluate, predict, info.

``fastbp`` with no arguments is ``fastbp train``: ``Network([784, 30, 10])`` trained for five
epochs by mini-batch SGD (batch 10, η = 3.0) on the bundled mini MNIST, one line per epoch.

Data (``--data``): ``mini`` (the bundled set, no download; the default), ``mnist`` (the full
set in the book's 50,000 / 10,000 / 10,000 split, read from ``--data-dir``, else
``$FASTBP_DATA``, else the per-user cache; see ``fastbp.datasets.load_mnist``) or the path of
a NumPy ``.npz`` archive with arrays ``X_train``, ``y_train``, ``X_test``, ``y_test`` and
optionally ``X_val``, ``y_val``: images as ``(n, 784)`` or ``(n, 28, 28)`` floats in [0, 1]
(or ``uint8`` 0-255, which are scaled), labels as integers.

Errors (a bad option or value, a missing or corrupt file, training that diverges) print one
line, ``fastbp: error: ...``, on stderr and exit with status 2; ``--debug`` shows the
traceback instead. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__

#: Exit status of every error (bad usage and failures at run time alike), as argparse's.
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
COMMANDS = ("train", "evaluate", "predict", "info")
_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)  # FileNotFoundError is an OSError
#: ``fastbp train``'s option for each parameter of ``Network``/``fit`` that an error may name.
_OPTIONS = {
    "sizes": "--sizes", "activation": "--activation", "output": "--output", "cost": "--cost",
    "init": "--init", "dtype": "--dtype", "threads": "--threads", "lr": "--eta",
    "device": "--device",
    "epochs": "--epochs", "batch_size": "--batch-size", "lmbda": "--lmbda", "l1": "--l1",
    "dropout": "--dropout", "optimizer": "--optimizer", "momentum": "--momentum",
    "clip_norm": "--clip-norm", "clip_value": "--clip-value", "schedule": "--schedule",
    "early_stopping": "--early-stopping", "X": "the training images", "y": "the training labels",
    "validation_data": "the validation data",
}  # fmt: skip


class CommandError(Exception):
    """A failure the command reports in one line (a missing optional package, bad input)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (``fastbp: error: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f"; see '{self.prog} --help'"
        self.exit(EXIT_ERROR, f"fastbp: error: {message}{hint}\n")


# --- optional packages ---------------------------------------------------------------------


def _optional(module: str, extra: str, purpose: str) -> Any:
    """Import an optional package, or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = "Pillow" if module.startswith("PIL") else module
        raise CommandError(
            f"{purpose} needs {package}, which is not installed; "
            f"install it with: python -m pip install 'fastbp[{extra}]'"
        ) from None


def _figure() -> Any:
    """A matplotlib ``Figure`` drawn with Agg (no GUI, no pyplot state)."""
    _optional("matplotlib", "plot", "--plot")
    from matplotlib.figure import Figure

    return Figure


# --- data ----------------------------------------------------------------------------------


def _images(X: Any, name: str, dtype: np.dtype) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected images of shape (n, 784) or (n, 28, 28), got {X.shape}")
    if np.issubdtype(X.dtype, np.integer):
        return np.ascontiguousarray(X, dtype=dtype) / dtype.type(255)
    return np.ascontiguousarray(X, dtype=dtype)


def _load_npz(path: Path, dtype: np.dtype) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"--data {path}: no such file (expected 'mini', 'mnist' or the path of an .npz "
            "archive with X_train, y_train, X_test, y_test)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"--data {path}: not a readable .npz archive ({exc})") from None
    data = {}
    for part in ("train", "val", "test"):
        x, y = f"X_{part}", f"y_{part}"
        if (x in arrays) != (y in arrays):
            raise ValueError(f"--data {path}: {x} and {y} must come together")
        if x in arrays:
            data[part] = (_images(arrays[x], f"{path}: {x}", dtype), arrays[y])
    if "train" not in data or "test" not in data:
        raise ValueError(
            f"--data {path}: expected arrays X_train, y_train, X_test, y_test "
            f"(and optionally X_val, y_val), found {sorted(arrays)}"
        )
    return data


def _load_data(args: argparse.Namespace, dtype: Any) -> tuple[str, dict[str, Any]]:
    """``(description, {"train": (X, y), "val": ..., "test": ...})`` for ``--data``."""
    from .datasets import load_mini_mnist, load_mnist

    dtype = np.dtype(dtype)
    if args.data == "mini":
        train, test = load_mini_mnist(dtype=dtype)
        return "bundled mini MNIST", {"train": train, "val": test, "test": test}
    if args.data == "mnist":
        train, val, test = load_mnist(
            args.data_dir, split="book", dtype=dtype, download=getattr(args, "download", False)
        )
        return "MNIST (the book's split)", {"train": train, "val": val, "test": test}
    path = Path(args.data).expanduser()
    data = _load_npz(path, dtype)
    data.setdefault("val", data["test"])
    return str(path), data


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="mini",
        metavar="{mini,mnist,PATH}",
        help="'mini': the bundled mini MNIST (default); 'mnist': full MNIST, the book's split; "
        "PATH: an .npz with X_train, y_train, X_test, y_test (optionally X_val, y_val)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory of the MNIST files for --data mnist (default: $FASTBP_DATA, else "
        "the per-user cache)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="with --data mnist: download missing files from public mirrors into that directory "
        "(SHA-256 checked)",
    )


# --- train ---------------------------------------------------------------------------------


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


def _epoch_line(history: dict[str, list], i: int, n_train: int, n_val: int) -> str:
    seconds = history["seconds"][i]
    parts = [f"Epoch {history['epoch'][i]}:"]
    if "train_cost" in history:
        parts.append(f"train cost {history['train_cost'][i]:.4f} |")
    if "val_cost" in history:
        correct = history["val_correct"][i]
        parts.append(
            f"val cost {history['val_cost'][i]:.4f}, {correct} / {n_val} ({correct / n_val:.2%}) |"
        )
    parts.append(f"{seconds:.3f} s, {n_train / seconds:,.0f} samples/s")
    if "grad_norm_b" in history:
        speeds = ", ".join(f"{v:.2g}" for v in history["grad_norm_b"][i])
        parts.append(f"| ‖∂C/∂b‖ per layer {speeds}")
    return " ".join(parts)


def _progress(epochs: int) -> Any:
    """A tqdm bar over the epochs when stderr is a terminal and tqdm is installed, else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)


def plot_history(history: dict[str, list], path: str | os.PathLike[str], title: str) -> None:
    """Cost (left) and accuracy (right) per epoch, training and validation, as an image."""
    Figure = _figure()
    norms = history.get("grad_norm_b")
    fig = Figure(figsize=(15 if norms else 10, 4), layout="constrained")
    axes = fig.subplots(1, 3 if norms else 2)
    cost_ax, acc_ax = axes[0], axes[1]
    if norms:
        norm_ax = axes[2]
        for layer, values in enumerate(zip(*norms, strict=True), start=1):
            norm_ax.semilogy(history["epoch"], values, "o-", markersize=4, label=f"layer {layer}")
        norm_ax.set_xlabel("epoch")
        norm_ax.set_ylabel("‖∂C/∂b‖")
        norm_ax.set_title("speed of learning per layer")
        norm_ax.xaxis.get_major_locator().set_params(integer=True)
        norm_ax.grid(True, alpha=0.3)
        norm_ax.legend(fontsize="small")
    epochs = history["epoch"]
    for prefix, label, style in (("train", "training", "o-"), ("val", "validation", "s-")):
        if f"{prefix}_cost" in history:
            cost_ax.plot(epochs, history[f"{prefix}_cost"], style, label=label, markersize=4)
            accuracy = [100 * a for a in history[f"{prefix}_accuracy"]]
            acc_ax.plot(epochs, accuracy, style, label=label, markersize=4)
    for ax, ylabel in ((cost_ax, "cost"), (acc_ax, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend()
    cost_ax.set_title("cost per epoch")
    acc_ax.set_title("accuracy per epoch")
    fig.suptitle(title, fontsize="medium")
    fig.savefig(path, dpi=100)


def _train(args: argparse.Namespace) -> int:
    try:
        return _run_training(args)
    except (ValueError, TypeError) as exc:  # name the option, not the parameter of fit
        name, sep, rest = str(exc).partition(":")
        option = _OPTIONS.get(name.split("[")[0]) if sep else None
        if option is None:
            raise
        raise type(exc)(f"{option}{name[len(name.split('[')[0]) :]}:{rest}") from exc


def _run_training(args: argparse.Namespace) -> int:
    from .network import Network

    out = sys.stderr if args.json else sys.stdout
    if args.plot:
        _figure()  # a missing matplotlib fails now, not after the training
    description, data = _load_data(args, args.dtype)
    (X, y), (X_val, y_val) = data["train"], data["val"]
    activation = args.activation.split(",") if "," in args.activation else args.activation
    net = Network(
        args.sizes,
        activation=activation,
        output=args.output,
        cost=args.cost,
        init=args.init,
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
            lr=args.eta,
            validation_data=(X_val, y_val),
            lmbda=args.lmbda,
            l1=args.l1,
            dropout=args.dropout,
            optimizer=args.optimizer,
            momentum=args.momentum,
            clip_norm=args.clip_norm,
            clip_value=args.clip_value,
            schedule=args.schedule,
            early_stopping=args.early_stopping,
            monitor_training=True,
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


# --- evaluate ------------------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``m[i, j]``: how many samples of class ``i`` were predicted as ``j``."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def _format_confusion(m: np.ndarray) -> str:
    width = max(len(str(m.max())), len(str(m.shape[0] - 1)), 3)
    head = "true\\pred " + " ".join(f"{j:>{width}}" for j in range(m.shape[1]))
    rows = [f"{i:>9} " + " ".join(f"{v:>{width}}" for v in row) for i, row in enumerate(m)]
    return "\n".join([head, *rows])


def plot_confusion(m: np.ndarray, path: str | os.PathLike[str], title: str) -> None:
    """The confusion matrix as a heat map with the counts written in."""
    Figure = _figure()
    n = m.shape[0]
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    threshold = m.max() / 2 if m.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if m[i, j] > threshold else "black"
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize="medium")
    fig.savefig(path, dpi=100)


def _load_model(path: str) -> Any:
    from .network import Network

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return Network.load(path)


def _evaluate(args: argparse.Namespace) -> int:
    if args.plot:
        _figure()
    net = _load_model(args.model)
    description, data = _load_data(args, net.dtype)
    X, y = data["test"]
    predicted = net.predict(X)
    labels = np.asarray(y)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    n_classes = max(net.sizes[-1], 2)
    accuracy = float(np.mean(predicted == labels))
    cost = net.total_cost(X, y)
    m = confusion_matrix(labels, predicted, n_classes)
    if args.json:
        result = {"accuracy": accuracy, "cost": cost, "n": len(X), "confusion": m.tolist()}
        print(json.dumps(result))
    else:
        print(f"{net!r}")
        print(f"{description}: {len(X)} test images")
        print(f"accuracy: {int(np.sum(predicted == labels))} / {len(X)} ({accuracy:.2%})")
        print(f"cost ({net.cost.name}): {cost:.4f}")
        print("confusion matrix (rows: true class, columns: predicted class):")
        print(_format_confusion(m))
    if args.plot:
        plot_confusion(m, args.plot, f"{Path(args.model).name} on {description}: {accuracy:.2%}")
        print(f"wrote the confusion matrix to {args.plot}", file=sys.stderr if args.json else None)
    return 0


# --- predict -------------------------------------------------------------------------------


def _read_png(path: Path, n_in: int) -> np.ndarray:
    """A digit image as MNIST has them: 28x28 grey, white on black, values in [0, 1]."""
    Image = _optional("PIL.Image", "image", "reading an image")
    side = math.isqrt(n_in)
    if side * side != n_in:
        raise ValueError(f"{path}: an image needs a network with a square input, got {n_in}")
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read") from None
    if grey.size != (side, side):
        grey = grey.resize((side, side), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 0.5:  # dark digit on a light background: MNIST is white on black
        pixels = 1.0 - pixels
    return pixels.reshape(1, -1)


def _read_input(path_text: str, n_in: int) -> np.ndarray:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy file ({exc})") from None
    elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
        return _read_png(path, n_in)
    else:  # IDX, gzipped or not (e.g. t10k-images-idx3-ubyte.gz)
        from .datasets import read_idx

        array = read_idx(path)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
        raise ValueError(f"{path}: expected numbers, got {getattr(array, 'dtype', array)}")
    if array.size == n_in:
        array = array.reshape(1, n_in)
    elif array.ndim >= 2 and array[0].size == n_in:
        array = array.reshape(array.shape[0], n_in)
    else:
        raise ValueError(
            f"{path}: expected one input of {n_in} values or a batch (n, {n_in}), "
            f"got shape {array.shape}"
        )
    if array.dtype.kind in "ui":  # raw pixels 0-255
        return array / 255.0
    return array


def _probabilities(net: Any, outputs: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Outputs as probabilities for display, and a note when they had to be normalised."""
    output = net.activations[-1]
    if output == "softmax":
        return outputs, None
    if outputs.shape[1] == 1:
        return outputs, f"the output layer is {output}; shown is its single output"
    if np.all(outputs >= 0) and np.all(outputs.sum(axis=1) > 0):
        note = f"the output layer is {output}, not softmax: outputs normalised to sum to 1"
        return outputs / outputs.sum(axis=1, keepdims=True), note
    e = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    note = f"the output layer is {output}, not softmax: shown is the softmax of the outputs"
    return e / e.sum(axis=1, keepdims=True), note


def _predict(args: argparse.Namespace) -> int:
    net = _load_model(args.model)
    X = _read_input(args.input, net.sizes[0])
    outputs = np.asarray(net.feedforward(X), dtype=np.float64)
    classes = net.predict(X)
    probabilities, note = _probabilities(net, outputs)
    if args.json:
        result = {
            "classes": classes.tolist(),
            "probabilities": probabilities.tolist(),
            "outputs": outputs.tolist(),
            "note": note,
        }
        print(json.dumps(result))
        return 0
    for i, (k, p) in enumerate(zip(classes, probabilities, strict=True)):
        prefix = f"[{i}] " if len(X) > 1 else ""
        print(f"{prefix}class {k}")
        print(f"{prefix}probabilities: " + "  ".join(f"{j}: {v:.4f}" for j, v in enumerate(p)))
    if note:
        print(f"({note})")
    return 0


# --- info ----------------------------------------------------------------------------------


def _numba_cache_dir() -> str:
    from . import _config, _kernels

    if not _config.CACHE:
        return "off (FASTBP_CACHE=0)"
    try:  # where Numba's locator really puts fastbp's kernels
        return str(_kernels.feedforward._cache._cache_path)
    except AttributeError:
        import numba

        return numba.config.CACHE_DIR or str(Path(_kernels.__file__).parent / "__pycache__")


def _info(args: argparse.Namespace) -> int:
    import numba

    from . import _threads, datasets
    from .network import Network

    Network([1, 1]).predict(np.zeros((1, 1)))  # starts Numba's threading layer
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = f"not started (configured: {numba.config.THREADING_LAYER})"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # older NumPy or an unusual build
        blas = "unknown"
    try:
        scipy = importlib.import_module("scipy").__version__
    except ImportError:
        scipy = "not installed"
    directory = datasets.data_dir()
    found = all(
        (directory / f"{name}.gz").is_file() or (directory / name).is_file()
        for name in datasets.MNIST_FILES
    )
    rows = [
        ("fastbp", f"{__version__} ({Path(__file__).parent})"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("NumPy", f"{np.__version__} (BLAS: {blas}; fastbp itself calls no BLAS)"),
        ("Numba", numba.__version__),
        ("SciPy", scipy),
        ("platform", f"{platform.platform()}, {os.cpu_count()} CPUs"),
        ("threading layer", layer),
        ("threads", _threads.describe()),
        ("Numba cache", _numba_cache_dir()),
        ("CUDA", _cuda_status()),
        ("MNIST data dir", f"{directory} ({'files found' if found else 'files not found'})"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


def _cuda_status() -> str:
    """What ``--device cuda`` would run on."""
    import numba

    try:
        from numba import cuda
    except ImportError:
        return "not installed (pip install 'fastbp[cuda]')"
    if numba.config.ENABLE_CUDASIM:
        return "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    if not cuda.is_available():
        return "no usable NVIDIA GPU"
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    return f"{name} (compute capability {'.'.join(map(str, device.compute_capability))})"


# --- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from .costs import COSTS
    from .network import ACTIVATIONS, INITIALISATIONS, OPTIMIZERS

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
        run = {"train": _train, "evaluate": _evaluate, "predict": _predict, "info": _info}
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
