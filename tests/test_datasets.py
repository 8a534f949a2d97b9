"""Tests for fastbp.datasets.

The real MNIST tests read the four canonical files from the directory named by
the ``FASTBP_DATA`` environment variable. They are skipped when it is unset,
except under CI (``CI`` set), where a missing ``FASTBP_DATA`` is a failure.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastbp import datasets
from fastbp.datasets import MNIST_FILES, data_dir, load_mini_mnist, load_mnist, read_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]

_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray, *, magic: int | None = None) -> bytes:
    """Encode ``array`` as IDX bytes (big-endian), optionally with a forced magic number."""
    array = np.asarray(array)
    if magic is None:
        magic = (_TYPE_CODES[array.dtype] << 8) | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False, **kwargs: object) -> Path:
    data = idx_bytes(array, **kwargs)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---------------------------------------------------------------------------
# Real MNIST (through FASTBP_DATA)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_standard(mnist_env: Path):
    # No path argument: load_mnist must find the files through FASTBP_DATA.
    assert data_dir() == mnist_env
    return load_mnist()


def test_mnist_standard_shapes_and_values(mnist_standard) -> None:
    (x_train, y_train), (x_test, y_test) = mnist_standard
    assert x_train.shape == (60_000, 784)
    assert x_test.shape == (10_000, 784)
    assert y_train.shape == (60_000,)
    assert y_test.shape == (10_000,)
    for x in (x_train, x_test):
        assert x.dtype == np.float32
        assert x.flags.c_contiguous
        assert x.min() == 0.0
        assert x.max() == 1.0
    for y in (y_train, y_test):
        assert y.dtype == np.int64
        assert y.flags.c_contiguous
    # Pixel mean from SOURCE.md: 33.3184 / 255 (train), 33.7912 / 255 (test).
    assert x_train.mean(dtype=np.float64) == pytest.approx(33.3184 / 255, abs=1e-6)
    assert x_test.mean(dtype=np.float64) == pytest.approx(33.7912 / 255, abs=1e-6)


def test_mnist_labels(mnist_standard) -> None:
    (_, y_train), (_, y_test) = mnist_standard
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FIRST_TEST_LABELS
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


def test_mnist_pixels_are_bytes_over_255(mnist_standard, mnist_env: Path) -> None:
    (x_train, _), _ = mnist_standard
    raw = read_idx(mnist_env / "train-images-idx3-ubyte.gz")
    assert raw.dtype == np.uint8
    assert raw.shape == (60_000, 28, 28)
    np.testing.assert_array_equal(x_train[:100], raw[:100].reshape(100, 784) / np.float32(255))


def test_mnist_book_split(mnist_standard, mnist_env: Path) -> None:
    (x_full, y_full), (x_test_std, y_test_std) = mnist_standard
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_mnist(mnist_env, split="book")
    assert x_train.shape == (50_000, 784)
    assert x_val.shape == (10_000, 784)
    assert x_test.shape == (10_000, 784)
    assert y_train.shape == (50_000,)
    assert y_val.shape == (10_000,)
    assert y_test.shape == (10_000,)
    for x in (x_train, x_val, x_test):
        assert x.dtype == np.float32
        assert x.flags.c_contiguous
    for y in (y_train, y_val, y_test):
        assert y.dtype == np.int64
        assert y.flags.c_contiguous
    np.testing.assert_array_equal(x_val, x_full[50_000:])
    np.testing.assert_array_equal(y_val, y_full[50_000:])
    np.testing.assert_array_equal(x_train, x_full[:50_000])
    np.testing.assert_array_equal(y_train, y_full[:50_000])
    np.testing.assert_array_equal(x_test, x_test_std)
    np.testing.assert_array_equal(y_test, y_test_std)


def test_mnist_raw_files_and_gz_preferred(mnist_env: Path, tmp_path: Path) -> None:
    # Training files gzipped, test files uncompressed: both digests are checked.
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        shutil.copyfile(mnist_env / f"{name}.gz", tmp_path / f"{name}.gz")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_env / f"{name}.gz", "rb") as f:
            (tmp_path / name).write_bytes(f.read())
    # A corrupt uncompressed copy next to a .gz file is ignored: the .gz is used.
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"not an IDX file")
    (_, y_train), (x_test, y_test) = load_mnist(tmp_path, dtype="float64")
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FIRST_TEST_LABELS
    assert x_test.shape == (10_000, 784)
    assert x_test.dtype == np.float64
    assert x_test.flags.c_contiguous
    assert x_test.min() == 0.0
    assert x_test.max() == 1.0
    np.testing.assert_array_equal(np.rint(x_test * 255), x_test * 255)


def test_mini_equals_real_test_split(mnist_standard) -> None:
    _, (x_test, y_test) = mnist_standard
    (x_mini_train, y_mini_train), (x_mini_test, y_mini_test) = load_mini_mnist()
    in_test = np.arange(10_000) % 5 == 4
    np.testing.assert_array_equal(x_mini_train, x_test[~in_test])
    np.testing.assert_array_equal(y_mini_train, y_test[~in_test])
    np.testing.assert_array_equal(x_mini_test, x_test[in_test])
    np.testing.assert_array_equal(y_mini_test, y_test[in_test])


# ---------------------------------------------------------------------------
# Bundled mini MNIST
# ---------------------------------------------------------------------------


def test_mini_mnist() -> None:
    (x_train, y_train), (x_test, y_test) = load_mini_mnist()
    assert x_train.shape == (8000, 784)
    assert x_test.shape == (2000, 784)
    assert y_train.shape == (8000,)
    assert y_test.shape == (2000,)
    for x in (x_train, x_test):
        assert x.dtype == np.float32
        assert x.flags.c_contiguous
        assert x.min() == 0.0
        assert x.max() == 1.0
    for y in (y_train, y_test):
        assert y.dtype == np.int64
        assert y.flags.c_contiguous
    assert y_train[:4].tolist() == FIRST_TEST_LABELS[:4]  # every fifth image is held out
    assert y_test[:2].tolist() == [FIRST_TEST_LABELS[4], FIRST_TEST_LABELS[9]]
    counts = np.bincount(y_train, minlength=10) + np.bincount(y_test, minlength=10)
    assert counts.tolist() == TEST_COUNTS


def test_mini_mnist_float64() -> None:
    (x32, _), _ = load_mini_mnist()
    (x64, _), _ = load_mini_mnist(dtype=np.float64)
    assert x64.dtype == np.float64
    np.testing.assert_allclose(x64, x32, rtol=1e-7)


def test_bundled_files_are_canonical() -> None:
    bundled = Path(datasets.__file__).parent / "data"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        data = (bundled / f"{name}.gz").read_bytes()
        assert hashlib.sha256(data).hexdigest() == MNIST_FILES[name]["gz"]
        raw = gzip.decompress(data)
        assert hashlib.sha256(raw).hexdigest() == MNIST_FILES[name]["raw"]


def test_mnist_files_table() -> None:
    assert set(MNIST_FILES) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
    for digests in MNIST_FILES.values():
        assert set(digests) == {"gz", "raw"}
        for digest in digests.values():
            assert re.fullmatch(r"[0-9a-f]{64}", digest)


# ---------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------


def test_read_idx_gz_and_raw_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    raw = read_idx(write_idx(tmp_path / "images-idx3-ubyte", images))
    gz = read_idx(write_idx(tmp_path / "images-idx3-ubyte.gz", images, gz=True))
    for array in (raw, gz):
        assert array.dtype == np.uint8
        assert array.shape == (5, 4, 3)
        assert array.flags.c_contiguous
        assert array.flags.writeable
        np.testing.assert_array_equal(array, images)


def test_read_idx_detects_gzip_by_content(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    # Gzipped content without a .gz name, and raw content with a .gz name.
    gz_no_suffix = write_idx(tmp_path / "labels-idx1-ubyte", labels, gz=True)
    raw_gz_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(read_idx(gz_no_suffix), labels)
    np.testing.assert_array_equal(read_idx(raw_gz_suffix), labels)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_other_types(tmp_path: Path, dtype: type) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    result = read_idx(write_idx(tmp_path / "x.idx", array))
    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_accepts_str(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4], dtype=np.uint8)
    path = write_idx(tmp_path / "labels", labels)
    np.testing.assert_array_equal(read_idx(str(path)), labels)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path: Path, gz: bool) -> None:
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:-10]
    path = tmp_path / ("short-idx3-ubyte.gz" if gz else "short-idx3-ubyte")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*truncated"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "header-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:9])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*truncated"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*corrupt"):
        read_idx(path)


@pytest.mark.parametrize(
    ("magic", "message"),
    [
        (0x01000801, "magic number 0x01000801"),  # first bytes not zero
        (0x00000A01, "unknown element type 0x0A"),
        (0x00000800, "number of dimensions is 0"),
    ],
)
def test_read_idx_bad_magic(tmp_path: Path, magic: int, message: str) -> None:
    path = write_idx(tmp_path / "bad-idx1-ubyte", np.zeros(4, dtype=np.uint8), magic=magic)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*{message}"):
        read_idx(path)


def test_read_idx_not_idx(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(b"hello, world\n")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    data = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*gzip.*truncated"):
        read_idx(path)


def test_read_idx_bad_gzip_header(tmp_path: Path) -> None:
    path = tmp_path / "badheader.gz"
    path.write_bytes(b"\x1f\x8b\x07" + b"\x00" * 20)  # compression method 7 is not deflate
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*gzip"):
        read_idx(path)


def test_read_idx_corrupt_deflate(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    data[10:16] = b"\xff" * 6  # garbage at the start of the deflate stream
    path = tmp_path / "garbled.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*gzip"):
        read_idx(path)


# ---------------------------------------------------------------------------
# load_mnist error paths
# ---------------------------------------------------------------------------


def _write_fake_mnist(directory: Path, *, gz: bool = True, n_train: int = 6) -> None:
    """Write four small, valid IDX files under the canonical MNIST names."""
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    shapes = {
        "train-images-idx3-ubyte": (n_train, 28, 28),
        "train-labels-idx1-ubyte": (n_train,),
        "t10k-images-idx3-ubyte": (4, 28, 28),
        "t10k-labels-idx1-ubyte": (4,),
    }
    for name, shape in shapes.items():
        array = rng.integers(0, 10, size=shape, dtype=np.uint8)
        write_idx(directory / f"{name}{suffix}", array, gz=gz)


def test_load_mnist_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as info:
        load_mnist(missing)
    message = str(info.value)
    assert "does not exist" in message
    assert "train-images-idx3-ubyte" in message
    assert "FASTBP_DATA" in message
    assert "path=" in message


def test_load_mnist_missing_files(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte" not in message
    assert "FASTBP_DATA" in message


def test_load_mnist_missing_files_via_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_mnist()


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_checksum_mismatch(tmp_path: Path, gz: bool) -> None:
    _write_fake_mnist(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    form = "gz" if gz else "raw"
    expected = MNIST_FILES["train-images-idx3-ubyte"][form]
    pattern = rf"{re.escape(str(tmp_path / name))}.*corrupt or truncated.*{expected}"
    with pytest.raises(ValueError, match=pattern):
        load_mnist(tmp_path)


def test_load_mnist_unverified_wrong_shape(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*shape"):
        load_mnist(tmp_path, verify=False)


def test_load_mnist_unverified_truncated(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*truncated"):
        load_mnist(tmp_path, verify=False)


def test_load_mnist_copied_real_file_under_wrong_name(tmp_path: Path) -> None:
    # A genuine MNIST file under another canonical name fails verification.
    bundled = Path(datasets.__file__).parent / "data"
    _write_fake_mnist(tmp_path)
    shutil.copyfile(bundled / "t10k-labels-idx1-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz")
    shutil.copyfile(bundled / "t10k-images-idx3-ubyte.gz", tmp_path / "train-images-idx3-ubyte.gz")
    target = tmp_path / "train-images-idx3-ubyte.gz"
    with pytest.raises(ValueError, match=rf"{re.escape(str(target))}.*SHA-256"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("split", ["nielsen", "Standard", ""])
def test_load_mnist_unknown_split(tmp_path: Path, split: str) -> None:
    with pytest.raises(ValueError, match=r"split.*'standard', 'book'"):
        load_mnist(tmp_path, split=split)


@pytest.mark.parametrize(
    "dtype", ["float16", "int32", np.uint8, "complex128", "not-a-dtype", None, "f4,f4"]
)
def test_load_mnist_unknown_dtype(tmp_path: Path, dtype: object) -> None:
    with pytest.raises(ValueError, match="dtype"):
        load_mnist(tmp_path, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float16", "int64", "not-a-dtype"])
def test_load_mini_mnist_unknown_dtype(dtype: object) -> None:
    with pytest.raises(ValueError, match="dtype"):
        load_mini_mnist(dtype=dtype)


# ---------------------------------------------------------------------------
# data_dir
# ---------------------------------------------------------------------------


def test_data_dir_argument_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "env"))
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_data_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"


def test_data_dir_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_IS_WINDOWS", False)
    monkeypatch.setenv("FASTBP_DATA", "")  # empty means unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "fastbp" / "mnist"

    monkeypatch.delenv("FASTBP_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "fastbp" / "mnist"

    # A relative XDG_CACHE_HOME is ignored, as the XDG specification requires.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert data_dir() == tmp_path / "home" / ".cache" / "fastbp" / "mnist"


def test_data_dir_cache_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_IS_WINDOWS", True)
    monkeypatch.delenv("FASTBP_DATA", raising=False)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert data_dir() == tmp_path / "local" / "fastbp" / "mnist"


def test_data_dir_default_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_IS_WINDOWS", False)
    monkeypatch.delenv("FASTBP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "fastbp" / "mnist"))):
        load_mnist()
