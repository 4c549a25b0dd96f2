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


def _newton_logistic(x, y, *, l2: float, tol: float = 1e-9, max_iter: int = 100):
    """The same penalised logistic regression as `_logistic_fit`, solved by Newton's method.

    With fewer rows than columns the weights lie in the span of the rows (the representer theorem), so
    with x^T = Q R the problem on the n x n design R^T, whose weights b give w = Q b, is the same problem
    (|w| = |b|): each Newton step solves an (n + 1) system instead of a (d + 1) one.
    """
    q = None
    if x.shape[1] > x.shape[0]:
        q, r = np.linalg.qr(x.T)
        x = r.T
    n, d = x.shape
    a = np.concatenate([x, np.ones((n, 1))], axis=1)
    pen = np.full(d + 1, l2)
    pen[-1] = 0.0  # the bias is not penalised

    def objective(w):
        z = a @ w
        return np.logaddexp(0, z).sum() - y @ z + 0.5 * (pen * w) @ w

    w = np.zeros(d + 1)
    value = objective(w)
    for _ in range(max_iter):
        p = 0.5 * (1 + np.tanh(0.5 * (a @ w)))  # the logistic function, without overflow
        grad = a.T @ (p - y) + pen * w
        if np.abs(grad).max() < tol * max(1.0, n):
            break
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(pen) + 1e-12 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-10:  # backtracking: Newton's step can overshoot far from the optimum
            new = objective(w - t * step)
            if new <= value - 1e-4 * t * grad @ step:
                break
            t *= 0.5
        w, value = w - t * step, new
    if q is not None:
        return np.concatenate([q @ w[:-1], w[-1:]])
    return w


def _logistic_fit(x, y, *, l2: float = 1.0, method: str = "lbfgs"):
    """Weights (then bias) of an L2-penalised logistic regression: SciPy's L-BFGS, or Newton's method."""
    if method == "newton":
        return _newton_logistic(np.asarray(x, "float64"), np.asarray(y, "float64"), l2=l2)
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


def _pad_mistakes(x, y, *, seed: int, test_fraction: float, l2: float) -> np.ndarray:
    """Fit the domain classifier on one random split; return, per held-out point, whether it got the domain wrong."""
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
    pred = ((z[test] - mu) / sd @ w[:-1] + w[-1]) > 0
    return pred != label[test]


def _pad(err: float) -> float:
    return float(np.clip(2 * (1 - 2 * err), 0.0, 2.0))


def proxy_a_distance(x, y, *, seed: int = 0, test_fraction: float = 0.5, l2: float = 1.0) -> float:
    """Return the proxy A-distance 2 (1 - 2 err) of a linear domain classifier (Ben-David et al.).

    A logistic regression learns to tell x (source) from y (target) on half of each sample;
    `err` is its error on the other half. 0 means the domains cannot be told apart, 2 that
    they are perfectly separable. Features are standardised on the training half.

    Example:
        >>> proxy_a_distance(source_features, target_features)
        1.62
    """
    x, y = _check_pair(x, y)
    return _pad(float(_pad_mistakes(x, y, seed=seed, test_fraction=test_fraction, l2=l2).mean()))


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate with a bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(measure: str, x, y, *, n: int = 1000, level: float = 0.95, seed: int = 0, fits: int | None = None,
              **kwargs) -> Interval:
    """Return `measure` ("mmd" or "pad") on (x, y) with a bootstrap percentile interval from `n` replicates.

    For the MMD, each replicate resamples both samples with replacement; the kernel matrices
    are computed once, and pairs made of one original point twice are left out of the
    within-sample terms, so resampling does not inflate the estimate. For the proxy A-distance,
    resampling before the train/test split would put copies of one image on both sides and
    inflate it, so replicates draw new splits, refit the domain classifier on each, and
    resample its held-out half. A fit costs far more than a resample: `fits` new splits (by
    default `n`, one resample each) share the `n` replicates, `n // fits` resamples per split.

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
        fits = n if fits is None else fits
        if not 1 <= fits <= n:
            raise ValueError(f"fits must be between 1 and n ({n}), got {fits}.")
        options = {"test_fraction": kwargs.get("test_fraction", 0.5), "l2": kwargs.get("l2", 1.0)}
        estimate = _pad(float(_pad_mistakes(x, y, seed=seed, **options).mean()))
        reps = []
        for i in range(fits):
            wrong = _pad_mistakes(x, y, seed=seed + 1 + i, **options)
            for _ in range(n // fits + (i < n % fits)):
                reps.append(_pad(float(wrong[rng.integers(0, len(wrong), len(wrong))].mean())))
    else:
        raise ValueError(f"unknown measure {measure!r}; use 'mmd' or 'pad'.")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), level)


def domain_similarity(source, targets: dict, *, n: int = 1000, fits: int | None = 100, level: float = 0.95,
                      seed: int = 0, bandwidth: float | None = None):
    """Return a DataFrame comparing `source` features with each of `targets` ({name: features}).

    Columns: MMD² and proxy A-distance (PAD), each with its bootstrap interval (`n` replicates; the
    PAD's refit on `fits` new splits, see `bootstrap`). By default each
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
        p = bootstrap("pad", source, target, n=n, level=level, seed=seed, fits=None if fits is None else min(fits, n))
        rows[name] = {"MMD²": m.estimate, "MMD² low": m.low, "MMD² high": m.high,
                      "PAD": p.estimate, "PAD low": p.low, "PAD high": p.high}
    table = pd.DataFrame(rows).T
    table.index.name = "target"
    table.attrs.update({"level": level, "replicates": n, "fits": None if fits is None else min(fits, n)})
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


# The default line between "similar" and "different" for a similarity score 1 / (1 + MMD² ÷ reference) measured at the
# top of the base, as chapter 2 computes it. Chapter 2 calibrates it on the course's own outcomes: ants vs. bees, cats
# vs. dogs and TrashNet, 1.7 to 2.4 times as far from the source sample as new ImageNet classes at the top of
# EfficientNet-Lite0 (scores 0.30 to 0.37, quick profile), are each served better by top-layer features than by the
# middle of the base (linear probes, paired test), so the advice for a different domain (earlier, more generic layers)
# must start beyond them. 0.25 is three times the reference's MMD²: a round number below the three, not a measurement.
# The old line, 0.5 (exactly as far as new ImageNet classes), called all three "different" against their outcomes.
SIMILAR_FROM = 0.25


def recommend_strategy(n_per_class: int, similarity, *, large_from: int = 1000,
                       similar_from: float = SIMILAR_FROM) -> Recommendation:
    """Return the scenario a dataset falls into and the strategy it calls for, with the reason.

    `n_per_class` is the number of training images per class (large from `large_from`).
    `similarity` to the source domain is "similar"/"different" (or "high"/"low"), or a score
    in [0, 1] compared with `similar_from`: chapter 2's score 1 / (1 + MMD² ÷ reference) at the
    top of the base, for which `SIMILAR_FROM` is calibrated (see `calibrate_threshold`).

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


def calibrate_threshold(scores: dict, winners: dict, *, prior: float = 0.5) -> float:
    """Return the `similar_from` nearest `prior` under which `recommend_strategy` agrees with measured outcomes.

    `scores` maps each target to its similarity score; `winners` maps it to the depth whose
    features served it best: "top" (the advice for a similar domain, a classifier on the top of
    the frozen base, must hold: score >= threshold), "earlier" (the advice for a different
    domain, earlier and more generic layers: score < threshold) or "neither" (no difference,
    no constraint). With only "top" outcomes the answer is the lowest of their scores (or
    `prior` if that is lower); a threshold that separates the two kinds does not always exist,
    and then this says so.

    Example:
        >>> calibrate_threshold({"cats": 0.35, "ants": 0.30}, {"cats": "top", "ants": "top"})
        0.3
    """
    scores = dict(scores.items()) if hasattr(scores, "items") else dict(scores)  # a dict or a pandas Series
    unknown = {name: w for name, w in winners.items() if w not in ("top", "earlier", "neither")}
    if unknown:
        raise ValueError(f"winners must be 'top', 'earlier' or 'neither', got {unknown}.")
    missing = sorted(set(winners) - set(scores))
    if missing:
        raise ValueError(f"no similarity score for {', '.join(missing)}; give one score per target in `winners`.")
    top = [float(scores[name]) for name, w in winners.items() if w == "top"]
    earlier = [float(scores[name]) for name, w in winners.items() if w == "earlier"]
    if not top and not earlier:
        raise ValueError("no target has a winning depth ('top' or 'earlier'): nothing to calibrate on.")
    high = min(top) if top else 1.0  # the line must not pass above a target served best by the top
    low = max(earlier) if earlier else 0.0  # nor at or below one served best by an earlier layer
    if earlier and low >= high:
        raise ValueError(f"no threshold separates the targets: one served best by an earlier layer scores {low:.3f}, "
                         f"one served best by the top {high:.3f}; the score does not predict the winning depth.")
    if low < prior <= high:
        return float(prior)
    return float(high) if prior > high else float(np.nextafter(low, 1.0))


def depth_probes(base, train, test, *, layers: list, verbose: bool = False) -> dict:
    """Return {layer: Evaluation}: a linear probe on `base`'s average-pooled features at each of `layers`.

    Every probe is scored on the same `test` images, so any two depths can be compared with the
    paired test (`tlhelpers.stats.compare`).

    Example:
        >>> probes = depth_probes(base, splits["train"], splits["test"], layers=["block4c_add", "top_activation"])
        >>> compare(probes["top_activation"], probes["block4c_add"]).summary()
    """
    from .features import evaluate_probe, features_by_depth

    f_train = features_by_depth(base, train, layers=layers, verbose=verbose)
    f_test = features_by_depth(base, test, layers=layers, verbose=verbose)
    return {name: evaluate_probe(f_train[name], train.labels, f_test[name], test.labels, classes=test.class_names,
                                 method="newton")
            for name in layers}
