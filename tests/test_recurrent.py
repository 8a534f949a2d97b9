"""RecurrentNetwork: BPTT against a NumPy reference, central differences, PyTorch, the trainer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from fastbp import RecurrentNetwork
from fastbp.datasets import adding_problem

from .naive_recurrent import outputs_and_gradient

CELLS = ["rnn", "lstm", "gru"]


def _data(n=5, T=6, d=3, n_out=2, many=False, output="softmax", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, d))
    if output == "softmax":
        y = rng.integers(0, n_out, (n, T) if many else n)
    elif output == "sigmoid":
        y = rng.uniform(0.1, 0.9, (n, T, n_out) if many else (n, n_out))
    else:
        y = rng.standard_normal((n, T, n_out) if many else (n, n_out))
    return X, y


def _net(cell, *, hidden=(4, 3), output="softmax", many=False, bptt=None, dtype="float64"):
    return RecurrentNetwork(3, list(hidden), 2, cell=cell, output=output, many_to_many=many,
                            bptt=bptt, seed=3, dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("many", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
def test_gradient_equals_the_numpy_bptt_reference(cell, many, ragged):
    net = _net(cell, many=many)
    X, y = _data(many=many)
    lengths = np.array([6, 1, 3, 6, 4]) if ragged else np.full(5, 6)
    Y = net._targets(y, X)
    out, grad, norms = outputs_and_gradient(net, net.params, X, Y, lengths)
    assert np.abs(net.gradient(X, y, lengths) - grad / 5).max() < 1e-10
    got = net.feedforward(X, lengths)
    if many:
        mask = np.arange(6)[None, :] < lengths[:, None]
        assert np.abs((got - out) * mask[..., None]).max() < 1e-12
    else:
        assert np.abs(got - out[:, 0]).max() < 1e-12
    assert np.abs(net.gradient_norms(X, y, lengths) - np.sqrt(norms) / 5).max() < 1e-12


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_equals_the_reference(cell):
    net = _net(cell, many=True, bptt=2)
    X, y = _data(many=True)
    Y = net._targets(y, X)
    _, grad, _ = outputs_and_gradient(net, net.params, X, Y, np.full(5, 6), bptt=2)
    _, full, _ = outputs_and_gradient(net, net.params, X, Y, np.full(5, 6))
    assert np.abs(net.gradient(X, y) - grad / 5).max() < 1e-10
    assert np.abs(grad - full).max() > 1e-6  # the cut changes the gradient


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("output", ["softmax", "linear", "sigmoid"])
@pytest.mark.parametrize("many", [False, True])
def test_gradient_equals_central_differences(cell, output, many):
    net = _net(cell, hidden=(3,), output=output, many=many)
    X, y = _data(n=3, T=4, output=output, many=many)
    lengths = np.array([4, 2, 3])
    grad = net.gradient(X, y, lengths)
    eps = 1e-6
    numeric = np.empty_like(grad)
    for i in range(grad.size):
        old = net.params[i]
        net.params[i] = old + eps
        up = net.cost_of(X, y, lengths)
        net.params[i] = old - eps
        down = net.cost_of(X, y, lengths)
        net.params[i] = old
        numeric[i] = (up - down) / (2 * eps)
    assert np.abs(grad - numeric).max() < 1e-8


def test_padding_changes_nothing():
    net = _net("lstm")
    X, y = _data()
    lengths = np.array([6, 1, 3, 6, 4])
    Z = X.copy()
    for k, n in enumerate(lengths):
        Z[k, n:] = 123.0
    assert np.array_equal(net.gradient(X, y, lengths), net.gradient(Z, y, lengths))
    assert np.array_equal(net.feedforward(X, lengths), net.feedforward(Z, lengths))


def test_lstm_forget_bias_starts_at_one():
    net = RecurrentNetwork(3, 5, 2, cell="lstm", seed=0)
    b = net.layers[0]["b"]
    assert np.all(b[5:10] == 1) and not np.any(b[:5] == 1)
    assert np.all(RecurrentNetwork(3, 5, 2, forget_bias=2.5).layers[0]["b"][5:10] == 2.5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_initialisation_spreads_the_memories(cell):
    net = RecurrentNetwork(3, [40, 30], 2, cell=cell, chrono=50, seed=0)
    for layer, h in zip(net.layers[:2], (40, 30), strict=True):
        keep = layer["b"][h : 2 * h]  # the forget gate (LSTM), the update gate (GRU)
        assert np.all(keep >= 0) and np.all(keep <= np.log(49)) and np.ptp(keep) > 1
        if cell == "lstm":
            assert np.array_equal(layer["b"][:h], -keep)  # the input gate
    again = RecurrentNetwork(3, [40, 30], 2, cell=cell, chrono=50, seed=0)
    assert np.array_equal(net.params, again.params)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "rnn", "chrono": 10}, "chrono: the chrono initialisation needs gates"),
        ({"chrono": 2}, "chrono: expected at least 3"),
        ({"chrono": 10.5}, "chrono"),
        ({"chrono": 10, "forget_bias": 2.0}, "chrono: give either"),
    ],
)
def test_chrono_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecurrentNetwork(3, 5, 2, **kwargs)


def test_remembering_gates_keep_the_gradient_over_a_hundred_steps():
    """At initialisation on the adding problem (T = 100), ‖∂C/∂hₜ‖ at the first step is
    within 10× of the last step's when the gates start remembering (an LSTM with forget bias
    3, a GRU with the chrono initialisation), and more than 1000× smaller for the tanh RNN
    and the LSTM with forget bias 1 (its cell path is scaled by σ(1) ≈ 0.73 per step)."""
    X, y = adding_problem(64, 100, seed=0, dtype="float64")

    def fall(**kwargs):
        net = RecurrentNetwork(2, 32, 1, output="linear", seed=3, dtype="float64", **kwargs)
        norms = net.gradient_norms(X, y)[0]
        return norms[-1] / norms[0]

    assert fall(forget_bias=3.0) < 10
    assert fall(cell="gru", chrono=100) < 10
    assert fall() > 1000
    assert fall(cell="rnn") > 1000


# --- PyTorch -------------------------------------------------------------------------------


def _torch_model(net, torch):
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[net.cell]
    d, *hidden, n_out = net.widths
    rnn = kind(d, hidden[0], num_layers=len(hidden), batch_first=True).double()
    linear = torch.nn.Linear(hidden[-1], n_out).double()
    with torch.no_grad():
        for l, layer in enumerate(net.layers[:-1]):
            W, b = layer["W"], layer["b"]
            n_in = W.shape[0] - hidden[l]
            getattr(rnn, f"weight_ih_l{l}").copy_(torch.from_numpy(W[:n_in].T.copy()))
            getattr(rnn, f"weight_hh_l{l}").copy_(torch.from_numpy(W[n_in:].T.copy()))
            getattr(rnn, f"bias_ih_l{l}").copy_(torch.from_numpy(b.copy()))
            b_hh = np.zeros_like(b)
            if net.cell == "gru":
                b_hh[2 * hidden[l] :] = layer["b_hn"]
            getattr(rnn, f"bias_hh_l{l}").copy_(torch.from_numpy(b_hh))
            # fastbp has one bias where PyTorch has two: train only bias_ih (and b_hn).
            mask = torch.from_numpy((b_hh != 0).astype(np.float64) if net.cell == "gru" else b_hh)
            getattr(rnn, f"bias_hh_l{l}").register_hook(lambda g, mask=mask: g * mask)
        linear.weight.copy_(torch.from_numpy(net.layers[-1]["V"].T.copy()))
        linear.bias.copy_(torch.from_numpy(net.layers[-1]["c"].copy()))
    return rnn, linear


def _torch_gradient(net, rnn, linear, torch):
    grads = []
    for l in range(len(net.layers) - 1):
        g_ih = getattr(rnn, f"weight_ih_l{l}").grad.numpy().T
        g_hh = getattr(rnn, f"weight_hh_l{l}").grad.numpy().T
        parts = [np.concatenate([g_ih, g_hh]).ravel(), getattr(rnn, f"bias_ih_l{l}").grad.numpy()]
        if net.cell == "gru":
            parts.append(getattr(rnn, f"bias_hh_l{l}").grad.numpy()[2 * net.widths[l + 1] :])
        grads += parts
    grads += [linear.weight.grad.numpy().T.ravel(), linear.bias.grad.numpy()]
    return np.concatenate(grads)


def _torch_loss(rnn, linear, X, y, torch):
    out, _ = rnn(torch.from_numpy(X))
    logits = linear(out[:, -1])
    return torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="mean")


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_equals_pytorch(cell):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    net = _net(cell, hidden=(4, 4))
    X, y = _data()
    rnn, linear = _torch_model(net, torch)
    _torch_loss(rnn, linear, X, y, torch).backward()
    assert np.abs(net.gradient(X, y) - _torch_gradient(net, rnn, linear, torch)).max() < 1e-12


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_equal_pytorch(cell, optimizer):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    net = _net(cell, hidden=(4,))
    X, y = _data(n=6)
    rnn, linear = _torch_model(net, torch)
    params = [*rnn.parameters(), *linear.parameters()]
    lr = 0.1 if optimizer == "sgd" else 0.01
    step = torch.optim.SGD(params, lr=lr) if optimizer == "sgd" else torch.optim.Adam(params, lr=lr)
    for start in range(0, 6, 2):  # three mini-batches of two, in order
        step.zero_grad()
        _torch_loss(rnn, linear, X[start : start + 2], y[start : start + 2], torch).backward()
        step.step()
    net.fit(X, y, epochs=1, batch_size=2, lr=lr, optimizer=optimizer, shuffle=False)
    mine_rnn, mine_linear = _torch_model(net, torch)  # fastbp's parameters in PyTorch's layout
    theirs = [*rnn.named_parameters(), *linear.named_parameters()]
    mine = [*mine_rnn.named_parameters(), *mine_linear.named_parameters()]
    for (name, p), (_, q) in zip(theirs, mine, strict=True):
        assert np.abs(p.detach().numpy() - q.detach().numpy()).max() < 1e-12, name


# --- training ------------------------------------------------------------------------------


def _train(threads, dtype="float32", optimizer="adam", **kw):
    X, y = _data(n=40, T=5, seed=1)
    net = RecurrentNetwork(3, [8, 8], 2, cell="lstm", seed=2, dtype=dtype, **kw)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        history = net.fit(X, y, epochs=3, batch_size=8, lr=0.01, optimizer=optimizer,
                          validation_data=(X, y), seed=4, threads=threads)  # fmt: skip
    finally:
        numba.set_num_threads(before)
    return net, history


def test_same_weights_on_one_and_two_threads():
    one, _ = _train(1)
    two, _ = _train(2)
    assert np.array_equal(one.params, two.params)


def test_training_lowers_the_cost_in_both_dtypes():
    for dtype in ("float32", "float64"):
        net, history = _train(1, dtype=dtype, optimizer="sgd")
        assert net.params.dtype == np.dtype(dtype)
        assert history["val_cost"][-1] < history["val_cost"][0]


def test_checkpoint_resume_is_bitwise_the_same(tmp_path):
    X, y = _data(n=20, T=4, seed=5)

    def net():
        return RecurrentNetwork(3, 6, 2, cell="gru", seed=1)

    whole = net()
    whole.fit(X, y, epochs=3, batch_size=5, lr=0.01, optimizer="adam", seed=0)
    part = net()
    path = tmp_path / "run.ckpt"
    part.fit(X, y, epochs=2, batch_size=5, lr=0.01, optimizer="adam", seed=0, checkpoint=path)
    resumed = net()
    resumed.fit(X, y, epochs=3, batch_size=5, lr=0.01, optimizer="adam", seed=0, resume=path)
    assert np.array_equal(whole.params, resumed.params)
    with pytest.raises(ValueError, match="clip_norm"):
        net().fit(X, y, epochs=3, batch_size=5, lr=0.01, optimizer="adam", seed=0, resume=path,
                  clip_norm=1.0)  # fmt: skip


def test_non_finite_training_is_refused_and_rolled_back():
    X, _ = _data(n=20, T=4)
    net = RecurrentNetwork(3, 4, 2, cell="rnn", output="linear", seed=0, dtype="float32")
    Y = np.full((20, 2), 1e30)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="mini-batch 0"):
        net.fit(X, Y, epochs=1, batch_size=5, lr=1e10)
    assert np.array_equal(before, net.params)


def test_save_and_load_round_trip(tmp_path):
    net = _net("gru", many=True, bptt=3, dtype="float32")
    path = tmp_path / "rnn.npz"
    net.save(path)
    back = RecurrentNetwork.load(path)
    assert repr(back) == repr(net) and back.bptt == 3
    assert np.array_equal(back.params, net.params)
    X, _ = _data()
    assert np.array_equal(back.feedforward(X), net.feedforward(X))
    raw = path.read_bytes()
    (tmp_path / "bad.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"bad\.npz"):
        RecurrentNetwork.load(tmp_path / "bad.npz")


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "lengths", "match"),
    [
        (np.zeros((5, 6)), None, "X: expected a 3-D array"),
        (np.zeros((5, 6, 4)), None, "X: expected a 3-D array"),
        (np.zeros((0, 6, 3)), None, "X: expected at least one sample"),
        (np.zeros((5, 0, 3)), None, "X: expected at least one sample"),
        (np.full((5, 6, 3), np.nan), None, "X: contains NaN"),
        (np.full((5, 6, 3), np.inf), None, "X: contains NaN"),
        (np.zeros((5, 6, 3)), [6, 6, 6], "lengths: expected one length per sequence"),
        (np.zeros((5, 6, 3)), [6, 6, 6, 0, 6], "lengths: expected lengths from 1 to 6"),
        (np.zeros((5, 6, 3)), [6, 6, 6, 7, 6], "lengths: expected lengths from 1 to 6"),
        (np.zeros((5, 6, 3)), [6.0, 6, 6, 6, 6], "lengths: expected integers"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(X, lengths, match):
    net = _net("lstm")
    before = net.params.copy()
    y = np.zeros(len(X), dtype=int)
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(X, y, lengths=lengths, epochs=1, batch_size=2, lr=0.1)
    with pytest.raises((ValueError, TypeError), match=match):
        net.gradient(X, y, lengths)
    assert np.array_equal(before, net.params)


def test_bad_targets_and_options_are_refused():
    net = _net("rnn")
    X, _ = _data()
    before = net.params.copy()
    with pytest.raises(ValueError, match="y"):
        net.fit(X, np.zeros(4, dtype=int), epochs=1, batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="dropout"):
        net.fit(X, np.zeros(5, dtype=int), epochs=1, batch_size=2, lr=0.1, dropout=0.5)
    with pytest.raises(ValueError, match="cell"):
        RecurrentNetwork(3, 4, 2, cell="transformer")
    with pytest.raises(ValueError, match="hidden"):
        RecurrentNetwork(3, [4, 0], 2)
    with pytest.raises(ValueError, match="y"):
        _net("rnn", many=True).fit(X, np.zeros(5, dtype=int), epochs=1, batch_size=2, lr=0.1)
    assert np.array_equal(before, net.params)


# --- data and the command line ---------------------------------------------------------------


def test_adding_problem_marks_two_steps_and_sums_their_values():
    from fastbp.datasets import adding_problem

    X, y = adding_problem(500, 30, seed=0, dtype="float64")
    assert X.shape == (500, 30, 2) and y.shape == (500, 1)
    marks = X[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2) and np.all(marks[:, 15:] == 0)
    assert np.all(np.argmax(marks, axis=1) < 10)
    assert np.allclose((X[:, :, 0] * marks).sum(axis=1), y[:, 0])
    assert np.array_equal(adding_problem(5, 30, seed=1)[0], adding_problem(5, 30, seed=1)[0])
    with pytest.raises(ValueError, match="steps"):
        adding_problem(5, 1)


def test_rows_of_mnist_are_the_images_rows():
    from fastbp.datasets import as_rows, load_mini_mnist

    (X, _), _ = load_mini_mnist()
    rows = as_rows(X[:3])
    assert rows.shape == (3, 28, 28) and np.array_equal(rows[1, 5], X[1, 5 * 28 : 6 * 28])
    with pytest.raises(ValueError, match="images"):
        as_rows(X[:3, :100])


def test_cli_trains_a_recurrent_network(tmp_path, capsys):
    from fastbp.cli import main

    path = tmp_path / "lstm.npz"
    argv = ["train", "--model", "lstm", "--data", "adding", "--steps", "8", "--sequences", "60",
            "--hidden", "4", "--epochs", "2", "--batch-size", "10", "--optimizer", "adam",
            "--eta", "0.01", "--save", str(path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "adding problem, T=8" in out and "Epoch 1: val cost" in out
    assert RecurrentNetwork.load(path).cell == "lstm"
    assert main(["train", "--model", "gru", "--data", "mnist"]) == 2
    assert "mnist-rows" in capsys.readouterr().err


def test_cli_chrono_forget_bias_and_the_recurrent_learning_rate(tmp_path, capsys):
    from fastbp.cli import main

    path = tmp_path / "gru.npz"
    common = ["train", "--data", "adding", "--steps", "8", "--sequences", "60", "--hidden", "4",
              "--seed", "3", "--dtype", "float64"]  # fmt: skip
    assert main([*common, "--model", "gru", "--chrono", "8", "--epochs", "0",
                 "--save", str(path)]) == 0  # fmt: skip
    built = RecurrentNetwork(2, 4, 1, cell="gru", output="linear", chrono=8, seed=3,
                             dtype="float64")  # fmt: skip
    assert np.array_equal(RecurrentNetwork.load(path).params, built.params)
    assert main([*common, "--model", "rnn", "--chrono", "8"]) == 2
    assert "--chrono" in capsys.readouterr().err
    # without --eta a recurrent model trains with η = 0.3 (the book's 3.0 diverged)
    assert main([*common, "--model", "lstm", "--forget-bias", "2", "--epochs", "1"]) == 0
    cost = float(capsys.readouterr().out.split("Epoch 0: val cost ")[1].split()[0])
    assert cost < 1.0


def test_monitor_gradients_and_early_stopping_run_on_the_trainer():
    X, y = _data(n=30, T=4, seed=2)
    net = RecurrentNetwork(3, [5, 4], 2, cell="gru", seed=0, dtype="float64")
    history = net.fit(X, y, epochs=4, batch_size=10, lr=0.05, optimizer="adam",
                      validation_data=(X, y), monitor_gradients=True, early_stopping=1,
                      seed=0)  # fmt: skip
    assert len(history["grad_norm_w"][0]) == 3  # two recurrent layers and the output layer
    assert all(np.isfinite(history["grad_norm_b"][0]))
    best = history["best_epoch"][0]
    assert history["val_accuracy"][best] == max(history["val_accuracy"])


def test_many_to_many_scores_ignore_the_padding():
    X, y = _data(n=12, T=5, many=True, seed=3)
    lengths = np.array([5, 1, 3, 5, 4, 2] * 2)
    net = _net("lstm", many=True)
    history = net.fit(X, y, lengths=lengths, epochs=1, batch_size=4, lr=0.1,
                      validation_data=(X, y, lengths))  # fmt: skip
    assert np.isclose(history["val_cost"][-1], net.cost_of(X, y, lengths))
    labels = net.predict(X, lengths)
    right = [(labels[k, :n] == y[k, :n]).all() for k, n in enumerate(lengths)]
    assert history["val_correct"][-1] == sum(right)


def test_kernels_from_the_cache_run_first_in_a_new_process(tmp_path):
    """A process whose first compiled call is a recurrent kernel loaded from Numba's cache (a
    saved model's outputs, a gradient) gets them right: such a kernel calls the threaded ones,
    which before the threading layer has started jumped to a null address (SIGSEGV)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 5, 3)).astype(np.float32)
    y = rng.integers(0, 2, 7)
    net = RecurrentNetwork(3, 6, 2, cell="lstm", seed=0)
    out, grad = net.feedforward(X), net.gradient(X, y)  # compiled here, into the cache
    net.save(tmp_path / "net.npz")
    np.savez(tmp_path / "data.npz", X=X, y=y)
    code = (
        "import sys, numpy as np; from fastbp import RecurrentNetwork; "
        "d = np.load(sys.argv[1] + '/data.npz'); "
        "net = RecurrentNetwork.load(sys.argv[1] + '/net.npz'); "
        "np.savez(sys.argv[1] + '/got.npz', out=net.feedforward(d['X']), "
        "grad=net.gradient(d['X'], d['y']))"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(tmp_path / "got.npz")
    assert np.array_equal(got["out"], out) and np.array_equal(got["grad"], grad)
