"""Threads on a busy or restricted machine: how many by default, and one while others are busy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pytest

from fastbp import Network, _threads, kernels
from fastbp._epochs import train_in_team as _train_in_team
from fastbp.datasets import load_mini_mnist

linux_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux's CPU affinity and two CPUs",
)


def _default_threads_in_child(code: str, **env: str) -> int:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")
    }
    script = code + "\nfrom fastbp import _threads\nprint(_threads.default_threads())"
    out = subprocess.run(
        [sys.executable, "-c", script], env={**environment, **env}, capture_output=True,
        text=True, check=True, timeout=120,
    )  # fmt: skip
    return int(out.stdout.split()[-1])


@linux_affinity
def test_a_process_restricted_to_one_cpu_uses_one_thread_unless_told_otherwise():
    one_cpu = "import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})"
    assert _default_threads_in_child("") == len(os.sched_getaffinity(0))
    assert _default_threads_in_child(one_cpu) == 1
    # The user's choice wins, before Numba starts (it caps fastbp's count) or after.
    assert _default_threads_in_child(one_cpu, NUMBA_NUM_THREADS="2") == 2
    assert _default_threads_in_child("", OMP_NUM_THREADS="1") == 1
    restricted_after_import = "import numba\n" + one_cpu
    assert _default_threads_in_child(restricted_after_import) == 1


def test_a_cgroup_quota_caps_the_cpus(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "box").mkdir(parents=True)
    (v2 / "box" / "cpu.max").write_text("150000 100000\n")
    listing = tmp_path / "cgroup"
    listing.write_text("0::/box\n")
    assert _threads._quota_cpus(listing, v2) == 1.5
    (v2 / "box" / "cpu.max").write_text("max 100000\n")
    assert _threads._quota_cpus(listing, v2) is None

    v1 = tmp_path / "v1"
    where = v1 / "cpu,cpuacct" / "docker" / "abc"
    where.mkdir(parents=True)
    (where / "cpu.cfs_quota_us").write_text("50000\n")
    (where / "cpu.cfs_period_us").write_text("100000\n")
    listing.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert _threads._quota_cpus(listing, v1) == 0.5
    (where / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert _threads._quota_cpus(listing, v1) is None
    assert _threads._quota_cpus(tmp_path / "missing", v1) is None


def test_contention_runs_threaded_calls_on_one_thread_for_a_while(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(_threads.time, "monotonic", lambda: now[0])
    contention = _threads.Contention()
    monkeypatch.setattr(_threads, "CONTENTION", contention)
    assert _threads.threads_for(2) == 2 and _threads.threads_for(1) == 1
    contention.record(True)  # once: an idle machine's hiccup, perhaps
    assert _threads.threads_for(2) == 2
    contention.record(True)  # twice in a row: contention
    assert _threads.threads_for(2) == 1 and _threads.threads_for(None) == 1
    now[0] += _threads.FIRST_BACKOFF + 0.01
    assert _threads.threads_for(2) == 2  # threads tried again ...
    contention.record(True)  # ... and the machine is still busy: twice as long
    now[0] += 1.5 * _threads.FIRST_BACKOFF
    assert _threads.threads_for(2) == 1
    now[0] += _threads.FIRST_BACKOFF
    contention.record(False)  # a threaded call without contention ends the backoff
    contention.record(True)
    assert contention.backoff == 0  # one strike
    contention.record(True)
    assert contention.backoff == _threads.FIRST_BACKOFF
    for _ in range(20):
        contention.record(True)
    assert contention.backoff == _threads.LONGEST_BACKOFF


@pytest.mark.parametrize(("waited_ms", "contended"), [(50, True), (1, False)])
def test_threaded_calls_whose_threads_waited_for_a_cpu_are_contention(
    monkeypatch, waited_ms, contended
):
    # Watched calls of 100 ms whose threads waited for a CPU for 50 ms, or for 1 ms.
    contention = _threads.Contention()
    monkeypatch.setattr(_threads, "CONTENTION", contention)
    clock = iter([0, 100_000_000] * _threads.STRIKES)
    monkeypatch.setattr(_threads.time, "perf_counter_ns", lambda: next(clock))
    waits = iter([7_000_000, 7_000_000 + waited_ms * 1_000_000] * _threads.STRIKES)
    monkeypatch.setattr(_threads, "_cpu_wait_ns", lambda task="*": next(waits))
    for _ in range(_threads.STRIKES):
        with _threads.threads(2, watch=True) as n:
            assert n == 2
    assert contention.active() is contended


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has one thread here")
def test_fit_trains_on_one_thread_while_the_machine_is_busy(monkeypatch):
    contention = _threads.Contention()
    monkeypatch.setattr(_threads, "CONTENTION", contention)
    teams = []

    def train_in_team(team, args):
        teams.append(team)
        return _train_in_team(team, args)

    monkeypatch.setattr("fastbp._epochs.train_in_team", train_in_team)
    (X, y), _ = load_mini_mnist()
    X, y = X[:3000], y[:3000]
    nets = [Network([784, 30, 10], seed=5, threads=2) for _ in range(2)]
    contention.until = time.monotonic() + 60  # busy
    nets[0].fit(X, y, epochs=1, batch_size=10, lr=0.5)
    assert teams == []
    contention.until = -np.inf
    nets[1].fit(X, y, epochs=1, batch_size=10, lr=0.5)
    assert teams == [2]
    assert nets[0].params.tobytes() == nets[1].params.tobytes()


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has one thread here")
def test_ctrl_c_during_a_team_epoch_leaves_no_thread_writing_the_weights(monkeypatch, ctrl_c):
    # Ctrl-C lands once the calling thread's share of the epoch returns; fit then rolls the
    # epoch back. The team's other thread must have ended by then, not copy its share of the
    # epoch's weights back after the rollback.
    monkeypatch.setattr(_threads.Contention, "active", lambda self: False)
    (X, y), _ = load_mini_mnist()
    rng = np.random.default_rng(0)
    main = threading.main_thread().ident
    Network([784, 30, 10], seed=1, threads=2).fit(X, y, epochs=1, batch_size=10, lr=0.5)  # warm
    for _ in range(8):
        net = Network([784, 30, 10], seed=1, threads=2)
        before = net.params.copy()
        timer = threading.Timer(
            rng.uniform(0.005, 0.04), signal.pthread_kill, (main, signal.SIGINT)
        )
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                net.fit(X, y, epochs=1000, batch_size=10, lr=0.5)
        finally:
            timer.join()
        after = net.params.copy()
        time.sleep(0.05)  # a member still running would write the weights meanwhile
        assert net.params.tobytes() == after.tobytes()
        assert np.isfinite(after).all() and after.shape == before.shape
    assert kernels.team_size([784, 30, 10], X.shape[0], 10, 2, None) == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, _threads.OPENMP_SPIN_COUNT), ({"GOMP_SPINCOUNT": "7"}, "7"),
     ({"OMP_WAIT_POLICY": "active"}, "None")],
)  # fmt: skip
def test_openmp_workers_spin_briefly_unless_the_user_chose(env, expected):
    # Set at import, before Numba loads libgomp, which reads it then.
    environment = {
        k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
    }
    code = "import os, fastbp; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env={**environment, **env},
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == expected
