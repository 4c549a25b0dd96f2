"""What a convnet learned: Grad-CAM finds the object, maps react to the weights, errors say what to do.

The models are tiny (a 32-px MobileNetV2 with random weights, or a three-layer convnet trained
here in seconds on synthetic shapes), so every test runs in seconds on a CPU.
"""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from skimage import draw

import tlhelpers as tlh
from tlhelpers import explain
from tlhelpers.explain.attribution import _gradcam_fn

SIZE = 48  # synthetic scenes for the localisation test


def rgb(size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype("float32")


def small_functional(size=32, n_classes=3):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x))


def small_sequential(size=32, n_classes=2):
    return keras.Sequential([
        keras.Input((size, size, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_b"),
        keras.layers.Flatten(),
        keras.layers.Dense(n_classes, activation="softmax"),
    ])


def assert_heatmap(heatmap, shape):
    assert heatmap.shape == shape
    assert np.isfinite(heatmap).all()
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0


def manual_gradcam(maps, grads, size):
    """Grad-CAM as the paper writes it, for comparison: ReLU(sum_k mean(dS/dA_k) A_k), upsampled, / max."""
    cam = np.maximum((maps * grads.mean(axis=(0, 1))).sum(-1), 0)
    cam = tf.image.resize(cam[..., None], (size, size)).numpy()[..., 0]
    return cam / cam.max()


# --------------------------------------------------------------------------- Grad-CAM on every kind of model
def test_gradcam_on_nested_classifier_with_augmentation(tiny_base):
    model = tlh.build_classifier(tiny_base, 3, augment=tlh.augmentation(seed=0))
    heatmap, k = tlh.gradcam(model, rgb())
    assert_heatmap(heatmap, (32, 32))
    assert 0 <= k < 3
    assert k == int(np.argmax(model.predict(rgb()[None], verbose=0)))
    assert tlh.last_conv_layer(model) == "out_relu"  # found inside the nested base
    heatmap, _ = tlh.gradcam(model, rgb(), layer="block_2_expand_relu", class_index=1, plus=True)
    assert_heatmap(heatmap, (32, 32))
    assert heatmap.max() == 1.0 and heatmap.std() > 0  # a 8x8 map with structure, not a constant


def test_gradcam_of_nested_base_matches_the_hand_split_recipe():
    """Same map as splitting by hand: preprocess -> base up to the layer -> head, gradient of the logit."""
    base = tlh.load_base("mobilenet_v2", weights=None, image_size=96, alpha=0.35)
    model = tlh.build_classifier(base, 2, pooling="avg", hidden=16)
    image = rgb(96, seed=3)
    heatmap, k = tlh.gradcam(model, image, layer="out_relu", class_index=1)
    assert k == 1
    with tf.GradientTape() as tape:
        maps = base.model(base.preprocess(image[None]), training=False)  # out_relu is the base's output
        tape.watch(maps)
        h = model.get_layer("hidden")(model.get_layer("avg_pool")(maps))
        dense = model.get_layer("predictions")
        logit = (h @ dense.kernel + dense.bias)[0, 1]
    grads = tape.gradient(logit, maps)
    expected = manual_gradcam(maps.numpy()[0], grads.numpy()[0], 96)
    np.testing.assert_allclose(heatmap, expected, atol=1e-4)


@pytest.mark.parametrize("build", [small_functional, small_sequential])
def test_gradcam_on_plain_models(build):
    model = build()
    assert tlh.last_conv_layer(model) == "conv_b"
    for k in range(model.output_shape[-1]):
        heatmap, got = tlh.gradcam(model, rgb(), class_index=k)
        assert got == k
        assert_heatmap(heatmap, (32, 32))


def test_gradcam_on_a_single_sigmoid_unit_explains_both_classes():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x)))
    image = rgb(seed=2)
    p = float(model.predict(image[None], verbose=0)[0, 0])
    assert tlh.gradcam(model, image)[1] == int(p > 0.5)
    positive, _ = tlh.gradcam(model, image, class_index=1)
    negative, _ = tlh.gradcam(model, image, class_index=0)  # the evidence against: gradient of -logit
    assert_heatmap(positive, (32, 32))
    assert_heatmap(negative, (32, 32))
    assert tlh.spearman(positive, negative) < 0.5
    with pytest.raises(ValueError, match="out of range for a model with 2 classes"):
        tlh.gradcam(model, image, class_index=2)


def test_gradcam_uses_the_logit_not_the_saturated_softmax():
    model = small_functional()
    image = rgb(seed=1)
    reference, k = tlh.gradcam(model, image)
    dense = model.get_layer("predictions")
    dense.kernel.assign(dense.kernel * 1e4)  # softmax saturates: its gradient is zero in float32
    dense.bias.assign(dense.bias * 1e4)
    probs = model.predict(image[None], verbose=0)[0]
    assert probs.max() == 1.0
    heatmap, k2 = tlh.gradcam(model, image)
    assert k2 == k
    assert heatmap.max() == 1.0
    np.testing.assert_allclose(heatmap, reference, atol=1e-4)  # the logit only scaled: same map


def test_compiled_function_is_reused_and_model_still_saves(tmp_path):
    model = small_functional()
    tlh.gradcam(model, rgb())
    assert _gradcam_fn(model, "conv_b") is _gradcam_fn(model, "conv_b")
    path = tlh.save_model(model, tmp_path / "m.keras", class_names=["a", "b", "c"])
    loaded, meta = tlh.load_model(path)
    np.testing.assert_allclose(loaded.predict(rgb()[None], verbose=0), model.predict(rgb()[None], verbose=0), atol=1e-6)
    np.testing.assert_allclose(tlh.gradcam(loaded, rgb())[0], tlh.gradcam(model, rgb())[0], atol=1e-5)


# --------------------------------------------------------------------------- input handling and errors
def test_images_of_other_sizes_and_channels():
    model = small_functional()
    gray = rgb()[..., 0]
    expected, _ = tlh.gradcam(model, np.repeat(gray[..., None], 3, -1))
    np.testing.assert_allclose(tlh.gradcam(model, gray)[0], expected, atol=1e-6)
    np.testing.assert_allclose(tlh.gradcam(model, gray[..., None])[0], expected, atol=1e-6)
    rgba = np.concatenate([np.repeat(gray[..., None], 3, -1), np.full((32, 32, 1), 255.0)], axis=-1)
    np.testing.assert_allclose(tlh.gradcam(model, rgba)[0], expected, atol=1e-6)
    heatmap, _ = tlh.gradcam(model, rgb(64)[:, :50])  # resized to 32 px, map back at 64 x 50
    assert_heatmap(heatmap, (64, 50))
    assert tlh.saliency(model, rgb(64)).shape == (64, 64)


@pytest.mark.parametrize("shape", [(32, 32, 2), (32, 32, 5), (2, 32, 32, 3), (32,)])
def test_images_with_wrong_shape_are_rejected(shape):
    with pytest.raises(ValueError, match=r"expected one image of shape .*got shape"):
        tlh.gradcam(small_functional(), np.zeros(shape))


def test_unknown_layer_lists_the_convolutional_layers(tiny_base):
    model = tlh.build_classifier(tiny_base, 2)
    with pytest.raises(ValueError, match="'conv5' not in model") as err:
        tlh.gradcam(model, rgb(), layer="conv5")
    assert "Conv1" in str(err.value) and "Conv_1" in str(err.value) and "52 in all" in str(err.value)
    with pytest.raises(ValueError, match="'nope' not in model.*conv_a, conv_b"):
        tlh.activations(small_functional(), rgb(), "nope")


@pytest.mark.parametrize("layer", ["gap", "predictions"])
def test_gradcam_on_a_flat_layer_says_it_needs_a_feature_map(layer):
    with pytest.raises(ValueError, match=rf"needs a layer with a 4-D \(H, W, C\) output; '{layer}' outputs .* conv_a, conv_b"):
        tlh.gradcam(small_functional(), rgb(), layer=layer)


def test_class_index_out_of_range():
    with pytest.raises(ValueError, match="class_index 3 is out of range for a model with 3 classes"):
        tlh.gradcam(small_functional(), rgb(), class_index=3)


def test_a_base_is_not_a_classifier(tiny_base):
    with pytest.raises(TypeError, match="build_classifier"):
        tlh.gradcam(tiny_base, rgb())


def test_model_without_convolution():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="no convolutional layer"):
        tlh.gradcam(model, rgb(8))


# --------------------------------------------------------------------------- localisation on synthetic scenes
def _free(box, boxes, gap=2):
    y0, x0, y1, x1 = box
    return all(y1 + gap < b[0] or y0 > b[2] + gap or x1 + gap < b[1] or x0 > b[3] + gap for b in boxes)


def scene(rng, *, cross: bool):
    """A noisy grey scene with three bright distractors (hollow squares, discs) and maybe one bright cross.

    Returns (RGB image in [0, 255], the cross's bounding box (y0, x0, y1, x1) inclusive, or None).
    """
    img = rng.normal(40, 12, (SIZE, SIZE))
    boxes, target = [], None
    if cross:
        while target is None:
            n = int(rng.integers(9, 14))
            y0, x0 = (int(v) for v in rng.integers(1, SIZE - n - 1, size=2))
            if _free((y0, x0, y0 + n - 1, x0 + n - 1), boxes):
                target = (y0, x0, y0 + n - 1, x0 + n - 1)
        c, value = n // 2, rng.uniform(180, 255)
        img[y0 + c - 1:y0 + c + 2, x0:x0 + n] = value
        img[y0:y0 + n, x0 + c - 1:x0 + c + 2] = value
        boxes.append(target)
    for _ in range(3):
        for _ in range(100):
            n = int(rng.integers(7, 13))
            y0, x0 = (int(v) for v in rng.integers(1, SIZE - n - 1, size=2))
            if _free((y0, x0, y0 + n - 1, x0 + n - 1), boxes):
                break
        value = rng.uniform(180, 255)
        if rng.random() < 0.5:
            for inset in (1, 2):
                rr, cc = draw.rectangle_perimeter((y0 + inset, x0 + inset), end=(y0 + n - 1 - inset, x0 + n - 1 - inset),
                                                  shape=(SIZE, SIZE))
                img[rr, cc] = value
        else:
            rr, cc = draw.disk((y0 + n / 2, x0 + n / 2), n / 2, shape=(SIZE, SIZE))
            img[rr, cc] = value
        boxes.append((y0, x0, y0 + n - 1, x0 + n - 1))
    img = np.clip(img, 0, 255).astype("float32")
    return np.repeat(img[..., None], 3, axis=-1), target


def scenes(n, seed, *, positives_only=False):
    rng = np.random.default_rng(seed)
    pairs = [scene(rng, cross=positives_only or bool(i % 2)) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.array([int(p[1] is not None) for p in pairs]), [p[1] for p in pairs]


@pytest.fixture(scope="module")
def cross_detector():
    """A convnet nested in a classifier, trained here (~10 s) to say whether a scene holds a cross."""
    keras.utils.set_random_seed(0)
    x, y, _ = scenes(1200, seed=0)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(h)
    features = keras.Model(inputs, h, name="features")
    outer = keras.Input((SIZE, SIZE, 3))
    z = keras.layers.GlobalAveragePooling2D()(features(outer, training=False))
    model = keras.Model(outer, keras.layers.Dense(2, activation="softmax", name="predictions")(z), name="cross_detector")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=14, batch_size=32, verbose=0)  # 8 epochs sometimes leave discs as half-evidence
    return model


def test_gradcam_peak_falls_on_the_object(cross_detector):
    x_val, y_val, _ = scenes(200, seed=2)
    accuracy = float(np.mean(cross_detector.predict(x_val, verbose=0).argmax(-1) == y_val))
    assert accuracy >= 0.9, f"the cross detector did not learn (validation accuracy {accuracy:.2f})"
    assert tlh.last_conv_layer(cross_detector) == "conv3"
    images, _, boxes = scenes(100, seed=1, positives_only=True)
    hits = []
    for image, (y0, x0, y1, x1) in zip(images, boxes):
        heatmap, k = tlh.gradcam(cross_detector, image, class_index=1)
        py, px = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        hits.append(y0 <= py <= y1 and x0 <= px <= x1)
    assert np.mean(hits) >= 0.9, f"Grad-CAM peak on the cross in only {np.mean(hits):.0%} of the scenes"


def test_randomization_separates_trained_from_random_weights(cross_detector):
    images, _, _ = scenes(6, seed=3, positives_only=True)
    weights = [w.copy() for w in cross_detector.get_weights()]
    df = tlh.randomization_check(cross_detector, images, "gradcam", seed=0)
    assert list(df["randomized_to"]) == ["(trained)", "predictions", "conv3", "conv2", "conv1"]
    assert df["spearman"].iloc[0] == 1.0
    assert df["spearman"].iloc[-1] < 0.5, df
    assert df["spearman"].iloc[1:].max() < df["spearman"].iloc[0]
    assert df.attrs["passed"] and not df["flag"].iloc[-1]
    for before, after in zip(weights, cross_detector.get_weights()):  # the original is never touched
        np.testing.assert_array_equal(before, after)


def test_randomization_flags_a_map_that_ignores_the_model(cross_detector):
    """An edge detector 'explains' every model alike: the check must fail it (Adebayo et al., fig. 1)."""
    def edges(model, image, class_index):
        gy, gx = np.gradient(image.mean(-1))
        return np.hypot(gx, gy)

    images, _, _ = scenes(4, seed=4, positives_only=True)
    df = tlh.randomization_check(cross_detector, images, edges, seed=0)
    assert df["flag"].iloc[1:].all()
    assert not df.attrs["passed"]


# --------------------------------------------------------------------------- saliency
def test_saliency_and_smoothgrad(tiny_base):
    model = tlh.build_classifier(tiny_base, 2, augment=tlh.augmentation(seed=0))
    image = rgb(seed=5)
    s = tlh.saliency(model, image)
    assert_heatmap(s, (32, 32))
    assert s.max() == 1.0
    np.testing.assert_array_equal(tlh.smoothgrad(model, image, n=1, noise=0.0), s)
    sg = tlh.smoothgrad(model, image, n=8, noise=0.15, seed=0)
    assert_heatmap(sg, (32, 32))
    assert not np.allclose(sg, s)
    np.testing.assert_array_equal(sg, tlh.smoothgrad(model, image, n=8, noise=0.15, seed=0))  # seeded
    with pytest.raises(ValueError, match="n >= 1"):
        tlh.smoothgrad(model, image, n=0)


def test_saliency_is_the_input_gradient_of_the_logit():
    model = small_functional()
    image = rgb(seed=6)
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        pre = keras.Model(model.inputs, model.get_layer("gap").output)(x)
        dense = model.get_layer("predictions")
        logit = (pre @ dense.kernel + dense.bias)[0, 2]
    grad = np.abs(tape.gradient(logit, x).numpy()[0]).max(-1)
    np.testing.assert_allclose(tlh.saliency(model, image, class_index=2), grad / grad.max(), atol=1e-5)


# --------------------------------------------------------------------------- activations and sparsity
def test_activations_inside_a_nested_base(tiny_base):
    model = tlh.build_classifier(tiny_base, 2, augment=tlh.augmentation(seed=0))
    image = rgb(seed=7)
    a = tlh.activations(model, image, "block_1_expand_relu")
    assert a.shape == (16, 16, 48)
    assert a.min() >= 0 and a.max() <= 6  # ReLU6
    # the classifier preprocesses inside; a Base gets its own preprocess_input: same feature map
    np.testing.assert_allclose(tlh.activations(tiny_base, image, "block_1_expand_relu"), a, atol=1e-4)


def test_sparsity_by_depth_finds_a_dead_channel():
    model = small_sequential()
    conv = model.get_layer("conv_b")
    kernel, bias = conv.get_weights()
    kernel, bias = np.abs(kernel), np.full_like(bias, 0.01)  # inputs are ReLU outputs: every channel fires...
    kernel[..., 3], bias[3] = 0.0, -1.0  # ...except channel 3, which never can
    conv.set_weights([kernel, bias])
    images = np.stack([rgb(seed=s) for s in range(5)])
    df = tlh.sparsity_by_depth(model, images)
    assert list(df["layer"]) == ["conv_a", "conv_b"]
    assert df.loc[1, "dead_fraction"] == pytest.approx(1 / 8)
    assert df.loc[1, "sparsity"] >= 1 / 8
    a = np.stack([tlh.activations(model, im, "conv_a") for im in images])
    assert df.loc[0, "sparsity"] == pytest.approx(np.mean(a == 0))
    assert df.loc[0, "dead_fraction"] == pytest.approx(np.mean(a.max(axis=(0, 1, 2)) == 0))


def test_sparsity_by_depth_pairs_convolutions_with_the_relu_after_batchnorm(tiny_base):
    df = tlh.sparsity_by_depth(tiny_base, np.stack([rgb(seed=s) for s in range(3)]))
    pairs = dict(zip(df["layer"], df["measured"]))
    assert pairs["Conv1"] == "Conv1_relu"
    assert pairs["block_1_expand"] == "block_1_expand_relu"
    assert "block_1_project" not in pairs  # linear bottleneck: no ReLU to measure
    assert df["sparsity"].between(0, 1).all() and df["dead_fraction"].between(0, 1).all()
    with pytest.raises(ValueError, match="batch of images"):
        tlh.sparsity_by_depth(tiny_base, rgb())


# --------------------------------------------------------------------------- filter patterns
def test_filter_pattern_excites_its_filter():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_b")(x)  # linear: its output is what is maximised
    x = keras.layers.ReLU(name="relu_b")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    grey = 128.0 + np.random.default_rng(0).uniform(-16, 16, (32, 32, 3))
    for index in range(8):
        pattern = tlh.filter_pattern(model, "conv_b", index, size=32, steps=30, seed=0)
        assert pattern.shape == (32, 32, 3) and pattern.dtype == np.uint8
        before = tlh.activations(model, grey, "conv_b")[..., index].mean()
        after = tlh.activations(model, pattern, "conv_b")[..., index].mean()
        assert after > before + 0.01, (index, before, after)
    # through the ReLU layer the same pattern comes out: its response before the ReLU is maximised
    np.testing.assert_array_equal(tlh.filter_pattern(model, "relu_b", 7, size=32, steps=30, seed=0), pattern)
    with pytest.raises(ValueError, match="has 8 filters"):
        tlh.filter_pattern(model, "conv_b", 8)


def test_filter_pattern_of_a_base_at_another_size(tiny_base):
    pattern = tlh.filter_pattern(tiny_base, "block_3_expand", 2, size=64, steps=10)
    assert pattern.shape == (64, 64, 3) and pattern.std() > 0


# --------------------------------------------------------------------------- sanity-check helpers, plots, widget
def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 12))
    b = a + rng.normal(scale=0.7, size=a.shape)
    b[:3] = 0.0  # ties
    assert tlh.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert tlh.spearman(a, a) == pytest.approx(1.0)
    assert tlh.spearman(np.zeros(4), np.zeros(4)) == 1.0 and tlh.spearman(np.zeros(4), np.arange(4)) == 0.0


def test_plots_return_their_axes():
    image, heatmap = rgb(), np.linspace(0, 1, 64).reshape(8, 8)
    ax = tlh.plot_heatmap(image, heatmap)
    assert len(ax.images) == 2 and tuple(ax.images[1].get_extent()) == (-0.5, 31.5, 31.5, -0.5)
    ax = tlh.plot_activation_grid(np.random.default_rng(0).random((6, 6, 20)), n=9)
    assert ax.images[0].get_array().shape == (3 * 7 - 1, 3 * 7 - 1)
    df = pd.DataFrame({"layer": ["a", "b"], "dead_fraction": [0.0, 0.1], "sparsity": [0.4, 0.6]})
    assert len(tlh.plot_sparsity(df).lines) == 2
    axes = tlh.plot_filter_patterns(np.zeros((3, 16, 16, 3), "uint8"), ["a", "b", "c"])
    assert [a.get_title() for a in axes.flat] == ["a", "b", "c"]
    rdf = pd.DataFrame({"randomized_to": ["(trained)", "top"], "spearman": [1.0, 0.2],
                        "spearman_min": [1.0, 0.1], "spearman_max": [1.0, 0.3]})
    rdf.attrs.update(method="gradcam", threshold=0.5)
    ax = tlh.plot_randomization(rdf)
    assert ax.get_legend().get_texts()[0].get_text() == "gradcam"
    plt.close("all")


def test_explorer_redraws_for_the_chosen_layer_and_class(monkeypatch):
    pytest.importorskip("ipywidgets")
    calls = []
    real = explain.gradcam  # explorer (in viz) looks gradcam up in tlhelpers.explain when called
    monkeypatch.setattr(explain, "gradcam", lambda *a, **k: calls.append(k) or real(*a, **k))
    model = small_functional()
    panel = tlh.explorer(model, np.stack([rgb(seed=s) for s in range(2)]), class_names=["a", "b", "c"])
    (_, layer), (channel, cls) = panel.children[0].children, panel.children[1].children
    assert layer.value == "conv_b" and channel.max == 7
    assert calls == [{"layer": "conv_b", "class_index": None}]  # drawn once on creation
    layer.value, cls.value = "conv_a", 2
    assert calls[-1] == {"layer": "conv_a", "class_index": 2}
    plt.close("all")
