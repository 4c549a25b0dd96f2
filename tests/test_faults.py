"""Faults and bad input: each ends with one clear line and leaves no partial or corrupt file behind.

Downloads come from a misbehaving server on 127.0.0.1 (tests/http_server.py); nothing here
uses the network. Every `tlh` failure is exit code 2 (128 + the signal when interrupted) and
exactly one stderr line starting "tlh: error: ".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tlhelpers import data
from tlhelpers.cli import main
from tlhelpers.data import DatasetInfo, extract_archive, fetch
from tlhelpers.images import load_images, scan_folder, to_dataset
from tlhelpers.saving import load_model, save_model

from conftest import colour_image, image_files, one_error_line, save_pets_model, write_image_folder
from http_server import FaultyServer

TLH = Path(sys.executable).parent / "tlh"


def listing(folder: Path) -> list:
    """Every path under `folder`, relative, sorted (hidden temporary files included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- downloads
@pytest.fixture
def toy_archive(tmp_path):
    """(bytes, sha256) of a zip holding toyset/{blue,red}/ with two small images each."""
    src = write_image_folder(tmp_path / "src", per_class=2, size=16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in image_files(src):
            zf.write(f, f"toyset/{f.relative_to(src)}")
    raw = buf.getvalue()
    return raw, hashlib.sha256(raw).hexdigest()


def register(monkeypatch, url, known_hash=None):
    monkeypatch.setitem(data.REGISTRY, "toyset", DatasetInfo(
        name="toyset", url=url, known_hash=known_hash, layout="toyset", extract_to=".", official_splits={},
        description="test set", license="CC0"))


def other_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toyset/red/x.txt", "tampered")
    return buf.getvalue()


# fault -> (route on the first request, whether the registry has the checksum, what the message says)
DOWNLOAD_FAULTS = {
    "truncated body": (lambda good: ("truncate", good), False, "IncompleteRead"),
    "wrong checksum": (lambda good: ("ok", other_zip()), True, "checksum"),
    "404": (lambda good: ("status", 404), False, "404"),
    "server stalls": (lambda good: ("stall", 10), False, "timed out"),
    "stalls mid-body": (lambda good: ("stall_mid", good), False, "timed out"),
    "dropped mid-transfer": (lambda good: ("drop", good), False, "Connection"),
    "closed early, no checksum": (lambda good: ("close_early", good), False, "damaged"),
    "HTML page instead": (lambda good: ("ok", b"<html>rate limited</html>" * 40), False, "damaged"),
}


@pytest.mark.parametrize("fault", DOWNLOAD_FAULTS)
def test_failed_download_leaves_nothing_and_a_retry_gets_one_good_copy(fault, toy_archive, monkeypatch,
                                                                       isolated_env):
    good, sha = toy_archive
    first, with_hash, said = DOWNLOAD_FAULTS[fault]
    monkeypatch.setenv("TL_DOWNLOAD_TIMEOUT", "0.5")
    with FaultyServer({"/toyset.zip": first(good)}) as server:
        register(monkeypatch, server.url("/toyset.zip"), f"sha256:{sha}" if with_hash else None)
        start = time.perf_counter()
        with pytest.raises(RuntimeError) as err:
            fetch("toyset", progressbar=False)
        assert time.perf_counter() - start < 8  # the stall costs the timeout, not pooch's default 30 s
        message = str(err.value)
        assert "\n" not in message and said in message and "toyset" in message
        assert listing(isolated_env / "downloads") == []  # no partial, temporary or corrupt archive
        assert listing(isolated_env / "datasets") == []

        server.routes["/toyset.zip"] = ("ok", good)
        root = fetch("toyset", progressbar=False)
        assert server.hits["/toyset.zip"] == 2  # the retry downloaded again, once
    assert listing(isolated_env / "downloads") == ["toyset.zip"]
    assert hashlib.sha256((isolated_env / "downloads" / "toyset.zip").read_bytes()).hexdigest() == sha
    assert listing(isolated_env / "datasets") == ["toyset", "toyset/blue", "toyset/blue/blue_000.jpg",
                                                  "toyset/blue/blue_001.png", "toyset/red", "toyset/red/red_000.jpg",
                                                  "toyset/red/red_001.png"]
    assert scan_folder(root, verbose=False).counts() == {"blue": 2, "red": 2}


def test_download_timeout_parameter_beats_the_environment(toy_archive, monkeypatch):
    monkeypatch.setenv("TL_DOWNLOAD_TIMEOUT", "600")
    with FaultyServer({"/toyset.zip": ("stall", 10)}) as server:
        register(monkeypatch, server.url("/toyset.zip"))
        start = time.perf_counter()
        with pytest.raises(RuntimeError, match="gives up after 0.3 s"):
            fetch("toyset", progressbar=False, timeout=0.3)
        assert time.perf_counter() - start < 5


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_bad_download_timeout_setting_names_the_variable(value, monkeypatch):
    monkeypatch.setenv("TL_DOWNLOAD_TIMEOUT", value)
    register(monkeypatch, "http://127.0.0.1:9/toyset.zip")
    with pytest.raises(ValueError, match="TL_DOWNLOAD_TIMEOUT must be a positive number of seconds"):
        fetch("toyset", progressbar=False)


# --------------------------------------------------------------------------- archives
def zip_with(path: Path, name: str, *, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("set/fine.txt", "fine")
        info = zipfile.ZipInfo(name)
        if link is None:
            zf.writestr(info, "escaped")
        else:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, link)
    return path


def tar_with(path: Path, members: list) -> Path:
    """members: (name, kind, link) with kind "file", "sym" or "hard"."""
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 7
                tf.addfile(info, io.BytesIO(b"escaped"))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = link
                tf.addfile(info)
    return path


UNSAFE = {
    "zip ../x": lambda a, out: zip_with(a.with_suffix(".zip"), "../../outside/evil.txt"),
    "zip absolute": lambda a, out: zip_with(a.with_suffix(".zip"), f"{out}/evil.txt"),
    "zip symlink out": lambda a, out: zip_with(a.with_suffix(".zip"), "set/link", link="../../outside"),
    "tar ../x": lambda a, out: tar_with(a.with_suffix(".tgz"), [("set/../../outside/evil.txt", "file", None)]),
    "tar absolute": lambda a, out: tar_with(a.with_suffix(".tgz"), [(f"{out}/evil.txt", "file", None)]),
    "tar symlink out, then a file through it": lambda a, out: tar_with(
        a.with_suffix(".tgz"), [("set/link", "sym", str(out)), ("set/link/evil.txt", "file", None)]),
    "tar relative symlink out": lambda a, out: tar_with(a.with_suffix(".tgz"), [("set/link", "sym", "../../outside")]),
    "tar hard link out": lambda a, out: tar_with(a.with_suffix(".tgz"), [("set/hard", "hard", "../outside/secret")]),
}


@pytest.mark.parametrize("case", UNSAFE)
def test_archive_with_a_member_outside_is_refused(case, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    archive = UNSAFE[case](tmp_path / "set", outside)
    dest = tmp_path / "home" / "datasets"
    dest.mkdir(parents=True)
    (dest / "other_dataset").mkdir()
    with pytest.raises(RuntimeError) as err:
        extract_archive(archive, dest)
    message = str(err.value)
    assert "unsafe member" in message and "refusing to extract" in message and "\n" not in message
    assert listing(outside) == ["secret"] and (outside / "secret").read_text() == "keep"
    assert listing(dest) == ["other_dataset"]  # nothing written, no temporary folder left


def test_archive_with_a_link_inside_itself_is_fine(tmp_path):
    archive = tar_with(tmp_path / "set.tgz", [("set/a.txt", "file", None), ("set/b.txt", "sym", "a.txt")])
    extract_archive(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "set" / "b.txt").read_text() == "escaped"


def test_download_of_an_unsafe_archive_is_deleted(tmp_path, monkeypatch, isolated_env):
    evil = zip_with(tmp_path / "evil.zip", "../evil.txt").read_bytes()
    with FaultyServer({"/toyset.zip": ("ok", evil)}) as server:
        register(monkeypatch, server.url("/toyset.zip"))
        with pytest.raises(RuntimeError, match="unsafe member '../evil.txt'"):
            fetch("toyset", progressbar=False)
    assert listing(isolated_env / "downloads") == [] and listing(isolated_env / "datasets") == []
    assert not (isolated_env / "evil.txt").exists()


# --------------------------------------------------------------------------- image folders
def pixels(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype="uint8")


def smooth(h, w):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], -1).astype("uint8")


def save_animation(path, fmt):
    frames = [Image.fromarray(pixels(seed=s)) for s in (1, 2)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])


def huge_png_header(path, side=30000):
    """A PNG that claims side x side pixels (a decompression bomb) in a few dozen bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# name -> writer of one image file that every decoder must read
READABLE = {
    "cmyk.jpg": lambda p: Image.fromarray(pixels()).convert("CMYK").save(p),
    "rgba.png": lambda p: Image.fromarray(pixels()).convert("RGBA").save(p),
    "palette.png": lambda p: Image.fromarray(pixels()).convert("P").save(p),
    "gray_alpha.png": lambda p: Image.fromarray(pixels()).convert("LA").save(p),
    "gray16.png": lambda p: Image.fromarray(np.full((20, 30), 40000, dtype="uint16")).save(p),
    "animated.gif": lambda p: save_animation(p, "GIF"),
    "still.webp": lambda p: Image.fromarray(pixels()).save(p, lossless=True),
    "palette.bmp": lambda p: Image.fromarray(pixels()).convert("P").save(p),
    "one_pixel.png": lambda p: Image.new("RGB", (1, 1), (10, 20, 30)).save(p),
    "one_pixel.jpg": lambda p: Image.new("RGB", (1, 1), (10, 20, 30)).save(p),
    "large_4000x3000.jpg": lambda p: Image.fromarray(smooth(3000, 4000)).save(p, quality=60),
}

# name -> (writer, the reason the scan gives)
UNREADABLE = {
    "zero_byte.jpg": (lambda p: p.write_bytes(b""), "zero-byte"),
    "truncated.jpg": (lambda p: p.write_bytes(jpeg_bytes()[:300]), "corrupt"),
    "truncated.png": (lambda p: p.write_bytes(png_bytes()[:-40]), "corrupt"),
    "text_named.jpg": (lambda p: p.write_text("this is not a photo\n"), "not an image"),
    "scan.tiff": (lambda p: Image.fromarray(pixels()).save(p), "unsupported format (TIFF)"),
    "animated.webp": (lambda p: save_animation(p, "WEBP"), "unsupported format (animated WebP)"),
    "one_bit.bmp": (lambda p: Image.fromarray(pixels()).convert("1").save(p), "unsupported format (1-bit BMP)"),
    "bomb.png": (huge_png_header, "too many pixels"),
}


def jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(pixels(64, 64)).save(buf, "JPEG")
    return buf.getvalue()


def png_bytes():
    buf = io.BytesIO()
    Image.fromarray(pixels(64, 64)).save(buf, "PNG")
    return buf.getvalue()


# Class names with spaces, accents, another script and an emoji: paths must survive every layer.
CLASSES = ("chat noir", "café crème", "猫 🐈")


def unicode_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(2):
            colour_image(((c * 80) % 256, 100, 200 - c * 60), 24, rng).save(root / name / f"photo {i} é.png")
    return root


def decoded(images, size=16):
    batches = [(x.numpy(), y.numpy()) for x, y in to_dataset(images, image_size=size, batch_size=64)]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


@pytest.mark.parametrize("name", READABLE)
def test_unusual_but_valid_image_is_loaded(name, tmp_path):
    root = unicode_folder(tmp_path / "photos")
    READABLE[name](root / CLASSES[2] / name)
    images = scan_folder(root, verbose=False)
    assert images.report.skipped == {} and images.counts() == {c: 2 + (c == CLASSES[2]) for c in sorted(CLASSES)}
    x, y = decoded(images)
    assert x.shape == (7, 16, 16, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    one = load_images([root / CLASSES[2] / name], image_size=16)[0]
    assert one.shape == (16, 16, 3) and 0 <= one.min() and one.max() <= 255
    if name == "gray16.png":  # 16-bit values are scaled into [0, 255], not clipped or wrapped
        assert np.allclose(one, 40000 / 65535 * 255, atol=1.5)


@pytest.mark.parametrize("name", UNREADABLE)
def test_bad_image_is_skipped_counted_and_the_rest_loaded(name, tmp_path, capsys):
    root = unicode_folder(tmp_path / "photos")
    writer, reason = UNREADABLE[name]
    writer(root / CLASSES[0] / name)
    images = scan_folder(root)
    assert images.report.skipped == {f"{CLASSES[0]}/{name}": reason}
    assert images.report.total == 7 and len(images) == 6
    assert f"skipped 1 of 7 files (1 {reason})" in capsys.readouterr().out
    x, y = decoded(images)
    assert x.shape == (6, 16, 16, 3) and sorted(np.bincount(y)) == [2, 2, 2]
    with pytest.raises(ValueError, match=f"cannot read image .*{name}"):
        load_images([root / CLASSES[0] / name], image_size=16)


def test_folder_of_every_fault_at_once(tmp_path):
    root = unicode_folder(tmp_path / "photos")
    for i, name in enumerate(READABLE):
        READABLE[name](root / CLASSES[i % 3] / name)
    for i, (name, (writer, _)) in enumerate(UNREADABLE.items()):
        writer(root / CLASSES[i % 3] / f"bad_{name}")
    images = scan_folder(root, verbose=False)
    assert len(images.report.skipped) == len(UNREADABLE)
    assert len(images) == 6 + len(READABLE) and images.report.total == 6 + len(READABLE) + len(UNREADABLE)
    x, _ = decoded(images)
    assert x.shape == (len(images), 16, 16, 3) and np.isfinite(x).all()


# --------------------------------------------------------------------------- tlh fit: bad options
def fit_args(data_dir, out, *extra, epochs="2"):
    return ["fit", str(data_dir), "--base", "mobilenet_v2", "--weights", "none", "--image-size", "32",
            "--epochs", epochs, "--batch-size", "4", "--out", str(out), *extra]


def set_flag(args, flag, value):
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


@pytest.fixture
def small_folder(image_folder):
    return image_folder(per_class=3, size=16)


def fails_before_training(capsys, args, *words):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlh: error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    assert "epoch" not in out  # it stopped before training began
    assert not said, [str(w.message)[:120] for w in said]  # no flood of warnings either
    return lines[0]


@pytest.mark.parametrize("flag, value, words", [
    ("--epochs", "0", ["--epochs must be at least 2"]),
    ("--epochs", "-1", ["--epochs must be at least 2"]),
    ("--epochs", "1", ["at least 2 for two-phase"]),
    ("--batch-size", "0", ["--batch-size must be at least 1"]),
    ("--image-size", "16", ["--image-size must be between 32 and 1024", "mobilenet_v2", "16"]),
    ("--image-size", "100000", ["--image-size must be between 32 and 1024", "100000"]),
])
def test_fit_bad_number_fails_at_once(flag, value, words, small_folder, tmp_path, capsys):
    out = tmp_path / "m.keras"
    fails_before_training(capsys, set_flag(fit_args(small_folder, out), flag, value), *words)
    assert not out.exists()


def test_fit_scratch_accepts_a_single_epoch_but_not_zero(small_folder, tmp_path, capsys):
    args = fit_args(small_folder, tmp_path / "m.keras", "--strategy", "scratch", epochs="0")
    fails_before_training(capsys, args, "--epochs must be at least 1, got 0")


@pytest.mark.parametrize("value", ["abc", "2.5", ""])
def test_fit_epochs_not_a_number(value, small_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(fit_args(small_folder, tmp_path / "m.keras", epochs=value))
    assert exit_.value.code == 2
    assert "--epochs: expected a positive number of epochs or HEAD,FINE_TUNE" in one_error_line(capsys)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder this process cannot write to: a chmod 555 folder, or /sys when running as root."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            (candidate / ".probe").touch()
            (candidate / ".probe").unlink()
        except OSError:
            yield candidate
            break
    else:
        pytest.skip("no read-only folder available")
    folder.chmod(0o755)


def test_fit_into_a_read_only_folder_fails_before_training(readonly_dir, small_folder, capsys):
    out = readonly_dir / "m.keras"
    fails_before_training(capsys, fit_args(small_folder, out), "cannot write --out", str(readonly_dir),
                          "choose a folder you can write to")
    assert not out.exists()


def test_fit_under_a_file_fails_before_training(small_folder, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "sub" / "m.keras"
    fails_before_training(capsys, fit_args(small_folder, out), "cannot write --out", "not a folder")
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"


def test_fit_out_that_is_a_folder_fails_before_training(small_folder, tmp_path, capsys):
    out = tmp_path / "taken.keras"
    out.mkdir()
    fails_before_training(capsys, fit_args(small_folder, out), "is a folder")
    assert listing(out) == []


def test_fit_into_missing_folders_checks_the_nearest_existing_one(readonly_dir, small_folder, capsys):
    out = readonly_dir / "new" / "deeper" / "m.keras"
    fails_before_training(capsys, fit_args(small_folder, out), "cannot write --out", str(readonly_dir))
    assert not (readonly_dir / "new").exists()


@pytest.fixture
def weight_files(tmp_path):
    """Weights that do not fit mobilenet_v2: none, text, a small convnet's, a narrower MobileNetV2's."""
    (tmp_path / "notes.weights.h5").write_text("not weights")
    convnet = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    convnet.save_weights(tmp_path / "convnet.weights.h5")
    return tmp_path


@pytest.mark.parametrize("name, words", [
    ("missing.weights.h5", ["does not exist", "existing .weights.h5 file"]),
    ("notes.weights.h5", ["does not fit mobilenet_v2", "use weights saved from the same base"]),
    ("convnet.weights.h5", ["does not fit mobilenet_v2", "use weights saved from the same base"]),
])
def test_fit_with_weights_that_do_not_fit(name, words, weight_files, small_folder, tmp_path, capsys):
    out = tmp_path / "m.keras"
    args = set_flag(fit_args(small_folder, out), "--weights", str(weight_files / name))
    fails_before_training(capsys, args, *words)
    assert not out.exists()


# --------------------------------------------------------------------------- tlh evaluate / predict / explain on bad models
@pytest.fixture
def pets_model(tmp_path):
    return save_pets_model(tmp_path / "pets.keras")


def lambda_model(path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return save_model(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)), path,
                      class_names=["cat", "dog"])


class Unregistered(keras.layers.Layer):  # not registered as serializable: no loader knows it
    def call(self, x):
        return x


def custom_layer_model(path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(Unregistered()(inputs))
    return save_model(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)), path,
                      class_names=["cat", "dog"])


def plain_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("holiday/notes.txt", "a zip file named .keras")


def wrong_class_count(path, good):
    """A copy of `good` whose metadata names three classes for two outputs."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "tlhelpers.json":
                body = json.dumps({**json.loads(body), "class_names": ["cat", "dog", "fox"]})
            dst.writestr(item, body)
    return path


BAD_MODELS = {
    "truncated": (lambda p, good: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]), "not a readable .keras model"),
    "zero-byte": (lambda p, good: p.write_bytes(b""), "not a readable .keras model"),
    "zip, not a model": (lambda p, good: plain_zip(p), "not a Keras model"),
    "Lambda layer": (lambda p, good: lambda_model(p), "Lambda layer"),
    "unknown layer class": (lambda p, good: custom_layer_model(p), "not a readable .keras model"),
    "classes do not match outputs": (wrong_class_count, "names 3 classes but the model has 2 outputs"),
}


@pytest.mark.parametrize("command", ["evaluate", "predict", "explain"])
@pytest.mark.parametrize("kind", BAD_MODELS)
def test_commands_refuse_a_bad_model_file(kind, command, pets_model, image_folder, tmp_path, capsys):
    make, words = BAD_MODELS[kind]
    bad = tmp_path / "bad.keras"
    make(bad, pets_model)
    root = image_folder(classes=("cat", "dog"), per_class=1, size=16)
    photo = image_files(root)[0]
    args = {"evaluate": ["evaluate", str(bad), str(root), "--json"],
            "predict": ["predict", str(bad), str(photo), "--json"],
            "explain": ["explain", str(bad), str(photo), "--out", str(tmp_path / "why.png")]}[command]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert words in line and str(bad) in line
    assert not (tmp_path / "why.png").exists() and not list(tmp_path.glob(".why-*"))


def test_evaluate_on_a_folder_with_an_extra_class(pets_model, image_folder, capsys):
    root = image_folder(classes=("cat", "dog", "fox"), per_class=1, size=16)
    assert main(["evaluate", str(pets_model), str(root)]) == 2
    line = one_error_line(capsys)
    assert "['cat', 'dog']" in line and "fox" in line and "same class subfolders" in line


def test_evaluate_json_stdout_is_only_json_with_skipped_files_and_warnings(pets_model, image_folder, capfd):
    root = image_folder(classes=("cat", "dog"), per_class=2, size=16)
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "dog" / "notes.jpg").write_text("hello")
    with warnings.catch_warnings():  # warnings shown as a user sees them: on stderr
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        warnings.warn("a warning while evaluating", UserWarning, stacklevel=1)
        assert main(["evaluate", str(pets_model), str(root), "--json"]) == 0
    out, err = capfd.readouterr()  # file-descriptor level: catches C++ and print() alike
    assert "a warning while evaluating" in err
    assert len(out.splitlines()) == 1
    result = json.loads(out)
    assert result["n_images"] == 4 and result["skipped"] == 2


# --------------------------------------------------------------------------- Keras safe mode
def test_lambda_model_is_refused_even_after_unsafe_deserialization_was_enabled(tmp_path):
    from keras.src.backend.common import global_state

    path = lambda_model(tmp_path / "lambda.keras")
    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()  # a notebook might have done this
    try:
        with pytest.raises(ValueError) as err:
            load_model(path)
    finally:
        global_state.set_global_attribute("safe_mode_saving", before)
    assert "Lambda layer" in str(err.value) and "safe mode" in str(err.value) and "\n" not in str(err.value)


def test_save_model_refuses_to_leave_a_half_written_file(tmp_path):
    class Broken(keras.Model):
        def save(self, *args, **kwargs):
            Path(args[0]).write_bytes(b"PK half a zip")
            raise OSError("disk full")

    out = tmp_path / "models" / "m.keras"
    with pytest.raises(OSError, match="disk full"):
        save_model(Broken(), out, class_names=["a", "b"])
    assert listing(tmp_path / "models") == []


# --------------------------------------------------------------------------- tlh as a user runs it
def tlh_env(cache: Path) -> dict:
    return {**os.environ, "TL_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}


def run_tlh(*args, cache: Path, timeout=240):
    return subprocess.run([str(TLH), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=tlh_env(cache))


def cli_fit(data_dir, out, *, epochs, strategy="features"):
    """A `tlh fit` that is quick to start: features of a random-weight VGG16 (19 layers to build), then a head."""
    return ["fit", data_dir, "--strategy", strategy, "--base", "vgg16", "--weights", "none",
            "--image-size", "32", "--epochs", str(epochs), "--batch-size", "4", "--out", out]


def said_on_stderr(stderr: str) -> list:
    """The lines of stderr that are not progress bars (tqdm redraws its bar with carriage returns)."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("vgg16 features:")]


def quiet(stderr: str) -> bool:
    """Nothing on stderr but progress bars: no traceback, warning or error."""
    return said_on_stderr(stderr) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_fit_interrupted_mid_training_leaves_nothing_and_a_rerun_works(sig, image_folder, tmp_path, isolated_env,
                                                                       capsys):
    root = image_folder(per_class=6, size=32)
    out_dir = tmp_path / "models"
    out_dir.mkdir()
    out = out_dir / "m.keras"
    proc = subprocess.Popen([str(TLH), *map(str, cli_fit(root, out, epochs=100000))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=tlh_env(isolated_env))
    try:
        said = []
        for line in proc.stdout:  # the signal comes while it trains, after the first epoch's line
            said.append(line)
            if line.startswith("epoch 1/100000"):
                proc.send_signal(sig)
                break
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert any(line.startswith("epoch 1/100000") for line in said), "".join(said) + err
    assert proc.returncode == 128 + sig, err
    lines = said_on_stderr(err)
    assert lines == [f"tlh: error: interrupted by {signal.Signals(sig).name}; no output file was written"], err
    assert "epoch 100000/100000" not in rest and "model saved" not in rest
    assert listing(out_dir) == []  # neither the model nor a temporary file beside it

    assert main(list(map(str, cli_fit(root, out, epochs=1)))) == 0  # the rerun, in process: no second start-up
    assert quiet(capsys.readouterr().err)
    assert listing(out_dir) == ["m.keras"]
    assert load_model(out)[1]["class_names"] == ["blue", "red"]


def test_tlh_errors_are_one_line_without_tensorflow_chatter(tmp_path, isolated_env):
    result = run_tlh("evaluate", tmp_path / "none.keras", tmp_path, cache=isolated_env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"tlh: error: model file {tmp_path / 'none.keras'} does not exist; "
                                          "train one with `tlh fit` first."]


def test_two_fits_sharing_one_cache_both_finish_and_a_third_reads_it(image_folder, tmp_path, isolated_env, capsys):
    root = image_folder(per_class=6, size=32)
    outs = [tmp_path / f"m{i}.keras" for i in range(3)]
    procs = [subprocess.Popen([str(TLH), *map(str, cli_fit(root, out, epochs=1))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tlh_env(isolated_env))
             for out in outs[:2]]
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0 and quiet(err), err[-3000:]
        assert "features of" in out
    for f in (isolated_env / "scans").glob("*.json"):
        json.loads(f.read_text())  # whole, not interleaved
    features = sorted((isolated_env / "features").glob("*.npz"))
    assert features and not [p for p in isolated_env.rglob(".*") if p.is_file()]  # no temporary files left
    for f in features:
        with np.load(f) as z:
            assert len(z["labels"]) == len(z["features"])

    assert main(list(map(str, cli_fit(root, outs[2], epochs=1)))) == 0  # the third, in process
    third = capsys.readouterr()
    assert quiet(third.err) and "read from cache" in third.out
    for out in outs:
        assert load_model(out)[1]["class_names"] == ["blue", "red"]


def test_predict_json_in_a_real_process_prints_only_json(pets_model, image_folder, tmp_path, isolated_env):
    root = image_folder(classes=("cat", "dog"), per_class=1, size=16)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    files = [*image_files(root), notes]
    result = run_tlh("predict", pets_model, *files, "--json", cache=isolated_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.splitlines()) == 1
    out = json.loads(result.stdout)
    assert len(out["predictions"]) == 2 and out["skipped"] == {str(notes): "not an image"}
