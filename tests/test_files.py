"""Model files: round trips, atomic writes, every way a file can be wrong, the book's JSON."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest

from fastbp import Network, _storage, files


@pytest.fixture
def net():
    return Network([6, 5, 4, 3], activation=["relu", "elu"], alpha=0.3, cost="log-likelihood",
                   seed=2)  # fmt: skip


def write_model(path, header, params):
    """A model file with an arbitrary header and parameters (for the error cases)."""
    buffer = io.BytesIO()
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buffer, header=raw, params=params)
    path.write_bytes(buffer.getvalue())
    return path


def header_of(net):
    return {
        "format": _storage.FORMAT, "format_version": _storage.FORMAT_VERSION, "fastbp_version": "x",
        "sizes": list(net.sizes), "activations": list(net.activations), "cost": net.cost.name,
        "alpha": net.alpha, "dtype": net.dtype.name,
        "sha256": hashlib.sha256(net.params.tobytes() + net._bn_stats.tobytes()).hexdigest(),
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_gives_bitwise_the_same_predictions(tmp_path, dtype):
    net = Network([6, 5, 3], activation="tanh", cost="cross_entropy", seed=1, dtype=dtype)
    X = np.random.default_rng(0).random((20, 6))
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert repr(loaded) == repr(net)
    assert loaded.params.tobytes() == net.params.tobytes()
    assert loaded.feedforward(X).tobytes() == net.feedforward(X).tobytes()


def test_loaded_network_keeps_its_options(tmp_path, net):
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert loaded.activations == ("relu", "elu", "softmax")
    assert loaded.alpha == 0.3 and loaded.cost.name == "log_likelihood"


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, net, monkeypatch):
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()
    net.params[:] = 0

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda h, p: ({**h, "format": "other"}, p), "wrong format name"),
        (lambda h, p: ({**h, "format_version": 99}, p), "newer than this fastbp reads"),
        (lambda h, p: ({**h, "sizes": "784"}, p), "'sizes'"),
        (lambda h, p: ({**h, "sizes": [6, 5, 0, 3]}, p), "bad architecture"),
        (lambda h, p: ({**h, "activations": ["relu", "softmax", "softmax"]}, p), "architecture"),
        (lambda h, p: ({**h, "activations": ["relu"]}, p), "one activation per layer"),
        (lambda h, p: ({**h, "dtype": "float16"}, p), "bad architecture"),
        (lambda h, p: (h, p[:-1]), "do not match the architecture"),
        (lambda h, p: (h, p.astype(np.float64)), "do not match the architecture"),
        (lambda h, p: (h, p + 1), "SHA-256"),
    ],
)
def test_every_wrong_field_is_named(tmp_path, net, change, match):
    header, params = change(header_of(net), net.params.copy())
    path = write_model(tmp_path / "bad.npz", header, params)
    with pytest.raises(ValueError, match=match):
        Network.load(path)


def test_non_finite_weights_are_refused(tmp_path, net):
    net.params[3] = np.nan
    path = write_model(tmp_path / "nan.npz", header_of(net), net.params)
    with pytest.raises(ValueError, match="NaN or infinity"):
        Network.load(path)


def test_not_a_model_file(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"junk\.npz: not a valid fastbp model file"):
        Network.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="expected arrays 'header' and 'params'"):
        Network.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.npz")


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, header=np.array([{"format": _storage.FORMAT}], dtype=object), params=np.zeros(3))
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        Network.load(path)


def test_fuzzed_files_load_correctly_or_fail_clearly(tmp_path, net):
    path = tmp_path / "m.npz"
    net.save(path)
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(300):
        data = bytearray(good)
        if trial % 3 == 0:
            data = data[: rng.integers(0, len(data))]
        else:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(0, len(data))] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        try:
            loaded = Network.load(path)
        except ValueError as exc:
            assert "m.npz: not a valid fastbp model file" in str(exc)
            outcomes["refused"] += 1
        else:
            assert loaded.params.tobytes() == net.params.tobytes()
            assert loaded.activations == net.activations
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 100


def test_the_books_network2_json_round_trip(tmp_path):
    net = Network([4, 3, 2], cost="cross_entropy", seed=5, dtype="float64")
    files.export_network2(net, tmp_path / "net.json")
    data = json.loads((tmp_path / "net.json").read_text())
    assert data["cost"] == "CrossEntropyCost" and data["sizes"] == [4, 3, 2]
    assert np.asarray(data["biases"][0]).shape == (3, 1)  # the book's columns
    back = files.import_network2(tmp_path / "net.json")
    assert back.params.tobytes() == net.params.tobytes() and back.cost.name == "cross_entropy"


def test_importing_what_the_books_code_writes(tmp_path):
    # network2.py's Network.save: {"sizes", "weights": [w.tolist()], "biases": [b.tolist()],
    # "cost": str(self.cost.__name__)}, biases being (n, 1) columns.
    rng = np.random.default_rng(1)
    sizes = [3, 4, 2]
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    biases = [rng.standard_normal((4, 1)), rng.standard_normal((2, 1))]
    payload = {"sizes": sizes, "weights": [w.tolist() for w in weights],
               "biases": [b.tolist() for b in biases], "cost": "QuadraticCost"}  # fmt: skip
    (tmp_path / "book.json").write_text(json.dumps(payload))
    net = files.import_network2(tmp_path / "book.json")
    x = rng.random(3)
    a = x
    for w, b in zip(weights, biases, strict=True):
        a = 1 / (1 + np.exp(-(w @ a + b[:, 0])))
    np.testing.assert_allclose(net.feedforward(x), a, rtol=1e-12)


def test_network2_export_refuses_what_the_book_cannot_run(tmp_path, net):
    with pytest.raises(ValueError, match="sigmoid networks"):
        files.export_network2(net, tmp_path / "x.json")
    (tmp_path / "bad.json").write_text('{"sizes": [2, 2], "weights": [], "biases": []}')
    with pytest.raises(ValueError, match="expected the keys"):
        files.import_network2(tmp_path / "bad.json")
