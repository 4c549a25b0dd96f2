"""Measuring how far a target domain is from the source, and what that means for the strategy.

Chapter 2 turns Pan & Yang's D = {X, P(X)} into numbers: two samples of features (one per
domain) are compared with a maximum mean discrepancy and with a domain classifier's proxy
A-distance, each with a bootstrap interval; `recommend_strategy` then places a dataset in one
of the four dataset-size x similarity scenarios.

Example:
    >>> mmd(source_features, target_features)
    0.041
    >>> proxy_a_distance(source_features, target_features)
    1.62
    >>> recommend_strategy(100, "similar").advice
    'Feature extraction: freeze the whole base ...'
"""

from __future__ import annotations

import dataclasses

import numpy as np


def _as_2d(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype="float64")
    if x.ndim > 2:
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name} must hold at least two feature vectors (an array N x D), got shape {np.shape(x)}.")
    return x


def _check_pair(x, y):
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have features of the same length, got {x.shape[1]} and {y.shape[1]}; "
                         "extract both with the same base.")
    return x, y


def _sq_dists(a, b):
    d = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(x, y) -> float:
    """The median heuristic: the median pairwise Euclidean distance in the pooled sample."""
    z = np.concatenate(_check_pair(x, y))
    d = np.sqrt(_sq_dists(z, z)[np.triu_indices(len(z), k=1)])
    med = float(np.median(d))
    return med if med > 0 else 1.0


def _mmd2_from_kernels(kxx, kyy, kxy, ix=None, iy=None) -> float:
    """Unbiased MMD^2 from kernel matrices, optionally on resampled indices (pairs of one original point left out)."""
    if ix is None:
        ix, iy = np.arange(len(kxx)), np.arange(len(kyy))
    sxx = kxx[np.ix_(ix, ix)]
    syy = kyy[np.ix_(iy, iy)]
    same_x = ix[:, None] == ix[None, :]
    same_y = iy[:, None] == iy[None, :]
    term_x = sxx[~same_x].mean()
    term_y = syy[~same_y].mean()
    return float(term_x + term_y - 2 * kxy[np.ix_(ix, iy)].mean())


def mmd(x, y, *, bandwidth: float | None = None) -> float:
    """Return the unbiased estimate of the squared maximum mean discrepancy between two samples.

    RBF kernel k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2)), with the median heuristic for the
    bandwidth unless one is given. About 0 (it can be slightly negative) when both samples come
    from one distribution; larger the further apart the distributions are.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> round(mmd(rng.normal(size=(200, 5)), rng.normal(size=(200, 5))), 3)
        0.0
    """
    x, y = _check_pair(x, y)
    s = bandwidth or median_bandwidth(x, y)
    g = 1.0 / (2 * s * s)
    return _mmd2_from_kernels(np.exp(-g * _sq_dists(x, x)), np.exp(-g * _sq_dists(y, y)), np.exp(-g * _sq_dists(x, y)))


def _logistic_fit(x, y, *, l2: float = 1.0):
    from scipy.optimize import minimize

    n, d = x.shape

    def loss(w):
        z = x @ w[:-1] + w[-1]
        # log(1 + exp(z)) - y z, computed stably
        value = np.logaddexp(0, z).sum() - y @ z + 0.5 * l2 * w[:-1] @ w[:-1]
        p = 1 / (1 + np.exp(-z))
        grad = np.concatenate([x.T @ (p - y) + l2 * w[:-1], [(p - y).sum()]])
        return value, grad

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def proxy_a_distance(x, y, *, seed: int = 0, test_fraction: float = 0.5, l2: float = 1.0,
                     _resample_test: bool = False) -> float:
    """Return the proxy A-distance 2 (1 - 2 err) of a linear domain classifier (Ben-David et al.).

    A logistic regression learns to tell x (source) from y (target) on half of each sample;
    `err` is its error on the other half. 0 means the domains cannot be told apart, 2 that
    they are perfectly separable. Features are standardised on the training half.

    Example:
        >>> proxy_a_distance(source_features, target_features)
        1.62
    """
    x, y = _check_pair(x, y)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}.")
    rng = np.random.default_rng(seed)
    z = np.concatenate([x, y])
    label = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    test = np.zeros(len(z), dtype=bool)
    for cls in (0, 1):  # the same share of each domain in the test half
        idx = np.flatnonzero(label == cls)
        test[rng.choice(idx, size=max(1, int(round(len(idx) * test_fraction))), replace=False)] = True
    mu, sd = z[~test].mean(0), z[~test].std(0) + 1e-8
    w = _logistic_fit((z[~test] - mu) / sd, label[~test], l2=l2)
    held = np.flatnonzero(test)
    if _resample_test:  # bootstrap the evaluation only: a resampled point never leaks into training
        held = rng.choice(held, size=len(held), replace=True)
    pred = ((z[held] - mu) / sd @ w[:-1] + w[-1]) > 0
    err = float((pred != label[held]).mean())
    return float(np.clip(2 * (1 - 2 * err), 0.0, 2.0))


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate with a bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(measure: str, x, y, *, n: int = 200, level: float = 0.9, seed: int = 0, **kwargs) -> Interval:
    """Return `measure` ("mmd" or "pad") on (x, y) with a bootstrap percentile interval.

    For the MMD, each replicate resamples both samples with replacement; the kernel matrices
    are computed once, and pairs made of one original point twice are left out of the
    within-sample terms, so resampling does not inflate the estimate. For the proxy A-distance,
    resampling before the train/test split would put copies of one image on both sides and
    inflate it, so each replicate draws a new split and resamples its test half instead.

    Example:
        >>> print(bootstrap("mmd", source_features, target_features))
        0.041 [0.035, 0.049]
    """
    x, y = _check_pair(x, y)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}.")
    rng = np.random.default_rng(seed)
    if measure == "mmd":
        s = kwargs.get("bandwidth") or median_bandwidth(x, y)
        g = 1.0 / (2 * s * s)
        kxx, kyy, kxy = (np.exp(-g * _sq_dists(a, b)) for a, b in ((x, x), (y, y), (x, y)))
        estimate = _mmd2_from_kernels(kxx, kyy, kxy)
        reps = [
            _mmd2_from_kernels(kxx, kyy, kxy, rng.integers(0, len(x), len(x)), rng.integers(0, len(y), len(y)))
            for _ in range(n)
        ]
    elif measure == "pad":
        estimate = proxy_a_distance(x, y, seed=seed, **kwargs)
        reps = [proxy_a_distance(x, y, seed=seed + 1 + i, _resample_test=True, **kwargs) for i in range(n)]
    else:
        raise ValueError(f"unknown measure {measure!r}; use 'mmd' or 'pad'.")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), level)


def domain_similarity(source, targets: dict, *, n: int = 100, level: float = 0.9, seed: int = 0,
                      bandwidth: float | None = None):
    """Return a DataFrame comparing `source` features with each of `targets` ({name: features}).

    Columns: MMD² and proxy A-distance (PAD), each with its bootstrap interval. By default each
    MMD² uses the median heuristic on its own pair, so its kernel width changes from target to
    target; pass one `bandwidth` (e.g. `median_bandwidth` of the source sample alone) to measure
    every target with the same ruler, so that their MMD² can be compared with each other.

    Example:
        >>> domain_similarity(imagenette, {"cats vs. dogs": cvd, "TrashNet": trash})
    """
    import pandas as pd

    rows = {}
    for name, target in targets.items():
        m = bootstrap("mmd", source, target, n=n, level=level, seed=seed, bandwidth=bandwidth)
        p = bootstrap("pad", source, target, n=n, level=level, seed=seed)
        rows[name] = {"MMD²": m.estimate, "MMD² low": m.low, "MMD² high": m.high,
                      "PAD": p.estimate, "PAD low": p.low, "PAD high": p.high}
    table = pd.DataFrame(rows).T
    table.index.name = "target"
    return table


def source_bandwidth(source) -> float:
    """The median heuristic on the source sample alone: one kernel width for comparing many targets with it.

    Example:
        >>> domain_similarity(source, targets, bandwidth=source_bandwidth(source))
    """
    x = _as_2d(source, "source")
    half = len(x) // 2
    return median_bandwidth(x[:half], x[half:])


def calibrate_similarity(table, *, reference: str):
    """Return `domain_similarity`'s table with every MMD² in units of a reference row's, a score and a verdict.

    The reference is a target whose distance from the source is known in words, for instance new
    classes drawn from the source's own distribution. Added columns: "MMD² ÷ reference" (with
    "÷ low" and "÷ high", its bootstrap interval divided by the reference's estimate), "score" =
    1 / (1 + max(ratio, 0)), which is 1 for the source itself and 0.5 exactly at the reference, and
    "vs. reference": "closer", "further", or "as far" when the two intervals overlap. The
    reference's own interval is not propagated into the ratio; the verdict uses both intervals.

    Example:
        >>> calibrate_similarity(domain_similarity(source, targets), reference="new source classes")
    """
    if reference not in table.index:
        rows = ", ".join(map(str, table.index))
        raise ValueError(f"reference {reference!r} is not a row of the table; rows are: {rows}.")
    ref = table.loc[reference]
    if not ref["MMD²"] > 0:
        raise ValueError(f"the reference's MMD² is {ref['MMD²']:.4f}; a reference must differ measurably from the "
                         "source (a positive MMD²) to serve as a unit.")
    out = table.copy()
    out["MMD² ÷ reference"] = table["MMD²"] / ref["MMD²"]
    out["÷ low"] = table["MMD² low"] / ref["MMD²"]
    out["÷ high"] = table["MMD² high"] / ref["MMD²"]
    out["score"] = 1.0 / (1.0 + np.maximum(out["MMD² ÷ reference"].astype(float), 0.0))
    verdict = np.where(table["MMD² low"] > ref["MMD² high"], "further",
                       np.where(table["MMD² high"] < ref["MMD² low"], "closer", "as far"))
    out["vs. reference"] = verdict
    out.loc[reference, "vs. reference"] = "reference"
    return out


# --------------------------------------------------------------------------- the four scenarios
@dataclasses.dataclass(frozen=True)
class Recommendation:
    """Where a dataset sits among the four scenarios, and what to do about it."""

    scenario: str
    advice: str
    reason: str

    def __str__(self) -> str:
        return f"{self.scenario}: {self.advice} ({self.reason})"


_SIMILAR = {"similar": True, "high": True, "different": False, "dissimilar": False, "low": False}

_ADVICE = {
    (False, True): (
        "small dataset, similar domain",
        "Feature extraction: freeze the whole base and train only a new classifier on its output.",
        "the pretrained features already fit the target, and too few images would overfit any layer you unfreeze",
    ),
    (True, True): (
        "large dataset, similar domain",
        "Fine-tune: train a new head on the frozen base, then unfreeze the top blocks at a low learning rate.",
        "enough images to adapt the most specific layers without overfitting them",
    ),
    (False, False): (
        "small dataset, different domain",
        "Train a classifier on features from an earlier, more generic layer of the base, with heavy "
        "augmentation; unfreeze little, if anything.",
        "the top layers encode source-specific features that transfer badly, and there are too few images to retrain them",
    ),
    (True, False): (
        "large dataset, different domain",
        "Fine-tune most or all of the network, starting from the pretrained weights (or train from scratch "
        "if that does better).",
        "enough images to relearn specific features; pretrained weights still give a better start than random ones",
    ),
}


def recommend_strategy(n_per_class: int, similarity, *, large_from: int = 1000,
                       similar_from: float = 0.5) -> Recommendation:
    """Return the scenario a dataset falls into and the strategy it calls for, with the reason.

    `n_per_class` is the number of training images per class (large from `large_from`).
    `similarity` to the source domain is "similar"/"different" (or "high"/"low"), or a score
    in [0, 1] compared with `similar_from` (for example 1 - proxy A-distance / 2).

    Example:
        >>> recommend_strategy(120, "similar").scenario
        'small dataset, similar domain'
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive whole number of images per class, got {n_per_class!r}.")
    if isinstance(similarity, str):
        key = similarity.strip().lower()
        if key not in _SIMILAR:
            raise ValueError(f"similarity {similarity!r} is not understood; use one of {', '.join(_SIMILAR)} "
                             "or a score between 0 and 1.")
        similar = _SIMILAR[key]
    elif isinstance(similarity, (int, float, np.floating)) and not isinstance(similarity, bool):
        if not 0.0 <= float(similarity) <= 1.0 or np.isnan(similarity):
            raise ValueError(f"a similarity score must be between 0 and 1, got {similarity}.")
        similar = float(similarity) >= similar_from
    else:
        raise ValueError(f"similarity must be a word ({', '.join(_SIMILAR)}) or a score between 0 and 1, "
                         f"got {similarity!r}.")
    scenario, advice, reason = _ADVICE[(n_per_class >= large_from, similar)]
    reason = f"{n_per_class} images per class, {'similar' if similar else 'different'} domain: {reason}"
    return Recommendation(scenario, advice, reason)
