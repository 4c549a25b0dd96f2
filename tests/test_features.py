"""Feature extraction: the cache returns exactly what the base computes, and any change recomputes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tlhelpers.features as features
from tlhelpers.bases import load_base
from tlhelpers.features import extract_features
from tlhelpers.images import load_images, scan_folder

from conftest import write_image_folder


@pytest.fixture
def counted(monkeypatch):
    """Counts how often features are really computed (each call of _infer_fn is one computation)."""
    calls = []
    real = features._infer_fn

    def infer_fn(base):
        calls.append(base.image_size)
        return real(base)

    monkeypatch.setattr(features, "_infer_fn", infer_fn)
    return calls


@pytest.fixture
def folder(image_folder):
    return image_folder(per_class=3, size=20)


@pytest.fixture
def base():
    """VGG16 at 32 px, random weights: fast to trace, with features of a sensible scale."""
    return load_base("vgg16", weights=None, image_size=32)


def test_features_match_the_base_and_are_cached(folder, base, counted, monkeypatch, capsys):
    images = scan_folder(folder, verbose=False)
    x, y = extract_features(base, images, batch_size=4)
    assert x.shape == (6, 1, 1, 512) and x.dtype == np.float32
    np.testing.assert_array_equal(y, images.labels)
    direct = base.model.predict(base.preprocess(load_images(images.paths, image_size=32)), verbose=0)
    scale = np.abs(direct).max()
    assert scale > 0 and np.abs(direct - direct[:1]).max() > 1e-3 * scale  # not constant across images
    np.testing.assert_allclose(x, direct, rtol=1e-4, atol=1e-4 * scale)
    assert counted == [32]
    assert "computed" in capsys.readouterr().out

    def no_inference(base):
        raise AssertionError("features were computed again instead of read from the cache")

    monkeypatch.setattr(features, "_infer_fn", no_inference)
    x2, y2 = extract_features(base, images, batch_size=4)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    assert "read from cache" in capsys.readouterr().out


def test_cache_false_always_computes(folder, base, counted, isolated_env):
    images = scan_folder(folder, verbose=False)
    a, _ = extract_features(base, images, cache=False, verbose=False)
    b, _ = extract_features(base, images, cache=False, verbose=False)
    assert counted == [32, 32]
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not (isolated_env / "features").exists()


def test_a_new_file_is_a_miss(folder, base, counted):
    x, _ = extract_features(base, scan_folder(folder, verbose=False), verbose=False)
    write_image_folder(folder, per_class=4, size=20, seed=0)  # adds red_003 and blue_003
    more = scan_folder(folder, verbose=False)
    x2, y2 = extract_features(base, more, verbose=False)
    assert counted == [32, 32]
    assert len(x2) == len(more) == 8 and len(x) == 6
    np.testing.assert_array_equal(y2, more.labels)


def test_a_changed_file_is_a_miss(folder, base, counted):
    images = scan_folder(folder, verbose=False)
    extract_features(base, images, verbose=False)
    st = os.stat(images.paths[0])
    os.utime(images.paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file was edited
    extract_features(base, images, verbose=False)
    assert counted == [32, 32]


def test_another_image_size_is_a_miss(folder, base, counted):
    images = scan_folder(folder, verbose=False)
    x, _ = extract_features(base, images, verbose=False)
    bigger = load_base("vgg16", weights=None, image_size=64)
    bigger.model.set_weights(base.model.get_weights())  # same weights, only the size differs
    x2, _ = extract_features(bigger, images, verbose=False)
    assert counted == [32, 64]
    assert x.shape == (6, 1, 1, 512) and x2.shape == (6, 2, 2, 512)


def test_other_weights_are_a_miss(folder, base, counted):
    images = scan_folder(folder, verbose=False)
    x, _ = extract_features(base, images, verbose=False)
    kernel = base.model.get_layer("block5_conv3").kernel
    kernel.assign(kernel.numpy() * 2.0)  # e.g. after fine-tuning the top block
    x2, _ = extract_features(base, images, verbose=False)
    assert counted == [32, 32]
    np.testing.assert_allclose(x2, 2 * x, rtol=1e-4, atol=1e-4 * np.abs(x2).max())  # ReLU, zero bias, max-pool
    x3, _ = extract_features(base, images, verbose=False)  # unchanged again: a hit
    assert counted == [32, 32]
    np.testing.assert_array_equal(x2, x3)


def test_information_by_depth_tells_a_copy_of_the_photo_from_noise():
    """A 'layer' that is the photo itself gives the pixels back and, since the class sets the colour, the class;
    a layer of noise gives back neither."""
    from tlhelpers.features import information_by_depth

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 12)
    colour = rng.uniform(0, 1, (4, 3))[labels]  # each class has its own mean colour
    thumbs = (colour[:, None, None, :] + 0.3 * rng.normal(size=(48, 8, 8, 3))).astype("float32")
    maps = {"copy": thumbs, "noise": rng.normal(size=(48, 2, 2, 16)).astype("float32")}
    table = information_by_depth(maps, thumbs, labels, alpha=1e-3)
    assert list(table.index) == ["copy", "noise"] and table.loc["copy", "positions"] == "8×8"
    assert table.loc["copy", "pixels recovered (R²)"] > 0.95
    assert table.loc["noise", "pixels recovered (R²)"] < 0.2
    assert table.loc["copy", "class recovered"] >= 0.9
    assert table.loc["noise", "class recovered"] <= 0.5  # chance is 0.25
    with pytest.raises(ValueError, match="do not tile"):
        information_by_depth({"odd": thumbs[:, :3, :3]}, thumbs, labels)
