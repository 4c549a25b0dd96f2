"""`tlh` misused as a newcomer would: no file of theirs lost, no traceback, each refusal names the problem and the fix.

Every case here fails (or succeeds) before any training: each runs in a second or two.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import struct
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

from tlhelpers import cli
from tlhelpers.cli import main
from tlhelpers.saving import save_model

from conftest import image_files, one_error_line, save_pets_model, write_image_folder


@pytest.fixture
def pets(tmp_path):
    return save_pets_model(tmp_path / "pets.keras")


@pytest.fixture
def photo(tmp_path):
    """A holiday photo the user cares about."""
    path = tmp_path / "holiday.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype="uint8")).save(path)
    return path


def fit_args(data_dir, out, *extra):
    return ["fit", str(data_dir), "--base", "mobilenet_v2", "--weights", "none", "--image-size", "32",
            "--epochs", "2", "--batch-size", "4", "--out", str(out), *extra]


def refused(capsys, args, *words, code=2) -> str:
    """Run `tlh args`; assert it ended with `code`, one stderr line holding every word, and no training."""
    assert main([str(a) for a in args]) == code
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlh: error: "), err
    assert "Traceback" not in err and "epoch" not in out
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def usage_error(capsys, args) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    return one_error_line(capsys)


# --------------------------------------------------------------------------- no photo is ever destroyed
def test_explain_out_that_is_the_photo_is_refused_and_the_photo_kept(pets, photo, capsys):
    before = photo.read_bytes()
    line = refused(capsys, ["explain", pets, photo, "--out", photo], "--out", "is the IMAGE being explained",
                   "would destroy it", "holiday-explained.png")
    assert str(photo) in line
    assert photo.read_bytes() == before and sorted(p.name for p in photo.parent.iterdir()) == ["holiday.png",
                                                                                               "pets.keras"]


@pytest.mark.parametrize("link", ["symlink", "hardlink", "dotted"])
def test_explain_out_reaching_the_photo_another_way_is_refused(link, pets, photo, tmp_path, capsys):
    before = photo.read_bytes()
    if link == "symlink":
        out = tmp_path / "why.png"
        out.symlink_to(photo)
    elif link == "hardlink":
        out = tmp_path / "why.png"
        os.link(photo, out)
    else:
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / "holiday.png"
    refused(capsys, ["explain", pets, photo, "--out", out], "is the IMAGE being explained")
    assert photo.read_bytes() == before


def test_explain_out_that_is_the_model_is_refused(pets, photo, tmp_path, capsys):
    model_png = tmp_path / "model.png"  # a model saved under an odd name is still the user's model
    shutil.copy(pets, model_png)
    before = model_png.read_bytes()
    refused(capsys, ["explain", model_png, photo, "--out", model_png], "is the MODEL file")
    assert model_png.read_bytes() == before


def test_explain_existing_out_is_untouched_when_explaining_fails(pets, photo, tmp_path, capsys):
    out = tmp_path / "why.png"
    out.write_bytes(b"an older figure")
    refused(capsys, ["explain", pets, photo, "--out", out, "--class", "fox"], "does not know class 'fox'")
    assert out.read_bytes() == b"an older figure" and not list(tmp_path.glob(".why-*"))


@pytest.mark.parametrize("where", ["red", "models"])
def test_fit_out_inside_a_class_folder_is_refused(where, image_folder, capsys):
    root = image_folder(per_class=3, size=16)
    out = root / where / "model.keras"  # in a class, or in a new folder that would become one
    refused(capsys, fit_args(root, out), "--out", "is inside a subfolder of DATA_DIR", "every subfolder is a class")
    assert not out.exists() and not (root / "models").exists()


def test_fit_out_beside_the_class_folders_is_allowed(image_folder):
    import argparse

    from tlhelpers.cli_checks import check_fit

    root = image_folder(per_class=3, size=16)
    args = argparse.Namespace(**{k.lstrip("-").replace("-", "_"): v for k, v in zip(
        ["data_dir", "--base", "--weights", "--image-size", "--epochs", "--batch-size", "--out", "--strategy",
         "--unfreeze", "--seed", "--val-fraction"],
        [root, "mobilenet_v2", "none", 32, 2, 4, root / "model.keras", "two-phase", None, 0, 0.2])})
    check_fit(args)  # `cd photos && tlh fit . --out model.keras`: the scan reads class folders only


def test_fit_out_that_is_the_weights_file_is_refused(image_folder, tmp_path, capsys):
    root = image_folder(per_class=3, size=16)
    weights = tmp_path / "start.keras"
    weights.write_bytes(b"my only copy of these weights")
    args = fit_args(root, weights)
    args[args.index("--weights") + 1] = str(weights)
    refused(capsys, args, "is the --weights file")
    assert weights.read_bytes() == b"my only copy of these weights"


# --------------------------------------------------------------------------- options named, exit 2, before any work
@pytest.mark.parametrize("value", ["0", "-4"])
def test_evaluate_bad_batch_size_names_the_option(value, pets, image_folder, capsys):
    root = image_folder(classes=("cat", "dog"), per_class=1, size=16)
    refused(capsys, ["evaluate", pets, root, "--batch-size", value], f"--batch-size must be at least 1, got {value}")


@pytest.mark.parametrize("flag, value, words", [
    ("--seed", "-1", ["--seed must be between 0 and 4294967295, got -1"]),
    ("--seed", str(2**32), ["--seed must be between 0 and 4294967295"]),
    ("--val-fraction", "0", ["--val-fraction must be between 0 and 1"]),
    ("--val-fraction", "1", ["--val-fraction must be between 0 and 1"]),
    ("--val-fraction", "nan", ["--val-fraction must be between 0 and 1", "nan"]),
    ("--val-fraction", "-0.5", ["--val-fraction must be between 0 and 1"]),
    ("--batch-size", "1000000", ["--batch-size must be at most 65536"]),
    ("--image-size", "-3", ["--image-size must be between 32 and 1024"]),
    ("--epochs", "-5", ["--epochs must be at least 2"]),
])
def test_fit_bad_option_names_the_option(flag, value, words, image_folder, tmp_path, capsys):
    root = image_folder(per_class=3, size=16)
    out = tmp_path / "m.keras"
    refused(capsys, [*fit_args(root, out), flag, value], *words)
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--seed", "one"), ("--batch-size", "2.5"), ("--val-fraction", "lots")])
def test_fit_option_of_the_wrong_kind_is_a_usage_error(flag, value, tmp_path, capsys):
    line = usage_error(capsys, fit_args(tmp_path, tmp_path / "m.keras", flag, value))
    assert flag in line and "(see `tlh fit --help`)" in line


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["--version-of-nothing"]])
def test_top_level_usage_error_points_at_tlh_help(args, capsys):
    line = usage_error(capsys, args)
    assert line.endswith("(see `tlh --help`)") and "tlh tlh" not in line


def test_fit_on_a_file_says_it_is_a_file(tmp_path, capsys):
    notes = tmp_path / "photos.zip"
    notes.write_bytes(b"PK not unpacked yet")
    refused(capsys, fit_args(notes, tmp_path / "m.keras"), "is a file, not a folder", "one subfolder per class")


def test_evaluate_on_a_file_says_it_is_a_file(pets, photo, capsys):
    refused(capsys, ["evaluate", pets, photo], "is a file, not a folder")


def test_model_that_is_a_folder_is_named(tmp_path, photo, capsys):
    (tmp_path / "model.keras").mkdir()
    refused(capsys, ["predict", tmp_path / "model.keras", photo], "is a folder", "the .keras file")


# --------------------------------------------------------------------------- folders that are not what they look like
def test_fit_on_a_dataset_root_with_splits_names_the_folder_to_pass(tmp_path, capsys):
    root = tmp_path / "cats_and_dogs_filtered"
    write_image_folder(root / "train", classes=("cats", "dogs"), per_class=3, size=16)
    write_image_folder(root / "validation", classes=("cats", "dogs"), per_class=2, size=16)
    out = tmp_path / "m.keras"
    refused(capsys, fit_args(root, out), "holds splits (train, validation), not classes", str(root / "train"))
    assert not out.exists()


def test_fit_with_classes_named_like_splits_but_holding_images_is_not_refused_as_splits(tmp_path, capsys):
    root = write_image_folder(tmp_path / "odd", classes=("train", "test"), per_class=1, size=16)
    line = refused(capsys, fit_args(root, tmp_path / "m.keras"), "too few images")
    assert "splits" not in line


def test_too_few_images_because_of_the_validation_fraction_suggests_one(image_folder, tmp_path, capsys):
    root = image_folder(classes=("red", "blue", "green"), per_class=2, size=16)
    line = refused(capsys, fit_args(root, tmp_path / "m.keras"), "too few images", "--val-fraction 0.2",
                   "raise --val-fraction to at least 0.25")
    assert "duplicate" not in line


def test_too_few_images_because_of_duplicates_says_so(tmp_path, capsys):
    root = tmp_path / "same"
    for cls in ("red", "blue"):
        (root / cls).mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (16, 16), (200, 10 * i, 0)).save(root / "red" / f"{i}.png")
        Image.new("RGB", (16, 16), (0, 0, 200)).save(root / "blue" / f"{i}.png")  # four copies of one picture
    refused(capsys, fit_args(root, tmp_path / "m.keras"), "class blue has 1 distinct image(s)",
            "3 byte-identical duplicate(s) were removed")


def test_val_fraction_that_leaves_no_training_image_says_so(image_folder, tmp_path, capsys):
    root = image_folder(per_class=2, size=16)
    refused(capsys, fit_args(root, tmp_path / "m.keras", "--val-fraction", "0.99"), "no training image",
            "lower --val-fraction")


@pytest.mark.parametrize("target", ["itself", "parent"])
def test_class_folder_linking_back_to_the_data_is_refused(target, image_folder, tmp_path, capsys):
    root = image_folder(per_class=3, size=16)
    (root / "everything").symlink_to(root if target == "itself" else tmp_path, target_is_directory=True)
    refused(capsys, fit_args(root, tmp_path / "m.keras"), "class folder 'everything'", "is a link to",
            "remove the link")


# --------------------------------------------------------------------------- predict and explain name each file
def huge_png(path, side=30000):
    """A PNG that claims side x side pixels in a few dozen bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "album").mkdir()
    huge_png(tmp_path / "bomb.png")
    return {tmp_path / "gone.jpg": "does not exist", tmp_path / "album": "a folder",
            tmp_path / "notes.txt": "not an image", tmp_path / "bomb.png": "too many pixels"}


def test_predict_with_no_usable_file_names_each_and_why(pets, bad_files, capsys):
    line = refused(capsys, ["predict", pets, *bad_files], "none of the 4 file(s)", "JPEG")
    for path, why in bad_files.items():
        assert f"{path} ({why})" in line


def test_predict_goes_on_with_the_usable_files(pets, photo, bad_files, capsys):
    assert main(["predict", str(pets), str(photo), *map(str, bad_files)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{photo}: ") and len(out.splitlines()) == 1
    for path, why in bad_files.items():
        assert f"{path} ({why})" in err


def test_predict_json_names_each_skipped_file(pets, photo, bad_files, capsys):
    assert main(["predict", str(pets), str(photo), *map(str, bad_files), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["skipped"] == {str(p): why for p, why in bad_files.items()}


@pytest.mark.parametrize("which", ["album", "bomb.png"])
def test_explain_names_what_is_wrong_with_the_image(which, pets, bad_files, tmp_path, capsys):
    path = tmp_path / which
    refused(capsys, ["explain", pets, path, "--out", tmp_path / "why.png"], f"cannot read image {path}",
            f"({bad_files[path]})")
    assert not (tmp_path / "why.png").exists()


def test_predict_file_named_in_latin1_bytes(pets, photo, tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9.png")  # not valid UTF-8: a Latin-1 name from an old zip
    shutil.copy(photo, tmp_path / name)
    assert main(["predict", str(pets), str(tmp_path / name), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in result["predictions"]] == [f"{tmp_path}/caf\\xe9.png"]


def test_evaluate_folder_with_latin1_file_names(pets, image_folder, capsys):
    root = image_folder(classes=("cat", "dog"), per_class=2, size=16)
    for i, f in enumerate(image_files(root)):
        f.rename(f.parent / os.fsdecode(b"photo-%d-\xe9t\xe9" % i + f.suffix.encode()))
    assert main(["evaluate", str(pets), str(root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_images"] == 4 and result["skipped"] == 0


# --------------------------------------------------------------------------- nothing ends in a traceback
def test_closed_terminal_sighup_is_an_interruption(pets, photo, monkeypatch, capsys):
    before = signal.getsignal(signal.SIGHUP)  # SIG_DFL, or SIG_IGN under nohup
    monkeypatch.setattr(cli, "_predict", lambda args: os.kill(os.getpid(), signal.SIGHUP) or time_passes())
    assert main(["predict", str(pets), str(photo)]) == 128 + signal.SIGHUP
    assert one_error_line(capsys) == "tlh: error: interrupted by SIGHUP; no output file was written"
    assert signal.getsignal(signal.SIGHUP) is before  # the handler is given back as it was


def time_passes():
    for _ in range(1000):  # the signal arrives between bytecodes
        math.sqrt(2)
    return 0


def test_an_unexpected_error_is_one_line_with_exit_1(pets, photo, monkeypatch, capsys):
    monkeypatch.delenv("TLH_DEBUG", raising=False)

    def broken(args):
        raise KeyError("class_names")

    monkeypatch.setattr(cli, "_predict", broken)
    assert main(["predict", str(pets), str(photo)]) == 1
    line = one_error_line(capsys)
    assert "unexpected KeyError" in line and "TLH_DEBUG=1" in line


def test_a_tensorflow_error_is_one_line_with_exit_2(pets, photo, monkeypatch, capsys):
    import tensorflow as tf

    def undecodable(args):
        raise tf.errors.InvalidArgumentError(None, None, "jpeg::Uncompress failed. Invalid JPEG data.\n  [[{{node}}]]")

    monkeypatch.setattr(cli, "_predict", undecodable)
    assert main(["predict", str(pets), str(photo)]) == 2
    line = one_error_line(capsys)
    assert "TensorFlow stopped: jpeg::Uncompress failed" in line


def test_fit_offline_without_imagenet_weights_gives_advice_that_works(image_folder, tmp_path, monkeypatch, capsys,
                                                                        keras_weights_offline):
    monkeypatch.setenv("TL_PROFILE", "quick")  # the profile does not change what tlh does: no advice to set it
    root = image_folder(per_class=3, size=16)
    args = fit_args(root, tmp_path / "m.keras")
    args[args.index("--weights") + 1] = "imagenet"
    args[args.index("mobilenet_v2")] = "vgg16"
    assert main(args) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("tlh: error: ImageNet weights for vgg16 could not be loaded")
    assert "--base efficientnet_lite0" in line and "--weights offline" in line and "TL_PROFILE" not in line
    assert not (tmp_path / "m.keras").exists()


def test_file_broken_during_training_is_named_and_nothing_saved(image_folder, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    from tlhelpers import strategies

    root = image_folder(per_class=3, size=16)
    out = tmp_path / "m.keras"

    def fit_strategy(*args, **kwargs):  # a sync tool rewrites a photo while TensorFlow reads the folder
        (root / "red" / "red_001.png").write_bytes(b"\x89PNG\r\n\x1a\n half written")
        raise tf.errors.InvalidArgumentError(None, None, "Input is empty. [[{{node DecodeImage}}]]")

    monkeypatch.setattr(strategies, "fit_strategy", fit_strategy)
    assert main(fit_args(root, out)) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f"tlh: error: 1 file(s) in {root} changed during training and can no longer be read: "
                    "red/red_001.png (not an image); no model was saved. Run the same command again: the scan now leaves "
                    "them out.")
    assert not out.exists()


def test_fit_weights_that_are_a_folder_say_so(image_folder, tmp_path, capsys):
    root = image_folder(per_class=3, size=16)
    (tmp_path / "checkpoints").mkdir()
    args = fit_args(root, tmp_path / "m.keras")
    args[args.index("--weights") + 1] = str(tmp_path / "checkpoints")
    assert main(args) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"tlh: error: weights {tmp_path / 'checkpoints'} is a folder; pass the .weights.h5 file inside it, " \
                   "'imagenet', 'offline' or None."


@pytest.mark.parametrize("shape", [(8,), (None, None, 3)])
def test_model_that_does_not_take_square_images_is_named(shape, photo, tmp_path, capsys):
    inputs = keras.Input(shape)
    x = inputs if len(shape) == 1 else keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    path = save_model(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)), tmp_path / "odd.keras",
                      class_names=["a", "b"])
    refused(capsys, ["predict", path, photo], f"{path} takes inputs of shape", "not square RGB images",
            "pass a model saved by `tlh fit`")


@pytest.mark.parametrize("args", [["fit", "", "--out", "m.keras"], ["predict", "m.keras", "photo.jpg", ""]])
def test_empty_path_is_refused_not_taken_for_the_current_folder(args, capsys):
    assert "an empty path (an unset shell variable?)" in usage_error(capsys, args)


def test_gradcam_on_a_model_without_convolutions_suggests_the_other_methods(photo, tmp_path, capsys):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    path = save_model(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)), tmp_path / "flat.keras",
                      class_names=["a", "b"])
    refused(capsys, ["explain", path, photo, "--out", tmp_path / "why.png"], "has no convolutional layer",
            "saliency and SmoothGrad do not")


def test_evaluate_on_a_dataset_root_names_the_test_split(pets, tmp_path, capsys):
    root = tmp_path / "hymenoptera_data"
    write_image_folder(root / "train", classes=("cat", "dog"), per_class=1, size=16)
    write_image_folder(root / "val", classes=("cat", "dog"), per_class=1, size=16)
    refused(capsys, ["evaluate", pets, root], "holds splits (train, val), not classes", str(root / "val"))


def test_fit_on_a_root_with_only_a_train_split_names_it(tmp_path, capsys):
    root = tmp_path / "download"
    write_image_folder(root / "train", classes=("cats", "dogs"), per_class=3, size=16)
    (root / "__MACOSX").mkdir()  # left by a zip made on a Mac
    refused(capsys, fit_args(root, tmp_path / "m.keras"), "holds splits (train)", str(root / "train"))
