"""Model files: safe to load, written atomically, and the book's ``network2.py`` JSON.

A fastbp model file is a NumPy ``.npz`` archive of two arrays: ``header``, the UTF-8 bytes of
a JSON object (format name and version, fastbp version, architecture, activations, cost,
dtype, and the SHA-256 of the parameters), and ``params``, the flat parameter buffer. It is
read with ``allow_pickle=False``, so loading a file never runs code, and everything is
checked before a network is built: a file that fails any check raises ``ValueError`` naming
the file and what is wrong. Writes go to a temporary file in the same directory, which is
flushed, synced and renamed over the target, so a crash mid-save leaves the old file intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .network import Network

FORMAT = "fastbp-model"
FORMAT_VERSION = 1

#: The book's ``network2.py`` cost class names and ours.
_NETWORK2_COSTS = {"QuadraticCost": "quadratic", "CrossEntropyCost": "cross_entropy"}


def _write_atomically(path: Path, data: bytes) -> None:
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


def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` (see the module's notes); replaces any file there atomically."""
    from . import __version__

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        "sizes": list(net.sizes),
        "activations": list(net.activations),
        "cost": net.cost.name,
        "alpha": net.alpha,
        "residual": list(net.residual),
        "batch_norm": net.batch_norm,
        "dtype": net.dtype.name,
        "sha256": hashlib.sha256(net.params.tobytes() + net._bn_stats.tobytes()).hexdigest(),
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        params=net.params,
        bn_stats=net._bn_stats,
    )
    _write_atomically(Path(path), buffer.getvalue())


def _fail(path: Any, what: str) -> ValueError:
    return ValueError(f"{path}: not a valid fastbp model file: {what}")


def load(path: str | os.PathLike[str]) -> Network:
    """Read a model file written by ``save``, checking everything before building the network."""
    from .network import Network

    try:
        # The file is opened here, not by np.load, so that it is closed whatever np.load does.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            if not {"header", "params"} <= set(archive.files) <= {"header", "params", "bn_stats"}:
                raise _fail(path, f"expected arrays 'header' and 'params', found {archive.files}")
            raw_header = archive["header"]
            params = archive["params"]
            stats = archive["bn_stats"] if "bn_stats" in archive.files else None
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        if "pickle" in str(exc):  # what np.load says of anything that is not an .npz or .npy
            raise _fail(path, "not a NumPy .npz archive") from None
        raise _fail(path, f"unreadable ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise _fail(path, f"unreadable or truncated ({type(exc).__name__}: {exc})") from None
    if raw_header.dtype != np.uint8 or raw_header.ndim != 1:
        raise _fail(path, "the header is not a byte string")
    try:
        header = json.loads(raw_header.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _fail(path, f"wrong format name (expected {FORMAT!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version} is newer than this fastbp reads ({FORMAT_VERSION}); "
            "upgrade fastbp",
        )
    for key, kind in (("sizes", list), ("activations", list), ("cost", str), ("dtype", str)):
        if not isinstance(header.get(key), kind):
            raise _fail(path, f"header field {key!r} is missing or of the wrong type")
    alpha = header.get("alpha")
    if alpha is not None and not isinstance(alpha, int | float):
        raise _fail(path, "header field 'alpha' is of the wrong type")
    activations = header["activations"]
    if len(activations) != len(header["sizes"]) - 1:
        raise _fail(path, "one activation per layer expected")
    try:
        net = Network(
            header["sizes"],
            activation=activations[:-1],
            output=activations[-1],
            cost=header["cost"],
            alpha=alpha,
            residual=header.get("residual", False),
            batch_norm=header.get("batch_norm", False),
            dtype=header["dtype"],
        )
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad architecture ({exc})") from None
    if params.dtype != net.dtype or params.shape != net.params.shape:
        raise _fail(
            path,
            f"parameters of dtype {params.dtype} and shape {params.shape} do not match the "
            f"architecture ({net.dtype.name}, ({net.params.size},))",
        )
    if stats is None:  # written before batch norm existed
        stats = net._bn_stats
    if stats.dtype != net.dtype or stats.shape != net._bn_stats.shape:
        raise _fail(path, "the batch-norm statistics do not match the architecture")
    if hashlib.sha256(params.tobytes() + stats.tobytes()).hexdigest() != header.get("sha256"):
        raise _fail(path, "the parameters do not match their SHA-256 (corrupted)")
    if not (np.isfinite(params).all() and np.isfinite(stats).all()):
        raise _fail(path, "the parameters contain NaN or infinity")
    net.params[...] = params
    net._bn_stats[...] = stats
    return net


def export_network2(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` as the JSON of the book's ``network2.py`` (``sizes``, ``weights``,
    ``biases`` as columns, ``cost`` class name). Only what that code can run is accepted:
    sigmoid neurons throughout, quadratic or cross-entropy cost."""
    names = {v: k for k, v in _NETWORK2_COSTS.items()}
    unsupported = any(net.residual) or net.batch_norm
    if set(net.activations) != {"sigmoid"} or net.cost.name not in names or unsupported:
        raise ValueError(
            "net: the book's network2.py runs sigmoid networks with the quadratic or "
            f"cross-entropy cost only, not {list(net.activations)} with {net.cost.name!r}"
        )
    data = {
        "sizes": list(net.sizes),
        "weights": [w.astype(np.float64).tolist() for w in net.weights],
        "biases": [b.astype(np.float64).reshape(-1, 1).tolist() for b in net.biases],
        "cost": names[net.cost.name],
    }
    _write_atomically(Path(path), json.dumps(data).encode())


def import_network2(path: str | os.PathLike[str], *, dtype: str = "float64") -> Network:
    """Read a network saved by the book's ``network2.py`` (its ``Network.save`` JSON)."""
    from .network import Network

    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not network2.py JSON ({exc})") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= set(data):
        raise ValueError(f"{path}: expected the keys sizes, weights, biases and cost")
    if data["cost"] not in _NETWORK2_COSTS:
        raise ValueError(f"{path}: unknown cost {data['cost']!r}")
    try:
        net = Network(data["sizes"], cost=_NETWORK2_COSTS[data["cost"]], dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: bad sizes ({exc})") from None
    try:
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64) for b in data["biases"]]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: weights and biases must be arrays of numbers ({exc})") from None
    if len(weights) != len(net.weights) or len(biases) != len(net.biases):
        raise ValueError(f"{path}: expected {len(net.weights)} weight and bias arrays")
    for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.shape != net.weights[l].shape or b.size != net.biases[l].size:
            raise ValueError(f"{path}: layer {l + 1}'s arrays do not match sizes {net.sizes}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"{path}: layer {l + 1} contains NaN or infinity")
        net.weights[l][...] = w
        net.biases[l][...] = b.reshape(-1)
    return net


CHECKPOINT_FORMAT = "fastbp-checkpoint"


def save_checkpoint(
    path: str | os.PathLike[str],
    net: Network,
    loop: dict[str, Any],
    best_params: np.ndarray | None = None,
) -> None:
    """Write a training checkpoint atomically: the parameters, the optimiser's state, the best
    parameters so far (early stopping) and ``loop``, a JSON-able dict of the rest of the
    training loop's state (next epoch, history, generator state, rate, ...)."""
    from . import __version__

    header = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        "sizes": list(net.sizes),
        "activations": list(net.activations),
        "cost": net.cost.name,
        "residual": list(net.residual),
        "batch_norm": net.batch_norm,
        "dtype": net.dtype.name,
        "loop": loop,
    }
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        "params": net.params,
        "bn_stats": net._bn_stats,
    }
    if net._optimizer is not None:
        arrays["optimizer_state"] = net._optimizer[1]
    if best_params is not None:
        arrays["best_params"] = best_params
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_atomically(Path(path), buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], net: Network) -> tuple[dict, dict]:
    """Read a checkpoint for ``net``: returns ``(loop, arrays)`` after checking that it was
    written for the same architecture; raises ``ValueError`` naming the file otherwise."""
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
    keys = ("sizes", "activations", "cost", "residual", "batch_norm", "dtype")
    mine = (list(net.sizes), list(net.activations), net.cost.name, list(net.residual),
            net.batch_norm, net.dtype.name)  # fmt: skip
    theirs = tuple(header.get(k) for k in keys)
    if mine != theirs:
        raise ValueError(f"{path}: the checkpoint is of another network: {theirs}, not {mine}")
    params = arrays.get("params")
    if params is None or params.dtype != net.dtype or params.shape != net.params.shape:
        raise ValueError(f"{path}: the checkpoint's parameters do not fit the network")
    if not np.isfinite(params).all():
        raise ValueError(f"{path}: the checkpoint's parameters contain NaN or infinity")
    return header["loop"], arrays
