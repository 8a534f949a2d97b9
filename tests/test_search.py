"""fastbp.search on real Dask clusters (2 worker processes on loopback): results equal to the
same trials run one after another in this process, a worker killed mid-trial, a client killed
and resumed, a scheduler address, and the command line."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")
pytest.importorskip("distributed")

import distributed
import optuna

from fastbp import Network
from fastbp.cli import main
from fastbp.datasets import load_mini_mnist
from fastbp.sweep import Range, SharedData, _send, run_trial, search

REPO = Path(__file__).resolve().parents[1]
GRID = {"lr": [1.0, 3.0], "lmbda": [0.0, 5.0]}
FIXED = {"hidden": 10, "epochs": 2, "batch_size": 10}


@pytest.fixture(scope="module")
def data():
    (X, y), (X_val, y_val) = load_mini_mnist()
    return X[:1000], y[:1000], X_val[:300], y_val[:300]


@pytest.fixture(scope="module")
def cluster(data):
    """A 2-worker local cluster (processes, one thread each), after one trial in this process
    has compiled the kernels into Numba's cache, which the workers then load."""
    X, y, X_val, y_val = data
    payload = {"X": X, "y": y, "X_val": X_val, "y_val": y_val, "n_out": 10}
    run_trial(payload, {**FIXED, "lr": 1.0, "threads": 1}, 0, optuna.pruners.NopPruner(), [])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def _values(study: optuna.Study) -> dict[int, float | None]:
    return {t.number: t.value for t in study.trials}


def _oracle(data, params: dict, seed: int, **fixed) -> list[float]:
    """A trial's per-epoch accuracies, computed with Network.fit directly."""
    X, y, X_val, y_val = data
    options = {**FIXED, **fixed, **params}
    net = Network([784, options.pop("hidden"), 10], seed=seed)
    history = net.fit(X, y, validation_data=(X_val, y_val), seed=seed, threads=1, **options)
    return history["val_accuracy"]


def test_grid_in_process_runs_each_combination_once_as_fit_would(data, tmp_path):
    X, y, X_val, y_val = data
    result = search(
        X, y, validation_data=(X_val, y_val), space=GRID, fixed=FIXED, sampler="grid",
        pruner="none", storage=tmp_path / "s.db", scheduler="process", seed=7,
    )  # fmt: skip
    trials = result.study.trials
    assert sorted((t.params["lr"], t.params["lmbda"]) for t in trials) == sorted(
        (lr, lmbda) for lr in GRID["lr"] for lmbda in GRID["lmbda"]
    )
    for t in trials:
        expected = _oracle(data, t.params, 7 + t.number)
        assert [t.intermediate_values[e] for e in range(2)] == expected
        assert t.value == expected[-1]
    table = result.table()
    assert table.splitlines()[1].split()[0] == str(result.study.best_trial.number)
    assert "4 complete, 0 pruned, 0 fail" in table


def test_cluster_gives_the_trials_of_one_process(data, cluster, tmp_path):
    """Random sampling: the same parameters and results on the cluster as one after another."""
    X, y, X_val, y_val = data
    common = dict(
        validation_data=(X_val, y_val), space={"lr": Range(0.3, 10, log=True), "lmbda": [0, 5]},
        fixed=FIXED, sampler="random", n_trials=6, pruner="none", seed=3,
    )  # fmt: skip
    here = search(X, y, storage=tmp_path / "a.db", scheduler="process", **common)
    with distributed.Client(cluster) as client:
        there = search(X, y, storage=tmp_path / "b.db", scheduler=client, **common)
        pids = set(client.run(os.getpid).values())
        compiled = client.run(_compiled_kernels)
        # more trials on the same workers compile nothing more: once per worker, not per trial
        search(
            X,
            y,
            storage=tmp_path / "c.db",
            scheduler=client,
            **{**common, "seed": 4, "n_trials": 2},
        )
        assert client.run(_compiled_kernels) == compiled
        # the workers run on this machine (a loopback scheduler): they mapped the data from
        # files, which the searches removed
        payload, shared = _send(client, {"X": X, "y": y, "X_val": X_val, "y_val": y_val,
                                         "n_out": 10})  # fmt: skip
        assert isinstance(payload, SharedData) and shared is payload
        shared.remove()
        assert not list(Path(shared.directory).parent.glob(f"fastbp-search-{os.getpid()}-*"))
    assert _values(here.study) == _values(there.study)
    assert [t.params for t in here.study.trials] == [t.params for t in there.study.trials]
    # the trials ran on both workers
    assert {t.user_attrs["run"]["pid"] for t in there.study.trials} == pids


def _compiled_kernels() -> int:
    """How many compiled versions fastbp's kernels have in this process (a Dask worker)."""
    import numba

    from fastbp import kernels

    return sum(
        len(k.overloads)
        for k in vars(kernels).values()
        if isinstance(k, numba.core.dispatcher.Dispatcher)
    )


def test_scheduler_address_from_the_command_line(data, cluster, tmp_path, capsys):
    db = tmp_path / "cli.db"
    argv = [
        "search", "--param", "lr=1,3", "--param", "lmbda=0,5", "--sampler", "grid",
        "--set", "hidden=10", "--set", "epochs=2", "--subset", "1000", "--val-subset", "300",
        "--pruner", "none", "--storage", str(db), "--scheduler", cluster.scheduler_address,
        "--plot", str(tmp_path / "p.png"), "--seed", "7",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 complete, 0 pruned, 0 fail" in out
    assert cluster.scheduler_address in out
    assert (tmp_path / "p.png").stat().st_size > 0
    study = optuna.load_study(study_name="fastbp", storage=f"sqlite:///{db}")
    for t in study.trials:
        assert t.value == _oracle(data, t.params, 7 + t.number)[-1]
    # a second run of the same study needs --resume
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err


def test_pruner_stops_hopeless_trials(data, tmp_path):
    X, y, X_val, y_val = data
    result = search(
        X, y, validation_data=(X_val, y_val),
        space={"lr": [3.0, 0.01], "lmbda": [0.0, 0.1, 0.2, 0.3]}, fixed={**FIXED, "epochs": 3},
        sampler="grid", pruner="median", storage=tmp_path / "p.db", scheduler="process",
    )  # fmt: skip
    states = [t.state.name for t in sorted(result.study.trials, key=lambda t: t.number)]
    # four good trials complete; then η = 0.01 is below their median after the second epoch
    assert states == ["COMPLETE"] * 4 + ["PRUNED"] * 4
    assert all(len(t.intermediate_values) == 2 for t in result.study.trials[4:])


def test_worker_killed_mid_trial_loses_and_duplicates_nothing(data, cluster, tmp_path):
    X, y, X_val, y_val = data
    fixed = {**FIXED, "epochs": 60}  # about half a second a trial
    common = dict(
        validation_data=(X_val, y_val), space=GRID, fixed=fixed, sampler="grid", pruner="none"
    )
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        outcome = {}

        def run():
            outcome["result"] = search(X, y, storage=tmp_path / "k.db", scheduler=client,
                                       **common)  # fmt: skip

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        busy = []
        while not busy and time.monotonic() < deadline:
            busy = [address for address, keys in client.processing().items() if keys]
            time.sleep(0.01)
        assert busy, "no trial started"
        victim = pids[busy[0]]
        os.kill(victim, signal.SIGKILL)  # a worker process this test's cluster started
        thread.join(120)
        assert not thread.is_alive()
    trials = outcome["result"].study.trials
    assert len(trials) == 4 and sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert victim not in {t.user_attrs["run"]["pid"] for t in trials}
    reference = search(X, y, storage=tmp_path / "r.db", scheduler="process", **common)
    assert _values(outcome["result"].study) == _values(reference.study)


def _count(db: Path, state: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[
                0
            ]
    except sqlite3.Error:
        return 0


def test_client_killed_then_resumed(data, cluster, tmp_path):
    db = tmp_path / "resume.db"
    args = [
        "search", "--param", "lr=1,2,3,4", "--param", "lmbda=0,5", "--sampler", "grid",
        "--set", "hidden=10", "--set", "epochs=200", "--subset", "1000", "--val-subset", "300",
        "--pruner", "none", "--storage", str(db), "--workers", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastbp", *args], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while _count(db, "COMPLETE") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _count(db, "COMPLETE") >= 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its cluster, at once
        proc.wait()
    done_before = _count(db, "COMPLETE")
    assert done_before < 8, "the client finished before it was killed"
    resume = [*args[:-2], "--scheduler", cluster.scheduler_address, "--resume"]
    assert main(resume) == 0
    study = optuna.load_study(study_name="fastbp", storage=f"sqlite:///{db}")
    assert sorted(t.number for t in study.trials) == list(range(8))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    for t in study.trials:
        assert t.value == _oracle(data, t.params, t.number, epochs=200)[-1]


def test_bad_search_arguments_are_named(data, tmp_path):
    X, y, X_val, y_val = data
    common = dict(validation_data=(X_val, y_val), storage=tmp_path / "e.db", scheduler="process")
    with pytest.raises(ValueError, match="space: 'learning_rate' is not an option"):
        search(X, y, space={"learning_rate": [1.0]}, **common)
    with pytest.raises(ValueError, match="grid sampler needs a list"):
        search(X, y, space={"lr": Range(0.1, 1)}, sampler="grid", **common)
    with pytest.raises(ValueError, match="lr"):
        search(X, y, space={"lr": [-1.0]}, **common)
    with pytest.raises(ValueError, match="sampler"):
        search(X, y, space={"lr": [1.0]}, sampler="bayes", **common)
    assert not (tmp_path / "e.db").exists() or _count(tmp_path / "e.db", "RUNNING") == 0


def test_resume_completes_a_trial_left_without_all_its_parameters(data, tmp_path):
    """A client killed between asking for a grid trial and storing its last parameter."""
    X, y, X_val, y_val = data
    db = tmp_path / "partial.db"
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name="fastbp",
                                direction="maximize")  # fmt: skip
    for lr in GRID["lr"]:
        for lmbda in GRID["lmbda"]:
            study.enqueue_trial({"lr": lr, "lmbda": lmbda})
    study.ask().suggest_categorical("lr", tuple(GRID["lr"]))  # then killed: no lmbda stored
    result = search(
        X, y, validation_data=(X_val, y_val), space=GRID, fixed=FIXED, sampler="grid",
        pruner="none", storage=db, resume=True, scheduler="process",
    )  # fmt: skip
    points = sorted((t.params["lr"], t.params["lmbda"]) for t in result.study.trials)
    assert points == sorted((lr, lmbda) for lr in GRID["lr"] for lmbda in GRID["lmbda"])
    for t in result.study.trials:
        assert t.state.name == "COMPLETE"
        assert t.value == _oracle(data, t.params, t.number)[-1]


def test_shared_data_is_mapped_read_only_and_a_dead_clients_is_removed(data):
    X, y, X_val, y_val = data
    payload = {"X": X, "y": y, "X_val": X_val, "y_val": y_val, "n_out": 10}
    shared = SharedData.write(payload)
    root = Path(shared.directory).parent
    # what a client killed mid-search leaves: the directory of a process that is gone
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = root / f"fastbp-search-{int(gone.stdout)}-abc"
    stale.mkdir()
    (stale / "X.npy").write_bytes(b"left behind")
    try:
        arrays = shared.arrays()
        assert arrays["n_out"] == 10
        for name in ("X", "y", "X_val", "y_val"):
            assert np.array_equal(arrays[name], payload[name])
            assert arrays[name].dtype == payload[name].dtype
            assert not arrays[name].flags.writeable
        assert Path(shared.directory).name.startswith(f"fastbp-search-{os.getpid()}-")
        other = SharedData.write(payload)  # the next search removes the dead one's only
        other.remove()
        assert not stale.exists() and Path(shared.directory).is_dir()
        assert not Path(other.directory).exists()
    finally:
        shared.remove()
        shutil.rmtree(stale, ignore_errors=True)
    assert not Path(shared.directory).exists()
