"""``--data``: the bundled mini MNIST, full MNIST, or an ``.npz`` archive; its options."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def _images(X: Any, name: str, dtype: np.dtype) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected images of shape (n, 784) or (n, 28, 28), got {X.shape}")
    if X.dtype.kind not in "uif":
        raise ValueError(f"{name}: expected real numbers, got an array of {X.dtype}")
    from .._checks import _scaled_pixels

    X = _scaled_pixels(X, dtype)  # uint8: x / 255; any other type as it is
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name}: contains NaN or infinity; expected finite values")
    largest = float(np.abs(X).max()) if X.size else 0.0
    if largest > float(np.finfo(dtype).max):
        raise ValueError(
            f"{name}: a value of magnitude {largest:g} overflows {dtype.name}; expected images "
            "in [0, 1]"
        )
    return np.ascontiguousarray(X, dtype=dtype)


#: What ``--data PATH`` reads, for the messages that refuse other files.
_NPZ_FORMAT = (
    "an .npz archive (numpy.savez) with arrays X_train, y_train, X_test, y_test (or Keras's "
    "x_train, y_train, x_test, y_test; optionally X_val, y_val): images as (n, 784) or "
    "(n, 28, 28) floats in [0, 1] or uint8 0-255, labels as integers"
)


def _load_npz(path: Path, dtype: np.dtype) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"--data {path}: no such file (expected 'mini', 'mnist' or the path of {_NPZ_FORMAT})"
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        kind = f"a {path.suffix[1:].upper()} file" if path.suffix else "not an .npz archive"
        raise ValueError(
            f"--data {path}: {kind} cannot be read; --data takes 'mini', 'mnist' or {_NPZ_FORMAT}. "
            "Convert other formats first, e.g. a CSV of label,pixels rows: "
            "a = numpy.loadtxt(path, delimiter=','); numpy.savez('data.npz', "
            "X_train=a[:, 1:], y_train=a[:, 0].astype(int), ...)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, MemoryError) as exc:
        raise ValueError(f"--data {path}: not a readable .npz archive ({exc})") from None
    for key in list(arrays):  # Keras's spelling: x_train for X_train
        if key.startswith("x_") and f"X{key[1:]}" not in arrays:
            arrays[f"X{key[1:]}"] = arrays.pop(key)
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
            f"(or x_train, ...; optionally X_val, y_val), found {sorted(arrays)}"
        )
    return data


def _load_data(args: argparse.Namespace, dtype: Any) -> tuple[str, dict[str, Any]]:
    """``(description, {"train": (X, y), "val": ..., "test": ...})`` for ``--data``."""
    from ..datasets import load_mini_mnist, load_mnist

    dtype = np.dtype(dtype)
    if args.data == "mini":
        train, test = load_mini_mnist(dtype=dtype)
        return "bundled mini MNIST", {"train": train, "val": test, "test": test}
    if args.data == "mnist":
        download = getattr(args, "download", False)
        try:
            train, val, test = load_mnist(args.data_dir, split="book", dtype=dtype,
                                          download=download)  # fmt: skip
        except FileNotFoundError as exc:  # the command line's advice, not the Python API's
            if download:
                raise
            found = str(exc).split(". Put ")[0]
            raise FileNotFoundError(
                f"--data mnist: {found}. Give the directory of the four MNIST IDX files "
                "(gzipped or not) with --data-dir DIR or the FASTBP_DATA environment "
                "variable, or add --download to fetch them (SHA-256 checked); --data mini, "
                "the default, needs no download"
            ) from None
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
        "PATH: an .npz with X_train, y_train, X_test, y_test (or Keras's x_train, ...; "
        "optionally X_val, y_val); uint8 images are scaled by 1/255",
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
