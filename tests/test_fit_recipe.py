"""The practitioner's recipe through `fit_strategy` and `tlh fit`: each part reaches training, and bad values stop early.

Tiny synthetic folders and a random-weight VGG16 at 32 px (19 layers: quick to trace); what is checked is that the
options arrive (the loss, the learning-rate schedule, the class weights, the dtype policy), not accuracy.
"""

from __future__ import annotations

import keras
import pytest

import tlhelpers as tlh
from tlhelpers import strategies
from tlhelpers.cli import main
from tlhelpers.images import scan_folder
from tlhelpers.recipe import SmoothedSparseCrossentropy, WarmupCosine
from tlhelpers.saving import load_model

from conftest import one_error_line


@pytest.fixture
def lopsided(image_folder):
    """Six red images and two blue: balanced weights would be 2/3 and 2."""
    return image_folder(per_class={"red": 6, "blue": 2}, size=32)


def spy_on(monkeypatch, name):
    """Record the keyword arguments of every call to strategies.<name>, then make the real call."""
    real, calls = getattr(strategies, name), []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(strategies, name, spy)
    return calls


def test_every_recipe_option_reaches_both_phases(lopsided, monkeypatch):
    images = scan_folder(lopsided, verbose=False)
    calls = spy_on(monkeypatch, "two_phase")
    model, history, base = tlh.fit_strategy(
        "two-phase", images, images, arch="vgg16", weights=None, image_size=32, epochs=(1, 2), batch_size=4,
        verbose=0, schedule="warmup_cosine", label_smoothing=0.1, early_stopping=1, class_weight="auto")
    kwargs = calls[0]
    assert kwargs["schedule"] == "warmup_cosine" and kwargs["label_smoothing"] == 0.1 and kwargs["early_stopping"] == 1
    assert kwargs["class_weight"] == pytest.approx({0: 2.0, 1: 2 / 3})  # blue is class 0, the rare one
    assert isinstance(model.loss, SmoothedSparseCrossentropy) and model.loss.smoothing == 0.1
    assert isinstance(model.optimizer._learning_rate, WarmupCosine)  # phase 2's optimizer, its own schedule
    assert history["phase_boundary"] == 1 and 2 <= len(history["loss"]) <= 3  # early stopping may end phase 2


def test_without_options_the_recipe_stays_off(image_folder, monkeypatch):
    images = scan_folder(image_folder(per_class=3, size=32), verbose=False)
    calls = spy_on(monkeypatch, "fit")
    model, history, base = tlh.fit_strategy("scratch", images, images, arch="vgg16", weights=None, image_size=32,
                                            epochs=1, batch_size=4, verbose=0, augment=False, class_weight="auto")
    assert calls[0]["class_weight"] is None  # balanced classes: no weights even when asked for "auto"
    assert not {"schedule", "label_smoothing", "early_stopping"} & set(calls[0])
    assert model.loss == "sparse_categorical_crossentropy"
    assert not [layer for layer in model.layers if "random" in type(layer).__name__.lower()
                or layer.name.startswith("augment")]


def test_mixed_precision_builds_the_model_in_it_and_restores_float32(image_folder):
    images = scan_folder(image_folder(per_class=3, size=32), verbose=False)
    model, _, base = tlh.fit_strategy("features", images, images, arch="vgg16", weights=None, image_size=32,
                                      epochs=1, batch_size=4, verbose=0, precision="mixed_bfloat16")
    assert base.model.layers[1].compute_dtype == "bfloat16" and base.model.layers[1].variable_dtype == "float32"
    softmax = next(layer for layer in model._flatten_layers() if layer.name == "predictions")
    assert softmax.compute_dtype == "float32"  # the head's softmax keeps float32
    assert model.predict(tlh.load_images(images.paths[:2], image_size=32), verbose=0).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("options, error, message", [
    ({"label_smoothin": 0.1}, TypeError, "unexpected option.*label_smoothin.*label_smoothing"),
    ({"class_weight": "balanced"}, ValueError, "class_weight must be a dict, 'auto' or None"),
    ({"precision": "float8"}, ValueError, "one of auto, mixed_bfloat16, mixed_float16, float32"),
])
def test_bad_recipe_options_are_refused(image_folder, options, error, message):
    images = scan_folder(image_folder(per_class=2, size=16), verbose=False)
    with pytest.raises(error, match=message):
        tlh.fit_strategy("features", images, images, arch="vgg16", weights=None, image_size=32, epochs=1,
                         verbose=0, **options)


def fit_command(root, out, *extra):
    return ["fit", str(root), "--strategy", "two-phase", "--base", "vgg16", "--weights", "none", "--image-size", "32",
            "--epochs", "2", "--batch-size", "4", "--out", str(out), *extra]


def test_tlh_fit_takes_the_recipe_and_saves_it_with_the_model(lopsided, tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main(fit_command(lopsided, out, "--schedule", "warmup-cosine", "--label-smoothing", "0.1", "--patience",
                            "2", "--class-weights", "auto", "--no-augment", "--val-fraction", "0.5")) == 0
    model, meta = load_model(out)
    assert meta["recipe"] == {"augment": False, "schedule": "warmup-cosine", "label_smoothing": 0.1, "patience": 2,
                              "class_weights": "auto", "precision": "float32"}
    assert isinstance(model.loss, SmoothedSparseCrossentropy)  # the saved model reloads with its loss


@pytest.mark.parametrize("extra, message", [
    (["--label-smoothing", "1.5"], "--label-smoothing must be at least 0 and below 1"),
    (["--label-smoothing", "nan"], "--label-smoothing must be at least 0 and below 1"),
    (["--patience", "-1"], "--patience must be 0 (no early stopping) or a number of epochs"),
])
def test_tlh_fit_refuses_bad_recipe_values_in_one_line(image_folder, tmp_path, capsys, extra, message):
    assert main(fit_command(image_folder(per_class=2, size=16), tmp_path / "m.keras", *extra)) == 2
    assert message in one_error_line(capsys)
