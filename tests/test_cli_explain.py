"""`tlh explain`: a saved model and one photo in, a figure of what the prediction rests on out."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tlhelpers.cli import main
from tlhelpers.saving import save_model

from conftest import one_error_line

TLH = Path(sys.executable).parent / "tlh"


@pytest.fixture
def conv_model(tmp_path):
    """A saved 24-px convnet that knows the classes 'cat' and 'dog'."""
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(x))
    return save_model(model, tmp_path / "pets.keras", class_names=["cat", "dog"])


@pytest.fixture
def photo(tmp_path):
    """Factory: photo(name, mode="RGB", size=(40, 30)) -> path of a noisy image file."""
    def make(name="photo.png", *, mode="RGB", size=(40, 30)):
        bands = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], bands), dtype="uint8")
        path = tmp_path / name
        Image.fromarray(pixels.squeeze(-1) if bands == 1 else pixels, mode).save(path)
        return path

    return make


def assert_png(path: Path):
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= 400 and im.height >= 200
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10  # a picture, not a blank canvas
    assert not list(path.parent.glob(f".{path.stem}-*"))  # no temporary file left behind


# --------------------------------------------------------------------------- it works
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_explain_writes_a_figure(conv_model, photo, tmp_path, capsys, mode):
    out = tmp_path / "why.png"
    assert main(["explain", str(conv_model), str(photo(f"p_{mode}.png", mode=mode)), "--out", str(out)]) == 0
    assert_png(out)
    printed = capsys.readouterr().out
    assert "Grad-CAM at conv" in printed and str(out) in printed
    assert any(f": {c} (" in printed for c in ("cat", "dog"))


@pytest.mark.parametrize("method", ["saliency", "smoothgrad"])
def test_explain_other_methods_and_a_chosen_class(conv_model, photo, tmp_path, capsys, method):
    out = tmp_path / "why.png"
    assert main(["explain", str(conv_model), str(photo()), "--method", method, "--class", "dog", "--out", str(out)]) == 0
    assert_png(out)
    assert "for dog" in capsys.readouterr().out


def test_explain_through_the_installed_command(conv_model, photo, tmp_path):
    out = tmp_path / "figures" / "why.png"
    proc = subprocess.run([str(TLH), "explain", str(conv_model), str(photo()), "--layer", "conv", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_png(out)


# --------------------------------------------------------------------------- bad input: one line, exit 2, no file
@pytest.mark.parametrize("extra, message", [
    (["--layer", "conv9"], "layer 'conv9' not in model .*convolutional layers are: conv"),
    (["--layer", "gap"], r"needs a layer with a 4-D \(H, W, C\) output; 'gap' outputs"),
    (["--class", "horse"], "does not know class 'horse'; its classes are: cat, dog"),
    (["--method", "saliency", "--layer", "conv"], "--layer applies to --method gradcam only"),
])
def test_explain_bad_options(conv_model, photo, tmp_path, capsys, extra, message):
    out = tmp_path / "why.png"
    assert main(["explain", str(conv_model), str(photo()), "--out", str(out), *extra]) == 2
    assert re.search(message, one_error_line(capsys))
    assert not out.exists()


def test_explain_missing_and_broken_files(conv_model, photo, tmp_path, capsys):
    out = tmp_path / "why.png"
    assert main(["explain", str(tmp_path / "none.keras"), str(photo()), "--out", str(out)]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["explain", str(conv_model), str(tmp_path / "none.jpg"), "--out", str(out)]) == 2
    assert "none.jpg does not exist" in one_error_line(capsys)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert main(["explain", str(conv_model), str(text), "--out", str(out)]) == 2
    assert "cannot read image" in one_error_line(capsys)
    assert main(["explain", str(conv_model), str(photo()), "--out", str(tmp_path / "why.jpg")]) == 2
    assert "--out must end in .png" in one_error_line(capsys)
    assert not out.exists() and not (tmp_path / "why.jpg").exists()


def test_explain_unknown_method_is_a_usage_error(conv_model, photo, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(conv_model), str(photo()), "--method", "lime", "--out", str(tmp_path / "w.png")])
    assert exit_.value.code == 2
    assert "invalid choice: 'lime'" in one_error_line(capsys)
