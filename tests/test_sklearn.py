"""fastbp.sklearn against scikit-learn's own conformance checks, and in its tools."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import make_blobs, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastbp import Network
from fastbp.sklearn import NetworkClassifier, NetworkRegressor

#: Checks expected to fail, each with its reason (README lists the same). None so far.
EXPECTED_FAILED: dict[str, str] = {}


# Some checks train on random labels, or on inputs far from unit scale (mean 100), where the
# sigmoid neurons saturate: fit's collapse test rightly says so (CollapseWarning), and the
# checks test the interface, not the learning.
@pytest.mark.filterwarnings("ignore::fastbp.diagnostics.CollapseWarning")
@parametrize_with_checks(
    [NetworkClassifier(), NetworkRegressor()],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


def _blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=3, n_features=4, random_state=seed)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "eel"]),
        np.array([-5, 10, 700]),
        np.array([1.0, 3.0, 10.0]),
    ],
    ids=["strings", "sparse-integers", "integral-floats"],
)
def test_classifier_learns_any_label_kind(labels):
    X, y = _blobs()
    y_named = labels[y]
    clf = NetworkClassifier(random_state=0).fit(X, y_named)
    assert list(clf.classes_) == sorted(labels.tolist())
    pred = clf.predict(X)
    assert pred.dtype == y_named.dtype
    assert np.mean(pred == y_named) > 0.9
    # the same network as one trained on the indices 0..2: the labels only name the outputs
    plain = NetworkClassifier(random_state=0).fit(X, np.searchsorted(clf.classes_, y_named))
    np.testing.assert_array_equal(clf.network_.params, plain.network_.params)


def test_boolean_labels_and_probabilities():
    X, y = _blobs()
    y_bool = y == 1
    clf = NetworkClassifier(random_state=0).fit(X, y_bool)
    assert clf.classes_.tolist() == [False, True]
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert np.mean(clf.predict(X) == y_bool) > 0.9


def test_predict_proba_of_a_sigmoid_output_is_normalised():
    X, y = _blobs()
    clf = NetworkClassifier(cost="quadratic", random_state=0).fit(X, y)
    out = clf.network_.feedforward(X.astype(np.float32)).astype(np.float64)
    np.testing.assert_allclose(clf.predict_proba(X), out / out.sum(axis=1, keepdims=True))


def test_fitted_attributes_and_network():
    X, y = _blobs()
    clf = NetworkClassifier(hidden_layer_sizes=(7,), epochs=4, random_state=0).fit(X, y)
    assert tuple(clf.network_.sizes) == (4, 7, 3)
    assert clf.n_features_in_ == 4
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.validation_scores_ is None
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    # the loss curve is the network's training cost
    net_cost = clf.network_.total_cost(X.astype(np.float32), y)
    assert clf.loss_curve_[-1] == pytest.approx(net_cost, rel=1e-4)


def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = NetworkClassifier(epochs=2, random_state=0).fit(frame, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c", "d"]


def test_early_stopping_on_a_validation_fraction():
    X, y = _blobs(200)
    clf = NetworkClassifier(
        epochs=200, early_stopping=3, validation_fraction=0.2, random_state=0
    ).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ < 200
    best = int(np.argmax(scores))
    assert len(scores) - 1 - best == 3  # stopped three epochs after the best
    # the network was trained on 160 samples and restored to its best epoch
    reg = NetworkRegressor(
        epochs=200, early_stopping=3, validation_fraction=0.2, random_state=0
    ).fit(X, X[:, 0] - X[:, 1])
    assert len(reg.validation_scores_) == reg.n_iter_ < 200
    held_out = reg.validation_scores_
    assert len(held_out) - 1 - int(np.argmax(held_out)) == 3


def test_validation_fraction_is_checked():
    X, y = _blobs()
    clf = NetworkClassifier(early_stopping=2, validation_fraction=1.5)
    with pytest.raises(ValueError, match="validation_fraction"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="schedule"):
        NetworkRegressor(schedule="halve").fit(X, X[:, 0])


def test_warm_start_and_partial_fit_continue_training():
    X, y = _blobs()
    # two fits of 3 epochs with warm_start are one of 6, bitwise
    warm = NetworkClassifier(epochs=3, warm_start=True, random_state=0)
    warm.fit(X, y).fit(X, y)
    once = NetworkClassifier(epochs=6, random_state=0).fit(X, y)
    assert warm.n_iter_ == 6
    np.testing.assert_array_equal(warm.network_.params, once.network_.params)
    # partial_fit: one epoch a call, classes on the first
    part = NetworkClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        part.partial_fit(X, y)
    part.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    for _ in range(5):
        part.partial_fit(X, y)
    assert part.n_iter_ == 6 and part.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not in classes_"):
        part.partial_fit(X, y + 1)
    assert np.mean(part.predict(X) == y) > 0.9


def test_multi_output_regression():
    X, Y = make_regression(n_samples=150, n_features=5, n_targets=3, random_state=0)
    X, Y = StandardScaler().fit_transform(X), StandardScaler().fit_transform(Y)
    reg = NetworkRegressor(random_state=0).fit(X, Y)
    assert reg.network_.sizes[-1] == 3
    assert reg.predict(X).shape == (150, 3)
    assert reg.score(X, Y) > 0.8
    one = NetworkRegressor(random_state=0).fit(X, Y[:, 0])
    assert one.predict(X).shape == (150,)


def test_pipeline_cross_validation_grid_search_and_pickle():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=1)
    X = X * 50 + 200  # far from unit scale: the scaler is needed
    pipe = make_pipeline(StandardScaler(), NetworkClassifier(epochs=10, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9
    grid = GridSearchCV(
        pipe, {"networkclassifier__lr": [0.05, 0.5], "networkclassifier__lmbda": [0.0, 1.0]},
        cv=2, n_jobs=2,
    )  # fmt: skip
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.9
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X), grid.best_estimator_.predict(X))
    np.testing.assert_array_equal(restored.predict_proba(X), grid.predict_proba(X))


def test_clone_gives_the_same_network():
    X, y = _blobs()
    clf = NetworkClassifier(epochs=3, random_state=4).fit(X, y)
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(clf.network_.params, again.network_.params)
    assert isinstance(again.network_, Network)


def test_bad_parameters_name_themselves():
    X, y = _blobs()
    with pytest.raises(ValueError, match="cost"):
        NetworkClassifier(cost="hinge").fit(X, y)
    with pytest.raises(ValueError, match="lr"):
        NetworkClassifier(lr=-1.0).fit(X, y)
    with pytest.raises(TypeError, match="hidden_layer_sizes"):
        NetworkClassifier(hidden_layer_sizes=None).fit(X, y)
    with pytest.raises(ValueError, match="2 classes"):
        NetworkClassifier().fit(X, np.zeros(X.shape[0]))


def test_a_pickled_network_trains_on_as_the_original():
    X, y = _blobs()
    net = Network([4, 5, 5, 3], seed=0, residual=True, batch_norm=True)
    net.fit(X, y, epochs=1, batch_size=10, lr=0.1, optimizer="adam")
    copy = pickle.loads(pickle.dumps(net))
    assert np.shares_memory(copy.weights[0], copy.params)
    assert np.shares_memory(copy.gammas[0], copy.params)
    for n in (net, copy):
        n.fit(X, y, epochs=2, batch_size=10, lr=0.1, optimizer="adam", seed=1)
    np.testing.assert_array_equal(copy.params, net.params)
    np.testing.assert_array_equal(copy.weights[1], net.weights[1])
