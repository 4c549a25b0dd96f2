"""Chapter 2's calibrated similarity: one kernel width for every target, MMD² in units of a reference pair's."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers.formalism import median_bandwidth


def gaussian(n, shift=0.0, *, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[:, 0] += shift
    return x


@pytest.fixture
def table():
    source = gaussian(120, seed=0)
    targets = {"same": gaussian(120, seed=1), "reference": gaussian(120, 1.0, seed=2),
               "near": gaussian(120, 0.5, seed=3), "far": gaussian(120, 3.0, seed=4)}
    return tlh.domain_similarity(source, targets, n=50, bandwidth=tlh.source_bandwidth(source))


def test_one_bandwidth_for_every_target_is_what_the_table_uses():
    source, target = gaussian(100, seed=0), gaussian(100, 3.0, seed=1)
    bw = tlh.source_bandwidth(source)
    assert bw == pytest.approx(median_bandwidth(source[:50], source[50:]))
    fixed = tlh.domain_similarity(source, {"t": target}, n=10, bandwidth=bw)
    own = tlh.domain_similarity(source, {"t": target}, n=10)
    assert fixed.loc["t", "MMD²"] == pytest.approx(tlh.mmd(source, target, bandwidth=bw))
    assert own.loc["t", "MMD²"] == pytest.approx(tlh.mmd(source, target))  # the default is unchanged
    assert fixed.loc["t", "MMD²"] != pytest.approx(own.loc["t", "MMD²"])


def test_calibrated_scale_puts_the_reference_at_one_and_can_say_closer_or_further(table):
    cal = tlh.calibrate_similarity(table, reference="reference")
    assert cal.loc["reference", "MMD² ÷ reference"] == pytest.approx(1.0)
    assert cal.loc["reference", "score"] == pytest.approx(0.5)
    assert cal.loc["same", "vs. reference"] == "closer" and cal.loc["far", "vs. reference"] == "further"
    assert cal.loc["same", "score"] > 0.9 and cal.loc["far", "score"] < 0.3
    assert (cal["÷ low"] <= cal["MMD² ÷ reference"]).all() and (cal["MMD² ÷ reference"] <= cal["÷ high"]).all()
    assert cal["score"].between(0, 1).all()


def test_a_reference_that_does_not_differ_from_the_source_is_refused(table):
    with pytest.raises(ValueError, match="must differ measurably"):
        tlh.calibrate_similarity(table.assign(**{"MMD²": table["MMD²"] * 0 - 0.001}), reference="reference")
    with pytest.raises(ValueError, match="rows are: same, reference"):
        tlh.calibrate_similarity(table, reference="ImageNet")


def test_plot_relative_similarity_draws_a_bar_group_per_depth(table):
    cal = tlh.calibrate_similarity(table, reference="reference")
    ax = tlh.plot_relative_similarity({"middle": cal, "top": cal}, reference="reference")
    assert len(ax.patches) == 2 * len(cal) and ax.get_xscale() == "symlog"  # linear to 1, logarithmic beyond
    assert ax.get_xlim()[0] < 0 < 1 < ax.get_xlim()[1]  # a control at 0 and the reference at 1 both show
    assert [t.get_text() for t in ax.get_yticklabels()] == list(cal.index)
    plt.close("all")
