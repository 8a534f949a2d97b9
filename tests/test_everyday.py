"""The everyday API (issue 22, part 3): one spelling per option across ``fit``, ``SGD``, the
command line and the files; predictions on one sample; ``uint8`` images; Keras's npz names;
stopping from a callback; ``verbose``; ``summary`` and ``repr``; the history's values and
costs."""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from fastbp import Network, StopTraining, cli, training
from fastbp.cli.parser import build_parser
from fastbp.cli.train import NO_OPTION
from fastbp.datasets import load_mini_mnist
from fastbp.progress import epoch_line

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def small():
    (X, y), (X_val, y_val) = load_mini_mnist()
    return X[:200], y[:200], X_val[:100], y_val[:100]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {"": parser, **sub.choices}


# --- one spelling per option ---------------------------------------------------------------


def test_lr_and_eta_are_one_option(small):
    X, y, _, _ = small
    a, b = Network([784, 12, 10], seed=2), Network([784, 12, 10], seed=2)
    a.fit(X, y, epochs=1, batch_size=10, lr=0.5)
    b.fit(X, y, epochs=1, batch_size=10, eta=0.5)
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(TypeError, match=r"^eta: .*once"):
        a.fit(X, y, epochs=1, batch_size=10, lr=0.5, eta=0.5)
    with pytest.raises(TypeError, match=r"^lr: missing"):
        a.fit(X, y, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match=r"^eta: expected a positive"):  # named as given
        a.fit(X, y, epochs=1, batch_size=10, eta=-1.0)
    np.testing.assert_array_equal(a.params, b.params)  # refused before any change


def test_cli_lr_and_eta_are_one_option():
    parser = build_parser()
    assert parser.parse_args(["train", "--lr", "0.5"]).lr == 0.5
    assert parser.parse_args(["train", "--eta", "0.5"]).lr == 0.5


def test_names_take_hyphens_everywhere():
    a = Network([4, 3, 2], activation="leaky-relu", output="leaky-relu", init="he")
    b = Network([4, 3, 2], activation="leaky_relu", output="leaky_relu", init="he")
    assert a.activations == b.activations == ("leaky_relu", "leaky_relu")
    assert repr(a) == repr(b)
    assert Network([4, 3, 2], cost="cross-entropy").cost.name == "cross_entropy"
    assert Network([4, 3, 3, 2], activation=["leaky-relu", "elu"]).activations[0] == "leaky_relu"
    args = build_parser().parse_args(
        ["train", "--activation", "leaky-relu", "--output", "leaky-relu", "--cost",
         "log-likelihood", "--init", "he", "--bias-init", "zeros"]
    )  # fmt: skip
    assert (args.output, args.cost) == ("leaky_relu", "log_likelihood")


def test_every_network_and_fit_keyword_has_a_cli_option_or_a_reason():
    train = subcommands()["train"]
    options = {s for a in train._actions for s in a.option_strings}
    names = set(inspect.signature(Network).parameters)
    names |= set(inspect.signature(Network.fit).parameters) - {"self"}
    missing = [
        n for n in sorted(names) if f"--{n.replace('_', '-')}" not in options and n not in NO_OPTION
    ]
    assert missing == []
    assert all(reason for reason in NO_OPTION.values())


def test_every_cli_option_has_help_and_is_in_the_readme():
    readme = README.read_text()
    for command, parser in subcommands().items():
        for action in parser._actions:
            if not action.option_strings:
                continue
            assert action.help, f"fastbp {command} {action.option_strings}: no help text"
            for option in action.option_strings:
                if option.startswith("--"):
                    assert f"`{option}" in readme or f" {option}" in readme, (command, option)


def test_cli_monitor_training_is_switchable(capsys, tmp_path):
    common = ("train", "--epochs", "1", "--json", "--sizes", "784,10,10")
    status, out, err = run(capsys, *common, "--no-monitor-training")
    assert status == 0, err
    assert "train_cost" not in json.loads(out) and "val_cost" in json.loads(out)
    status, out, err = run(capsys, *common)
    assert status == 0, err
    assert "train_cost" in json.loads(out)


def test_cli_new_options_reach_fit(capsys):
    status, out, err = run(
        capsys, "train", "--epochs", "1", "--json", "--sizes", "784,10,10", "--optimizer",
        "adam", "--betas", "0.8,0.99", "--eps", "1e-7", "--lr", "0.01", "--no-shuffle",
        "--activation", "leaky-relu", "--alpha", "0.05", "--bias-init", "zeros",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["lr"] == [0.01]
    status, _, err = run(capsys, "train", "--epochs", "1", "--betas", "0.8")
    assert status == cli.EXIT_ERROR and "--betas" in err
    status, _, err = run(capsys, "train", "--epochs", "1", "--patience", "0", "--schedule", "halve")
    assert status == cli.EXIT_ERROR and err.startswith("fastbp: error: --patience: ")


# --- predictions, inputs and data files ----------------------------------------------------


def test_predict_one_sample(small):
    X = small[0][:5]
    net = Network([784, 10, 10], seed=1)
    batch = net.predict(X)
    one = net.predict(X[3])
    assert isinstance(one, int) and one == batch[3]
    assert net.predict(X[3].reshape(-1, 1)) == batch[3]  # the book's column
    single = Network([784, 5, 1], seed=1)
    assert single.predict(X[0]) == single.predict(X[:1])[0]


def test_uint8_images_are_scaled_in_the_api(small):
    X, y, _, _ = small
    pixels = np.round(X * 255).astype(np.uint8)
    scaled = pixels.astype(np.float32) / np.float32(255)
    a, b = Network([784, 12, 10], seed=2), Network([784, 12, 10], seed=2)
    ha = a.fit(pixels, y, epochs=1, batch_size=10, lr=1.0, validation_data=(pixels[:50], y[:50]))
    hb = b.fit(scaled, y, epochs=1, batch_size=10, lr=1.0, validation_data=(scaled[:50], y[:50]))
    np.testing.assert_array_equal(a.params, b.params)
    assert ha["val_correct"] == hb["val_correct"]
    np.testing.assert_array_equal(a.feedforward(pixels), b.feedforward(scaled))
    assert a.accuracy(pixels, y) == b.accuracy(scaled, y)
    # Every other type is taken as its values.
    ints = np.eye(784, dtype=np.int64)[:3]
    np.testing.assert_array_equal(a.feedforward(ints), a.feedforward(ints.astype(np.float32)))


def test_cli_reads_keras_names_and_scales_uint8(capsys, tmp_path, small):
    X, y, X_val, y_val = small
    path = tmp_path / "keras.npz"
    pixels = np.round(X * 255).astype(np.uint8).reshape(-1, 28, 28)
    test = np.round(X_val * 255).astype(np.uint8).reshape(-1, 28, 28)
    np.savez(path, x_train=pixels, y_train=y, x_test=test, y_test=y_val)
    status, out, err = run(capsys, "train", "--data", path, "--epochs", "0", "--seed", "4")
    assert status == 0, err
    assert "200 training and 100 validation images" in out
    net = Network([784, 30, 10], seed=4)
    assert f"classifies {net.accuracy(X_val, y_val):.2%} of the 100 validation" in out


def test_cli_refuses_other_formats_with_a_message_about_formats(capsys, tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text("5,0,0,0\n0,0,0,0\n")
    status, _, err = run(capsys, "train", "--data", path)
    assert status == cli.EXIT_ERROR
    assert "CSV file" in err and ".npz" in err and "X_train" in err
    assert "pickle" not in err


def test_epochs_0_says_what_it_did(capsys):
    status, out, err = run(capsys, "train", "--epochs", "0", "--seed", "5")
    assert status == 0, err
    assert not any(line.startswith("Epoch") for line in out.splitlines())
    (_, _), (X_val, y_val) = load_mini_mnist()
    acc = Network([784, 30, 10], seed=5).accuracy(X_val, y_val)
    assert f"no epoch trained (--epochs 0): the network as initialised classifies {acc:.2%}" in out


# --- the training loop: stopping, verbose, history -----------------------------------------


@pytest.mark.parametrize("how", ["return False", "raise StopTraining"])
def test_a_callback_stops_training(small, how):
    X, y, X_val, y_val = small

    def stop_after_1(net, epoch, history):
        if epoch == 1:
            if how == "return False":
                return False
            raise StopTraining
        return None  # goes on

    a, b = Network([784, 12, 10], seed=3), Network([784, 12, 10], seed=3)
    options = dict(batch_size=10, lr=1.0, validation_data=(X_val, y_val), seed=1)
    history = a.fit(X, y, epochs=5, callback=stop_after_1, **options)
    expected = b.fit(X, y, epochs=2, **options)
    assert history["epoch"] == [0, 1]
    assert history["val_correct"] == expected["val_correct"]
    np.testing.assert_array_equal(a.params, b.params)


def test_verbose_prints_the_cli_line(small, capsys):
    X, y, X_val, y_val = small
    net = Network([784, 12, 10], seed=3)
    history = net.fit(
        X, y, epochs=2, batch_size=10, lr=1.0, validation_data=(X_val, y_val), lmbda=1.0,
        monitor_training=True, verbose=True,
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines == [epoch_line(history, i, len(X), len(X_val)) for i in range(2)]
    assert re.match(
        r"Epoch 0: train cost [\d.]+ \| val cost [\d.]+, \d+ / 100 .* penalty", lines[0]
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verbose_draws_a_progress_bar_on_a_terminal(small, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    X, y, _, _ = small
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    Network([784, 12, 10], seed=3).fit(X, y, epochs=2, batch_size=10, lr=1.0, verbose=True)
    assert "/2 [" in terminal.getvalue() and "epoch/s" in terminal.getvalue()


class _Bar:
    """Records what the trainer does with a progress bar."""

    def __init__(self, total: int, unit: str = "epoch") -> None:
        self.unit, self.totals, self.updates = unit, [total], []

    def reset(self, total: int) -> None:
        self.totals.append(total)

    def update(self, k: int) -> None:
        self.updates.append(k)

    def write(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_progress_bar_inside_epochs_changes_nothing(small, monkeypatch, optimizer):
    X, y, _, _ = small
    bars = []
    monkeypatch.setattr(training, "progress_bar", lambda *a: bars.append(_Bar(*a)) or bars[-1])
    options = dict(epochs=2, batch_size=3, lr=0.01, optimizer=optimizer, seed=2)
    a, b = Network([784, 12, 10], seed=3), Network([784, 12, 10], seed=3)
    a.fit(X, y, batch_progress=True, **options)
    (bar,) = bars
    assert bar.unit == "batch" and bar.totals == [67, 67, 67]  # ⌈200/3⌉ mini-batches
    assert sum(bar.updates) == 2 * 67 and len(bar.updates) <= 2 * training.BATCH_PROGRESS_PARTS
    b.fit(X, y, **options)
    np.testing.assert_array_equal(a.params, b.params)


def test_batch_progress_draws_on_a_terminal(small, monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    X, y, _, _ = small
    Network([784, 12, 10], seed=3).fit(X, y, epochs=1, batch_size=3, lr=0.1, batch_progress=True)
    assert "/67 [" in terminal.getvalue() and "batch/s" in terminal.getvalue()


def test_history_values_are_python_numbers(small):
    X, y, X_val, y_val = small
    net = Network([784, 12, 10], seed=3)
    history = net.fit(
        X, y, epochs=3, batch_size=10, lr=0.01, validation_data=(X_val, y_val), lmbda=0.5,
        monitor_training=True, schedule="halve", patience=1, monitor_gradients=True,
    )  # fmt: skip
    assert history["lr"][0] == 0.01  # not float32's 0.009999999776482582
    assert all(lr in (0.01, 0.005, 0.0025) for lr in history["lr"])
    for key, values in history.items():
        for v in values:
            items = v if key.startswith("grad_norm") else [v]
            assert all(type(x) in (int, float) for x in items), (key, v)
    assert json.loads(json.dumps(history)) == history


def test_validation_and_training_costs_are_on_the_same_footing(small):
    X, y, _, _ = small
    net = Network([784, 12, 10], seed=3)
    # The same data as training and validation set: the same cost, whatever their sizes.
    history = net.fit(
        X, y, epochs=1, batch_size=10, lr=1.0, lmbda=5.0, validation_data=(X, y),
        monitor_training=True,
    )  # fmt: skip
    assert history["val_cost"] == history["train_cost"]
    weights = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in net.weights)
    assert history["penalty"][0] == pytest.approx(0.5 * 5.0 / len(X) * weights)
    no_penalty = Network([784, 12, 10], seed=3).fit(
        X, y, epochs=1, batch_size=10, lr=1.0, validation_data=(X, y)
    )
    assert "penalty" not in no_penalty


# --- summary and repr ----------------------------------------------------------------------


def test_summary_lists_layers_and_parameters():
    net = Network([6, 5, 5, 3, 2], activation="relu", batch_norm=True, residual=True, seed=1)
    text = net.summary()
    lines = text.splitlines()
    rows = [line.split() for line in lines[2:6]]
    counts = [int(row[-1].replace(",", "")) for row in rows[1:]]
    assert counts == [net.layout.count(l) for l in range(1, 4)]
    assert sum(net.layout.count(l) for l in range(1, 5)) == net.params.size
    assert f"total parameters: {net.params.size:,}" in text
    assert "identity" in lines[4] and "projected" in lines[5] and "yes" in lines[3]
    assert "cost quadratic, init gaussian" in text


def test_repr_distinguishes_networks_that_differ():
    variants = [
        {}, {"init": "he"}, {"init": "he", "bias_init": "gaussian"}, {"activation": "elu"},
        {"activation": "elu", "alpha": 0.5}, {"batch_norm": True}, {"residual": True},
        {"output": "softmax"}, {"cost": "cross_entropy"}, {"dtype": "float64"},
    ]  # fmt: skip
    reprs = {repr(Network([4, 3, 3, 2], **v)) for v in variants}
    assert len(reprs) == len(variants)
