"""Files written by fastbp 0.1.0, before the code was split up: they load, predict and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fastbp import Network

from .data.make_fixtures import data

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["plain", "toolbox"])
def test_model_files_of_0_1_0_load_and_predict_the_same(name):
    X, _ = data(200, 20, 4, seed=0)
    net = Network.load(DATA / f"model_{name}_0.1.0.npz")
    want = np.load(DATA / f"model_{name}_0.1.0_outputs.npy")
    got = net.feedforward(X)
    np.testing.assert_allclose(got, want, rtol=1e-6 if net.dtype == np.float32 else 1e-12)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()


def test_a_checkpoint_of_0_1_0_resumes_to_the_same_weights(tmp_path):
    X, y = data(200, 20, 4, seed=0)
    path = tmp_path / "checkpoint.npz"
    shutil.copy(DATA / "checkpoint_0.1.0.npz", path)
    net = Network([20, 8, 4], activation="tanh", seed=3)
    options = dict(batch_size=10, lr=0.1, optimizer="momentum", seed=4, lmbda=0.5)
    net.fit(X, y, epochs=4, resume=path, **options)
    want = np.load(DATA / "checkpoint_0.1.0_resumed_params.npy")
    np.testing.assert_allclose(net.params, want, rtol=1e-5, atol=1e-7)
