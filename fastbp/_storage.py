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

import glob
import hashlib
import io
import itertools
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__

FORMAT = "fastbp-model"
CHECKPOINT_FORMAT = "fastbp-checkpoint"
FORMAT_VERSION = 1


#: How a temporary file's name ends: ``.<name>.<pid>[-<n>].fastbp-tmp`` beside its target.
TMP_SUFFIX = ".fastbp-tmp"


def _umask() -> int:
    """The process's umask (read from /proc where it can be, so the umask is never changed)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def output_target(path: str | os.PathLike[str], name: str | None = None) -> Path:
    """The file a save to ``path`` writes: ``path`` itself, or the file a symbolic link at
    ``path`` points to (a save writes through a link, as ``cp`` does, and keeps it). Raises,
    before anything is written, ``FileNotFoundError`` for a missing directory,
    ``PermissionError`` for one this process may not write in, and ``IsADirectoryError`` or
    ``ValueError`` for a path that is not a regular file (a directory, a device such as
    ``/dev/null``, a pipe): a save replaces only regular files. Errors start with ``name``
    (the parameter or option) where given, else the path."""
    prefix = f"{name}: {os.fspath(path)}" if name else f"{os.fspath(path)}"
    target = Path(os.path.realpath(path))
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{prefix}: the directory {parent} does not exist")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{prefix}: is a directory; expected the path of a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"{prefix}: is {_kind(mode)}; a save replaces regular files only")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{prefix}: no permission to write in {parent}")
    return target


def _orphans(target: Path) -> list[Path]:
    """Temporary files of saves to ``target`` by processes that no longer run (killed
    mid-save)."""
    found: list[Path] = []
    if os.name != "posix":  # os.kill(pid, 0) asks whether a process runs on POSIX only
        return found
    try:
        candidates = list(target.parent.glob(f".{glob.escape(target.name)}.*{TMP_SUFFIX}"))
    except OSError:
        return found
    for tmp in candidates:
        pid = tmp.name[len(target.name) + 2 : -len(TMP_SUFFIX)].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.append(tmp)
        except (PermissionError, OverflowError, ValueError):
            pass
    return found


def clean_orphans(path: str | os.PathLike[str]) -> None:
    """Remove what saves to ``path`` killed mid-write left behind (their temporaries)."""
    target = Path(os.path.realpath(path))
    for tmp in _orphans(target):
        try:
            tmp.unlink()
        except OSError:
            pass


def write_atomically(path: str | os.PathLike[str], data: bytes, name: str | None = None) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed over it.

    Only a regular file is replaced (``output_target``: a symbolic link is written through);
    a new file gets the mode the umask allows (``0o666 & ~umask``), a replaced file keeps its
    mode. The temporary file, ``.<name>.<pid>.fastbp-tmp`` beside the target, is removed
    on any error; one left by a killed process is removed by the next save or load of that
    path."""
    target = output_target(path, name)
    clean_orphans(target)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for attempt in itertools.count():
        tag = f"{os.getpid()}" + (f"-{attempt}" if attempt else "")
        tmp = target.parent / f".{target.name}.{tag}{TMP_SUFFIX}"
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def open_archive(path: str | os.PathLike[str], what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``, read without pickle; raises
    ``ValueError`` ``"<path>: not a valid <what>: ..."`` for anything else (an ``.npy`` file,
    a truncated or damaged archive, object arrays)."""
    clean_orphans(path)
    try:
        # The file is opened here, not by np.load, so that it is closed whatever np.load does.
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError(
                    f"{path}: not a valid {what}: a single NumPy array, not an .npz archive"
                )
            with loaded as archive:
                return {name: archive[name] for name in archive.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        if "pickle" in str(exc):  # what np.load says of anything that is not an .npz or .npy
            raise ValueError(f"{path}: not a valid {what}: not a NumPy .npz archive") from None
        raise ValueError(f"{path}: not a valid {what}: unreadable ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, MemoryError) as exc:
        raise ValueError(
            f"{path}: not a valid {what}: unreadable or truncated ({type(exc).__name__}: {exc})"
        ) from None


def _archive(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buffer, header=raw, **arrays)
    return buffer.getvalue()


def digest(arrays: list[np.ndarray]) -> str:
    """The SHA-256 of the arrays' bytes, one after the other."""
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


def save_model(
    path: str | os.PathLike[str], spec: dict[str, Any], arrays: dict[str, Any],
    name: str | None = None,
) -> None:  # fmt: skip
    """Write a model file: ``spec`` in the header, ``arrays`` (``params`` first) beside it,
    with their SHA-256."""
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        **spec,
        "sha256": digest(list(arrays.values())),
    }
    write_atomically(path, _archive(header, arrays), name)


def model_error(path: Any, what: str) -> ValueError:
    return ValueError(f"{path}: not a valid fastbp model file: {what}")


def read_model(
    path: str | os.PathLike[str], names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a model file whose arrays are ``params`` and any of
    ``names``; raises ``ValueError`` naming the file and what is wrong with it."""
    allowed = {"header", "params", *names}
    arrays = open_archive(path, "fastbp model file")
    if not {"header", "params"} <= set(arrays) <= allowed:
        raise model_error(path, f"expected arrays 'header' and 'params', found {sorted(arrays)}")
    raw = arrays.pop("header")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise model_error(path, "the header is not a byte string")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
    arrays: dict[str, np.ndarray], name: str | None = "checkpoint",
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
    write_atomically(path, _archive(header, arrays), name)


def load_checkpoint(
    path: str | os.PathLike[str], spec: dict[str, Any], params: np.ndarray
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint of the model whose ``spec`` and parameters are given: returns
    ``(loop, arrays)`` after checking that it was written for that model; raises
    ``ValueError`` naming the file otherwise."""
    arrays = open_archive(path, "fastbp checkpoint")
    raw = arrays.pop("header", None)
    try:
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("no header of bytes")
        header = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
    return header.get("loop"), arrays
