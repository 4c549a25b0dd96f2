"""Chapter 1's helpers: accuracy by training-set size from cached features, and the choosing-a-base comparison."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import tlhelpers as tlh
from tlhelpers import experiments
from tlhelpers.images import scan_folder
from tlhelpers.offline import WeightsUnavailableError


@pytest.fixture
def images(image_folder):
    return scan_folder(image_folder(per_class=8, size=32), verbose=False)


@pytest.fixture
def test_images(image_folder):
    return scan_folder(image_folder("test", per_class=5, size=32, seed=1), verbose=False)


def test_probe_by_size_draws_samples_and_reports_both_kinds_of_noise(tiny_base, images, test_images):
    table = tlh.probe_by_size(tiny_base, images, test_images, sizes=(2, 4, None, 50), draws=3, label="probe")
    assert list(table["images per class"]) == [2, 4, 8]  # None, and a size the classes cannot fill: all 8, once
    assert list(table["draws"]) == [3, 3, 1] and set(table["strategy"]) == {"probe"}
    assert (table["draws min"] <= table["test accuracy"] + 1e-12).all()
    assert (table["test accuracy"] <= table["draws max"] + 1e-12).all()
    assert (table["ci low"] < table["test accuracy"]).all() and (table["test accuracy"] <= table["ci high"]).all()
    lo, hi = tlh.accuracy_interval(int(round(table["test accuracy"].iloc[-1] * 10)), 10)
    assert table[["ci low", "ci high"]].iloc[-1].tolist() == pytest.approx([lo, hi])  # Wilson on the 10 test images
    with pytest.raises(ValueError, match="draws must be at least 1"):
        tlh.probe_by_size(tiny_base, images, test_images, draws=0)


def test_compare_bases_scores_probes_and_trained_models_on_one_test_set(tiny_base, images, test_images):
    table = tlh.compare_bases({"tiny": tiny_base}, images, test_images, trained={"scratch": (tiny_base, 0.6)},
                              speed_images=8, batch_size=4, repeats=1)
    assert list(table.index) == ["tiny", "scratch"]
    assert table.loc["tiny", "protocol"].startswith("linear probe")
    assert table.loc["scratch", "protocol"] == "trained end to end"
    assert table.loc["scratch", "test accuracy"] == 0.6
    assert (table["parameters"] == tiny_base.model.count_params()).all() and (table["images/s"] > 0).all()
    assert (table["ci low"] <= table["test accuracy"]).all() and (table["test accuracy"] <= table["ci high"]).all()
    assert table.loc["scratch", "95% interval"] == "{:.3f}–{:.3f}".format(*tlh.accuracy_interval(6, 10))
    with pytest.raises(ValueError, match="between 0 and 1"):
        tlh.compare_bases({}, images, test_images, trained={"bad": (tiny_base, 60)})


def test_available_bases_keeps_only_bases_whose_weights_load(tiny_base, monkeypatch):
    def fake_load_base(arch, **kwargs):
        assert kwargs["allow_fallback"] is False  # never a stand-in in place of the base asked for
        if arch == "vgg16":
            raise WeightsUnavailableError("ImageNet weights for vgg16 could not be loaded (offline). To provide ...")
        print("Downloading data from https://example.invalid/weights.h5")
        return tiny_base

    monkeypatch.setattr(experiments, "load_base", fake_load_base)
    found, skipped = tlh.available_bases(("mobilenet_v2", "vgg16"), image_size=32)
    assert list(found) == ["mobilenet_v2"] and found["mobilenet_v2"] is tiny_base
    assert skipped == {"vgg16": "ImageNet weights for vgg16 could not be loaded (offline)"}


def test_plot_base_comparison_draws_one_labelled_point_per_base():
    table = pd.DataFrame({"test accuracy": [0.5, 0.65, 0.95], "ci low": [0.47, 0.62, 0.94],
                          "ci high": [0.53, 0.68, 0.96], "images/s": [260.0, 800.0, 260.0],
                          "parameters": [3_400_000, 700_000, 3_400_000]}, index=["scratch", "own", "lite0"])
    ax = tlh.plot_base_comparison(table)
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == 3 and labels[1].startswith("own") and "0.7 M parameters" in labels[1]
    assert ax.get_xscale() == "log" and len(ax.collections) >= 3
    plt.close("all")


def test_plot_accuracy_by_size_shades_intervals_only_where_the_table_has_them():
    plain = pd.DataFrame({"strategy": ["a", "a"], "images per class": [5, 10], "test accuracy": [0.6, 0.7]})
    banded = plain.assign(**{"ci low": [0.5, 0.6], "ci high": [0.7, 0.8]})
    axes = tlh.plot_accuracy_by_size({"plain": plain, "banded": banded})
    assert len(axes.flat[0].collections) == 0 and len(axes.flat[1].collections) == 1
    plt.close("all")
    assert np.isfinite(banded["ci low"]).all()


def test_probe_predictions_are_the_probe_whose_accuracy_linear_probe_reports():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int)
    pred = tlh.probe_predictions(x[:40], y[:40], x[40:])
    assert set(pred) <= {0, 1} and (pred == y[40:]).mean() == tlh.linear_probe(x[:40], y[:40], x[40:], y[40:])
    classes, scores = tlh.probe_predictions(x[:40], y[:40], x[40:], scores=True)
    assert list(classes) == [0, 1] and scores.shape == (20, 1) and ((scores[:, 0] > 0) == (pred == 1)).all()


def test_probe_by_size_tests_each_draw_against_another_model_on_the_same_images(tiny_base, images, test_images):
    never_right = np.zeros(len(test_images), dtype=bool)
    table = tlh.probe_by_size(tiny_base, images, test_images, sizes=(4, None), draws=2, against=never_right)
    assert {"draws ahead", "p max"} <= set(table.columns)
    full = table.iloc[-1]  # one draw on all the images: McNemar against a model that is never right
    right = round(full["test accuracy"] * len(test_images))
    assert full["p max"] == pytest.approx(tlh.mcnemar(np.arange(10) < right, never_right)["p_value"])
    assert full["draws ahead"] == int(full["p max"] < 0.05)
    evaluation = tlh.Evaluation(test_images.class_names, test_images.labels, np.eye(2)[1 - test_images.labels])
    same = tlh.probe_by_size(tiny_base, images, test_images, sizes=(None,), against=evaluation)
    assert same["p max"].iloc[0] == pytest.approx(full["p max"])  # an Evaluation that is never right: the same test
    with pytest.raises(ValueError, match="one boolean per test image"):
        tlh.probe_by_size(tiny_base, images, test_images, against=never_right[:3])


def test_compare_bases_returns_each_probe_as_an_evaluation_for_paired_tests(tiny_base, images, test_images):
    scratch = tlh.Evaluation(test_images.class_names, test_images.labels, np.eye(2)[test_images.labels])
    table, evals = tlh.compare_bases({"tiny": tiny_base}, images, test_images, trained={"scratch": (tiny_base, scratch)},
                                     speed_images=8, batch_size=4, repeats=1, return_evaluations=True)
    assert list(evals) == ["tiny", "scratch"] and table.loc["scratch", "test accuracy"] == 1.0
    assert evals["tiny"].accuracy == table.loc["tiny", "test accuracy"]
    assert (evals["tiny"].y_true == test_images.labels).all()
    assert tlh.compare(evals["scratch"], evals["tiny"]).new_only == round((1 - evals["tiny"].accuracy) * 10)


def test_transferability_returns_each_depths_answers_for_paired_tests(tiny_base, images, test_images):
    table, answers = tlh.transferability(tiny_base, images, test_images, verbose=False, return_predictions=True)
    assert list(answers) == list(table.index)
    for depth, pred in answers.items():
        assert (pred == test_images.labels).mean() == table.loc[depth, "probe accuracy"]
