"""Chapter 5 on EfficientNet-Lite0: Grad-CAM's default layer, the nested-graph walk and the Base path work on it.

The networks are Lite0 at 64 px with random weights (no checkpoint needed), so each test runs in seconds.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers.bases import ImagePreprocess
from tlhelpers.efficientnet_lite import efficientnet_lite0, preprocess
from tlhelpers.explain.sanity import _weighted_layers

SIZE = 64


def photo(seed=0):
    """A smooth random picture: a few coloured blobs, so that feature maps vary over the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    img = np.full((SIZE, SIZE, 3), 60.0, "float32")
    for _ in range(4):
        cy, cx, r = rng.uniform(8, SIZE - 8, 2).tolist() + [rng.uniform(5, 14)]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return img


@pytest.fixture(scope="module")
def top_model():
    """Lite0 with its 1000-way top behind a preprocessing layer: how imagenet_classifier builds it."""
    keras.utils.set_random_seed(1)
    net = efficientnet_lite0(include_top=True, weights=None, input_shape=(SIZE, SIZE, 3))
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    return keras.Model(inputs, net(ImagePreprocess("efficientnet_lite0", name="preprocess")(inputs))), net


def test_gradcam_default_layer_is_lite0s_last_feature_map(top_model):
    model, _ = top_model
    base = tlh.load_base("efficientnet_lite0", weights=None, image_size=SIZE, verbose=False)
    transfer = tlh.build_classifier(base, 2, augment=tlh.augmentation(), pooling="avg")
    assert tlh.last_conv_layer(model) == "top_activation"
    assert tlh.last_conv_layer(transfer) == "top_activation"
    assert tlh.conv_layers(model)[0] == "stem_conv" and tlh.conv_layers(model)[-1] == "top_conv"
    for m in (model, transfer):
        heat, k = tlh.gradcam(m, photo())
        assert heat.shape == (SIZE, SIZE) and np.isfinite(heat).all() and 0 <= heat.min() <= heat.max() <= 1
        assert 0 <= k < m.output_shape[-1]


def test_nested_walk_gives_the_maps_of_the_plain_network(top_model):
    """Grad-CAM through the wrapper (raw pixels) equals Grad-CAM on the inner network (scaled pixels)."""
    model, net = top_model
    x = photo(2)
    k = int(np.argmax(model.predict(x[None], verbose=0)))
    nested, k_nested = tlh.gradcam(model, x, class_index=k)
    plain, k_plain = tlh.gradcam(net, preprocess(x), class_index=k)
    assert k_nested == k_plain == k
    assert nested.max() > 0, "the map is empty: the comparison would be vacuous"
    np.testing.assert_allclose(nested, plain, atol=1e-4)


def test_randomisation_reaches_every_lite0_kernel(top_model):
    """The cascade re-draws every convolution (depthwise included) and the top, and leaves the model alone."""
    model, _ = top_model
    weighted = [layer.name for layer in _weighted_layers(model)]
    assert weighted == tlh.conv_layers(model) + ["predictions"]
    before = [w.copy() for w in model.get_weights()]
    table = tlh.randomization_check(model, [photo(3)], "gradcam", max_steps=3)
    assert list(table["randomized_to"])[-1] == "stem_conv"
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_activations_of_a_lite0_base_match_its_classifier():
    """A Base brings Lite0's own input scaling, so its maps equal those inside a classifier built on it."""
    base = tlh.load_base("efficientnet_lite0", weights=None, image_size=SIZE, verbose=False)
    model = tlh.build_classifier(base, 2, pooling="avg")
    x = photo(4)
    a_base = tlh.activations(base, x, "block2a_expand_conv")
    a_model = tlh.activations(model, x, "block2a_expand_conv")
    assert a_base.shape == (SIZE // 2, SIZE // 2, 96)
    np.testing.assert_allclose(a_base, a_model, rtol=1e-4, atol=1e-4)
    assert np.ptp(a_base) > 0
