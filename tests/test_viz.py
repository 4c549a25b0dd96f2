"""The plots of `viz` on tiny synthetic arrays and tables: each returns its axes with the expected marks on it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from tlhelpers import viz


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def axes():
    return plt.subplots()[1]


def test_history_draws_train_and_validation_curves_and_the_phase_boundary():
    ax = axes()
    runs = {"scratch": {"accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.55, 0.6]},
            "two phases": {"accuracy": [0.6, 0.8, 0.9], "val_accuracy": [0.6, 0.7, 0.8], "phase_boundary": 2}}
    assert viz.plot_history(runs, ax=ax) is ax
    assert len(ax.lines) == 5  # 2 runs x (train, validation), one phase boundary
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["scratch (train)", "scratch (validation)"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])


def test_history_without_validation_draws_the_training_curve_only():
    ax = viz.plot_history({"run": {"loss": [1.0, 0.5]}}, metric="loss", ax=axes())
    assert len(ax.lines) == 1 and ax.get_ylabel() == "loss"


@pytest.mark.parametrize("normalize, first", [(False, "3"), (True, "0.75")])
def test_confusion_annotates_every_cell(normalize, first):
    ax = axes()
    assert viz.plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], ax=ax, normalize=normalize) is ax
    assert len(ax.images) == 1 and len(ax.texts) == 4
    assert ax.texts[0].get_text() == first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")


def test_images_grid_hides_the_spare_panels():
    grid = viz.plot_images(np.zeros((3, 8, 8, 3)), ["a", "b", "c"], ncols=2)
    assert grid.shape == (2, 2)
    assert [len(ax.images) for ax in grid.flat] == [1, 1, 1, 0]
    assert [ax.get_title() for ax in grid.flat] == ["a", "b", "c", ""]


def test_augmentations_put_the_original_first():
    grid = viz.plot_augmentations(lambda batch, training: batch[:, ::-1], np.zeros((8, 8, 3)), n=4, ncols=4)
    assert [ax.get_title() for ax in grid.flat] == ["original", "augmented 1", "augmented 2", "augmented 3"]


def test_history_grid_has_one_panel_per_run_and_one_legend():
    runs = {name: {"accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]} for name in ("a", "b", "c", "d")}
    grid = viz.plot_history_grid(runs, ncols=3)
    assert grid.shape == (2, 3)
    assert [ax.get_title() for ax in grid.flat[:4]] == ["a", "b", "c", "d"]
    assert all(ax.get_legend() is None for ax in grid.flat)
    assert len(grid.flat[0].figure.legends) == 1


def test_activation_grid_tiles_the_channels():
    ax = axes()
    acts = np.random.default_rng(0).random((5, 5, 12))
    assert viz.plot_activation_grid(acts, n=4, ax=ax) is ax
    assert ax.images[0].get_array().shape == (2 * 6 - 1, 2 * 6 - 1)
    with pytest.raises(ValueError, match="one feature map"):
        viz.plot_activation_grid(acts[None])


def test_sparsity_draws_two_fractions_by_layer():
    ax = axes()
    df = pd.DataFrame({"layer": ["c1", "c2", "c3"], "dead_fraction": [0.0, 0.1, 0.3], "sparsity": [0.4, 0.5, 0.7]})
    assert viz.plot_sparsity(df, ax=ax) is ax
    assert len(ax.lines) == 2 and ax.get_ylim() == (0, 1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c1", "c2", "c3"]


def test_filter_patterns_are_titled_and_stretched_for_display_only():
    patterns = np.stack([np.full((6, 6, 3), 100.0), np.linspace(100, 110, 108).reshape(6, 6, 3)])
    grid = viz.plot_filter_patterns(patterns, ["p0", "p1"])
    assert [ax.get_title() for ax in grid.flat] == ["p0", "p1"]
    assert grid.flat[1].images[0].get_array().max() == 255  # stretched; a flat pattern stays as it is
    assert patterns.max() == 110


def test_heatmap_lies_over_the_image_at_its_size():
    ax = axes()
    assert viz.plot_heatmap(np.zeros((20, 10, 3)), np.eye(4), ax=ax) is ax
    assert len(ax.images) == 2
    assert tuple(ax.images[1].get_extent()) == (-0.5, 9.5, 19.5, -0.5)


def randomization_table(method="gradcam"):
    df = pd.DataFrame({"randomized_to": ["(trained)", "dense", "conv"], "spearman": [1.0, 0.6, 0.1],
                       "spearman_min": [1.0, 0.4, 0.0], "spearman_max": [1.0, 0.8, 0.2]})
    df.attrs.update(method=method, threshold=0.5)
    return df


def test_randomization_draws_each_method_with_its_band_on_one_axes():
    ax = viz.plot_randomization(randomization_table())
    assert viz.plot_randomization(randomization_table("saliency"), ax=ax) is ax
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gradcam", "saliency"]
    assert len(ax.collections) == 2  # one min-max band per method
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(trained)", "dense", "conv"]


def test_scenarios_chart_has_four_cells():
    ax = axes()
    assert viz.plot_scenarios(ax=ax) is ax
    assert len(ax.patches) == 4 and len(ax.texts) == 8
    assert [t.get_text() for t in ax.get_xticklabels()] == ["small target dataset", "large target dataset"]


def test_transfer_effects_mark_start_slope_and_asymptote():
    runs = {"scratch": {"val_accuracy": [0.5, 0.6, 0.7, 0.7]}, "transfer": {"val_accuracy": [0.7, 0.8, 0.85, 0.86]}}
    effects = pd.DataFrame({"start": [0.5, 0.7], "slope": [0.1, 0.1], "asymptote": [0.7, 0.86]}, index=list(runs))
    ax = axes()
    assert viz.plot_transfer_effects(runs, effects, ax=ax) is ax
    assert len(ax.lines) == 3 * 2 + 3  # curve, start and slope per run; three legend keys
    assert len(ax.collections) == 2  # one asymptote bar per run
    assert ax.get_ylabel() == "validation accuracy"


def test_accuracy_by_size_has_a_panel_per_target_and_bands_where_intervals_are_given():
    frame = pd.DataFrame({"strategy": ["features", "features", "fine-tune", "fine-tune"],
                          "images per class": [10, 100, 10, 100], "test accuracy": [0.6, 0.8, 0.5, 0.9],
                          "ci low": [0.5, 0.7, 0.4, 0.85], "ci high": [0.7, 0.9, 0.6, 0.95]})
    grid = viz.plot_accuracy_by_size({"pets": frame, "trash": frame.drop(columns=["ci low", "ci high"])})
    assert grid.shape == (1, 2)
    assert [ax.get_title() for ax in grid.flat] == ["pets", "trash"]
    assert [len(ax.lines) for ax in grid.flat] == [2, 2]
    assert [len(ax.collections) for ax in grid.flat] == [2, 0]


def test_base_comparison_places_one_labelled_point_per_base():
    table = pd.DataFrame({"test accuracy": [0.9, 0.8], "ci low": [0.85, 0.75], "ci high": [0.95, 0.85],
                          "images/s": [50.0, 400.0], "parameters": [14e6, 2.2e6]}, index=["vgg16", "mobilenet_v2"])
    ax = axes()
    assert viz.plot_base_comparison(table, ax=ax) is ax
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2 and ax.get_xscale() == "log"
    assert sorted(t.get_text().split("\n")[0] for t in ax.texts) == ["mobilenet_v2", "vgg16"]


def test_relative_similarity_draws_a_bar_per_dataset_and_depth():
    names = ["control", "target"]
    table = pd.DataFrame({"MMD² ÷ reference": [0.1, 3.0], "÷ low": [0.0, 2.0], "÷ high": [0.2, 4.0]}, index=names)
    ax = axes()
    assert viz.plot_relative_similarity({"middle": table, "top": table}, reference="other classes", ax=ax) is ax
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert "other classes = 1" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_transferability_marks_the_best_depth():
    table = pd.DataFrame({"layer": ["b1", "b2", "b3"], "probe accuracy": [0.6, 0.9, 0.8]})
    ax = axes()
    assert viz.plot_transferability(table, ax=ax) is ax
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [1])


def test_domain_similarity_draws_both_measures():
    table = pd.DataFrame({"MMD²": [0.1, 0.5], "MMD² low": [0.05, 0.4], "MMD² high": [0.15, 0.6],
                          "PAD": [0.3, 1.5], "PAD low": [0.2, 1.4], "PAD high": [0.4, 1.6]}, index=["a", "b"])
    _, pair = plt.subplots(1, 2)
    assert viz.plot_domain_similarity(table, axes=pair) is pair
    assert [len(ax.patches) for ax in pair] == [2, 2]
    assert [ax.get_xlabel() for ax in pair] == ["MMD² (RBF kernel)", "proxy A-distance"]


def test_explanations_need_one_map_per_image():
    grid = viz.plot_explanations(np.zeros((2, 8, 8, 3)), [np.eye(8), np.eye(8)], ["x", "y"], ncols=2)
    assert [len(ax.images) for ax in grid.flat] == [2, 2]
    assert [ax.get_title() for ax in grid.flat] == ["x", "y"]
    with pytest.raises(ValueError, match="one map per image"):
        viz.plot_explanations(np.zeros((2, 8, 8, 3)), [np.eye(8)])


def test_explorer_builds_a_panel_for_a_small_convnet():
    pytest.importorskip("ipywidgets")
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    panel = viz.explorer(keras.Model(inp, out), np.zeros((2, 16, 16, 3), "float32"), class_names=["a", "b"])
    (image, layer), (channel, cls) = panel.children[0].children, panel.children[1].children
    assert layer.value == "conv" and channel.max == 3
    assert [label for label, _ in cls.options] == ["predicted", "a", "b"]
    assert len(image.options) == 2
