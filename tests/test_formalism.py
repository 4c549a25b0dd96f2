"""Domain similarity measures and the four-scenario advice of chapters 1 and 2."""

from __future__ import annotations

import numpy as np
import pytest

from tlhelpers.formalism import Interval, bootstrap, mmd, proxy_a_distance, recommend_strategy


def gaussian(n, shift=0.0, *, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[:, 0] += shift
    return x


def test_mmd_is_about_zero_for_one_distribution():
    values = [mmd(gaussian(150, seed=s), gaussian(150, seed=100 + s)) for s in range(5)]
    assert max(abs(v) for v in values) < 0.01
    assert abs(np.mean(values)) < 0.005  # unbiased: it scatters around 0


def test_mmd_grows_with_a_controlled_shift():
    x = gaussian(150, seed=1)
    values = [mmd(x, gaussian(150, shift, seed=2)) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[-1] > 0.2


def test_proxy_a_distance_orders_shifted_datasets():
    x = gaussian(200, seed=3)
    pads = [proxy_a_distance(x, gaussian(200, shift, seed=4)) for shift in (0.0, 1.0, 2.0, 6.0)]
    assert pads[0] < 0.3 and pads[-1] > 1.9
    assert all(a <= b for a, b in zip(pads, pads[1:])), pads


@pytest.mark.parametrize("measure", ["mmd", "pad"])
def test_bootstrap_interval_brackets_the_estimate(measure):
    x, y = gaussian(80, seed=5), gaussian(80, 1.0, seed=6)
    iv = bootstrap(measure, x, y, n=40, seed=0)
    assert isinstance(iv, Interval) and iv.level == 0.95  # the course's 95% interval
    assert iv.low <= iv.estimate <= iv.high and iv.low < iv.high
    assert str(iv).count("[") == 1
    same = bootstrap(measure, x, gaussian(80, seed=7), n=40)
    assert same.estimate < iv.estimate  # the shifted pair is further apart


def test_measure_errors_say_what_to_do():
    with pytest.raises(ValueError, match="same length.*same base"):
        mmd(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least two feature vectors"):
        proxy_a_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="use 'mmd' or 'pad'"):
        bootstrap("kl", gaussian(10), gaussian(10))
    features_4d = np.random.default_rng(0).normal(size=(20, 2, 2, 3))
    assert np.isfinite(mmd(features_4d, features_4d + 1))  # feature maps are flattened


@pytest.mark.parametrize("n, similarity, scenario, word", [
    (100, "similar", "small dataset, similar domain", "Feature extraction"),
    (5000, "similar", "large dataset, similar domain", "Fine-tune"),
    (100, "different", "small dataset, different domain", "earlier"),
    (5000, "different", "large dataset, different domain", "all of the network"),
    (100, 0.9, "small dataset, similar domain", "Feature extraction"),
    (100, 0.1, "small dataset, different domain", "earlier"),
])
def test_recommend_strategy_covers_the_four_scenarios(n, similarity, scenario, word):
    rec = recommend_strategy(n, similarity)
    assert rec.scenario == scenario and word in rec.advice
    assert str(n) in rec.reason and rec.scenario in str(rec)


@pytest.mark.parametrize("n, similarity, message", [
    (0, "similar", "positive whole number"),
    (12.5, "similar", "positive whole number"),
    (True, "similar", "positive whole number"),
    (100, "kind of", "use one of similar, high, different"),
    (100, 1.5, "between 0 and 1"),
    (100, float("nan"), "between 0 and 1"),
    (100, None, "a word"),
])
def test_recommend_strategy_rejects_invalid_input(n, similarity, message):
    with pytest.raises(ValueError, match=message):
        recommend_strategy(n, similarity)


def test_pad_bootstrap_shares_fits_among_replicates():
    x, y = gaussian(80, seed=8), gaussian(80, 0.7, seed=9)
    shared = bootstrap("pad", x, y, n=200, fits=20, seed=0)
    assert shared.low <= shared.estimate <= shared.high and shared.low < shared.high
    assert shared.estimate == bootstrap("pad", x, y, n=40, seed=0).estimate  # the estimate ignores the replicates
    with pytest.raises(ValueError, match="fits must be between 1 and n"):
        bootstrap("pad", x, y, n=10, fits=20)


def test_the_default_line_calls_the_course_targets_similar():
    from tlhelpers.formalism import SIMILAR_FROM

    # chapter 2's quick-profile scores (1 / (1 + MMD² ÷ reference) at the top): each target's top features won
    for score in (0.30, 0.35, 0.37):
        assert recommend_strategy(100, score).scenario == "small dataset, similar domain"
    assert SIMILAR_FROM < 0.30 and recommend_strategy(100, 0.1).scenario == "small dataset, different domain"
    # the four words of chapter 1 still land in four scenarios
    words = {recommend_strategy(n, s).scenario for n in (100, 5000) for s in ("similar", "different")}
    assert len(words) == 4


@pytest.mark.parametrize("scores, winners, prior, expected", [
    ({"a": 0.30, "b": 0.35}, {"a": "top", "b": "top"}, 0.5, 0.30),  # top wins below 0.5: the line comes down
    ({"a": 0.30, "b": 0.35}, {"a": "earlier", "b": "top"}, 0.5, 0.35),
    ({"a": 0.60, "b": 0.70}, {"a": "top", "b": "top"}, 0.5, 0.5),  # the prior already agrees
    ({"a": 0.20, "b": 0.70}, {"a": "earlier", "b": "neither"}, 0.1, np.nextafter(0.2, 1.0)),
])
def test_calibrate_threshold_agrees_with_every_outcome(scores, winners, prior, expected):
    from tlhelpers.formalism import calibrate_threshold

    line = calibrate_threshold(scores, winners, prior=prior)
    assert line == pytest.approx(expected)
    for name, w in winners.items():
        scenario = recommend_strategy(100, scores[name], similar_from=line).scenario
        if w == "top":
            assert scenario.endswith("similar domain")
        if w == "earlier":
            assert scenario.endswith("different domain")


def test_calibrate_threshold_says_when_no_line_separates():
    from tlhelpers.formalism import calibrate_threshold

    with pytest.raises(ValueError, match="no threshold separates"):
        calibrate_threshold({"a": 0.4, "b": 0.3}, {"a": "earlier", "b": "top"})
    with pytest.raises(ValueError, match="nothing to calibrate"):
        calibrate_threshold({"a": 0.4}, {"a": "neither"})
    with pytest.raises(ValueError, match="'top', 'earlier' or 'neither'"):
        calibrate_threshold({"a": 0.4}, {"a": "middle"})


def test_evaluate_probe_by_newton_is_linear_probe_with_its_predictions():
    from tlhelpers.features import evaluate_probe, linear_probe
    from tlhelpers.stats import compare

    rng = np.random.default_rng(0)
    for k, d in ((2, 5), (3, 40)):  # two classes, and more features than training rows per class
        y = rng.integers(0, k, 90)
        x = rng.normal(size=(90, d)) + y[:, None] * 0.8
        ev = evaluate_probe(x[:60], y[:60], x[60:], y[60:], method="newton")
        assert ev.accuracy == pytest.approx(linear_probe(x[:60], y[:60], x[60:], y[60:]))
        assert ev.y_prob.shape == (30, k) and np.allclose(ev.y_prob.sum(1), 1)
    noise = evaluate_probe(rng.normal(size=(60, 5)), y[:60], rng.normal(size=(30, 5)), y[60:], method="newton")
    assert compare(ev, noise).n == 30  # two probes on the same images: a paired test
