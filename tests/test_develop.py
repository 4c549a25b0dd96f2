"""The source-model page's helpers: reuse a base frozen, tune its top blocks, weigh a start, probes as Evaluations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlhelpers as tlh


@pytest.fixture
def red_blue(image_folder):
    images = tlh.scan_folder(image_folder(per_class=8, size=32), verbose=False)
    return images.sample(5, seed=0), images


def _weights(layers):
    return [w.copy() for layer in layers for w in layer.get_weights()]


def test_split_top_recomposes_the_base(tiny_base):
    lower, upper = tlh.split_top(tiny_base, 2)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    x = tiny_base.preprocess(x)
    np.testing.assert_allclose(upper(lower.model(x)), tiny_base.model(x), atol=1e-5)
    assert upper.layers[-1] is tiny_base.model.layers[-1]  # shared, not copied
    with pytest.raises(ValueError, match="choose top_blocks between 1 and"):
        tlh.split_top(tiny_base, 0)


def test_reuse_then_tune_changes_only_the_top_blocks(tiny_base, red_blue):
    train, test = red_blue
    lower, upper = tlh.split_top(tiny_base, 2)
    below, top = _weights(lower.model.layers), _weights(upper.layers)
    runs = tlh.reuse_then_tune(tiny_base, train, test, top_blocks=2, epochs=(2, 2))
    assert all(np.array_equal(a, b) for a, b in zip(below, _weights(lower.model.layers)))
    assert not all(np.array_equal(a, b) for a, b in zip(top, _weights(upper.layers)))
    assert runs["tuned_params"] == sum(w.size for layer in upper.layers if layer.get_weights()
                                       and not isinstance(layer, keras.layers.BatchNormalization)
                                       for w in layer.get_weights())
    for name in ("frozen", "tuned"):
        assert np.array_equal(runs[name].y_true, test.labels) and runs[name].y_prob.shape == (len(test), 2)
    assert len(runs["history"]["head"]["loss"]) == 2 and len(runs["history"]["tune"]["loss"]) == 2
    assert tlh.compare(runs["tuned"], runs["frozen"]).n == len(test)


def test_top_from_copies_the_top_blocks_only(red_blue):
    a = tlh.load_base("mobilenet_v2", weights=None, image_size=32, alpha=0.35)
    keras.utils.set_random_seed(1)
    b = tlh.load_base("mobilenet_v2", weights=None, image_size=32, alpha=0.35)
    lower_before = _weights(tlh.split_top(a, 2)[0].model.layers)
    tlh.top_from(a, b, 2)
    assert all(np.array_equal(x, y) for x, y in zip(tlh.split_top(a, 2)[1].get_weights(),
                                                    tlh.split_top(b, 2)[1].get_weights()))
    assert all(np.array_equal(x, y) for x, y in zip(lower_before, _weights(tlh.split_top(a, 2)[0].model.layers)))


def test_memorise_noise_fits_shuffled_labels(tiny_base, red_blue):
    _, images = red_blue
    history = tlh.memorise_noise(tiny_base, images, top_blocks=2, epochs=3)
    assert len(history["accuracy"]) == 3 and 0 <= history["agreement_with_true_labels"] <= 1
    shuffled = np.random.default_rng(0).permutation(images.labels)
    assert history["agreement_with_true_labels"] == float((shuffled == np.asarray(images.labels)).mean())


@pytest.mark.parametrize("n_classes", [2, 3])
def test_evaluate_probe_is_linear_probe(n_classes):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 30)
    x = rng.normal(size=(len(y), 5))
    x[np.arange(len(y)), y] += 1.0  # separable in part: accuracy between chance and 1
    names = [f"c{i}" for i in range(n_classes)]
    result = tlh.evaluate_probe(x[::2], y[::2], x[1::2], y[1::2], classes=names)
    assert result.accuracy == tlh.linear_probe(x[::2], y[::2], x[1::2], y[1::2])
    assert result.classes == names and np.allclose(result.y_prob.sum(1), 1)
    with pytest.raises(ValueError, match="single class"):
        tlh.evaluate_probe(x[:5], np.zeros(5), x[:5], np.zeros(5), classes=names)


def test_the_source_model_page_tunes_on_the_same_images_in_both_profiles():
    """Tuning and the starts of the top blocks cost seconds: both profiles use every cats-vs-dogs image."""
    full, quick = tlh.settings("source_model", "full"), tlh.settings("source_model", "quick")
    for key in ("tune_train_per_class", "tune_test_per_class", "noise_per_class"):
        assert full.options[key] == quick.options[key], key
    assert quick.options["tune_train_per_class"] is None and quick.options["noise_per_class"] >= 50
