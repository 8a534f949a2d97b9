"""``fastbp predict``: classes and probabilities of images (``.npy``, IDX or PNG)."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .common import _load_model, _optional


def _read_png(path: Path, n_in: int) -> np.ndarray:
    """A digit image as MNIST has them: 28x28 grey, white on black, values in [0, 1]."""
    Image = _optional("PIL.Image", "image", "reading an image")
    side = math.isqrt(n_in)
    if side * side != n_in:
        raise ValueError(f"{path}: an image needs a network with a square input, got {n_in}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                grey = image.convert("L")
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{path}: the image is too large to read ({exc})") from None
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
        from ..datasets import read_idx

        array = read_idx(path)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
        raise ValueError(f"{path}: expected numbers, got {getattr(array, 'dtype', array)}")
    if array.size == 0:
        raise ValueError(f"{path}: holds no input (shape {array.shape}); expected at least one")
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
