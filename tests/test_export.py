"""Exporting a classifier: SavedModel and TFLite round trips give the .keras model's predictions; bad input or a
failure half-way leaves nothing behind; `tlh export`'s pieces (cli_recipe) and predicting with an export."""

from __future__ import annotations

import argparse
import errno
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from tlhelpers import export as ex
from tlhelpers.bases import ImagePreprocess
from tlhelpers.builders import augmentation
from tlhelpers.cli_recipe import (
    add_export_command,
    add_tta_argument,
    is_export,
    load_predictor,
    run_export,
    tta_views,
)
from tlhelpers.images import load_images
from tlhelpers.saving import save_model
from tlhelpers.tta import predict_tta

from conftest import image_files

CLASSES = ["blue", "red"]
SIZE = 32


def tiny_classifier() -> keras.Model:
    """Raw images -> augmentation -> MobileNetV2's preprocess_input -> a small convnet -> softmax."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = augmentation(seed=0)(inputs)
    x = ImagePreprocess("mobilenet_v2", name="preprocess")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(x))


@pytest.fixture
def keras_file(tmp_path) -> Path:
    model = tiny_classifier()
    model.layers[-1].set_weights([np.random.default_rng(0).normal(0, 3, (8, 2)), np.zeros(2)])  # confident outputs
    return save_model(model, tmp_path / "models" / "tiny.keras", class_names=CLASSES)


def real_images(image_folder) -> np.ndarray:
    return load_images(image_files(image_folder(per_class=3, size=40)), image_size=SIZE)


def listing(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt,tolerance", [("savedmodel", 1e-4), ("tflite", 1e-3)])
def test_round_trip_gives_the_keras_predictions(keras_file, image_folder, fmt, tolerance):
    images = real_images(image_folder)
    info = ex.export_model(keras_file, format=fmt, check_images=images)
    out = Path(info["path"])
    expected = keras_file.with_suffix(".tflite") if fmt == "tflite" else keras_file.parent / "tiny_savedmodel"
    assert out == expected and info["max_abs_diff"] <= info["tolerance"] == tolerance
    assert listing(keras_file.parent) == sorted(["tiny.keras", out.name] + ([out.name + ".json"] if fmt == "tflite"
                                                                           else []))  # no temporary left
    predict_fn, classes = ex.load_for_prediction(out)
    assert classes == CLASSES and predict_fn.image_size == SIZE
    model = keras.saving.load_model(keras_file)
    want = model.predict(images, verbose=0)
    np.testing.assert_allclose(predict_fn(images), want, atol=tolerance)
    np.testing.assert_allclose(predict_fn(images[:1]), want[:1], atol=tolerance)   # one image, then a batch again
    np.testing.assert_allclose(predict_tta(predict_fn, images, views=("identity", "flip")),
                               predict_tta(model, images, views=("identity", "flip")), atol=tolerance)


def test_exported_savedmodel_is_plain_tensorflow(keras_file, tmp_path):
    import tensorflow as tf

    ex.export_model(keras_file, tmp_path / "sm")
    meta = json.loads((tmp_path / "sm" / ex.META).read_text())
    assert meta["class_names"] == CLASSES and meta["image_size"] == SIZE and is_export(tmp_path / "sm")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    x = np.full((2, SIZE, SIZE, 3), 128.0, "float32")
    probs = loaded.signatures["serving_default"](images=tf.constant(x))
    assert np.asarray(next(iter(probs.values()))).shape == (2, 2)
    assert oct((tmp_path / "sm").stat().st_mode & 0o777) != oct(0o700)  # not left private like a temp folder


def test_a_model_object_needs_out_and_a_model_on_images(tmp_path):
    with pytest.raises(ValueError, match="pass `out`"):
        ex.export_model(tiny_classifier())
    inputs = keras.Input((10,))
    head = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="square RGB images"):
        ex.export_model(head, tmp_path / "head")
    assert listing(tmp_path) == []


def test_bad_inputs_leave_nothing(keras_file, tmp_path):
    before = listing(keras_file.parent)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ex.export_model(tmp_path / "missing.keras", tmp_path / "x")
    with pytest.raises(ValueError, match="is the input model"):
        ex.export_model(keras_file, keras_file, overwrite=True)
    with pytest.raises(ValueError, match="ending in .tflite"):
        ex.export_model(keras_file, tmp_path / "x.bin", format="tflite")
    with pytest.raises(ValueError, match="format"):
        ex.export_model(keras_file, tmp_path / "x", format="onnx")
    with pytest.raises(ValueError, match=r"check_images.*\(N, 32, 32, 3\)"):
        ex.export_model(keras_file, tmp_path / "x", check_images=np.zeros((2, 16, 16, 3)))
    with pytest.raises(FileNotFoundError, match="create it"):
        ex.export_model(keras_file, tmp_path / "no" / "such" / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="exists already"):
        ex.export_model(keras_file, tmp_path / "taken")
    assert listing(keras_file.parent) == before and sorted(listing(tmp_path)) == ["models", "taken"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_for_real(keras_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ex.ExportError, match="read-only"):
            ex.export_model(keras_file, locked / "sm")
        assert listing(locked) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"), (errno.EACCES, "read-only"),
                                        (errno.ENOSPC, "no space left")])
def test_write_failure_half_way_leaves_nothing(keras_file, tmp_path, monkeypatch, code, words):
    def half_written(model, folder, size):
        Path(folder).mkdir(exist_ok=True)
        (Path(folder) / "saved_model.pb").write_bytes(b"partial")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(ex, "_write_savedmodel", half_written)
    for fmt, out in (("savedmodel", tmp_path / "sm"), ("tflite", tmp_path / "m.tflite")):
        with pytest.raises(ex.ExportError, match=words) as info:
            ex.export_model(keras_file, out, format=fmt)
        assert "\n" not in str(info.value)
    assert listing(tmp_path) == ["models"]


def test_unconvertible_model_and_disagreement_are_one_line(keras_file, tmp_path, monkeypatch):
    import tensorflow as tf

    class Refusing:
        def convert(self):
            raise RuntimeError("error: 'tf.ImageProjectiveTransformV3' op is neither a custom op nor a flex op\n...")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", lambda path: Refusing())
    with pytest.raises(ex.ExportError, match="ImageProjectiveTransformV3.*--format savedmodel"):
        ex.export_model(keras_file, tmp_path / "m.tflite", format="tflite")
    monkeypatch.setitem(ex.TOLERANCE, "savedmodel", -1.0)
    with pytest.raises(ex.ExportError, match="disagrees with the Keras model"):
        ex.export_model(keras_file, tmp_path / "sm")
    assert listing(tmp_path) == ["models"]


def test_overwrite_replaces_a_previous_export(keras_file, tmp_path):
    out = tmp_path / "sm"
    ex.export_model(keras_file, out)
    (out / "stale").write_text("old")
    ex.export_model(keras_file, out, overwrite=True)
    assert not (out / "stale").exists() and (out / ex.META).is_file()
    assert listing(tmp_path) == ["models", "sm"]


def test_cli_export_and_predictor(keras_file, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_export_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(keras_file), "--format", "tflite", "--out", str(tmp_path / "t.tflite")])
    assert run_export(args) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "t.tflite (tflite, 32 px, 2 classes)" in line
    assert is_export(tmp_path / "t.tflite") and not is_export(keras_file) and not is_export(tmp_path)
    for path in (tmp_path / "t.tflite", keras_file):
        model, classes = load_predictor(path)
        assert classes == CLASSES and model(np.zeros((1, SIZE, SIZE, 3))).shape == (1, 2)
    with pytest.raises(ValueError, match="not a `tlh export` SavedModel"):
        load_predictor(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictor(tmp_path / "gone.tflite")
    with pytest.raises(ValueError, match="not a .keras file"):
        run_export(parser.parse_args(["export", str(tmp_path / "t.tflite")]))


def test_tta_arguments():
    parser = argparse.ArgumentParser()
    add_tta_argument(parser)
    assert tta_views(parser.parse_args([])) is None
    assert tta_views(parser.parse_args(["--tta"])) == ("identity", "flip")
    assert tta_views(parser.parse_args(["--tta-views", "identity, crop"])) == ("identity", "crop")
    with pytest.raises(ValueError, match="--tta-views"):
        tta_views(parser.parse_args(["--tta-views", "rotate"]))


def test_tlh_exports_and_predicts_with_the_export_and_tta(keras_file, image_folder, tmp_path, capsys):
    """Through `tlh` itself: export, predict with the export (same answers as the .keras), evaluate with --tta."""
    from tlhelpers import cli

    folder = image_folder(per_class=3, size=40)
    photos = [str(p) for p in image_files(folder)[:4]]
    assert cli.main(["export", str(keras_file), "--format", "savedmodel", "--out", str(tmp_path / "sm")]) == 0
    capsys.readouterr()
    assert cli.main(["predict", str(keras_file), *photos, "--json"]) == 0
    from_keras = json.loads(capsys.readouterr().out)["predictions"]
    assert cli.main(["predict", str(tmp_path / "sm"), *photos, "--json"]) == 0
    from_export = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["class"] for r in from_export] == [r["class"] for r in from_keras]
    assert np.allclose([r["probability"] for r in from_export], [r["probability"] for r in from_keras], atol=1e-4)
    assert cli.main(["predict", str(keras_file), *photos, "--json", "--tta"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == len(photos)
    assert cli.main(["evaluate", str(keras_file), str(folder), "--json", "--tta"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tta"] == ["identity", "flip"] and 0 <= report["accuracy"] <= 1
