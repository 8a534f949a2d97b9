"""The fault suite (issue 21): damaged and crafted files, kills and Ctrl-C at seeded random
points, closed streams, special files. Each test states a promise of the README and checks
it: a clear error naming the thing at fault, the exit status, and the parameters, the
generator and the files on disk exactly as they were."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastbp import CollapseWarning, Network
from fastbp.cli import main
from fastbp.datasets import load_mini_mnist

POSIX = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


@pytest.fixture(scope="module")
def mini():
    (X, y), (X_test, y_test) = load_mini_mnist()
    return X[:300], y[:300], X_test[:100], y_test[:100]


def state_of(net):
    """What a rejected call must leave alone: the parameters, the other state, the generator."""
    return (net.params.tobytes(), net._bn_stats.tobytes(), json.dumps(net._rng.bit_generator.state))


def rewrite(source, target, header=None, arrays=None):
    """A copy of the archive ``source`` with its JSON header and arrays changed."""
    with np.load(source) as archive:
        content = {name: archive[name] for name in archive.files}
    head = json.loads(content.pop("header").tobytes())
    if header is not None:
        header(head)
    if arrays is not None:
        arrays(content)
    raw = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, header=raw, **content)
    Path(target).write_bytes(buffer.getvalue())
    return target


# --- 1, 2, 3: nothing trains before every output path is checked; a rejected fit is undone ---


@pytest.mark.parametrize("where", ["missing/c.npz", ".", "fifo"])
def test_a_bad_checkpoint_path_is_refused_before_any_epoch(tmp_path, mini, where):
    X, y = mini[:2]
    if where == "fifo":
        os.mkfifo(tmp_path / "fifo")
    net = Network([784, 30, 10], seed=1)
    before = state_of(net)
    with pytest.raises((OSError, ValueError), match=r"^checkpoint: "):
        net.fit(X, y, epochs=2, batch_size=10, lr=3.0, checkpoint=tmp_path / where)
    assert state_of(net) == before


@pytest.mark.parametrize("option", ["--save", "--plot", "--checkpoint"])
def test_the_cli_checks_its_output_paths_before_training(tmp_path, capsys, option):
    status = main(["train", "--epochs", "1", option, str(tmp_path / "no" / "such.file")])
    out, err = capsys.readouterr()
    assert status == 2
    assert err.startswith(f"fastbp: error: {option}: ") and "does not exist" in err
    assert "Epoch" not in out


def test_a_fit_rejected_for_its_data_leaves_the_generator_as_it_was(mini):
    X, y = mini[:2]
    bad = X.copy()
    bad[7, 300] = np.nan
    net, twin = Network([784, 30, 10], seed=1), Network([784, 30, 10], seed=1)
    before = state_of(net)
    with pytest.raises(ValueError, match=r"^X: contains NaN"):
        net.fit(bad, y, epochs=1, batch_size=10, lr=3.0)
    assert state_of(net) == before
    net.fit(X, y, epochs=1, batch_size=10, lr=3.0)
    twin.fit(X, y, epochs=1, batch_size=10, lr=3.0)
    assert net.params.tobytes() == twin.params.tobytes()


class InterruptedGenerator:
    """A generator that takes a Ctrl-C just after drawing its ``when``-th order of samples
    (the window between the draw and the compiled epoch)."""

    def __init__(self, rng, when):
        self.rng, self.when, self.calls = rng, when, 0

    @property
    def bit_generator(self):
        return self.rng.bit_generator

    def integers(self, *args, **kwargs):
        return self.rng.integers(*args, **kwargs)

    def permutation(self, n):
        order = self.rng.permutation(n)
        self.calls += 1
        if self.calls == self.when:
            raise KeyboardInterrupt
        return order


@pytest.mark.parametrize("when", [1, 3])
def test_ctrl_c_after_the_shuffle_rolls_back_generator_and_checkpoints(tmp_path, mini, when):
    X, y = mini[:2]
    whole = Network([784, 30, 10], seed=1)
    whole.fit(X, y, epochs=4, batch_size=10, lr=3.0)
    net = Network([784, 30, 10], seed=1)
    net._rng = InterruptedGenerator(net._rng, when)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=4, batch_size=10, lr=3.0, checkpoint=tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as archive:  # written on the interrupt, for `when - 1`
        loop = json.loads(archive["header"].tobytes())["loop"]
    assert loop["next_epoch"] == when - 1
    assert loop["rng"] == net._rng.bit_generator.state  # the generator rolled back too
    resumed = Network([784, 30, 10], seed=1)
    resumed.fit(X, y, epochs=4, batch_size=10, lr=3.0, resume=tmp_path / "c.npz")
    assert resumed.params.tobytes() == whole.params.tobytes()


# --- 5, 6: a checkpoint is checked whole before any of it is applied ---------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, mini):
    """A checkpoint with every part: batch-norm statistics, Adam's state, best parameters."""
    X, y, X_val, y_val = mini
    path = tmp_path_factory.mktemp("ck") / "c.npz"
    net = Network([784, 8, 10], batch_norm=True, seed=0)
    net.fit(X, y, **FIT, validation_data=(X_val, y_val), checkpoint=path)
    return path


FIT = dict(epochs=2, batch_size=10, lr=0.01, optimizer="adam", early_stopping=5, seed=3)


def resume(path, mini):
    X, y, X_val, y_val = mini
    net = Network([784, 8, 10], batch_norm=True, seed=0)
    before = state_of(net)
    try:
        net.fit(X, y, **FIT, validation_data=(X_val, y_val), resume=path)
    except ValueError:
        assert state_of(net) == before  # nothing of the file was applied
        raise
    return net


LOOP_FIELDS = ["next_epoch", "eta", "steps", "halvings", "best_epoch", "best_accuracy",
               "optimizer", "history", "rng", "fingerprint"]  # fmt: skip


def _set(key, value):
    return lambda h: h["loop"].__setitem__(key, value)


def _array(name, value):
    return lambda a: a.__setitem__(name, value(a[name]))


OPT = "optimizer_state"
CRAFTED = {
    "optimizer_state_shape": (None, _array(OPT, lambda v: v[:1, :5]), OPT),
    "optimizer_state_long": (None, _array(OPT, lambda v: v[:, :-1]), OPT),
    "optimizer_state_nan": (None, _array(OPT, lambda v: v * np.nan), "NaN"),
    "bn_stats_shape": (None, _array("bn_stats", lambda v: v[:, :3]), "bn_stats"),
    "bn_stats_negative": (None, _array("bn_stats", lambda v: v - 100), "variance is negative"),
    "best_params_shape": (None, _array("best_params", lambda v: v[:1]), "best_params"),
    "best_params_dtype": (None, _array("best_params", lambda v: v.astype(float)), "best_params"),
    "extra_array": (None, lambda a: a.__setitem__("extra", np.zeros(3)), "extra"),
    "rng_garbage": (_set("rng", {"bit_generator": "PCG64", "state": 7}), None, "'rng'"),
    "rng_other": (_set("rng", "MT19937"), None, "'rng'"),
    "history_null": (_set("history", None), None, "'history'"),
    "history_ragged": (lambda h: h["loop"]["history"]["epoch"].append(9), None, "'history'"),
    "next_epoch_text": (_set("next_epoch", "1"), None, "'next_epoch'"),
    "next_epoch_negative": (_set("next_epoch", -1), None, "'next_epoch'"),
    "optimizer_bogus": (_set("optimizer", "bogus"), None, "optimizer 'bogus'"),
    "eta_nan": (_set("eta", float("nan")), None, "'eta'"),
    "steps": (_set("steps", -3), None, "'steps'"),
    "halvings": (_set("halvings", "x"), None, "'halvings'"),
    "best_epoch": (_set("best_epoch", 99), None, "'best_epoch'"),
    "no_loop": (lambda h: h.pop("loop"), None, "no training-loop state"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_checkpoint_is_refused_whole_before_anything_is_applied(
    tmp_path, mini, checkpoint, case
):
    header, arrays, named = CRAFTED[case]
    path = rewrite(checkpoint, tmp_path / "bad.npz", header, arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: not a valid fastbp checkpoint: .*") as info:
        resume(path, mini)
    assert named in str(info.value)


def test_the_unchanged_checkpoint_resumes(tmp_path, mini, checkpoint):
    path = rewrite(checkpoint, tmp_path / "same.npz")
    assert resume(path, mini).params.tobytes() == resume(checkpoint, mini).params.tobytes()


@settings(
    max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(data=st.data())
def test_a_damaged_checkpoint_resumes_exactly_or_is_refused(tmp_path, mini, checkpoint, data):
    good = checkpoint.read_bytes()
    damaged = bytearray(good)
    kind = data.draw(st.sampled_from(["truncate", "flip", "field"]), label="kind")
    if kind == "field":  # a loop field of another type or value
        key = data.draw(st.sampled_from(LOOP_FIELDS), label="field")
        values = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3), st.floats(),
                           st.lists(st.integers(0, 2), max_size=2))  # fmt: skip
        value = data.draw(values, label="value")
        rewrite(checkpoint, tmp_path / "field.npz", _set(key, value))
        damaged = bytearray((tmp_path / "field.npz").read_bytes())
    elif kind == "truncate":
        damaged = damaged[: data.draw(st.integers(0, len(good) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            i = data.draw(st.integers(0, len(good) - 1), label="byte")
            damaged[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(damaged))
    try:
        net = resume(path, mini)
    except ValueError as exc:
        assert str(exc).startswith(f"{path}: ") or str(exc).startswith("resume: ")
    else:
        assert net.params.tobytes() == resume(checkpoint, mini).params.tobytes()


# --- 7, 8, 9: model files ----------------------------------------------------------------------


def huge_sizes(header):
    header["sizes"] = [10**6, 10**6, 10]


@pytest.fixture
def saved(tmp_path):
    net = Network([784, 30, 10], batch_norm=True, seed=1)
    net._bn_stats[...] = np.linspace(0.1, 2, net._bn_stats.size).reshape(net._bn_stats.shape)
    net.save(tmp_path / "m.npz")
    return net, tmp_path / "m.npz"


def test_declared_sizes_are_checked_against_the_arrays_before_allocating(tmp_path, saved):
    _, path = saved
    huge = rewrite(path, tmp_path / "huge.npz", huge_sizes)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"huge\.npz: .*do not match the architecture"):
        Network.load(huge)
    assert time.perf_counter() - start < 2


def test_the_cli_reports_a_crafted_model_in_one_line(tmp_path, saved, capsys):
    _, path = saved
    huge = rewrite(path, tmp_path / "huge.npz", huge_sizes)
    np.save(tmp_path / "x.npy", np.zeros(784, np.float32))
    assert main(["predict", str(huge), str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbp: error: ") and err.count("\n") == 1 and "huge.npz" in err


def test_a_plain_npy_file_is_refused_by_name(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((3, 784)))
    with pytest.raises(ValueError, match=r"m\.npy: not a valid fastbp model file: .*not an \.npz"):
        Network.load(tmp_path / "m.npy")


def test_a_negative_running_variance_is_refused_even_with_a_valid_checksum(tmp_path, saved):
    net, _ = saved
    net._bn_stats[1, 4] = -1.0
    net.save(tmp_path / "negative.npz")  # a valid file in every other respect
    with pytest.raises(ValueError, match="variance is negative"):
        Network.load(tmp_path / "negative.npz")


@settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(data=st.data())
def test_a_mutated_model_file_loads_exactly_or_is_refused(tmp_path, saved, data):
    net, path = saved
    good = path.read_bytes()
    mutated = bytearray(good)
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "sizes"]), label="kind")
    i = data.draw(st.integers(0, len(good) - 1), label="where")
    if kind == "sizes":  # a header that declares another architecture (up to 10⁶ wide)
        widths = st.lists(st.integers(1, 10**6), min_size=2, max_size=4)
        sizes = data.draw(widths, label="sizes")
        rewrite(path, path.with_name("crafted.npz"), lambda h: h.__setitem__("sizes", sizes))
        mutated = bytearray(path.with_name("crafted.npz").read_bytes())
    elif kind == "truncate":
        mutated = mutated[:i]
    elif kind == "flip":
        mutated[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    else:
        mutated[i:i] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
    target = path.with_name("mutated.npz")
    target.write_bytes(bytes(mutated))
    try:
        loaded = Network.load(target)
    except ValueError as exc:
        assert str(exc).startswith(f"{target}: not a valid fastbp model file: ")
    else:
        assert loaded.params.tobytes() == net.params.tobytes()
        assert loaded._bn_stats.tobytes() == net._bn_stats.tobytes()


# --- 10: the command line's input files and streams --------------------------------------------


@pytest.fixture
def model_file(tmp_path):
    Network([784, 30, 10], seed=1).save(tmp_path / "net.npz")
    return tmp_path / "net.npz"


def data_archive(path, X_train, **changes):
    (X, y), (X_test, y_test) = load_mini_mnist(dtype="float64")
    arrays = dict(X_train=X[:50], y_train=y[:50], X_test=X_test[:20], y_test=y_test[:20])
    arrays["X_train"] = X_train(arrays["X_train"])
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X: X.astype(np.complex128), "X_train: expected real numbers"),
        (lambda X: np.where(X > 0.5, 1e39, X), "X_train: a value of magnitude 1e+39 overflows"),
    ],
)  # fmt: skip
def test_the_cli_refuses_what_the_api_refuses_in_data(tmp_path, capsys, change, message):
    path = data_archive(tmp_path / "d.npz", change)
    assert main(["train", "--data", str(path), "--epochs", "1"]) == 2
    assert message in capsys.readouterr().err


def test_predict_on_an_empty_batch_says_so(tmp_path, model_file, capsys):
    np.save(tmp_path / "empty.npy", np.zeros((0, 784), np.float32))
    assert main(["predict", str(model_file), str(tmp_path / "empty.npy")]) == 2
    assert "empty.npy: holds no input" in capsys.readouterr().err


def test_predict_refuses_a_decompression_bomb(tmp_path, model_file, capsys, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100 x 100 is then a "bomb"
    assert main(["predict", str(model_file), str(tmp_path / "big.png")]) == 2
    assert "big.png: the image is too large" in capsys.readouterr().err


def run_cli(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "fastbp", *args], env=env, **kwargs)


@POSIX
def test_closed_stdout_and_stderr_are_not_a_crash(tmp_path, model_file, train_args):
    _, args = train_args
    closed = run_cli(
        [*args[:-1], "1", "--save", str(tmp_path / "m.npz")],  # `fastbp train >&-`
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert closed.returncode == 0, closed.stderr
    assert closed.stderr == ""
    assert Network.load(tmp_path / "m.npz").sizes == (784, 30, 10)
    refused = run_cli(
        ["predict", str(model_file), str(tmp_path / "missing.npy")],
        stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert refused.returncode == 2


@POSIX
def test_a_closed_pipe_ends_predict_quietly(tmp_path, model_file):
    (_, _), (X, _) = load_mini_mnist()
    np.save(tmp_path / "many.npy", X)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-m", "fastbp", "predict", str(model_file), str(tmp_path / "many.npy")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    first = child.stdout.readline()
    child.stdout.close()  # `| head -1`
    err = child.stderr.read()
    child.stderr.close()
    assert child.wait(timeout=60) == 141
    assert first.startswith(b"[0] class ")
    assert err == b""


def test_a_ctrl_c_swallowed_by_a_library_still_ends_the_command(monkeypatch, capsys, ctrl_c):
    from fastbp.cli import parser

    def swallowing(args):  # what llvmlite does to a Ctrl-C during a compilation
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return 0

    monkeypatch.setattr(parser, "_info", swallowing)
    assert main(["info"]) == 130
    assert "interrupted" in capsys.readouterr().err


# --- 11: every message names the parameter ----------------------------------------------------


def fit_once(X, y, **options):
    return Network([784, 10]).fit(X, y, epochs=1, batch_size=10, lr=1.0, **options)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda X, y: Network([784, 30, 10], seed=-1), "seed"),
        (lambda X, y: Network([784, 30, 10], seed="abc"), "seed"),
        (lambda X, y: Network([784, 30, 10], seed=1.5), "seed"),
        (lambda X, y: Network([784, 30, 10], activation=None), "activation"),
        (lambda X, y: Network([2**40, 2**40]), "sizes"),
        (lambda X, y: fit_once(X, y, betas=(0.9,)), "betas"),
        (lambda X, y: fit_once(X, y, shuffle="no"), "shuffle"),
        (lambda X, y: fit_once(X, y, seed=np.float64(2)), "seed"),
    ],
)  # fmt: skip
def test_every_bad_argument_is_named(mini, call, name):
    with pytest.raises((ValueError, TypeError), match=f"^{name}: "):
        call(*mini[:2])


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--pretrain", "-1"], "--pretrain"),
        (["--checkpoint-every", "0"], "--checkpoint-every"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_every_bad_option_is_named(capsys, args, option):
    assert main(["train", "--epochs", "1", *args]) == 2
    assert capsys.readouterr().err.startswith(f"fastbp: error: {option}: ")


# --- 12: files on disk -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_save_replaces_only_regular_files(tmp_path, kind):
    target = tmp_path / "special"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    with pytest.raises((ValueError, OSError), match="special: is a"):
        Network([4, 2], seed=0).save(target)
    assert stat.S_ISFIFO(target.lstat().st_mode) if kind == "fifo" else target.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["special"]


def test_a_save_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "real.npz").write_bytes(b"old")
    (tmp_path / "link.npz").symlink_to("real.npz")
    net = Network([4, 2], seed=0)
    net.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink()
    assert Network.load(tmp_path / "real.npz").params.tobytes() == net.params.tobytes()


def test_saved_files_follow_the_umask_and_keep_their_mode(tmp_path):
    old = os.umask(0o027)
    try:
        Network([4, 2], seed=0).save(tmp_path / "new.npz")
        (tmp_path / "kept.npz").write_bytes(b"")
        os.chmod(tmp_path / "kept.npz", 0o644)
        Network([4, 2], seed=0).save(tmp_path / "kept.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "kept.npz").stat().st_mode) == 0o644


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("then", ["save", "load"])
def test_a_temporary_left_by_a_killed_save_is_cleaned_up(tmp_path, then):
    net = Network([4, 2], seed=0)
    net.save(tmp_path / "m.npz")
    orphan = tmp_path / f".m.npz.{dead_pid()}.fastbp-tmp"
    orphan.write_bytes(b"x" * 1000)
    mine = tmp_path / f".m.npz.{os.getpid()}-7.fastbp-tmp"  # a save in progress: kept
    mine.write_bytes(b"")
    net.save(tmp_path / "m.npz") if then == "save" else Network.load(tmp_path / "m.npz")
    assert not orphan.exists() and mine.exists()


SAVER = """
import os, sys, time
import numpy as np
from fastbp import Network
net = Network([784, 300, 100, 10], seed=0)
if sys.argv[2] == "hang":  # stop inside the save, its temporary file written: a certain orphan
    net.save(sys.argv[1])
    os.fsync = lambda fd: (print("in a save", flush=True), time.sleep(60))
for i in range(1000):
    net.params[0] = i
    net.save(sys.argv[1])
    print(i, flush=True)
"""


@POSIX
def test_kill_9_during_saves_leaves_a_whole_file_and_no_orphan(tmp_path):
    rng = np.random.default_rng(21)
    path = tmp_path / "m.npz"
    fresh = Network([784, 300, 100, 10], seed=0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for mode in ["hang", "loop", "loop"]:
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path), mode],
                                 stdout=subprocess.PIPE, env=env)  # fmt: skip
        child.stdout.readline()  # one save done, or stopped in one
        time.sleep(float(rng.uniform(0, 0.3)))
        child.kill()
        child.wait()
        child.stdout.close()
        loaded = Network.load(path)  # whole, of one of the saves; and it cleans up
        assert loaded.params[1:].tobytes() == fresh.params[1:].tobytes()
        assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# --- 13 and Ctrl-C: the same command run again after any kill ends as one uninterrupted run -----


@pytest.fixture(scope="module")
def train_args(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (X, y), (X_test, y_test) = load_mini_mnist()
    np.savez(folder / "d.npz", X_train=X[:1500], y_train=y[:1500], X_test=X_test[:200],
             y_test=y_test[:200])  # fmt: skip
    return folder, ["train", "--data", str(folder / "d.npz"), "--epochs", "6"]


def final_params(path):
    return Network.load(path).params.tobytes()


@POSIX
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_command_killed_at_random_points_and_rerun_ends_as_one_run(tmp_path, train_args, sig):
    _, args = train_args
    whole = run_cli([*args, "--save", str(tmp_path / "whole.npz")], capture_output=True)
    assert whole.returncode == 0, whole.stderr
    rng = np.random.default_rng(13 + sig)
    for trial in range(2):
        ck, out = tmp_path / f"c{trial}.npz", tmp_path / f"m{trial}.npz"
        command = [*args, "--checkpoint", str(ck), "--resume", str(ck), "--save", str(out)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        child = subprocess.Popen([sys.executable, "-m", "fastbp", *command], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(float(rng.uniform(0.5, 3.0)))
        child.send_signal(sig)
        _, err = child.communicate(timeout=120)
        if sig == signal.SIGINT and child.returncode == 130:
            assert err.decode().endswith("fastbp: interrupted\n")
        else:  # Ctrl-C while Python started, before fastbp ran: the shell's 130 too
            assert child.returncode in (0, -sig), err.decode()
        again = run_cli(command, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert final_params(out) == final_params(tmp_path / "whole.npz")


# --- 14: a collapse is reported ----------------------------------------------------------------


@pytest.mark.parametrize(("activation", "lr"), [("sigmoid", 100.0), ("relu", 10.0)])
def test_training_that_collapses_to_chance_is_reported(activation, lr):
    (X, y), (X_val, y_val) = load_mini_mnist()
    net = Network([784, 30, 10], activation=activation, seed=1)
    with pytest.warns(CollapseWarning, match=rf"chance.*lr={lr}.*init='scaled'"):
        net.fit(X[:1000], y[:1000], epochs=2, batch_size=10, lr=lr,
                validation_data=(X_val[:300], y_val[:300]))  # fmt: skip


def test_the_command_line_reports_a_collapse(train_args):
    _, args = train_args
    child = run_cli([*args[:-1], "1", "--eta", "100"], capture_output=True, text=True)
    assert child.returncode == 0
    assert "CollapseWarning: training collapsed" in child.stderr


def test_training_that_learns_or_learns_slowly_is_not_called_a_collapse(mini):
    X, y, X_val, y_val = mini
    for lr, epochs in [(3.0, 2), (0.001, 1)]:
        Network([784, 30, 10], seed=1).fit(X, y, epochs=epochs, batch_size=10, lr=lr,
                                           validation_data=(X_val, y_val))  # fmt: skip
    # One class only, or the same input everywhere: the same output is then no collapse.
    Network([784, 30, 10], seed=1).fit(X, np.zeros_like(y), epochs=1, batch_size=10, lr=100.0,
                                       monitor_training=True)  # fmt: skip
    same = np.repeat(X[:1], len(X), axis=0)
    Network([784, 30, 10], seed=1).fit(same, y, epochs=1, batch_size=10, lr=100.0,
                                       monitor_training=True)  # fmt: skip


# --- 15: threads -------------------------------------------------------------------------------


def test_a_second_fit_of_a_training_network_is_refused(mini):
    X, y = mini[:2]
    net = Network([784, 30, 10], seed=1)
    started, release, errors = threading.Event(), threading.Event(), []

    def wait(net, epoch, history):
        started.set()
        release.wait(30)
        with pytest.raises(RuntimeError, match=r"^fit: this network is already being trained"):
            net.fit(X, y, epochs=1, batch_size=10, lr=3.0)  # from its own callback

    def first():
        try:
            net.fit(X, y, epochs=1, batch_size=10, lr=3.0, callback=wait)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(60)
    try:
        with pytest.raises(RuntimeError, match=r"^SGD: this network is already being trained"):
            net.SGD((X, np.eye(10)[y]), 1, 10, 3.0, verbose=False)
    finally:
        release.set()
        thread.join()
    assert errors == []
    net.fit(X, y, epochs=1, batch_size=10, lr=3.0)  # free again


PREDICTORS = """
import threading, numpy as np
from fastbp import Network
net = Network([784, 100, 10], seed=1)
X = np.random.default_rng(0).random((2000, 784)).astype(np.float32)
expected = net.predict(X)
results = []
def work():
    for _ in range(10):
        results.append(np.array_equal(net.predict(X), expected))
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
import numba
print(numba.threading_layer(), all(results), len(results))
"""


@POSIX
def test_predict_from_several_threads_on_the_workqueue_layer():
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": str(Path(__file__).parents[1])}  # fmt: skip
    child = subprocess.run([sys.executable, "-c", PREDICTORS], env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["workqueue", "True", "40"]
