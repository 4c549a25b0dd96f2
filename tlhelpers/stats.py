"""Paired comparison of two classifiers on the same images: McNemar's exact test.

Two models scored on the same validation images differ only on the images where one is right and
the other wrong. McNemar's test asks whether those disagreements lean one way more than chance
would (a fair coin for each), which is far more sensitive than comparing two accuracy intervals.

Example:
    >>> result = mcnemar(pred_a == y_val, pred_b == y_val)
    >>> result["p_value"] < 0.05    # the two models differ on these images
"""

from __future__ import annotations

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
