"""The ``fastbp`` command: ``main(argv)`` in-process, and ``python -m fastbp`` for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp
from fastbp import Network, cli
from fastbp.datasets import load_mini_mnist

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000  # a drawn figure, not an empty canvas


def assert_one_line_error(status: int, err: str) -> None:
    assert status == cli.EXIT_ERROR
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastbp: error: ")
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def mini():
    return load_mini_mnist()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "model.npz"
    assert cli.main(["train", "--epochs", "2", "--save", str(path), "--json"]) == 0
    return path


# --- train ---------------------------------------------------------------------------------


def test_train_prints_one_line_per_epoch(capsys):
    status, out, err = run(capsys, "train", "--epochs", "2")
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 2
    for line in lines:
        for part in ("train cost", "val cost", "/ 2000", " s, ", "samples/s"):
            assert part in line
    assert "bundled mini MNIST: 8000 training and 2000 validation images" in out


def test_no_command_means_train(capsys):
    assert cli._with_default_command([]) == ["train"]
    assert cli._with_default_command(["--debug", "--epochs", "1"]) == [
        "--debug",
        "train",
        "--epochs",
        "1",
    ]
    assert cli._with_default_command(["info"]) == ["info"]
    status, out, _ = run(capsys, "--epochs", "1")
    assert status == 0
    assert "Epoch 0:" in out


def test_train_json_is_the_history(capsys):
    status, out, err = run(capsys, "train", "--epochs", "2", "--json", "--seed", "3")
    assert status == 0, err
    history = json.loads(out)
    assert history["epoch"] == [0, 1]
    for key in ("train_cost", "val_cost", "val_accuracy", "train_accuracy", "seconds"):
        assert len(history[key]) == 2
    assert all(0 <= a <= 1 for a in history["val_accuracy"])
    # the same run through the API gives the same history
    (X, y), (X_val, y_val) = load_mini_mnist()
    net = Network([784, 30, 10], seed=3)
    expected = net.fit(
        X, y, epochs=2, batch_size=10, lr=3.0, validation_data=(X_val, y_val),
        monitor_training=True,
    )  # fmt: skip
    assert history["val_correct"] == expected["val_correct"]
    assert history["train_cost"] == pytest.approx(expected["train_cost"], rel=1e-12)


def test_train_options_reach_the_network(capsys, tmp_path):
    path = tmp_path / "net.npz"
    status, _, err = run(
        capsys, "train", "--epochs", "1", "--sizes", "784,20,16,10", "--activation", "relu,tanh",
        "--cost", "log-likelihood", "--init", "he", "--optimizer", "momentum", "--eta", "0.05",
        "--lmbda", "1", "--dropout", "0.1", "--clip-norm", "5", "--dtype", "float64",
        "--threads", "1", "--save", path,
    )  # fmt: skip
    assert status == 0, err
    net = Network.load(path)
    assert list(net.sizes) == [784, 20, 16, 10]
    assert net.activations == ("relu", "tanh", "softmax")
    assert net.cost.name == "log_likelihood"
    assert net.dtype == np.float64


def test_train_checkpoint_and_resume_match_an_uninterrupted_run(capsys, tmp_path):
    ck = str(tmp_path / "ck.npz")
    status, _, _ = run(capsys, "train", "--epochs", "2", "--checkpoint", ck, "--json")
    assert status == 0
    status, out, _ = run(capsys, "train", "--epochs", "3", "--resume", ck, "--json")
    assert status == 0
    resumed = json.loads(out)
    status, out, _ = run(capsys, "train", "--epochs", "3", "--json")
    whole = json.loads(out)
    del resumed["seconds"], whole["seconds"]
    assert resumed == whole
    status, _, err = run(capsys, "train", "--epochs", "3", "--resume", ck, "--batch-size", "20")
    assert_one_line_error(status, err)


def test_train_pretrain_reports_each_hidden_layer(capsys):
    status, out, _ = run(capsys, "train", "--sizes", "784,20,20,10", "--pretrain", "1",
                         "--epochs", "1", "--init", "scaled")  # fmt: skip
    assert status == 0
    assert out.count("pre-trained hidden layer") == 2


def test_train_deep_network_options_and_gradient_monitoring(capsys, tmp_path):
    png = tmp_path / "norms.png"
    status, out, _ = run(capsys, "train", "--sizes", "784,20,20,10", "--batch-norm", "--residual",
                         "--monitor-gradients", "--epochs", "1", "--plot", str(png))  # fmt: skip
    assert status == 0
    assert "batch_norm=True" in out and "residual=[False, True]" in out
    assert "‖∂C/∂b‖ per layer" in out
    assert_png(png)


def test_train_on_an_npz_archive(capsys, tmp_path, mini):
    (X, y), (X_test, y_test) = mini
    images = np.round(X[:500] * 255).astype(np.uint8).reshape(-1, 28, 28)
    path = tmp_path / "data.npz"
    np.savez(path, X_train=images, y_train=y[:500], X_test=X_test[:100], y_test=y_test[:100])
    status, out, err = run(capsys, "train", "--data", path, "--epochs", "1", "--json")
    assert status == 0, err
    assert len(json.loads(out)["val_cost"]) == 1
    assert "500 training and 100 validation images" in err

    np.savez(path, X_train=X[:10], y_train=y[:10])
    status, _, err = run(capsys, "train", "--data", path, "--epochs", "1")
    assert_one_line_error(status, err)
    assert "X_test" in err


def test_train_plot_writes_a_png(capsys, tmp_path):
    path = tmp_path / "curves.png"
    status, _, err = run(capsys, "train", "--epochs", "3", "--plot", path)
    assert status == 0, err
    assert_png(path)


def test_python_m_fastbp_runs_the_command(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(fastbp.__file__).parent.parent))
    done = subprocess.run(
        [sys.executable, "-m", "fastbp", "train", "--epochs", "1"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Epoch 0:" in done.stdout
    assert "%|" not in done.stderr and "Traceback" not in done.stderr  # no bar: not a tty
    bad = subprocess.run(
        [sys.executable, "-m", "fastbp", "evaluate", str(tmp_path / "missing.npz")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert bad.returncode == cli.EXIT_ERROR
    assert bad.stderr.strip().splitlines() == [
        f"fastbp: error: model file {tmp_path / 'missing.npz'} does not exist"
    ]


# --- evaluate ------------------------------------------------------------------------------


def test_evaluate_prints_accuracy_cost_and_confusion(capsys, model, mini):
    _, (X_test, y_test) = mini
    net = Network.load(model)
    status, out, err = run(capsys, "evaluate", model)
    assert status == 0, err
    correct = int(np.sum(net.predict(X_test) == y_test))
    assert f"accuracy: {correct} / 2000" in out
    assert f"cost (quadratic): {net.total_cost(X_test, y_test):.4f}" in out
    matrix = out.split("confusion matrix")[1].splitlines()[2:]
    assert len(matrix) == 10
    assert sum(int(v) for row in matrix for v in row.split()[1:]) == 2000

    status, out, _ = run(capsys, "evaluate", model, "--json")
    result = json.loads(out)
    m = np.array(result["confusion"])
    assert m.shape == (10, 10) and m.sum() == 2000
    assert np.trace(m) == correct
    assert np.array_equal(m.sum(axis=1), np.bincount(y_test, minlength=10))
    assert result["accuracy"] == pytest.approx(correct / 2000)


def test_evaluate_plot_draws_the_confusion_matrix(capsys, model, tmp_path):
    path = tmp_path / "confusion.png"
    status, _, err = run(capsys, "evaluate", model, "--plot", path)
    assert status == 0, err
    assert_png(path)


# --- predict -------------------------------------------------------------------------------


def test_predict_npy_one_image_and_a_batch(capsys, model, mini, tmp_path):
    _, (X_test, _) = mini
    net = Network.load(model)
    one, batch = tmp_path / "one.npy", tmp_path / "batch.npy"
    np.save(one, X_test[7])
    np.save(batch, X_test[:5].reshape(5, 28, 28))
    status, out, err = run(capsys, "predict", model, one)
    assert status == 0, err
    assert out.splitlines()[0] == f"class {net.predict(X_test[7:8])[0]}"
    assert "normalised to sum to 1" in out  # a sigmoid output, not softmax

    status, out, _ = run(capsys, "predict", model, batch, "--json")
    result = json.loads(out)
    assert result["classes"] == net.predict(X_test[:5]).tolist()
    assert np.allclose(np.sum(result["probabilities"], axis=1), 1)


@pytest.mark.parametrize("invert", [False, True])
def test_predict_png_matches_the_network(capsys, model, mini, tmp_path, invert):
    Image = pytest.importorskip("PIL.Image")
    _, (X_test, _) = mini
    net = Network.load(model)
    for i in range(5):
        pixels = np.round(X_test[i] * 255).astype(np.uint8).reshape(28, 28)
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - pixels if invert else pixels).save(path)
        status, out, err = run(capsys, "predict", model, path, "--json")
        assert status == 0, err
        assert json.loads(out)["classes"] == net.predict(X_test[i : i + 1]).tolist()


def test_predict_png_of_any_size(capsys, model, mini, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    _, (X_test, _) = mini
    pixels = np.round(X_test[0] * 255).astype(np.uint8).reshape(28, 28)
    path = tmp_path / "big.png"
    Image.fromarray(255 - pixels).convert("RGB").resize((140, 140)).save(path)
    status, out, err = run(capsys, "predict", model, path)
    assert status == 0, err
    assert out.startswith("class ")


# --- info ----------------------------------------------------------------------------------


def test_info(capsys):
    import numba

    from fastbp.datasets import data_dir

    status, out, _ = run(capsys, "info")
    assert status == 0
    assert f"fastbp:          {fastbp.__version__}" in out
    assert np.__version__ in out and numba.__version__ in out
    assert "threading layer:" in out and "threads:" in out
    assert "Numba cache:" in out
    assert str(data_dir()) in out
    assert "CUDA:" in out


def test_train_on_a_missing_gpu_is_a_one_line_error(capsys, monkeypatch):
    from numba import cuda

    monkeypatch.setattr(cuda, "is_available", lambda: False)
    status, _, err = run(capsys, "train", "--data", "mini", "--epochs", "1", "--device", "cuda")
    assert status == 2
    assert err.strip().count("\n") == 0
    assert "--device no usable NVIDIA GPU" in err


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--cost", "nope"],
        ["train", "--optimizer", "sgdx"],
        ["train", "--sizes", "784,x,10"],
        ["train", "--epochs", "many"],
        ["train", "--eta", "-1"],
        ["train", "--batch-size", "0"],
        ["train", "--activation", "bogus"],
        ["train", "--data", "no-such-file.npz"],
        ["train", "--dropout", "1.5"],
        ["predict"],
        ["frobnicate"],
    ],
)
def test_bad_usage_is_one_line(capsys, argv):
    status, _, err = run(capsys, *argv)
    assert_one_line_error(status, err)


def test_errors_name_the_option(capsys):
    _, _, err = run(capsys, "train", "--eta", "-1")
    assert err.startswith("fastbp: error: --lr: ")
    _, _, err = run(capsys, "train", "--batch-size", "0")
    assert err.startswith("fastbp: error: --batch-size: ")


def test_missing_and_corrupt_model_files(capsys, tmp_path, model):
    status, _, err = run(capsys, "evaluate", tmp_path / "missing.npz")
    assert_one_line_error(status, err)
    assert "does not exist" in err

    corrupt = tmp_path / "corrupt.npz"
    data = bytearray(model.read_bytes())
    corrupt.write_bytes(bytes(data[: len(data) // 2]))
    for argv in (["evaluate", corrupt], ["predict", corrupt, corrupt]):
        status, _, err = run(capsys, *argv)
        assert_one_line_error(status, err)
        assert str(corrupt) in err

    junk = tmp_path / "junk.npz"
    junk.write_text("not a model")
    status, _, err = run(capsys, "evaluate", junk)
    assert_one_line_error(status, err)


def test_bad_prediction_inputs(capsys, tmp_path, model):
    status, _, err = run(capsys, "predict", model, tmp_path / "missing.npy")
    assert_one_line_error(status, err)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros(100))
    status, _, err = run(capsys, "predict", model, wrong)
    assert_one_line_error(status, err)
    assert "784" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        cli.main(["--debug", "evaluate", str(tmp_path / "missing.npz")])
    with pytest.raises(FileNotFoundError):
        cli.main(["evaluate", str(tmp_path / "missing.npz"), "--debug"])


def test_missing_matplotlib_is_a_clear_message(capsys, monkeypatch, tmp_path, model):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    path = tmp_path / "curves.png"
    status, out, err = run(capsys, "train", "--epochs", "1", "--plot", path)
    assert_one_line_error(status, err)
    assert "matplotlib" in err and "fastbp[plot]" in err
    assert "Epoch" not in out  # it failed before training
    assert not path.exists()
    status, _, err = run(capsys, "evaluate", model, "--plot", path)
    assert_one_line_error(status, err)


def test_missing_pillow_is_a_clear_message(capsys, monkeypatch, tmp_path, model):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    path = tmp_path / "digit.png"
    path.write_bytes(PNG_MAGIC)
    status, _, err = run(capsys, "predict", model, path)
    assert_one_line_error(status, err)
    assert "Pillow" in err and "fastbp[image]" in err


def test_help_and_version(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "train" in out and "evaluate" in out
    status, out, _ = run(capsys, "train", "--help")
    assert status == 0 and "--batch-size" in out and "--plot" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and fastbp.__version__ in out
