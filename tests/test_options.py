"""fit's options: one validated object, and a checkpoint that records every one that matters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fastbp import Network
from fastbp.training import FitOptions

#: A valid value other than the default for every option that decides what a run computes.
CHANGED = {
    "batch_size": 7, "lr": 0.5, "shuffle": False, "seed": 9, "lmbda": 1.0, "l1": 0.5,
    "dropout": 0.2, "optimizer": "adam", "momentum": 0.5, "betas": (0.8, 0.99), "eps": 1e-6,
    "rho": 0.9, "clip_norm": 2.0, "clip_value": 0.5, "monitor_training": True,
    "monitor_gradients": True, "schedule": "halve", "patience": 3, "max_halvings": 2,
    "early_stopping": 4,
}  # fmt: skip
BASE = {"batch_size": 5, "lr": 1.0, "seed": 1}


def _data():
    rng = np.random.default_rng(0)
    return rng.random((40, 4)), rng.integers(0, 2, 40)


def test_every_option_that_decides_a_run_is_recorded():
    # A new option is a field of FitOptions, and so in every checkpoint's fingerprint; it
    # needs a value here too, else this fails.
    recorded = {f.name for f in dataclasses.fields(FitOptions) if not f.metadata["run"]}
    assert recorded == set(CHANGED)
    assert set(FitOptions.validated(epochs=1, batch_size=1, lr=1.0).fingerprint()) == recorded


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_resuming_with_one_option_changed_is_refused_naming_it(tmp_path, name):
    X, y = _data()
    path = tmp_path / "c.npz"
    Network([4, 3, 2], seed=0).fit(X, y, epochs=1, validation_data=(X, y), checkpoint=path, **BASE)
    options = {**BASE, name: CHANGED[name]}
    net = Network([4, 3, 2], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=rf"^resume: .*other data or options.*\b{name}="):
        net.fit(X, y, epochs=2, validation_data=(X, y), resume=path, **options)
    assert net.params.tobytes() == before.tobytes()


def test_resuming_with_the_same_options_and_more_epochs_goes_on(tmp_path):
    X, y = _data()
    path = tmp_path / "c.npz"
    options = {**BASE, "optimizer": "rmsprop", "rho": 0.8, "clip_value": 0.5}
    whole = Network([4, 3, 2], seed=0)
    whole.fit(X, y, epochs=3, **options)
    part = Network([4, 3, 2], seed=0)
    part.fit(X, y, epochs=1, checkpoint=path, **options)
    resumed = Network([4, 3, 2], seed=0)
    resumed.fit(X, y, epochs=3, resume=path, verbose=False, checkpoint_every=2, **options)
    assert resumed.params.tobytes() == whole.params.tobytes()


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"shuffle": "no"}, TypeError, "shuffle"),
        ({"monitor_training": 1}, TypeError, "monitor_training"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"betas": (0.9,)}, TypeError, "betas"),
        ({"rho": 1.0}, ValueError, "rho"),
        ({"checkpoint": 3}, TypeError, "checkpoint"),
    ],
)
def test_bad_options_name_themselves(options, error, name):
    X, y = _data()
    net = Network([4, 3, 2], seed=0)
    before = net.params.copy()
    with pytest.raises(error, match=rf"^{name}: "):
        net.fit(X, y, epochs=1, batch_size=5, lr=1.0, **options)
    assert net.params.tobytes() == before.tobytes()


def test_sgd_names_options_the_books_way():
    X, y = _data()
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"^eta: "):
        net.SGD((X, y), 1, 5, -1.0)
    with pytest.raises(ValueError, match=r"^mini_batch_size: "):
        net.SGD((X, y), 1, 0, 1.0)
    with pytest.raises(TypeError, match=r"unexpected option.*bogus"):
        net.SGD((X, y), 1, 5, 1.0, bogus=3)


def test_a_numpy_integer_seed_is_a_seed(tmp_path):
    # np.int64 seeds once broke the checkpoint's JSON after an epoch had trained.
    X, y = _data()
    a, b = Network([4, 3, 2], seed=0), Network([4, 3, 2], seed=0)
    a.fit(X, y, epochs=2, batch_size=5, lr=1.0, seed=np.int64(3), checkpoint=tmp_path / "c.npz")
    b.fit(X, y, epochs=2, batch_size=5, lr=1.0, seed=3)
    assert a.params.tobytes() == b.params.tobytes()
