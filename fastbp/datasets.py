"""Readers for the MNIST handwritten-digit data set.

MNIST is the work of Yann LeCun, Corinna Cortes and Christopher J. C. Burges,
built from NIST Special Database 3 and Special Database 1. When you use it,
credit them and cite

    Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning
    applied to document recognition", Proceedings of the IEEE, 86(11),
    2278-2324, 1998.

The data set is commonly distributed under CC BY-SA 3.0 terms.

This module offers two entry points:

* :func:`load_mnist` reads the four canonical IDX files (gzipped or not) from a
  directory you provide. The files are not shipped with fastbp; see
  :func:`data_dir` for where they are looked for.
* :func:`load_mini_mnist` reads the small data set bundled with the package: the
  canonical 10,000-image MNIST *test* file, split 8,000 / 2,000. It is meant for
  examples and tests that must run without a download and is **not** the MNIST
  benchmark. See its docstring.

Every file is checked against its published SHA-256 digest (:data:`MNIST_FILES`)
unless verification is turned off explicitly.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib.resources
import math
import os
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from ._paths import user_cache
from ._storage import write_atomically

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "data_dir",
    "download_mnist",
    "load_mini_mnist",
    "load_mnist",
    "read_idx",
]

#: Published SHA-256 digests of the four canonical MNIST files, keyed by the
#: canonical file name (without ``.gz``). For each file, ``"gz"`` is the digest of
#: the gzipped file as originally distributed (``NAME.gz``) and ``"raw"`` the
#: digest of the decompressed IDX content (``NAME``).
MNIST_FILES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "train-images-idx3-ubyte": MappingProxyType(
            {
                "gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "raw": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            }
        ),
        "train-labels-idx1-ubyte": MappingProxyType(
            {
                "gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "raw": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            }
        ),
        "t10k-images-idx3-ubyte": MappingProxyType(
            {
                "gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "raw": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            }
        ),
        "t10k-labels-idx1-ubyte": MappingProxyType(
            {
                "gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "raw": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            }
        ),
    }
)

# Shape of the array stored in each canonical file.
_MNIST_SHAPES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "train-images-idx3-ubyte": (60_000, 28, 28),
        "train-labels-idx1-ubyte": (60_000,),
        "t10k-images-idx3-ubyte": (10_000, 28, 28),
        "t10k-labels-idx1-ubyte": (10_000,),
    }
)

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"

_SPLITS = ("standard", "book")
_BOOK_TRAIN_SIZE = 50_000
_MINI_TEST_EVERY = 5  # every fifth bundled image is in the mini test part

_ENV_VAR = "FASTBP_DATA"
_IS_WINDOWS = sys.platform == "win32"

_GZIP_MAGIC = b"\x1f\x8b"

# IDX element type codes (third byte of the magic number) -> big-endian dtype.
_IDX_TYPES: Mapping[int, np.dtype] = MappingProxyType(
    {
        0x08: np.dtype(">u1"),
        0x09: np.dtype(">i1"),
        0x0B: np.dtype(">i2"),
        0x0C: np.dtype(">i4"),
        0x0D: np.dtype(">f4"),
        0x0E: np.dtype(">f8"),
    }
)


# ---------------------------------------------------------------------------
# IDX parsing
# ---------------------------------------------------------------------------


def _decompress_if_gzip(data: bytes, source: str) -> bytes:
    """Return ``data`` decompressed when it starts with the gzip magic bytes."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(
            f"{source}: cannot decompress gzip data, the file is corrupt or truncated ({exc})"
        ) from exc


def _parse_idx(data: bytes, source: str) -> np.ndarray:
    """Parse IDX bytes (gzipped or not) into a read-only big-endian array view.

    Parameters
    ----------
    data : bytes
        Content of the file.
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    numpy.ndarray
        Array viewing the decompressed buffer, with the file's big-endian dtype.

    Raises
    ------
    ValueError
        If the data is not a valid IDX file.
    """
    data = _decompress_if_gzip(data, source)
    if len(data) < 4:
        raise ValueError(
            f"{source}: file is truncated or corrupt, it has {len(data)} bytes, "
            "fewer than the 4-byte IDX magic number"
        )
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{source}: not an IDX file, bad magic number 0x{magic:08X} "
            "(the first two bytes must be zero)"
        )
    if type_code not in _IDX_TYPES:
        known = ", ".join(f"0x{code:02X}" for code in _IDX_TYPES)
        raise ValueError(
            f"{source}: bad IDX magic number 0x{magic:08X}, unknown element type "
            f"0x{type_code:02X} (known: {known})"
        )
    if ndim == 0:
        raise ValueError(
            f"{source}: bad IDX magic number 0x{magic:08X}, the number of dimensions is 0"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{source}: file is truncated or corrupt, the IDX header declares {ndim} "
            f"dimensions ({header_size} header bytes) but the file has {len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - header_size
    if actual < expected:
        raise ValueError(
            f"{source}: file is truncated or corrupt, the header declares shape {dims} "
            f"({expected} data bytes) but only {actual} data bytes follow"
        )
    if actual > expected:
        raise ValueError(
            f"{source}: file is corrupt, the header declares shape {dims} "
            f"({expected} data bytes) but {actual} data bytes follow"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an array from an IDX file, gzipped or not.

    IDX is the simple binary format the MNIST files are distributed in: a 4-byte
    big-endian magic number ``0x0000TTDD`` (``TT`` the element type, ``DD`` the
    number of dimensions), one big-endian 32-bit size per dimension, then the
    elements in C order. MNIST images are ``0x00000803`` (unsigned bytes, 3-D)
    and labels ``0x00000801`` (unsigned bytes, 1-D). The other IDX element types
    (``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
    float64, all big-endian) are read too.

    Gzip compression is detected from the content (the gzip magic bytes), so a
    file is read correctly whether or not its name ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    numpy.ndarray
        A new, writable, C-contiguous array in native byte order whose shape is
        the one declared in the file header.

    Raises
    ------
    ValueError
        If the file is not valid IDX: a bad magic number, a gzip stream that
        cannot be decompressed, or a payload whose length differs from the
        product of the declared dimensions (a truncated or corrupt file). The
        message names the file.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    array = _parse_idx(path.read_bytes(), str(path))
    return array.astype(array.dtype.newbyteorder("="), order="C")


# ---------------------------------------------------------------------------
# Locating and verifying files
# ---------------------------------------------------------------------------


def _cache_dir() -> Path:
    """Return the per-user cache directory for the MNIST files."""
    return user_cache("mnist", windows=_IS_WINDOWS)


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    r"""Return the directory :func:`load_mnist` reads the MNIST files from.

    The first of these that applies is used:

    1. ``path``, when given;
    2. the ``FASTBP_DATA`` environment variable, when set and non-empty;
    3. the per-user cache directory: ``$XDG_CACHE_HOME/fastbp/mnist``, or
       ``~/.cache/fastbp/mnist`` when ``XDG_CACHE_HOME`` is unset (on Windows
       ``%LOCALAPPDATA%\fastbp\mnist``).

    The directory is neither created nor checked for existence.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Explicit directory. A leading ``~`` is expanded.

    Returns
    -------
    pathlib.Path
        The directory.
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return _cache_dir()


# ---------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------

#: Public mirrors of the four canonical ``.gz`` files, tried in order (the original site
#: no longer serves them reliably).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _fetch(url: str, timeout: float, progress: bool) -> bytes:
    """The body of ``url``; raises ``OSError`` (``URLError``, ``IncompleteRead``...) on failure."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        bar = None
        if progress:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=url.rsplit("/")[-1])
        chunks = []
        try:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    data = b"".join(chunks)
    if total and len(data) != total:
        raise OSError(f"truncated: {len(data)} of {total} bytes")
    return data


def download_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    timeout: float = 30.0,
    progress: bool | None = None,
    files: Mapping[str, Mapping[str, str]] = MNIST_FILES,
) -> Path:
    """Download the MNIST ``.gz`` files that are missing from :func:`data_dir` ``(path)``.

    Each file is fetched from the first mirror that serves it whole with the published
    SHA-256 (a 404, a dead host, a truncated body or a wrong digest moves on to the next
    mirror), then written atomically (a temporary file in the same directory, synced and
    renamed, by ``fastbp.files``), so an interrupted download never leaves a partial file
    under the real name.
    ``progress`` shows a bar (tqdm, when installed) and defaults to whether stderr is a
    terminal. ``files`` maps names to digests (tests use their own). Returns the directory.

    Raises
    ------
    OSError
        If no mirror served a file; the message lists each attempt and where to put the
        files by hand.
    """
    directory = data_dir(path)
    if progress is None:
        progress = sys.stderr.isatty()
    for name, digests in files.items():
        target = directory / f"{name}.gz"
        if target.is_file() or (directory / name).is_file():
            continue
        attempts = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{name}.gz"
            try:
                data = _fetch(url, timeout, progress)
            except (OSError, http.client.HTTPException) as exc:  # 404, refused, cut short...
                attempts.append(f"{url}: {exc}")
                continue
            if _sha256(data) != digests["gz"]:
                attempts.append(f"{url}: wrong SHA-256 {_sha256(data)}")
                continue
            directory.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data)
            break
        else:
            raise OSError(
                f"could not download {name}.gz: " + "; ".join(attempts) + f". Put the file in "
                f"{directory} by hand (or pass load_mnist(path=...) / set {_ENV_VAR})."
            )
    return directory


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(name: str, form: str, data: bytes, source: str) -> None:
    """Compare the SHA-256 of ``data`` against the published digest."""
    expected = MNIST_FILES[name][form]
    actual = _sha256(data)
    if actual != expected:
        raise ValueError(
            f"{source}: SHA-256 mismatch, the file is corrupt or truncated or is not the "
            f"canonical MNIST file {name}{'.gz' if form == 'gz' else ''} "
            f"(expected {expected}, got {actual})"
        )


def _decode_mnist_file(name: str, data: bytes, form: str, source: str, verify: bool) -> np.ndarray:
    """Verify and parse one canonical MNIST file, checking its shape."""
    if verify:
        _check_digest(name, form, data, source)
    array = _parse_idx(data, source)
    expected_shape = _MNIST_SHAPES[name]
    if array.dtype != np.uint8 or array.shape != expected_shape:
        raise ValueError(
            f"{source}: expected a uint8 array of shape {expected_shape} for {name}, "
            f"found {array.dtype} with shape {array.shape}"
        )
    return array


def _check_dtype(dtype: npt.DTypeLike) -> np.dtype:
    if dtype is None:  # np.dtype(None) would silently mean float64
        raise ValueError("dtype must be float32 or float64, got None")
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def _images_to_float(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Flatten ``(n, 28, 28)`` uint8 images to ``(n, 784)`` floats in [0, 1]."""
    out = images.reshape(images.shape[0], -1).astype(dtype, order="C")
    out /= dtype.type(255)
    return out


def _labels_to_int(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.int64, order="C")


# ---------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------

_Pair = tuple[np.ndarray, np.ndarray]


@overload
def load_mnist(
    path: str | os.PathLike[str] | None = ...,
    *,
    split: Literal["standard"] = ...,
    dtype: npt.DTypeLike = ...,
    verify: bool = ...,
    download: bool = ...,
    mirrors: Sequence[str] = ...,
) -> tuple[_Pair, _Pair]: ...


@overload
def load_mnist(
    path: str | os.PathLike[str] | None = ...,
    *,
    split: Literal["book"],
    dtype: npt.DTypeLike = ...,
    verify: bool = ...,
    download: bool = ...,
    mirrors: Sequence[str] = ...,
) -> tuple[_Pair, _Pair, _Pair]: ...


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    split: str = "standard",
    dtype: npt.DTypeLike = "float32",
    verify: bool = True,
    download: bool = False,
    mirrors: Sequence[str] = MNIST_MIRRORS,
) -> tuple[_Pair, ...]:
    """Load the MNIST data set from the four canonical IDX files.

    The files are looked for in the directory given by :func:`data_dir`
    (``path``, else ``$FASTBP_DATA``, else the per-user cache). For each of
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, the gzipped
    ``NAME.gz`` is used when present, else the uncompressed ``NAME``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the files. See :func:`data_dir` for the default.
    split : {"standard", "book"}, default "standard"
        ``"standard"`` returns the 60,000 training and 10,000 test examples.
        ``"book"`` returns the first 50,000 training examples for training, the
        last 10,000 training examples for validation and the 10,000 test
        examples, the split used by Michael Nielsen's *Neural Networks and Deep
        Learning* (``mnist_loader``).
    dtype : {"float32", "float64"}, default "float32"
        Floating-point type of the images.
    verify : bool, default True
        Check the SHA-256 of every file against :data:`MNIST_FILES` (the ``.gz``
        digest for gzipped files, the raw digest for uncompressed ones).
    download : bool, default False
        Download missing files into that directory first (:func:`download_mnist`, from
        ``mirrors``). Off by default, so nothing touches the network unless asked.

    Returns
    -------
    tuple
        ``((X_train, y_train), (X_test, y_test))`` for ``split="standard"`` or
        ``((X_train, y_train), (X_val, y_val), (X_test, y_test))`` for
        ``split="book"``. Each ``X`` is a C-contiguous ``(n, 784)`` array of
        ``dtype`` with the pixels scaled to [0, 1] (divided by 255), rows being
        the 28x28 images in row-major order. Each ``y`` is a C-contiguous 1-D
        ``int64`` array of digits 0-9. In the book split the training and
        validation arrays are non-overlapping views of one array.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message names the directory searched and the
        missing files.
    ValueError
        If ``split`` or ``dtype`` is not supported, if a digest does not match
        (a corrupt, truncated or non-canonical file), or if a file is not valid
        IDX or does not have the expected shape.

    Examples
    --------
    >>> (X_train, y_train), (X_test, y_test) = load_mnist()  # doctest: +SKIP
    >>> X_train.shape, y_test.shape  # doctest: +SKIP
    ((60000, 784), (10000,))
    """
    if split not in _SPLITS:
        allowed = ", ".join(repr(s) for s in _SPLITS)
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    float_dtype = _check_dtype(dtype)

    directory = download_mnist(path, mirrors=mirrors) if download else data_dir(path)
    found: dict[str, tuple[Path, str]] = {}
    missing: list[str] = []
    for name in MNIST_FILES:
        gz_path = directory / f"{name}.gz"
        raw_path = directory / name
        if gz_path.is_file():
            found[name] = (gz_path, "gz")
        elif raw_path.is_file():
            found[name] = (raw_path, "raw")
        else:
            missing.append(name)
    if missing:
        where = (
            f"directory {directory}"
            if directory.is_dir()
            else f"directory {directory} (which does not exist)"
        )
        raise FileNotFoundError(
            f"MNIST files not found in {where}: missing "
            + ", ".join(f"{name}.gz (or {name})" for name in missing)
            + ". Put the four canonical MNIST IDX files (gzipped or not) in one "
            f"directory and pass it as load_mnist(path=...) or set the {_ENV_VAR} "
            "environment variable to it. For a small bundled data set that needs no "
            "download, use load_mini_mnist()."
        )

    arrays: dict[str, np.ndarray] = {}
    for name, (file_path, form) in found.items():
        arrays[name] = _decode_mnist_file(
            name, file_path.read_bytes(), form, str(file_path), verify
        )

    x_train = _images_to_float(arrays[_TRAIN_IMAGES], float_dtype)
    y_train = _labels_to_int(arrays[_TRAIN_LABELS])
    x_test = _images_to_float(arrays[_TEST_IMAGES], float_dtype)
    y_test = _labels_to_int(arrays[_TEST_LABELS])

    if split == "book":
        n = _BOOK_TRAIN_SIZE
        return (
            (x_train[:n], y_train[:n]),
            (x_train[n:], y_train[n:]),
            (x_test, y_test),
        )
    return (x_train, y_train), (x_test, y_test)


def load_mini_mnist(*, dtype: npt.DTypeLike = "float32") -> tuple[_Pair, _Pair]:
    """Load the small MNIST-derived data set bundled with fastbp.

    .. warning::
       This is **not** the MNIST training set, and results on it are **not**
       MNIST benchmark results. Both of its parts are drawn from MNIST's *test*
       split: never report its test accuracy as, or compare it with, an accuracy
       on the real MNIST test set, and never train on it and then evaluate on
       the real MNIST test set (the training part *is* part of that test set).
       Use :func:`load_mnist` for real MNIST results.

    The package ships the canonical ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` files, unchanged (the 10,000 MNIST test
    images). They are always checked against their published SHA-256 digests.
    They are split by position: every fifth image (indices 4, 9, 14, ...) forms
    the 2,000-image test part and the other 8,000 the training part. The MNIST
    authors note that the first 5,000 test images (from NIST Special Database 3)
    are cleaner and easier than the last 5,000 (Special Database 1); taking every
    fifth image draws both parts evenly from both halves. The data set is meant for
    examples, smoke tests and quick experiments that must run without a
    download.

    MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges; cite
    LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to
    document recognition".

    Parameters
    ----------
    dtype : {"float32", "float64"}, default "float32"
        Floating-point type of the images.

    Returns
    -------
    tuple
        ``((X_train, y_train), (X_test, y_test))``: ``X_train`` has shape
        ``(8000, 784)`` and ``X_test`` ``(2000, 784)``, C-contiguous, of
        ``dtype``, scaled to [0, 1]; ``y_train`` and ``y_test`` are C-contiguous
        1-D ``int64`` arrays of digits 0-9.

    Raises
    ------
    ValueError
        If ``dtype`` is not supported or a bundled file fails verification.
    FileNotFoundError
        If the bundled files are missing (a broken installation).
    """
    float_dtype = _check_dtype(dtype)
    root = importlib.resources.files("fastbp") / "data"
    arrays: dict[str, np.ndarray] = {}
    for name in (_TEST_IMAGES, _TEST_LABELS):
        resource = root / f"{name}.gz"
        if not resource.is_file():
            raise FileNotFoundError(
                f"bundled file {resource} is missing; the fastbp installation is incomplete"
            )
        arrays[name] = _decode_mnist_file(
            name, resource.read_bytes(), "gz", str(resource), verify=True
        )

    images = _images_to_float(arrays[_TEST_IMAGES], float_dtype)
    labels = _labels_to_int(arrays[_TEST_LABELS])
    test = np.arange(images.shape[0]) % _MINI_TEST_EVERY == _MINI_TEST_EVERY - 1
    return (images[~test], labels[~test]), (images[test], labels[test])
