"""Model files and checkpoints on disk: written atomically, read without running code.

A model file is a NumPy ``.npz`` archive of ``header``, the UTF-8 bytes of a JSON object (format
name and version, fastbp version, the model's ``spec``: its architecture, and the SHA-256 of its
arrays), ``params``, the flat parameter buffer, and the model's other state arrays (a
batch-normalised network's running statistics, ``bn_stats``). It is read with
``allow_pickle=False``, so loading a file never runs code; ``read_model`` checks the archive
and the header, and the model class checks the spec and the arrays' shapes and builds itself
(``Network.load``). A checkpoint is an archive of the same kind with the training loop's state
(``save_checkpoint``). Writes go to a temporary file in the same directory, which is flushed,
synced and renamed over the target, so a crash mid-save leaves the old file intact.

Nothing here knows a model class: models hand in their ``spec`` (a JSON object) and arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__

FORMAT = "fastbp-model"
CHECKPOINT_FORMAT = "fastbp-checkpoint"
FORMAT_VERSION = 1


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _archive(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buffer, header=raw, **arrays)
    return buffer.getvalue()


def digest(arrays: list[np.ndarray]) -> str:
    """The SHA-256 of the arrays' bytes, one after the other."""
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


def save_model(path: str | os.PathLike[str], spec: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write a model file: ``spec`` in the header, ``arrays`` (``params`` first) beside it,
    with their SHA-256."""
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        **spec,
        "sha256": digest(list(arrays.values())),
    }
    write_atomically(path, _archive(header, arrays))


def model_error(path: Any, what: str) -> ValueError:
    return ValueError(f"{path}: not a valid fastbp model file: {what}")


def read_model(
    path: str | os.PathLike[str], names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a model file whose arrays are ``params`` and any of
    ``names``; raises ``ValueError`` naming the file and what is wrong with it."""
    allowed = {"header", "params", *names}
    try:
        # The file is opened here, not by np.load, so that it is closed whatever np.load does.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            if not {"header", "params"} <= set(archive.files) <= allowed:
                raise model_error(
                    path, f"expected arrays 'header' and 'params', found {archive.files}"
                )
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        if "pickle" in str(exc):  # what np.load says of anything that is not an .npz or .npy
            raise model_error(path, "not a NumPy .npz archive") from None
        raise model_error(path, f"unreadable ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise model_error(path, f"unreadable or truncated ({type(exc).__name__}: {exc})") from None
    raw = arrays.pop("header")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise model_error(path, "the header is not a byte string")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise model_error(path, f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise model_error(path, f"wrong format name (expected {FORMAT!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise model_error(path, f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise model_error(
            path,
            f"format version {version} is newer than this fastbp reads ({FORMAT_VERSION}); "
            "upgrade fastbp",
        )
    return header, arrays


def save_checkpoint(
    path: str | os.PathLike[str], spec: dict[str, Any], loop: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:  # fmt: skip
    """Write a training checkpoint: the model's ``spec``, ``loop`` (a JSON-able dict of the
    training loop's state: next epoch, history, generator state, rate, …) and ``arrays`` (the
    parameters, the model's other state, the optimiser's state, the best parameters so far)."""
    header = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        **spec,
        "loop": loop,
    }
    write_atomically(path, _archive(header, arrays))


def load_checkpoint(
    path: str | os.PathLike[str], spec: dict[str, Any], params: np.ndarray
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint of the model whose ``spec`` and parameters are given: returns
    ``(loop, arrays)`` after checking that it was written for that model; raises
    ``ValueError`` naming the file otherwise."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a valid fastbp checkpoint: unreadable ({exc})") from None
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a valid fastbp checkpoint: bad header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a valid fastbp checkpoint: wrong format name")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {header.get('format_version')!r} unknown")
    # Every field of the spec the checkpoint records must match (older ones record fewer).
    keys = [key for key in spec if key in header]
    mine = {key: spec[key] for key in keys}
    theirs = {key: header[key] for key in keys}
    if mine != theirs or not keys:
        raise ValueError(f"{path}: the checkpoint is of another network: {theirs}, not {mine}")
    saved = arrays.get("params")
    if saved is None or saved.dtype != params.dtype or saved.shape != params.shape:
        raise ValueError(f"{path}: the checkpoint's parameters do not fit the network")
    if not np.isfinite(saved).all():
        raise ValueError(f"{path}: the checkpoint's parameters contain NaN or infinity")
    return header["loop"], arrays
