"""`tlh`: bad input ends with one line and exit code 2; a folder of images goes from fit to predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from tlhelpers.cli import main
from tlhelpers.saving import load_model, save_model

from conftest import image_files, one_error_line

TLH = Path(sys.executable).parent / "tlh"


@pytest.fixture
def tiny_model(tmp_path):
    """A saved 16-px model that knows the classes 'cat' and 'dog'."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    return save_model(model, tmp_path / "pets.keras", class_names=["cat", "dog"])


def fit_args(data_dir, out, *extra):
    return ["fit", str(data_dir), "--base", "mobilenet_v2", "--weights", "none", "--image-size", "32",
            "--epochs", "2", "--batch-size", "8", "--out", str(out), *extra]


# --------------------------------------------------------------------------- input errors, in process
def test_fit_missing_folder(tmp_path, capsys):
    assert main(fit_args(tmp_path / "nowhere", tmp_path / "m.keras")) == 2
    line = one_error_line(capsys)
    assert "nowhere" in line and "does not exist" in line and "one subfolder per class" in line
    assert not (tmp_path / "m.keras").exists()


def test_fit_one_class(image_folder, tmp_path, capsys):
    root = image_folder(classes=("red",), per_class=3, size=16)
    assert main(fit_args(root, tmp_path / "m.keras")) == 2
    assert "at least two" in one_error_line(capsys)


@pytest.mark.parametrize("content", [None, "just text"])
def test_fit_class_folder_without_images(image_folder, tmp_path, capsys, content):
    root = image_folder(per_class=3, size=16)
    (root / "green").mkdir()
    if content:
        (root / "green" / "notes.txt").write_text(content)
    assert main(fit_args(root, tmp_path / "m.keras")) == 2
    line = one_error_line(capsys)
    assert "green" in line and "no readable images" in line


def test_fit_unknown_base(image_folder, tmp_path, capsys):
    root = image_folder(per_class=3, size=16)
    args = fit_args(root, tmp_path / "m.keras")
    args[args.index("mobilenet_v2")] = "resnet9000"
    assert main(args) == 2
    line = one_error_line(capsys)
    assert "resnet9000" in line and "vgg16" in line and "mobilenet_v2" in line


@pytest.mark.parametrize("out", ["model.h5", "model"])
def test_fit_out_must_be_keras(image_folder, tmp_path, capsys, out):
    assert main(fit_args(image_folder(per_class=3, size=16), tmp_path / out)) == 2
    assert "--out must end in .keras" in one_error_line(capsys)
    assert not (tmp_path / out).exists()


def test_fit_too_few_images_for_validation(image_folder, tmp_path, capsys):
    root = image_folder(per_class=1, size=16)
    assert main(fit_args(root, tmp_path / "m.keras")) == 2
    assert "too few images" in one_error_line(capsys)


@pytest.mark.parametrize("args", [["fit"], ["fit", "x", "--out", "m.keras", "--strategy", "magic"], ["predict", "m.keras"],
                                  ["frobnicate"]])
def test_usage_errors_exit_2_with_one_line(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    one_error_line(capsys)


def test_evaluate_with_other_classes(tiny_model, image_folder, capsys):
    root = image_folder(per_class=2, size=16)
    assert main(["evaluate", str(tiny_model), str(root)]) == 2
    line = one_error_line(capsys)
    assert "cat" in line and "red" in line and "same class subfolders" in line


def test_evaluate_missing_model_or_folder(tiny_model, image_folder, tmp_path, capsys):
    root = image_folder(per_class=2, size=16)
    assert main(["evaluate", str(tmp_path / "none.keras"), str(root)]) == 2
    assert "tlh fit" in one_error_line(capsys)
    assert main(["evaluate", str(tiny_model), str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in one_error_line(capsys)


def test_evaluate_a_file_that_is_not_a_model(image_folder, tmp_path, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"\x00" * 100)
    assert main(["evaluate", str(bad), str(image_folder(per_class=2, size=16))]) == 2
    assert "not a readable .keras model" in one_error_line(capsys)


def test_predict_only_non_images(tiny_model, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.jpg").write_bytes(b"")
    assert main(["predict", str(tiny_model), str(tmp_path / "a.txt"), str(tmp_path / "b.jpg"),
                 str(tmp_path / "gone.png")]) == 2
    line = one_error_line(capsys)
    assert "none of the 3 file(s)" in line and "JPEG" in line


def test_predict_json_in_process(tiny_model, image_folder, tmp_path, capsys):
    root = image_folder(per_class=1, size=16)
    (tmp_path / "notes.txt").write_text("hello")
    files = [str(p) for p in image_files(root)] + [str(tmp_path / "notes.txt")]
    assert main(["predict", str(tiny_model), *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in out["predictions"]] == files[:2]
    assert all(r["class"] in ("cat", "dog") and 0.5 <= r["probability"] <= 1 for r in out["predictions"])
    assert out["skipped"] == {files[2]: "not an image"}


# --------------------------------------------------------------------------- end to end, as a user runs it
def run_tlh(*args):
    return subprocess.run([str(TLH), *map(str, args)], capture_output=True, text=True, timeout=240, env=os.environ.copy())


def test_fit_evaluate_predict_end_to_end(image_folder, tmp_path):
    assert TLH.is_file(), f"console script {TLH} not installed"
    root = image_folder(per_class=6, size=32)
    good = (root / "red" / "red_000.jpg").read_bytes()
    (root / "red" / "broken.jpg").write_bytes(good[: len(good) // 2])
    model_path = tmp_path / "out" / "m.keras"

    fit = run_tlh("fit", root, "--strategy", "features", "--base", "mobilenet_v2", "--weights", "none",
                  "--image-size", "32", "--epochs", "1", "--out", model_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    said = " ".join(fit.stdout.split())
    assert "12 images in 2 classes (blue, red)" in said
    assert "skipped 1 of 13 files (1 corrupt)" in said
    assert f"model saved to {model_path}" in said
    model, meta = load_model(model_path)
    assert meta["class_names"] == ["blue", "red"] and meta["strategy"] == "features"
    assert meta["weights"] == "random init" and meta["image_size"] == 32
    assert model.input_shape == (None, 32, 32, 3)

    ev = run_tlh("evaluate", model_path, root, "--json")
    assert ev.returncode == 0, ev.stderr[-3000:]
    result = json.loads(ev.stdout)  # stdout is exactly one JSON object
    assert {"accuracy", "n_images", "classes", "per_class", "confusion_matrix"} <= set(result)
    assert result["n_images"] == 12 and result["skipped"] == 1
    assert result["classes"] == ["blue", "red"] and set(result["per_class"]) == {"blue", "red"}
    assert sum(map(sum, result["confusion_matrix"])) == 12
    assert [sum(row) for row in result["confusion_matrix"]] == [6, 6]
    assert 0 <= result["accuracy"] <= 1

    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    photos = [root / "red" / "red_001.png", root / "blue" / "blue_002.jpg"]
    pr = run_tlh("predict", model_path, *photos, notes)
    assert pr.returncode == 0, pr.stderr[-3000:]
    lines = pr.stdout.strip().splitlines()
    assert len(lines) == 2
    for line, photo in zip(lines, photos):
        assert line.startswith(f"{photo}: ") and line.split(": ")[1].split(" (")[0] in ("blue", "red")
    assert f"skipped 1 unreadable file(s): {notes} (not an image)" in pr.stderr


@pytest.mark.parametrize("strategy, epochs", [("scratch", [2]), ("two-phase", [1, 1])])  # the same budget
def test_fit_strategies_in_process(image_folder, tmp_path, capsys, strategy, epochs):
    root = image_folder(per_class=4, size=32)
    out = tmp_path / f"{strategy}.keras"
    args = fit_args(root, out, "--strategy", strategy)
    args[args.index("mobilenet_v2")] = "vgg16"
    assert main(args) == 0
    assert f"model saved to {out}" in " ".join(capsys.readouterr().out.split())
    model, meta = load_model(out)
    assert meta["strategy"] == strategy and meta["weights"] == "random init"
    assert meta["class_names"] == ["blue", "red"] and model.output_shape == (None, 2)
    assert len(meta["history"]["loss"]) == sum(epochs)
    if strategy == "two-phase":
        assert meta["history"]["phase_boundary"] == 1
    else:
        assert "phase_boundary" not in meta["history"]


def test_fit_with_the_offline_source_model(image_folder, tmp_path, capsys):
    root = image_folder(per_class=4, size=48)
    out = tmp_path / "offline.keras"
    args = ["fit", str(root), "--strategy", "two-phase", "--weights", "offline", "--epochs", "2",
            "--batch-size", "4", "--out", str(out)]
    assert main(args) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "0 of 104 layers trainable" in said  # phase 1: the whole base frozen
    assert "trainable (from index 1)" in said   # phase 2: the whole base, as the recipe for this model says
    model, meta = load_model(out)
    assert meta["weights"] == "offline source model" and meta["image_size"] == 96  # its training size by default
    assert model.input_shape == (None, 96, 96, 3)


@pytest.mark.parametrize("extra, message", [
    (["--weights", "offline", "--base", "vgg16"], "offline source model is a mobilenet_v2"),
    (["--unfreeze", "some"], "--unfreeze must be a positive number of blocks or 'all'"),
])
def test_fit_offline_errors(image_folder, tmp_path, capsys, extra, message):
    root = image_folder(per_class=3, size=16)
    args = fit_args(root, tmp_path / "m.keras")
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 2
    assert message in one_error_line(capsys)
