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


def _evaluation(y_true, y_pred):
    from tlhelpers.evaluation import Evaluation

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return Evaluation(classes=["a", "b"], y_true=y_true, y_prob=np.eye(2)[y_pred])


def test_compare_counts_the_disagreements_of_two_evaluations():
    from tlhelpers.stats import compare

    y = np.zeros(1000, int)
    old = _evaluation(y, np.r_[np.zeros(800, int), np.ones(200, int)])  # 800 right
    new = _evaluation(y, np.r_[np.ones(10, int), np.zeros(830, int), np.ones(160, int)])  # 830 right, 10 lost
    c = compare(new, old)
    assert (c.new_only, c.old_only, c.n) == (40, 10, 1000)
    assert c.points == pytest.approx(3.0)
    assert c.p_value == pytest.approx(mcnemar(new.y_pred == y, old.y_pred == y)["p_value"])
    assert c.p_value < 0.001 and c.sign == 1 and compare(old, new).sign == -1
    assert c.summary() == "+3.0 points (paired test on 1,000 images: 40 vs 10 disagreements, p < 0.001)"


def test_compare_is_more_sensitive_than_overlapping_intervals():
    """A 2-point gain made of 20 one-way disagreements is a difference, though the two 95% intervals overlap."""
    from tlhelpers.stats import compare

    y = np.zeros(1000, int)
    old = _evaluation(y, np.r_[np.zeros(800, int), np.ones(200, int)])
    new = _evaluation(y, np.r_[np.zeros(820, int), np.ones(180, int)])
    assert new.interval()[0] < old.interval()[1]  # the intervals overlap
    assert compare(new, old).sign == 1 and compare(new, old).p_value == pytest.approx(2 / 2**20)


def test_compare_balanced_disagreements_are_no_difference():
    from tlhelpers.stats import compare

    y = np.zeros(100, int)
    a = _evaluation(y, np.r_[np.ones(6, int), np.zeros(94, int)])
    b = _evaluation(y, np.r_[np.zeros(6, int), np.ones(4, int), np.zeros(90, int)])
    c = compare(a, b)
    assert (c.new_only, c.old_only) == (4, 6) and c.sign == 0 and c.p_value == pytest.approx(brute_force_p(4, 6))


def test_compare_refuses_evaluations_of_different_images():
    from tlhelpers.stats import compare

    a = _evaluation([0, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="same images"):
        compare(a, _evaluation([1, 1, 0], [0, 1, 0]))
    with pytest.raises(ValueError, match="same images"):
        compare(a, _evaluation([0, 1], [0, 1]))


@pytest.mark.parametrize("p, text", [(0.0312, "p = 0.031"), (0.4, "p = 0.40"), (2e-7, "p < 0.001"), (1.0, "p = 1.00")])
def test_format_p(p, text):
    from tlhelpers.stats import format_p

    assert format_p(p) == text
