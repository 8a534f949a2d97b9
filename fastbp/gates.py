"""Logic gates from perceptrons, as in the book's section 1.1.

``NAND`` is the book's perceptron with weights −2, −2 and bias 3. ``AND``, ``OR`` and ``NOT``
are single perceptrons too. ``xor`` and the adders are circuits of NAND gates only, the book's
point that perceptrons are universal for computation. Every gate takes 0/1 values (scalars or
arrays of equal shape) and returns int64 arrays of 0/1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .perceptron import Perceptron

NAND = Perceptron([-2.0, -2.0], 3.0)
AND = Perceptron([1.0, 1.0], -1.5)
OR = Perceptron([1.0, 1.0], -0.5)
NOT = Perceptron([-1.0], 0.5)


def _gate2(gate: Perceptron, a: Any, b: Any) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    out = gate(np.stack([a.ravel(), b.ravel()], axis=1))
    return out.reshape(a.shape)


def nand(a: Any, b: Any) -> np.ndarray:
    """``NOT (a AND b)``, by the book's NAND perceptron."""
    return _gate2(NAND, a, b)


def and_(a: Any, b: Any) -> np.ndarray:
    """``a AND b``, by a single perceptron (w = 1, 1; b = −1.5)."""
    return _gate2(AND, a, b)


def or_(a: Any, b: Any) -> np.ndarray:
    """``a OR b``, by a single perceptron (w = 1, 1; b = −0.5)."""
    return _gate2(OR, a, b)


def not_(a: Any) -> np.ndarray:
    """``NOT a``, by a single perceptron (w = −1; b = 0.5)."""
    a = np.asarray(a)
    return NOT(a.reshape(-1, 1)).reshape(a.shape)


def xor(a: Any, b: Any) -> np.ndarray:
    """``a XOR b`` from four NAND gates (no single perceptron computes it)."""
    n = nand(a, b)
    return nand(nand(a, n), nand(b, n))


def add_bits(x1: Any, x2: Any) -> tuple[np.ndarray, np.ndarray]:
    """The book's adder of two bits from five NAND gates: ``(sum, carry)``.

    ``sum = x1 ⊕ x2`` (four NANDs) and ``carry = x1 x2`` (the first NAND, negated by a NAND
    of it with itself).
    """
    n = nand(x1, x2)
    return nand(nand(x1, n), nand(x2, n)), nand(n, n)


def full_add(a: Any, b: Any, carry_in: Any) -> tuple[np.ndarray, np.ndarray]:
    """One-bit full adder from nine NAND gates: ``(sum, carry_out)``."""
    n1 = nand(a, b)
    s1 = nand(nand(a, n1), nand(b, n1))  # a ⊕ b
    n2 = nand(s1, carry_in)
    total = nand(nand(s1, n2), nand(carry_in, n2))  # a ⊕ b ⊕ carry_in
    return total, nand(n1, n2)  # carry = ab + (a ⊕ b) carry_in


def add_two_bit_numbers(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[np.ndarray, ...]:
    """Add two 2-bit numbers ``(a1, a0)`` and ``(b1, b0)`` with NAND gates only.

    Returns the three bits ``(s2, s1, s0)`` of the sum, most significant first: the low bits
    go through ``add_bits`` and the high bits through ``full_add`` with its carry.
    """
    (a1, a0), (b1, b0) = a, b
    s0, carry = add_bits(a0, b0)
    s1, s2 = full_add(a1, b1, carry)
    return s2, s1, s0
