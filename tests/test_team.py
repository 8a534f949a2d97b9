"""The team epoch: threads that stay together for a whole epoch give one thread's weights."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastbp import Network, _kernels
from fastbp.network import _train_in_team

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
        _train_in_team(team, args)

    monkeypatch.setattr("fastbp.network._train_in_team", train_in_team)
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
            _kernels.train_epoch_columns(*args)
    else:
        _train_in_team(2, args)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_team_whose_members_cannot_all_start_trains_alone(threads):
    # Members run one after the other (on one thread): the first must not wait for a second
    # that can only start after it ends. It gives up waiting, trains alone, and the second
    # finds the team closed (flags[0] = -1) and does nothing. On two threads the team forms.
    X, y = _data(203, 64, 10)
    reference = Network([64, 30, 10], seed=1, threads=1)
    team = Network([64, 30, 10], seed=1)
    reference.fit(X, y, epochs=1, batch_size=10, lr=0.5, shuffle=False)
    columns = _kernels.column_buffers(team.sizes, 10, team.dtype)
    flags = columns[2]
    _team_epoch(team, X, y, columns, threads)
    assert team.params.tobytes() == reference.params.tobytes()
    steps = -(-203 // 10)
    line = _kernels.LINE
    if threads == 1:
        assert flags[0] == -1  # closed: one member trained alone
        assert not flags[line:].any()  # alone: it never signals, nor waits
    else:
        assert flags[0] == 2
        assert flags[line] == flags[2 * line] == flags[3 * line] == steps


def test_team_size_is_one_where_a_team_cannot_help():
    n = 50_000
    assert _kernels.team_size([784, 30, 10], n, 10, 2, None) == 2
    assert _kernels.team_size([784, 100, 10], n, 10, 8, None) == _kernels.COLUMN_BLOCKS
    assert _kernels.team_size([784, 100, 10], n, 10, 3, None) == 2  # blocks evenly
    assert _kernels.team_size([784, 30, 10], n, 10, 1, None) == 1  # one thread
    assert _kernels.team_size([30, 100, 10], n, 10, 2, None) == 1  # narrow rows
    assert _kernels.team_size([784, 30, 10], n, 100, 2, None) == 2  # 2.4M multiply-adds
    assert _kernels.team_size([784, 100, 10], n, 100, 2, None) == 1  # 7.8M: Numba's threads
    assert _kernels.team_size([784, 30, 10], n, 10, 2, True) == 1  # residual, bn
    assert _kernels.team_size([784, 30, 30, 30, 30, 10], n, 10, 2, None) == 2  # 89% in layer 1
    assert _kernels.team_size([784, 30, 300, 10], n, 10, 2, None) == 1  # 66%: member 0's share
    steps = _kernels.TEAM_MIN_STEPS
    assert _kernels.team_size([784, 30, 10], 10 * steps - 9, 10, 2, None) == 2
    assert _kernels.team_size([784, 30, 10], 10 * steps - 10, 10, 2, None) == 1


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
