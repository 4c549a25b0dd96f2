"""The checks that inspect a learner's Keras model: the right model passes, each kind of wrong one gets its hint."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers.checks import CORRECT, check


def verdict(label, answer, **context):
    return check(label, answer, quiet=True, **context)


@pytest.fixture()
def base():
    return tlh.load_base("mobilenet_v2", weights=None, image_size=64, alpha=0.35, verbose=False)  # 2x2 maps


def head_model(base, *, pool="avg", units=2, activation="softmax", freeze=True, hidden=0):
    base.model.trainable = not freeze
    inputs = keras.Input(base.model.input_shape[1:])
    x = base.model(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x) if pool == "avg" else keras.layers.Flatten()(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(x))


def test_the_keras_head_exercise_accepts_the_right_model(base):
    assert verdict("cvd-ex-keras-head", head_model(base), base=base) == CORRECT
    with_dropout = head_model(base)
    assert verdict("cvd-ex-keras-head", with_dropout, base=base) == CORRECT


@pytest.mark.parametrize("kwargs, words", [
    (dict(freeze=False), "conv_base.trainable = False"),
    (dict(pool="flatten"), "GlobalAveragePooling2D"),
    (dict(units=3), "needs 2 units"),
    (dict(activation=None), "softmax"),
    (dict(hidden=8), "no hidden layer"),
])
def test_the_keras_head_exercise_names_what_is_off(base, kwargs, words):
    assert words in verdict("cvd-ex-keras-head", head_model(base, **kwargs), base=base)


def test_the_keras_head_exercise_wants_the_chapters_base_and_a_model(base):
    other = tlh.load_base("mobilenet_v2", weights=None, image_size=64, alpha=0.35, verbose=False)
    assert "conv_base (base.model)" in verdict("cvd-ex-keras-head", head_model(other), base=base)
    assert "keras.Model" in verdict("cvd-ex-keras-head", "my_model", base=base)
    small = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert "inputs of shape (16, 16, 3)" in verdict("cvd-ex-keras-head", small, base=base)


def unfreeze(base, first, *, bn=False):
    base.model.trainable = True
    for i, layer in enumerate(base.model.layers):
        layer.trainable = i >= first and (bn or not isinstance(layer, keras.layers.BatchNormalization))


def test_the_unfreeze_exercise_checks_every_layers_flag(base):
    starts = [s for _, s in tlh.blocks(base)]
    unfreeze(base, starts[-3])
    assert verdict("trash-ex-keras-unfreeze", base.model, base=base, top_blocks=3) == CORRECT
    unfreeze(base, starts[-2])
    assert "top 2 block(s)" in verdict("trash-ex-keras-unfreeze", base.model, base=base, top_blocks=3)
    unfreeze(base, starts[-3], bn=True)
    assert "BatchNormalization" in verdict("trash-ex-keras-unfreeze", base.model, base=base, top_blocks=3)
    base.model.trainable = False
    assert "Nothing would train" in verdict("trash-ex-keras-unfreeze", base.model, base=base, top_blocks=3)
    unfreeze(base, starts[-3] + 1)  # off by one inside the block
    assert "set the other way" in verdict("trash-ex-keras-unfreeze", base.model, base=base, top_blocks=3)
    assert "fresh.model" in verdict("trash-ex-keras-unfreeze", keras.Sequential([keras.Input((2,))]), base=base,
                                    top_blocks=3)


def test_the_activation_model_exercise_compares_feature_maps(base):
    classifier = tlh.build_classifier(base, n_classes=2, pooling="avg", hidden=None, dropout=0)
    net = classifier.layers[-3] if classifier.layers[-3] is base.model else base.model
    layer = tlh.conv_layers(classifier)[0]
    image = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype("float32")
    right = keras.Model(net.input, net.get_layer(layer).output)
    assert verdict("explain-ex-keras-activations", right, model=classifier, layer=layer, image=image) == CORRECT
    later = tlh.conv_layers(classifier)[-1]
    wrong_layer = keras.Model(net.input, net.get_layer(later).output)
    assert "use net.get_layer(layer).output" in verdict("explain-ex-keras-activations", wrong_layer,
                                                        model=classifier, layer=layer, image=image)
    two = keras.Model(net.input, [net.get_layer(layer).output, net.output])
    assert "2 outputs" in verdict("explain-ex-keras-activations", two, model=classifier, layer=layer, image=image)
    copy = keras.models.clone_model(net)  # same architecture, other weights
    other = keras.Model(copy.input, copy.get_layer(layer).output)
    assert "not the values" in verdict("explain-ex-keras-activations", other, model=classifier, layer=layer,
                                       image=image)
