"""McNemar's exact test against a brute-force count over every way the disagreements could have fallen."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tlhelpers.stats import mcnemar


def brute_force_p(a_only: int, b_only: int) -> float:
    """Two-sided p: the share of all 2**n coin sequences whose split is at least as uneven as the one observed."""
    n = a_only + b_only
    observed = abs(a_only - b_only)
    extreme = sum(1 for seq in itertools.product((0, 1), repeat=n) if abs(2 * sum(seq) - n) >= observed)
    return extreme / 2**n


def pair(a_only: int, b_only: int, both: int = 3, neither: int = 2):
    a = [1] * a_only + [0] * b_only + [1] * both + [0] * neither
    b = [0] * a_only + [1] * b_only + [1] * both + [0] * neither
    return np.array(a, bool), np.array(b, bool)


@pytest.mark.parametrize("a_only,b_only", [(0, 0), (1, 0), (3, 3), (5, 1), (0, 7), (9, 2), (6, 8), (12, 0)])
def test_matches_brute_force(a_only, b_only):
    result = mcnemar(*pair(a_only, b_only))
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    assert result["p_value"] == pytest.approx(brute_force_p(a_only, b_only), abs=1e-12)


def test_only_disagreements_count():
    base = mcnemar(*pair(6, 1, both=0, neither=0))
    padded = mcnemar(*pair(6, 1, both=500, neither=40))
    assert base["p_value"] == padded["p_value"] and padded["n"] == 547
    assert padded["accuracy_a"] == pytest.approx(506 / 547)


def test_symmetric_and_known_value():
    a, b = pair(10, 2)
    assert mcnemar(a, b)["p_value"] == mcnemar(b, a)["p_value"] == pytest.approx(2 * 79 / 4096)


def test_refuses_unpaired_input():
    with pytest.raises(ValueError, match="same length"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="non-empty"):
        mcnemar([], [])
