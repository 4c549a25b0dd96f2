"""The practitioner's recipe through `fit_strategy` and `tlh fit`: each part reaches training, and bad values stop early.

Tiny synthetic folders and a random-weight VGG16 at 32 px (19 layers: quick to trace); what is checked is that the
options arrive (the loss, the learning-rate schedule, the class weights, the dtype policy), not accuracy.
"""

from __future__ import annotations

import keras
import numpy as np
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


def test_cached_head_trains_on_features_then_fine_tunes_the_full_model_from_its_weights(image_folder, monkeypatch):
    from tlhelpers import train as train_module

    images = scan_folder(image_folder(per_class=3, size=32), verbose=False)
    heads, copied = [], []
    real_fit, real_fine_tune = strategies.fit, train_module.fine_tune

    def fit_spy(model, data, *args, **kwargs):
        heads.append((model, data))
        return real_fit(model, data, *args, **kwargs)

    def fine_tune_spy(model, *args, **kwargs):  # at the start of phase 2: the head's weights are in the model
        head = heads[0][0]
        copied.extend(np.array_equal(a, b) for layer in head.layers if layer.weights
                      for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()))
        return real_fine_tune(model, *args, **kwargs)

    monkeypatch.setattr(strategies, "fit", fit_spy)
    monkeypatch.setattr(train_module, "fine_tune", fine_tune_spy)
    model, history, base = tlh.fit_strategy("two-phase", images, images, arch="vgg16", weights=None, image_size=32,
                                            epochs=(2, 1), batch_size=4, verbose=0, cached_head=True)
    head, data = heads[0]
    assert isinstance(data, tuple) and data[0].shape == (6, 1, 1, 512)  # VGG16's features at 32 px, not images
    assert head.name == "head" and len(heads) == 1  # phase 2 goes through fine_tune, on images
    assert copied and all(copied)  # hidden and predictions: kernels and biases
    assert history["phase_boundary"] == 2 and len(history["loss"]) == 3
    assert model.input_shape == (None, 32, 32, 3)  # the saved model still takes raw images


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


def parsed_fit(root, *flags):
    """`tlh fit ROOT --out m.keras FLAGS` parsed and checked as the command does, defaults filled in; no training."""
    from tlhelpers.cli import _parser
    from tlhelpers.cli_checks import check_fit

    args = _parser().parse_args(["fit", str(root), "--out", str(root.parent / "m.keras"), *flags])
    check_fit(args)
    return args


def test_tlh_fit_defaults_are_the_whole_recipe(image_folder):
    from tlhelpers.cli import fit_options

    args = parsed_fit(image_folder(per_class=2, size=16))
    assert (args.image_size, args.epochs, args.unfreeze) == (224, (20, 6), 6)  # Lite0's native size, its last stage
    assert fit_options(args) == {
        "arch": "efficientnet_lite0", "weights": "imagenet", "image_size": 224, "epochs": (20, 6), "batch_size": 32,
        "allow_fallback": False, "unfreeze": 6, "distribute": "auto", "augment": True, "schedule": "warmup_cosine",
        "label_smoothing": 0.1, "early_stopping": 3, "class_weight": "auto", "precision": "float32",
        "cached_head": True, "phase2": ("adam", 1e-4)}


@pytest.mark.parametrize("flags, expected", [
    (["--base", "inception_v3"], {"image_size": 299, "unfreeze": 2}),
    (["--base", "vgg16", "--image-size", "64"], {"image_size": 64, "unfreeze": 2}),
    (["--weights", "offline"], {"image_size": 96, "unfreeze": None}),  # the source model keeps finetune_recipe's
    (["--strategy", "features"], {"epochs": 20, "unfreeze": None}),
    (["--head-on", "images"], {"epochs": (5, 6)}),
    (["--epochs", "8,2"], {"epochs": (8, 2)}),
])
def test_tlh_fit_fills_in_each_default_for_the_base_and_strategy(image_folder, flags, expected):
    args = parsed_fit(image_folder(per_class=2, size=16), *flags)
    assert {k: getattr(args, k) for k in expected} == expected


def test_every_part_of_the_recipe_turns_off(image_folder):
    from tlhelpers.cli import fit_options

    args = parsed_fit(image_folder(per_class=2, size=16), "--no-augment", "--head-on", "images", "--fine-tune",
                      "sgd:1e-4", "--schedule", "constant", "--label-smoothing", "0", "--patience", "0",
                      "--class-weights", "none")
    options = fit_options(args)
    assert {k: options[k] for k in ("augment", "schedule", "label_smoothing", "early_stopping", "class_weight",
                                    "cached_head", "phase2")} == {
        "augment": False, "schedule": None, "label_smoothing": 0.0, "early_stopping": None, "class_weight": None,
        "cached_head": False, "phase2": ("sgd", 1e-4)}


def test_tlh_fit_takes_the_recipe_and_saves_it_with_the_model(lopsided, tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main(fit_command(lopsided, out, "--schedule", "warmup-cosine", "--label-smoothing", "0.1", "--patience",
                            "2", "--class-weights", "auto", "--no-augment", "--val-fraction", "0.5")) == 0
    model, meta = load_model(out)
    assert meta["recipe"] == {"augment": False, "head_on": "features", "fine_tune": ["adam", 1e-4],
                              "schedule": "warmup-cosine", "label_smoothing": 0.1, "patience": 2,
                              "class_weights": "auto", "precision": "float32", "epochs": 2, "unfreeze": 2,
                              "image_size": 32}
    assert isinstance(model.loss, SmoothedSparseCrossentropy)  # the saved model reloads with its loss


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "20,0"], "--epochs HEAD,FINE_TUNE must be two positive numbers"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be at least 0 and below 1"),
    (["--label-smoothing", "nan"], "--label-smoothing must be at least 0 and below 1"),
    (["--patience", "-1"], "--patience must be 0 (no early stopping) or a number of epochs"),
])
def test_tlh_fit_refuses_bad_recipe_values_in_one_line(image_folder, tmp_path, capsys, extra, message):
    assert main(fit_command(image_folder(per_class=2, size=16), tmp_path / "m.keras", *extra)) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "ten"], "argument --epochs: expected a positive number of epochs or HEAD,FINE_TUNE (e.g. 20,6)"),
    (["--epochs", "1,2,3"], "argument --epochs: expected a positive number of epochs or HEAD,FINE_TUNE"),
    (["--fine-tune", "adamw:1e-4"], "argument --fine-tune: expected OPTIMIZER:LR with adam, sgd or rmsprop"),
    (["--fine-tune", "adam"], "argument --fine-tune: expected OPTIMIZER:LR"),
])
def test_tlh_fit_refuses_malformed_epochs_and_optimizers_in_one_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as stop:
        main(fit_command(tmp_path, tmp_path / "m.keras", *extra))
    assert stop.value.code == 2 and message in one_error_line(capsys)
