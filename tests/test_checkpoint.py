"""Checkpoints: a run killed mid-epoch and resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from fastbp import Network

CHILD = textwrap.dedent(
    """
    import hashlib, json, os, signal, sys, threading
    import numpy as np
    from fastbp import Network

    mode, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.random((30000, 100)); y = rng.integers(0, 10, 30000)
    net = Network([100, 300, 10], activation="relu", cost="log_likelihood", init="he", seed=1)

    def kill_soon(net, epoch, history):
        if mode == "kill" and epoch == 1:  # die in the middle of the next epoch
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()

    history = net.fit(
        X, y, epochs=4, batch_size=10, lr=0.01, optimizer="momentum", dropout=0.2, seed=5,
        validation_data=(X[:2000], y[:2000]), checkpoint=path, callback=kill_soon,
        resume=path if mode == "resume" else None,
    )
    del history["seconds"]
    print(json.dumps({"params": hashlib.sha256(net.params.tobytes()).hexdigest(),
                      "history": history}))
    """
)


def run_child(mode, path):
    return subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_run_resumes_to_the_same_weights_and_history(tmp_path):
    whole = run_child("whole", tmp_path / "whole.npz")
    assert whole.returncode == 0, whole.stderr
    killed = run_child("kill", tmp_path / "run.npz")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "run.npz").exists()
    resumed = run_child("resume", tmp_path / "run.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == json.loads(whole.stdout)
    # A temporary of a save the kill interrupted is gone once the checkpoint was read again.
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(("tmp", ".tmp"))]


def test_resume_refuses_another_run_or_network(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((50, 4)), rng.integers(0, 2, 50)
    net = Network([4, 3, 2], seed=0)
    net.fit(X, y, epochs=1, batch_size=5, lr=1.0, checkpoint=tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"^resume: .*other data or options"):
        net.fit(X, y, epochs=2, batch_size=7, lr=1.0, resume=tmp_path / "c.npz")
    other = Network([4, 5, 2], seed=0)
    with pytest.raises(ValueError, match="another network"):
        other.fit(X, y, epochs=2, batch_size=5, lr=1.0, resume=tmp_path / "c.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        net.fit(X, y, epochs=2, batch_size=5, lr=1.0, resume=tmp_path / "junk.npz")


def test_keyboard_interrupt_rolls_the_epoch_back_and_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 4)), rng.integers(0, 2, 60)
    net = Network([4, 3, 2], seed=0, dtype="float64")
    snapshots = []

    def interrupt(net, epoch, history):
        snapshots.append(net.params.copy())
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, batch_size=6, lr=1.0, seed=2, callback=interrupt,
                checkpoint=tmp_path / "c.npz")  # fmt: skip
    # The callback runs after epoch 1 is recorded, so the network is at the end of epoch 1.
    assert net.params.tobytes() == snapshots[1].tobytes()
    whole = Network([4, 3, 2], seed=0, dtype="float64")
    reference = whole.fit(X, y, epochs=5, batch_size=6, lr=1.0, seed=2)
    resumed = Network([4, 3, 2], seed=0, dtype="float64")
    history = resumed.fit(X, y, epochs=5, batch_size=6, lr=1.0, seed=2,
                          resume=tmp_path / "c.npz", checkpoint=tmp_path / "c.npz")  # fmt: skip
    assert resumed.params.tobytes() == whole.params.tobytes()
    assert history["epoch"] == reference["epoch"] == [0, 1, 2, 3, 4]


def test_ctrl_c_during_an_epoch_rolls_it_back(tmp_path, ctrl_c):
    """A real SIGINT while a long compiled epoch runs: the epoch is undone, checkpointed."""
    rng = np.random.default_rng(0)
    X, y = rng.random((40000, 100)), rng.integers(0, 10, 40000)
    net = Network([100, 300, 10], seed=0)
    before = []

    def arm(net, epoch, history):
        before.append(net.params.copy())
        threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=50, batch_size=10, lr=0.5, seed=1, callback=arm,
                checkpoint=tmp_path / "c.npz")  # fmt: skip
    done = len(before)
    assert net.params.tobytes() == before[-1].tobytes()  # the interrupted epoch is undone
    resumed = Network([100, 300, 10], seed=0)
    resumed.fit(X, y, epochs=done, batch_size=10, lr=0.5, seed=1, resume=tmp_path / "c.npz")
    assert resumed.params.tobytes() == net.params.tobytes()
