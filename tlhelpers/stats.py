"""Paired comparison of two classifiers on the same images: McNemar's exact test.

Two models scored on the same validation images differ only on the images where one is right and
the other wrong. McNemar's test asks whether those disagreements lean one way more than chance
would (a fair coin for each), which is far more sensitive than comparing two accuracy intervals.

Example:
    >>> result = mcnemar(pred_a == y_val, pred_b == y_val)
    >>> result["p_value"] < 0.05    # the two models differ on these images
"""

from __future__ import annotations

import dataclasses
from math import comb

import numpy as np


def _binomial_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (integers), as a float."""
    return sum(comb(n, i) for i in range(k + 1)) / 2**n


def mcnemar(correct_a, correct_b) -> dict:
    """Return McNemar's exact test of two classifiers' per-image correctness: counts and two-sided p-value.

    `correct_a`, `correct_b`: booleans, one per image, in the same order (True where the model was
    right). `a_only` counts images only A got right, `b_only` those only B got right; under the null
    hypothesis (same accuracy) each disagreement is a fair coin, so the p-value is
    min(1, 2 * P(Binomial(a_only + b_only, 1/2) <= min(a_only, b_only))); it is 1 when they never disagree.

    Example:
        >>> mcnemar([1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1, 1])
        {'n': 7, 'a_only': 5, 'b_only': 1, 'accuracy_a': 0.857..., 'accuracy_b': 0.285..., 'p_value': 0.21875}
    """
    a = np.asarray(correct_a).astype(bool).ravel()
    b = np.asarray(correct_b).astype(bool).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"mcnemar: expected two non-empty sequences of the same length (one entry per image); "
                         f"received lengths {a.size} and {b.size}.")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else min(1.0, 2 * _binomial_tail(min(a_only, b_only), n))
    return {"n": int(a.size), "a_only": a_only, "b_only": b_only, "accuracy_a": float(a.mean()),
            "accuracy_b": float(b.mean()), "p_value": float(p)}


def format_p(p: float) -> str:
    """A p-value as a reader should see it: 'p = 0.031', 'p = 0.40', 'p < 0.001'.

    Example:
        >>> format_p(0.0312), format_p(0.4), format_p(2e-7)
        ('p = 0.031', 'p = 0.40', 'p < 0.001')
    """
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two models scored on the same images: the gap in accuracy and McNemar's exact test of it.

    `new_only`: images only the new model got right; `old_only`: only the old one. `sign` is the course's one rule
    for "is it a difference": +1 when the new model is ahead with p < `alpha`, -1 when behind, 0 otherwise.
    """

    new_accuracy: float
    old_accuracy: float
    new_only: int
    old_only: int
    n: int
    p_value: float
    alpha: float = 0.05

    @property
    def points(self) -> float:
        """The gap in percentage points, new minus old."""
        return 100 * (self.new_accuracy - self.old_accuracy)

    @property
    def sign(self) -> int:
        if self.p_value >= self.alpha or self.new_only == self.old_only:
            return 0
        return 1 if self.new_only > self.old_only else -1

    def summary(self) -> str:
        """'+8.2 points (paired test on 1000 images: 97 vs 15 disagreements, p < 0.001)'."""
        return (f"{self.points:+.1f} points (paired test on {self.n:,} images: {self.new_only} vs {self.old_only} "
                f"disagreements, {format_p(self.p_value)})")


def compare(new, old, *, alpha: float = 0.05) -> Comparison:
    """Compare two `Evaluation`s of the same images with McNemar's exact test; return a `Comparison`.

    Both must hold the same labels in the same order (two models scored on one test set). A gap is a difference
    when p < `alpha`; see the glossary's "Paired test".

    Example:
        >>> c = compare(results["fine-tuning"], results["feature extraction"])
        >>> c.points, c.p_value, c.sign, c.summary()
    """
    y_new, y_old = np.asarray(new.y_true), np.asarray(old.y_true)
    if y_new.shape != y_old.shape or not np.array_equal(y_new, y_old):
        raise ValueError(f"compare: the two evaluations are not of the same images ({y_new.size} and {y_old.size} "
                         "labels that differ); evaluate both models on the same ImageSet, in the same order.")
    result = mcnemar(new.y_pred == y_new, old.y_pred == y_old)
    return Comparison(new_accuracy=result["accuracy_a"], old_accuracy=result["accuracy_b"], new_only=result["a_only"],
                      old_only=result["b_only"], n=result["n"], p_value=result["p_value"], alpha=alpha)
