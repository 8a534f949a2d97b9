"""The perceptron and the gates built from it: truth tables, convergence, XOR."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastbp import Perceptron, gates

BITS = np.array(list(itertools.product([0, 1], repeat=2)))  # (0,0) (0,1) (1,0) (1,1)


def test_the_books_nand_perceptron():
    # 00 → −2·0 − 2·0 + 3 = 3 > 0; 11 → −4 + 3 = −1 ≤ 0.
    assert gates.NAND(BITS).tolist() == [1, 1, 1, 0]
    assert gates.NAND.threshold == -3.0
    assert gates.NAND([1, 1]).tolist() == [0]  # one input vector


@pytest.mark.parametrize(
    ("gate", "truth"),
    [
        (gates.nand, [1, 1, 1, 0]),
        (gates.and_, [0, 0, 0, 1]),
        (gates.or_, [0, 1, 1, 1]),
        (gates.xor, [0, 1, 1, 0]),
    ],
)
def test_two_input_gates_follow_their_truth_tables(gate, truth):
    assert gate(BITS[:, 0], BITS[:, 1]).tolist() == truth
    assert [int(gate(a, b)) for a, b in BITS] == truth


def test_not_gate():
    assert gates.not_([0, 1]).tolist() == [1, 0]


def test_the_books_adder_of_two_bits():
    total, carry = gates.add_bits(BITS[:, 0], BITS[:, 1])
    np.testing.assert_array_equal(total, BITS.sum(axis=1) % 2)
    np.testing.assert_array_equal(carry, BITS.sum(axis=1) // 2)


def test_full_adder_and_two_bit_numbers_add_correctly():
    a, b, c = np.array(list(itertools.product([0, 1], repeat=3))).T
    total, carry = gates.full_add(a, b, c)
    np.testing.assert_array_equal(2 * carry + total, a + b + c)
    for x, y in itertools.product(range(4), repeat=2):
        s2, s1, s0 = gates.add_two_bit_numbers((x >> 1, x & 1), (y >> 1, y & 1))
        assert 4 * int(s2) + 2 * int(s1) + int(s0) == x + y


@pytest.mark.parametrize(("name", "truth"), [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1])])
def test_the_learning_rule_finds_separable_gates(name, truth):
    p = Perceptron.zeros(2)
    result = p.fit(BITS, truth)
    assert result.converged and result.misclassified == 0, name
    assert result.errors[-1] == 0 and result.epochs == len(result.errors)
    assert p(BITS).tolist() == truth


def test_converges_on_random_separable_data():
    rng = np.random.default_rng(0)
    X = rng.random((200, 5))
    true_w, true_b = rng.standard_normal(5), 0.1
    y = (X @ true_w + true_b > 0).astype(int)
    p = Perceptron.zeros(5)
    result = p.fit(X, y, eta=0.5, max_epochs=10_000)
    assert result.converged
    np.testing.assert_array_equal(p(X), y)


def test_xor_is_reported_as_not_separable_and_stops():
    p = Perceptron.zeros(2)
    result = p.fit(BITS, [0, 1, 1, 0], max_epochs=50)
    assert not result.converged
    assert result.epochs == 50 and min(result.errors) > 0
    # The kept ("pocket") weights misclassify exactly what the result says; no line can do
    # better than one mistake on XOR.
    assert result.misclassified == int(np.sum(p(BITS) != [0, 1, 1, 0])) >= 1


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: Perceptron([[1, 2]], 0), ValueError, "weights"),
        (lambda: Perceptron([1, 2], "x"), TypeError, "bias"),
        (lambda: Perceptron([1, np.nan], 0), ValueError, "weights"),
        (lambda: Perceptron.zeros(0), ValueError, "n_inputs"),
        (lambda: Perceptron([1, 2])([[1, 2, 3]]), ValueError, "X"),
        (lambda: Perceptron([1, 2]).fit(BITS, [0, 1, 2, 0]), ValueError, "y"),
        (lambda: Perceptron([1, 2]).fit(BITS, [0, 1]), ValueError, "y"),
        (lambda: Perceptron([1, 2]).fit(BITS, [0, 1, 1, 0], eta=0), ValueError, "eta"),
        (lambda: Perceptron([1, 2]).fit(BITS, [0, 1, 1, 0], max_epochs=0), ValueError, "max"),
    ],
)
def test_bad_input_names_the_parameter(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_failed_fit_leaves_the_weights_unchanged():
    p = Perceptron([0.5, -0.5], 0.25)
    with pytest.raises(ValueError, match="y"):
        p.fit(BITS, [0, 1, 2, 0])
    assert p.weights.tolist() == [0.5, -0.5] and p.bias == 0.25
