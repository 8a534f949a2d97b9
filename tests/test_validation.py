"""Argument checking of ``Network``: bad input raises a clear error and leaves the parameters alone.

Every rejection is checked three ways: the exception type, a message that starts with the name
of the offending parameter (``"X: ..."``, ``"sizes[1]: ..."``, ``"eta: ..."``), and parameters
that are bit-for-bit what they were before the call. Inputs that only need converting (integer,
bool, float64, non-contiguous, nested lists) must give exactly what their float32 copy gives.

One small float32 network, [4, 3, 2], keeps Numba's compile time (the main cost) to one dtype.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from fastbp import Network, kernels

SIZES = [4, 3, 2]
N_IN, N_OUT = SIZES[0], SIZES[-1]

_rng = np.random.default_rng(12345)
X = _rng.random((6, N_IN)).astype(np.float32)
LABELS = np.array([0, 1, 1, 0, 1, 0], dtype=np.int64)
Y = np.eye(N_OUT, dtype=np.float32)[LABELS]


@pytest.fixture
def net() -> Network:
    return Network(SIZES, seed=0)


def assert_rejects(
    net: Network | None, exc: type[Exception], name: str, call: Callable[[], object]
) -> None:
    """``call()`` raises ``exc`` with a message starting ``"name:"``; ``net.params`` untouched."""
    before = None if net is None else net.params.copy()
    with pytest.raises(exc, match=rf"^{re.escape(name)}:"):
        call()
    if net is not None:
        np.testing.assert_array_equal(net.params, before)
        assert net.params.tobytes() == before.tobytes()


# --- the public calls, each with the names its messages use -------------------------------

#: method -> name of its input parameter in error messages
X_NAME = {
    "fit": "X",
    "SGD": "training_data",
    "gradients": "X",
    "total_cost": "X",
    "predict": "X",
    "accuracy": "X",
    "evaluate": "test_data",
    "feedforward": "a",
}
#: calls that take the data as one argument, a pair of arrays or the book's list of pairs:
#: there a pair whose X is a list, not an ndarray, is read as a list of (x, y) pairs
PAIR_METHODS = {"SGD", "evaluate"}
#: method -> name of its target parameter in error messages
Y_NAME = {
    "fit": "y",
    "SGD": "training_data",
    "gradients": "Y",
    "total_cost": "y",
    "accuracy": "y",
    "evaluate": "test_data",
}


def call(method: str, net: Network, x=X, y=LABELS) -> Callable[[], object]:
    """A call of ``method`` on data ``(x, y)`` with otherwise valid arguments."""
    calls = {
        "fit": lambda: net.fit(x, y, epochs=1, batch_size=2, lr=0.5),
        "SGD": lambda: net.SGD((x, y), 1, 2, 0.5),
        "gradients": lambda: net.gradients(x, y),
        "total_cost": lambda: net.total_cost(x, y),
        "predict": lambda: net.predict(x),
        "accuracy": lambda: net.accuracy(x, y),
        "evaluate": lambda: net.evaluate((x, y)),
        "feedforward": lambda: net.feedforward(x),
    }
    return calls[method]


# --- Network(sizes, dtype) ----------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [5], (7,), np.array([3])])
def test_sizes_fewer_than_two_layers(sizes):
    assert_rejects(None, ValueError, "sizes", lambda: Network(sizes))


@pytest.mark.parametrize(("sizes", "index"), [([4, 0, 2], 1), ([0, 3, 2], 0), ([4, 3, 0], 2)])
def test_sizes_zero_width(sizes, index):
    assert_rejects(None, ValueError, f"sizes[{index}]", lambda: Network(sizes))


@pytest.mark.parametrize(("sizes", "index"), [([4, -3, 2], 1), ([-1, 3], 0), ([4, 3, -2], 2)])
def test_sizes_negative_width(sizes, index):
    assert_rejects(None, ValueError, f"sizes[{index}]", lambda: Network(sizes))


@pytest.mark.parametrize("width", [2.5, "3", True, 3.0, np.float64(3.0), None])
def test_sizes_non_integer_width(width):
    assert_rejects(None, TypeError, "sizes[1]", lambda: Network([4, width, 2]))


@pytest.mark.parametrize(
    "sizes",
    [5, "432", b"432", None, {4, 3, 2}, {4: 1, 3: 1}, (n for n in [4, 3, 2])],
    ids=["int", "str", "bytes", "None", "set", "dict", "generator"],
)
def test_sizes_not_a_sequence(sizes):
    assert_rejects(None, TypeError, "sizes", lambda: Network(sizes))


@pytest.mark.parametrize(
    "dtype", ["float16", "int32", "banana", None, np.int64, "complex128", "float128", 5, {}]
)
def test_unknown_dtype(dtype):
    assert_rejects(None, ValueError, "dtype", lambda: Network(SIZES, dtype=dtype))


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", np.float32),
        ("f4", np.float32),
        (np.float64, np.float64),
        ("float64", np.float64),
    ],
)
def test_dtype_spellings(dtype, expected):
    net = Network(SIZES, seed=0, dtype=dtype)
    assert net.dtype == expected
    assert net.params.dtype == expected


# --- X ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", X_NAME)
@pytest.mark.parametrize("cols", [N_IN - 1, N_IN + 1, 1])
def test_x_wrong_number_of_columns(net, method, cols):
    bad = _rng.random((6, cols)).astype(np.float32)
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, bad))


@pytest.mark.parametrize("method", X_NAME)
def test_x_three_dimensional(net, method):
    bad = X.reshape(6, N_IN, 1)
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, bad))


@pytest.mark.parametrize("method", X_NAME)
def test_x_empty(net, method):
    empty = np.empty((0, N_IN), dtype=np.float32)
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, empty, LABELS[:0]))


@pytest.mark.parametrize("method", X_NAME)
@pytest.mark.parametrize(
    "value", [np.nan, np.inf, -np.inf, 1e300], ids=["nan", "inf", "-inf", "overflow"]
)
def test_x_not_finite(net, method, value):
    bad = X.astype(np.float64)
    bad[2, 1] = value  # 1e300 is finite in float64 but not in the network's float32
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, bad))


@pytest.mark.parametrize("method", X_NAME)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_x_not_finite_in_the_networks_dtype(net, method, value):
    """Input needing no conversion is checked by the compiled code (fit: the epoch's guard,
    predict: the forward kernel), and still blamed on X with the weights unchanged."""
    bad = X.astype(np.float32)
    bad[4, 3] = value
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, bad))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_forward_kernel_finds_a_non_finite_input_in_any_block(value):
    """``predict``'s kernel flags the blocks whose ``z¹`` is not finite, which any non-finite
    input makes it, even against a zero weight (∞·0 is NaN): here in layer 1's columns
    (rows of ≥ 64 inputs), in the second block of rows, on the last input."""
    net = Network([70, 5, 3], seed=0)
    net.weights[0][:, -1] = 0.0
    rows = kernels.FEEDFORWARD_ROWS
    bad = _rng.random((rows + 50, 70)).astype(np.float32)
    bad[rows + 20, -1] = value
    assert_rejects(net, ValueError, "X", lambda: net.predict(bad))


def test_forward_kernel_accepts_finite_inputs_that_overflow():
    """A finite input whose ``z¹`` overflows is flagged by the kernel, then found finite: the
    outputs come back (σ(±∞) is 0 or 1), as the equations give them."""
    net = Network([70, 5, 3], seed=0)
    net.weights[0][:] = np.abs(net.weights[0]) + 0.5  # z¹ = +∞ for these inputs, so a¹ = 1
    big = np.full((3, 70), 3e38, dtype=np.float32)
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(big @ net.weights[0].T))
    w, b = net.weights[1].astype(np.float64), net.biases[1].astype(np.float64)
    expected = 1 / (1 + np.exp(-(w @ np.ones(5) + b)))
    np.testing.assert_allclose(net.feedforward(big), np.tile(expected, (3, 1)), rtol=1e-6)


_NON_NUMERIC = {
    "str array": np.array([["a", "b", "c", "d"]] * 6),
    "object array": X.astype(object),
    "None array": np.full((6, N_IN), None),
    "complex array": X.astype(np.complex64),
    "str lists": [["0.1", "0.2", "0.3", "0.4"]] * 6,
    "mixed lists": [[0.1, "x", 0.3, 0.4]] * 6,
}


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        (method, kind)
        for method in X_NAME
        for kind, bad in _NON_NUMERIC.items()
        if method not in PAIR_METHODS or isinstance(bad, np.ndarray)
    ],
)
def test_x_non_numeric(net, method, kind):
    assert_rejects(net, TypeError, X_NAME[method], call(method, net, _NON_NUMERIC[kind]))


@pytest.mark.parametrize("method", [m for m in X_NAME if m not in PAIR_METHODS])
def test_x_ragged(net, method):
    ragged = [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2]] + [[0.1, 0.2, 0.3, 0.4]] * 4
    assert_rejects(net, ValueError, X_NAME[method], call(method, net, ragged))


# --- y and Y ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", Y_NAME)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_y_not_finite(net, method, value):
    bad = Y.copy()
    bad[3, 0] = value
    assert_rejects(net, ValueError, Y_NAME[method], call(method, net, X, bad))


@pytest.mark.parametrize("method", Y_NAME)
@pytest.mark.parametrize("width", [1, N_OUT + 1, N_OUT + 3])
def test_y_wrong_width(net, method, width):
    bad = np.zeros((6, width), dtype=np.float32)
    assert_rejects(net, ValueError, Y_NAME[method], call(method, net, X, bad))


@pytest.mark.parametrize("method", Y_NAME)
@pytest.mark.parametrize("label", [N_OUT, N_OUT + 7, -1])
def test_labels_out_of_range(net, method, label):
    bad = LABELS.copy()
    bad[4] = label
    assert_rejects(net, ValueError, Y_NAME[method], call(method, net, X, bad))


@pytest.mark.parametrize("method", Y_NAME)
def test_float_labels_for_multi_output(net, method):
    bad = LABELS.astype(np.float64)  # 0.0 / 1.0: whole numbers, but not integer labels
    assert_rejects(net, TypeError, Y_NAME[method], call(method, net, X, bad))


@pytest.mark.parametrize("method", Y_NAME)
@pytest.mark.parametrize("form", ["labels", "rows"])
@pytest.mark.parametrize("n", [5, 7])
def test_x_and_y_lengths_differ(net, method, form, n):
    y = np.resize(LABELS, n) if form == "labels" else np.resize(Y, (n, N_OUT))
    assert_rejects(net, ValueError, Y_NAME[method], call(method, net, X, y))


# --- hyperparameters ----------------------------------------------------------------------


def train(method: str, net: Network, *, epochs=1, batch=2, rate=0.5) -> Callable[[], object]:
    if method == "fit":
        return lambda: net.fit(X, LABELS, epochs=epochs, batch_size=batch, lr=rate)
    return lambda: net.SGD((X, LABELS), epochs, batch, rate)


BATCH_NAME = {"fit": "batch_size", "SGD": "mini_batch_size"}
RATE_NAME = {"fit": "lr", "SGD": "eta"}


@pytest.mark.parametrize("method", ["fit", "SGD"])
@pytest.mark.parametrize(
    ("batch", "exc"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2.5, TypeError),
        ("10", TypeError),
        (True, TypeError),
        (2.0, TypeError),
        (None, TypeError),
    ],
)
def test_bad_batch_size(net, method, batch, exc):
    assert_rejects(net, exc, BATCH_NAME[method], train(method, net, batch=batch))


@pytest.mark.parametrize("method", ["fit", "SGD"])
@pytest.mark.parametrize(
    ("rate", "exc"),
    [
        (0, ValueError),
        (0.0, ValueError),
        (-0.5, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        (-np.inf, ValueError),
        (1e300, ValueError),  # finite, but not in the network's float32
        ("0.5", TypeError),
        (None, TypeError),
        (True, TypeError),
        (0.5j, TypeError),
    ],
)
def test_bad_learning_rate(net, method, rate, exc):
    assert_rejects(net, exc, RATE_NAME[method], train(method, net, rate=rate))


@pytest.mark.parametrize("method", ["fit", "SGD"])
@pytest.mark.parametrize(
    ("epochs", "exc"),
    [
        (-1, ValueError),
        (1.5, TypeError),
        (1.0, TypeError),
        ("2", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_epochs(net, method, epochs, exc):
    assert_rejects(net, exc, "epochs", train(method, net, epochs=epochs))


# --- validation_data and test_data --------------------------------------------------------


@pytest.mark.parametrize(
    ("validation", "exc"),
    [
        ((X[:, :3], LABELS), ValueError),  # wrong number of columns
        ((X[:, :1], LABELS), ValueError),
        ((X.reshape(6, N_IN, 1), LABELS), ValueError),
        ((X, LABELS + 1), ValueError),  # a label == n_out
        ((X, LABELS[:4]), ValueError),
        ((X, np.zeros((6, N_OUT + 1))), ValueError),
        ((X, LABELS.astype(float)), TypeError),
        (X, TypeError),  # not a pair
        ((X, LABELS, LABELS), TypeError),
        ([X], TypeError),
        (5, TypeError),
    ],
    ids=[
        "3 columns",
        "1 column",
        "3-D",
        "label out of range",
        "short labels",
        "wide rows",
        "float labels",
        "bare X",
        "triple",
        "single",
        "int",
    ],
)
def test_bad_validation_data(net, validation, exc):
    assert_rejects(
        net,
        exc,
        "validation_data",
        lambda: net.fit(X, LABELS, epochs=1, batch_size=2, lr=0.5, validation_data=validation),
    )


_BOOK_PAIRS = [(x.reshape(-1, 1), int(label)) for x, label in zip(X, LABELS, strict=True)]

_BAD_TEST_DATA = {
    "pair, 3 columns": ((X[:, :3], LABELS), ValueError),
    "pair, 1-D X": ((X[0], LABELS), ValueError),
    "pair, 3-D X": ((X.reshape(6, N_IN, 1), LABELS), ValueError),
    "pair, labels out of range": ((X, LABELS + 1), ValueError),
    "pair, float labels": ((X, LABELS.astype(float)), TypeError),
    "int": (5, TypeError),
    "None in list": ([None], TypeError),
    "empty list": ([], ValueError),
    "triples": ([(x, y, 0) for x, y in _BOOK_PAIRS], TypeError),
    "bare X": (X, TypeError),
    "pairs, 3 values per x": ([(x[:3], y) for x, y in _BOOK_PAIRS], ValueError),
    "pairs, ragged x": ([(x[: 3 + i % 2], y) for i, (x, y) in enumerate(_BOOK_PAIRS)], ValueError),
    "pairs, float labels": ([(x, y + 0.5) for x, y in _BOOK_PAIRS], TypeError),
    "pairs, str labels": ([(x, str(y)) for x, y in _BOOK_PAIRS], TypeError),
    "pairs, ragged y": (
        [(x, np.zeros(1 + i % 2)) for i, (x, _) in enumerate(_BOOK_PAIRS)],
        ValueError,
    ),
    "pairs, label out of range": ([(x, N_OUT) for x, _ in _BOOK_PAIRS], ValueError),
    "pairs, str x": ([(np.array(["a"] * N_IN), y) for _, y in _BOOK_PAIRS], TypeError),
}


@pytest.mark.parametrize("method", ["SGD", "evaluate"])
@pytest.mark.parametrize("case", _BAD_TEST_DATA)
def test_bad_test_data(net, method, case):
    data, exc = _BAD_TEST_DATA[case]
    if method == "SGD":
        run = lambda: net.SGD(_BOOK_PAIRS, 1, 2, 0.5, test_data=data)  # noqa: E731
    else:
        run = lambda: net.evaluate(data)  # noqa: E731
    assert_rejects(net, exc, "test_data", run)


@pytest.mark.parametrize(
    ("case", "exc"),
    [
        ("pair, 3 columns", ValueError),
        ("pairs, float labels", TypeError),
        ("empty list", ValueError),
        ("int", TypeError),
    ],
)
def test_bad_training_data(net, case, exc):
    data, _ = _BAD_TEST_DATA[case]
    assert_rejects(net, exc, "training_data", lambda: net.SGD(data, 1, 2, 0.5))


# --- backprop -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x",
    [X, X[:2], X[:1], X[:, :1], X.reshape(6, N_IN, 1), X[0, :3], X[0].reshape(1, 1, N_IN)],
    ids=["batch", "batch of 2", "row", "wrong column", "3-D batch", "short vector", "3-D"],
)
def test_backprop_needs_one_sample(net, x):
    assert_rejects(net, ValueError, "x", lambda: net.backprop(x, 1))


@pytest.mark.parametrize(
    ("y", "exc"),
    [
        (N_OUT, ValueError),
        (-1, ValueError),
        (1.0, TypeError),
        (np.array([np.nan, 1.0]), ValueError),
        (np.zeros(N_OUT + 1), ValueError),
        (LABELS, ValueError),
        ("1", TypeError),
    ],
)
def test_backprop_bad_target(net, y, exc):
    assert_rejects(net, exc, "y", lambda: net.backprop(X[0], y))


# --- conversions that must be accepted ----------------------------------------------------

_BITS = (_rng.random((6, N_IN)) > 0.5).astype(np.float32)  # pixel-like 0/1 values
_X64 = _rng.random((6, N_IN))
_TALL = _rng.random((12, N_IN)).astype(np.float32)
_WIDE = _rng.random((6, 2 * N_IN)).astype(np.float32)

#: name -> (input as given, its float32 C-contiguous equivalent)
CONVERSIONS = {
    "uint8": (_BITS.astype(np.uint8), _BITS / np.float32(255)),  # 8-bit pixels: x / 255
    "int64": (_BITS.astype(np.int64), _BITS),
    "bool": (_BITS.astype(bool), _BITS),
    "float64": (_X64, _X64.astype(np.float32)),
    "fortran": (np.asfortranarray(X), np.ascontiguousarray(X)),
    "rows[::2]": (_TALL[::2], _TALL[::2].copy()),
    "columns[:, ::2]": (_WIDE[:, ::2], _WIDE[:, ::2].copy()),
    "list of lists": (X.tolist(), X),
}


def results(x, *, pair_form: bool) -> dict[str, object]:
    """Everything the network computes from the input ``x`` (and ``LABELS``).

    ``pair_form`` adds ``evaluate`` and ``SGD`` on the pair ``(x, LABELS)``, a form that takes
    an ndarray ``x`` only.
    """
    net = Network(SIZES, seed=0)
    nabla_b, nabla_w = net.gradients(x, LABELS)
    one_b, one_w = net.backprop(x[0], LABELS[0])
    out = {
        "feedforward": net.feedforward(x),
        "predict": net.predict(x),
        "total_cost": net.total_cost(x, LABELS),
        "accuracy": net.accuracy(x, LABELS),
        "gradients": np.concatenate([g.ravel() for g in nabla_b + nabla_w]),
        "backprop": np.concatenate([g.ravel() for g in one_b + one_w]),
    }
    history = net.fit(
        x, LABELS, epochs=2, batch_size=4, lr=0.5, seed=1, validation_data=(x, LABELS)
    )
    out["fit params"] = net.params.copy()
    out["fit val_cost"] = history["val_cost"]
    if pair_form:
        out["evaluate"] = net.evaluate((x, LABELS))
        sgd = Network(SIZES, seed=0)
        sgd.SGD((x, LABELS), 1, 3, 0.5, test_data=None)
        out["SGD params"] = sgd.params.copy()
    return out


@pytest.mark.parametrize("kind", CONVERSIONS)
def test_conversion_matches_float32(kind):
    given, reference = CONVERSIONS[kind]
    assert reference.dtype == np.float32 and reference.flags.c_contiguous
    before = given.copy() if isinstance(given, np.ndarray) else None
    pair_form = isinstance(given, np.ndarray)
    got, want = results(given, pair_form=pair_form), results(reference, pair_form=pair_form)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert np.asarray(got[key]).dtype == np.asarray(want[key]).dtype, key
    if before is not None:  # the caller's array is read, never written
        np.testing.assert_array_equal(given, before)
        assert given.dtype == before.dtype


# --- the model's options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"activation": "swish"}, ValueError, "activation"),
        ({"activation": "softmax"}, ValueError, "activation"),
        ({"activation": ["relu", "relu"]}, ValueError, "activation"),
        ({"output": "cube"}, ValueError, "output"),
        ({"cost": "hinge"}, ValueError, "cost"),
        ({"cost": "cross_entropy", "output": "softmax"}, ValueError, "output"),
        ({"cost": "log_likelihood", "output": "sigmoid"}, ValueError, "output"),
        ({"init": "uniform"}, ValueError, "init"),
        ({"bias_init": "ones"}, ValueError, "bias_init"),
        ({"alpha": -0.1}, ValueError, "alpha"),
        ({"alpha": "0.1"}, TypeError, "alpha"),
        ({"batch_norm": "yes"}, TypeError, "batch_norm"),
    ],
)
def test_bad_model_options_name_the_parameter(kwargs, exc, name):
    with pytest.raises(exc, match=rf"^{name}"):
        Network([N_IN, 3, 2], **kwargs)


def test_step_networks_compute_but_refuse_backpropagation():
    net = Network([2, 2, 1], activation="step", output="step", seed=0)
    assert set(np.unique(net.feedforward(np.random.default_rng(0).random((5, 2))))) <= {0, 1}
    before = net.params.copy()
    X2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    for call in (
        lambda: net.fit(X2, [0.0, 1.0], epochs=1, batch_size=1, lr=1.0),
        lambda: net.gradients(X2, [0.0, 1.0]),
        lambda: net.backprop(X2[0], [1.0]),
    ):
        with pytest.raises(ValueError, match=r"^activation: 'step'"):
            call()
    assert net.params.tobytes() == before.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"lmbda": -1.0}, ValueError, "lmbda"),
        ({"lmbda": float("nan")}, ValueError, "lmbda"),
        ({"l1": "x"}, TypeError, "l1"),
        ({"callback": 3}, TypeError, "callback"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"dropout": -0.1}, ValueError, "dropout"),
        ({"optimizer": "adagrad"}, ValueError, "optimizer"),
        ({"optimizer": "momentum", "momentum": 1.0}, ValueError, "momentum"),
        ({"optimizer": "adam", "betas": (0.9, 1.5)}, ValueError, "betas"),
        ({"optimizer": "adam", "eps": 0.0}, ValueError, "eps"),
        ({"clip_norm": -1.0}, ValueError, "clip_norm"),
        ({"clip_value": float("inf")}, ValueError, "clip_value"),
        ({"schedule": "cosine"}, ValueError, "schedule"),
        ({"schedule": "halve"}, ValueError, "validation_data"),
        ({"early_stopping": 3}, ValueError, "validation_data"),
        ({"early_stopping": 0, "validation_data": (X, LABELS)}, ValueError, "early_stopping"),
        ({"patience": 0}, ValueError, "patience"),
        ({"max_halvings": 1.5}, TypeError, "max_halvings"),
    ],
)
def test_bad_training_options_name_the_parameter(net, kwargs, exc, name):
    call = lambda: net.fit(X, LABELS, epochs=1, batch_size=2, lr=0.5, **kwargs)  # noqa: E731
    assert_rejects(net, exc, name, call)
