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


@parametrize_with_checks(
    [NetworkClassifier(), NetworkRegressor()],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)
