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
    assert isinstance(iv, Interval) and iv.level == 0.9
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
