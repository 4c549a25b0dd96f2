"""The exercises' auto-checks: a right answer is "correct", each kind of wrong answer gets its own hint."""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest

import tlhelpers as tlh
from tlhelpers.checks import CHECKS, CORRECT, check


def ok(label, answer, **context):
    return check(label, answer, quiet=True, **context) == CORRECT


def hint(label, answer, **context):
    verdict = check(label, answer, quiet=True, **context)
    assert verdict != CORRECT, (label, answer)
    return verdict


@pytest.fixture(scope="module")
def base():
    return tlh.load_base("mobilenet_v2", weights=None, image_size=32, alpha=0.35, verbose=False)


def test_exported_prints_once_and_unknown_ids_list_the_known_ones(capsys):
    assert tlh.check is check
    assert tlh.check("src-ex-halflife", math.log(0.5) / math.log(0.9), momentum=0.9) == "correct"
    assert capsys.readouterr().out == "correct\n"
    with pytest.raises(ValueError, match="known ids are: .*cvd-ex-blocks"):
        check("no-such-exercise", 1)
    with pytest.raises(TypeError, match='tlh.check\\("cvd-ex-blocks"'):
        check("cvd-ex-blocks", 1)  # the base is missing


def test_every_check_has_a_test():
    tested = {"concepts-ex-scenario", "concepts-ex-depth", "concepts-ex-speed", "formalism-ex-score",
              "formalism-ex-setting", "cvd-ex-blocks", "cvd-ex-pooling", "cvd-ex-gap", "trash-ex-blocks",
              "trash-ex-classweight", "explain-ex-layer", "explain-ex-sparsity", "src-ex-halflife", "src-ex-share"}
    tested |= {"cvd-ex-keras-head", "trash-ex-keras-unfreeze", "explain-ex-keras-activations"}  # test_checks_keras
    assert set(CHECKS) == tested


def test_concepts_scenario():
    expected = tlh.recommend_strategy(300, "different").scenario
    assert ok("concepts-ex-scenario", expected)
    assert "size half" in hint("concepts-ex-scenario", expected.replace("small", "large"))
    assert "similarity half" in hint("concepts-ex-scenario", expected.replace("different", "similar"))
    assert "Both halves" in hint("concepts-ex-scenario", "large dataset, similar domain")
    assert "one size" in hint("concepts-ex-scenario", "fine-tune it")
    assert "string" in hint("concepts-ex-scenario", 3)


def test_concepts_depth():
    by_depth = pd.DataFrame({"layer": ["b1", "b2", "b3", "b4"], "probe accuracy": [0.6, 0.9, 0.8, 0.7]},
                            index=pd.Index([1, 2, 3, 4], name="depth"))
    assert ok("concepts-ex-depth", "b2", by_depth=by_depth) and ok("concepts-ex-depth", 2, by_depth=by_depth)
    assert "top of the base" in hint("concepts-ex-depth", "b4", by_depth=by_depth)
    assert "30.0 points below" in hint("concepts-ex-depth", 1, by_depth=by_depth)
    assert "neither a depth" in hint("concepts-ex-depth", "b9", by_depth=by_depth)


def test_concepts_speed():
    lite, own = "EfficientNet-Lite0, ImageNet", "own MobileNetV2, Imagenette"
    comparison = pd.DataFrame({"images/s": [100.0, 400.0], "parameters": [3_000_000, 1_000_000]}, index=[lite, own])
    assert ok("concepts-ex-speed", 4.0, comparison=comparison) and ok("concepts-ex-speed", 4.1, comparison=comparison)
    assert "other way round" in hint("concepts-ex-speed", 0.25, comparison=comparison)
    assert "smaller" in hint("concepts-ex-speed", 3.0, comparison=comparison)
    assert "relative terms" in hint("concepts-ex-speed", 300, comparison=comparison)
    assert "images/s" in hint("concepts-ex-speed", 7, comparison=comparison)
    assert "one number" in hint("concepts-ex-speed", "fast", comparison=comparison)


def test_formalism_score():
    table = pd.DataFrame({"MMD²": [0.3], "MMD² ÷ reference": [3.0]}, index=["TrashNet"])
    assert ok("formalism-ex-score", 0.25, table=table) and ok("formalism-ex-score", 0.252, table=table)
    assert "between 0 and 1" in hint("formalism-ex-score", 3.0, table=table)
    assert "raw MMD²" in hint("formalism-ex-score", 1 / 1.3, table=table)
    assert "one minus" in hint("formalism-ex-score", 0.75, table=table)
    assert "formula" in hint("formalism-ex-score", 0.5, table=table)
    table.loc["TrashNet", "MMD² ÷ reference"] = 0.5  # a ratio inside [0, 1] that is mistaken for the score
    assert "itself" in hint("formalism-ex-score", 0.5, table=table)


def test_formalism_setting():
    assert ok("formalism-ex-setting", "Transductive") and ok("formalism-ex-setting", "transductive transfer")
    assert "second clinic label" in hint("formalism-ex-setting", "inductive")
    assert "no labels at all" in hint("formalism-ex-setting", "unsupervised")
    assert "three settings" in hint("formalism-ex-setting", "domain adaptation")
    assert ok("formalism-ex-setting", "inductive", same_task=False, target_labels=True)
    assert "keeps the task" in hint("formalism-ex-setting", "transductive", same_task=False, target_labels=True)


def test_cvd_blocks_recomputes_and_leaves_the_base_as_it_was(base):
    tlh.freeze(base, verbose=False)
    one = tlh.unfreeze_top_blocks(base, 1, verbose=False)["trainable_params"]
    flags = [layer.trainable for layer in base.model.layers]
    two = tlh.unfreeze_top_blocks(base, 2, verbose=False)["trainable_params"]
    with_bn = tlh.unfreeze_top_blocks(base, 2, train_batchnorm=True, verbose=False)["trainable_params"]
    tlh.unfreeze_top_blocks(base, 1, verbose=False)
    assert ok("cvd-ex-blocks", two, base=base) and ok("cvd-ex-blocks", np.int64(two), base=base)
    assert [layer.trainable for layer in base.model.layers] == flags  # the check restored the learner's state
    assert "top block alone" in hint("cvd-ex-blocks", one, base=base)
    assert "second block adds" in hint("cvd-ex-blocks", two - one, base=base)
    assert "whole base" in hint("cvd-ex-blocks", base.model.count_params(), base=base)
    assert "BatchNormalization" in hint("cvd-ex-blocks", with_bn, base=base)
    assert "trainable_params" in hint("cvd-ex-blocks", 17, base=base)
    assert "one number" in hint("cvd-ex-blocks", "many", base=base)


def test_cvd_blocks_one_more_than_the_chapters_unit(base):
    """Chapter 3 fine-tunes the top two blocks on Lite0 and asks for one more: n_blocks=3."""
    tlh.freeze(base, verbose=False)
    counts = {n: tlh.unfreeze_top_blocks(base, n, verbose=False)["trainable_params"] for n in (1, 2, 3)}
    tlh.freeze(base, verbose=False)
    assert ok("cvd-ex-blocks", counts[3], base=base, n_blocks=3)
    assert "top block alone" in hint("cvd-ex-blocks", counts[1], base=base, n_blocks=3)
    assert "top two blocks" in hint("cvd-ex-blocks", counts[2], base=base, n_blocks=3)
    assert "added block" in hint("cvd-ex-blocks", counts[3] - counts[2], base=base, n_blocks=3)


def test_cvd_pooling():
    shape = (3, 3, 8)
    avg = tlh.build_head(shape, n_classes=2, pooling="avg").count_params()
    flat = tlh.build_head(shape, n_classes=2).count_params()
    assert ok("cvd-ex-pooling", avg, features_shape=shape)
    assert "flattening head" in hint("cvd-ex-pooling", flat, features_shape=shape)
    assert "count_params" in hint("cvd-ex-pooling", avg + 1, features_shape=shape)


def test_cvd_gap():
    # the convnets from scratch and the row "feature extraction" trained on the same photos
    acc = {"from scratch": 0.55, "from scratch + augmentation": 0.60, "feature extraction (subset)": 0.90,
           "feature extraction": 0.95}
    results = {k: SimpleNamespace(accuracy=v) for k, v in acc.items()}
    assert ok("cvd-ex-gap", 35, results=results) and ok("cvd-ex-gap", 35.3, results=results)
    assert "percentage points" in hint("cvd-ex-gap", 0.35, results=results)
    assert "sign" in hint("cvd-ex-gap", -35, results=results)
    assert "better of the two" in hint("cvd-ex-gap", 40, results=results)
    assert "subset" in hint("cvd-ex-gap", 30, results=results)
    assert "which two rows" in hint("cvd-ex-gap", 12, results=results)


def test_trash_blocks(base):
    tlh.freeze(base, verbose=False)
    two = tlh.unfreeze_top_blocks(base, 2, verbose=False)["trainable_params"]
    three = tlh.unfreeze_top_blocks(base, 3, verbose=False)["trainable_params"]
    tlh.freeze(base, verbose=False)
    assert ok("trash-ex-blocks", three - two, base=base)
    assert base.model.trainable_weights == []  # still frozen
    assert "*more*" in hint("trash-ex-blocks", three, base=base)
    assert "count with 2 blocks" in hint("trash-ex-blocks", two, base=base)
    assert "sign" in hint("trash-ex-blocks", two - three, base=base)
    assert "difference" in hint("trash-ex-blocks", 5, base=base)


def test_trash_classweight():
    images = tlh.ImageSet(paths=[f"{i}.jpg" for i in range(10)], labels=[0] * 6 + [1] * 3 + [2],
                          class_names=["paper", "glass", "trash"])
    expected = 10 / (3 * 1)
    assert ok("trash-ex-classweight", expected, images=images) and ok("trash-ex-classweight", 3.33, images=images)
    assert ok("trash-ex-classweight", tlh.class_weights(images)[2], images=images)
    assert "inverse" in hint("trash-ex-classweight", 0.3, images=images)
    assert "number of classes" in hint("trash-ex-classweight", 10.0, images=images)
    assert "share" in hint("trash-ex-classweight", 0.1, images=images)
    assert "'trash'" in hint("trash-ex-classweight", 2.0, images=images)
    assert ok("trash-ex-classweight", 10 / 9, images=images, class_name="glass")


def test_explain_layer():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c3")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    assert ok("explain-ex-layer", (8, 8), model=model, layer="c2") and ok("explain-ex-layer", [8, 8], model=model, layer="c2")
    assert "(height, width)" in hint("explain-ex-layer", 64, model=model, layer="c2")
    assert "channels" in hint("explain-ex-layer", (8, 8, 4), model=model, layer="c2")
    assert "last convolutional" in hint("explain-ex-layer", (4, 4), model=model, layer="c2")
    assert "input image" in hint("explain-ex-layer", (16, 16), model=model, layer="c2")
    assert "shape" in hint("explain-ex-layer", (5, 5), model=model, layer="c2")


def test_explain_sparsity():
    sparsity = pd.DataFrame({"depth": [0, 1, 2], "layer": ["conv1", "conv2", "conv3"],
                             "measured": ["relu1", "relu2", "relu3"], "dead_fraction": [0.0, 0.5, 0.1],
                             "sparsity": [0.3, 0.4, 0.6]})
    assert ok("explain-ex-sparsity", "relu3", sparsity=sparsity) and ok("explain-ex-sparsity", "conv3", sparsity=sparsity)
    assert "dead channels" in hint("explain-ex-sparsity", "relu2", sparsity=sparsity)
    assert "30.0 points below" in hint("explain-ex-sparsity", "relu1", sparsity=sparsity)
    assert "not a layer" in hint("explain-ex-sparsity", "relu9", sparsity=sparsity)


def test_src_halflife():
    expected = math.log(0.5) / math.log(0.999)
    assert ok("src-ex-halflife", expected, momentum=0.999) and ok("src-ex-halflife", math.ceil(expected), momentum=0.999)
    assert "time constant" in hint("src-ex-halflife", 1000, momentum=0.999)
    assert "compound" in hint("src-ex-halflife", 500, momentum=0.999)
    assert "remaining distance" in hint("src-ex-halflife", 50, momentum=0.999)
    assert ok("src-ex-halflife", 6.6, momentum=0.9)
    with pytest.raises(ValueError, match="strictly between"):
        check("src-ex-halflife", 1, momentum=1.5)


def test_src_share():
    index = pd.MultiIndex.from_tuples(
        [("MobileNetV2 (alpha 0.5)", "random weights", 96), ("MobileNetV2 (alpha 0.5)", "Imagenette: 10 classes", 96),
         ("EfficientNet-Lite0", "ImageNet: 1000 classes", 96), ("EfficientNet-Lite0", "ImageNet: 1000 classes", 160)],
        names=["base", "trained on", "px"])
    table = pd.DataFrame({"acc": [0.5, 0.6, 0.9, 0.95]}, index=index)
    assert ok("src-ex-share", 0.25, table=table)
    assert "fraction" in hint("src-ex-share", 25, table=table)
    assert "still left" in hint("src-ex-share", 0.75, table=table)
    assert "upside down" in hint("src-ex-share", 4.0, table=table)
    assert "'acc' column" in hint("src-ex-share", 0.5, table=table)
