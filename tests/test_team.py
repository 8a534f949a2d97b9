"""The team epoch: threads that stay together for a whole epoch give one thread's weights."""

from __future__ import annotations

import os
from functools import partial

import numba
import numpy as np
import pytest

from fastbp import Network, _threads, kernels
from fastbp._epochs import train_in_team as _train_in_team

two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has fewer than two threads here"
)


def _data(n, n_in, n_out, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)).astype(dtype), rng.integers(0, n_out, n)


@pytest.mark.parametrize(
    ("sizes", "options"),
    [
        ([64, 30, 10], {}),  # four blocks of 16 inputs (float32), 30 neurons padded to 32
        ([70, 31, 5], {"lmbda": 5.0}),  # float32 blocks of 32, 32, 6 and 0 inputs
        ([64, 22, 9], {"dropout": 0.3, "l1": 2.0}),  # masks drawn by member 0
        ([64, 16, 3], {"activation": "relu", "output": "softmax", "cost": "log_likelihood"}),
        ([100, 40], {"activation": "tanh"}),  # no hidden layer; 40 neurons: two pairs (f32)
        ([100, 24, 12, 5], {"lmbda": 1.0}),  # two hidden layers, 87% of the work in layer 1
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@two_threads
def test_a_team_of_two_trains_the_weights_one_thread_does(sizes, options, dtype, monkeypatch):
    shape = ("activation", "output", "cost")
    extra = {k: v for k, v in options.items() if k in shape}
    fit_options = {k: v for k, v in options.items() if k not in shape}
    X, y = _data(2563, sizes[0], sizes[-1], dtype=dtype)  # the last mini-batch has 3 samples
    teams = []

    def train_in_team(team, args):
        teams.append(team)
        return _train_in_team(team, args)

    monkeypatch.setattr("fastbp._epochs.train_in_team", train_in_team)
    monkeypatch.setattr(kernels.team, "TEAM_MIN_EPOCH_WORK", 0)  # small networks, to be quick
    # Every epoch a team, even if a busy machine makes one stall (it then trains alone).
    monkeypatch.setattr(_threads.Contention, "active", lambda self: False)
    nets = {}
    for threads in (1, 2):
        net = Network(sizes, seed=7, dtype=dtype, threads=threads, **extra)
        net.fit(X, y, epochs=2, batch_size=10, lr=0.5, seed=11, **fit_options)
        nets[threads] = net
    assert teams == [2, 2]  # two epochs on a team of two; none with threads=1
    assert nets[1].params.tobytes() == nets[2].params.tobytes()


def _team_epoch(net, X, y, columns, threads, batch_size=10):
    X = X.astype(net.dtype)
    Y = np.eye(net.sizes[-1], dtype=net.dtype)[y]
    eta, zero = net.dtype.type(0.5), net.dtype.type(0)
    order = np.arange(X.shape[0], dtype=np.int64)
    args = (
        2, net.params, net._model, X, Y, order, batch_size, eta, zero, zero, None, 0,
        net._workspace(batch_size), None, columns, net.params[:0], None,
    )  # fmt: skip
    if threads == 1:  # the members one after the other
        for _ in range(2):
            kernels.train_epoch_columns(*args)
    else:
        _train_in_team(2, args)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_team_whose_members_cannot_all_start_trains_alone(threads):
    # Members run one after the other (on one thread): the first must not wait for a second
    # that can only start after it ends. It waits JOIN_NS, takes the second's share over and
    # trains alone; the second finds its first step claimed and does nothing. On two
    # threads the team forms.
    X, y = _data(203, 64, 10)
    reference = Network([64, 30, 10], seed=1, threads=1)
    team = Network([64, 30, 10], seed=1)
    reference.fit(X, y, epochs=1, batch_size=10, lr=0.5, shuffle=False)
    columns = kernels.column_buffers(team.sizes, 10, team.dtype)
    flags = columns[2]
    _team_epoch(team, X, y, columns, threads)
    assert team.params.tobytes() == reference.params.tobytes()
    steps = -(-203 // 10)
    line = kernels.LINE
    member = partial(kernels.member_slot.py_func, 1)
    assert flags[line * kernels.ARRIVED] == 2
    if threads == 1:
        assert flags[line * kernels.TOOK_OVER] == 1  # at the first step
        assert flags[member(kernels.CLAIMED)] == kernels.TAKEN
        assert flags[member(kernels.A_DONE)] == flags[member(kernels.C_DONE)] == 0
        assert flags[line * kernels.B_DONE] == 0  # alone: it never signals
    else:
        assert flags[line * kernels.TOOK_OVER] == 0
        assert flags[member(kernels.CLAIMED)] == steps
        assert flags[member(kernels.A_DONE)] == flags[member(kernels.C_DONE)] == steps
        assert flags[line * kernels.B_DONE] == steps


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 1,
    reason="needs Linux's per-thread CPU affinity",
)
@two_threads
def test_a_team_that_stalls_is_taken_over_and_trains_one_threads_weights(monkeypatch):
    # Both members on one CPU: each meeting waits for the other to get the CPU, a stall;
    # member 0 takes over the other's share and
    # finishes the epoch alone, with the weights of one thread; after two such epochs fastbp
    # trains on one thread for a while.
    monkeypatch.setattr(_threads, "CONTENTION", _threads.Contention())
    X, y = _data(3000, 784, 10, dtype=np.float32)
    reference = Network([784, 30, 10], seed=3, threads=1)
    reference.fit(X, y, epochs=2, batch_size=10, lr=0.5, seed=4)
    took_over = []

    def train_in_team(team, args):
        waited = _train_in_team(team, args)
        took_over.append(int(args[14][2][kernels.LINE * kernels.TOOK_OVER]))
        return waited

    monkeypatch.setattr("fastbp._epochs.train_in_team", train_in_team)
    Network([784, 30, 10], seed=0, threads=2).fit(X, y, epochs=1, batch_size=10, lr=0.5)
    assert len(took_over) == 1  # a team epoch: its helper threads exist
    took_over.clear()
    # On a busy machine that first epoch may itself have met contention: start the pinned fit
    # with no memory of it, so that its first epoch is a team's whatever the load.
    monkeypatch.setattr(_threads, "CONTENTION", _threads.Contention())
    net = Network([784, 30, 10], seed=3, threads=2)
    tasks = [int(t) for t in os.listdir("/proc/self/task")]
    cpus = {t: os.sched_getaffinity(t) for t in tasks}
    for t in tasks:  # every thread of the process, as taskset -a -p would
        os.sched_setaffinity(t, {min(cpus[t])})
    try:
        net.fit(X, y, epochs=2, batch_size=10, lr=0.5, seed=4)
    finally:
        for t, allowed in cpus.items():
            os.sched_setaffinity(t, allowed)
    assert len(took_over) == 2 and all(took_over)
    assert net.params.tobytes() == reference.params.tobytes()
    assert _threads.CONTENTION.active()  # two in a row: the next epochs on one thread
    assert _threads.threads_for(2) == 1


def test_team_size_is_one_where_a_team_cannot_help():
    n = 50_000
    assert kernels.team_size([784, 30, 10], n, 10, 2, None) == 2
    assert kernels.team_size([784, 100, 10], n, 10, 8, None) == kernels.COLUMN_BLOCKS
    assert kernels.team_size([784, 100, 10], n, 10, 3, None) == 2  # blocks evenly
    assert kernels.team_size([784, 30, 10], n, 10, 1, None) == 1  # one thread
    assert kernels.team_size([30, 100, 10], n, 10, 2, None) == 1  # narrow rows
    assert kernels.team_size([784, 30, 10], n, 100, 2, None) == 2
    assert kernels.team_size([784, 1000, 10], n, 100, 2, None) == 2
    assert kernels.team_size([784, 30, 10], n, 10, 2, True) == 1  # residual, bn
    assert kernels.team_size([784, 30, 30, 30, 30, 10], n, 10, 2, None) == 2  # 89% in layer 1
    assert kernels.team_size([784, 30, 300, 10], n, 10, 2, None) == 1  # 66%: member 0's share
    per_sample = 784 * 30 + 30 * 10
    enough = -(-kernels.TEAM_MIN_EPOCH_WORK // per_sample)
    assert kernels.team_size([784, 30, 10], enough, 10, 2, None) == 2
    assert kernels.team_size([784, 30, 10], enough - 1, 10, 2, None) == 1


@two_threads
def test_a_team_epoch_that_goes_non_finite_is_replayed_to_name_the_mini_batch():
    # The replay that names the failing mini-batch runs on one thread; since the team gives
    # one thread's weights, it fails at the same step and restores the same parameters.
    X, y = _data(2600, 64, 10)
    X[1057] = 1e30
    errors, params = [], []
    for threads in (1, 2):
        net = Network([64, 30, 10], seed=2, dtype="float32", threads=threads)
        with pytest.raises(FloatingPointError) as error:
            net.fit(X, y, epochs=1, batch_size=10, lr=1e12, shuffle=False)
        errors.append(str(error.value))
        params.append(net.params.tobytes())
    assert "mini-batch" in errors[0] and errors[0] == errors[1]
    assert params[0] == params[1]
