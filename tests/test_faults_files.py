"""Odd files, odd folders, odd environments and wrong calls from a notebook: each named, none a traceback.

Complements test_faults.py (downloads, corrupt images, interrupted fits) with what a scan cannot
trust, file names that are not UTF-8, EXIF orientation, unusable cache folders and the argument
checks of the public helpers. Nothing here trains a model.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageOps

import tlhelpers.images as images_module
from tlhelpers import bases, data
from tlhelpers.builders import build_classifier, build_head
from tlhelpers.errors import CourseError, DatasetUnavailableError
from tlhelpers.features import extract_features
from tlhelpers.imagefiles import inspect_file
from tlhelpers.images import ImageSet, image_problem, load_images, scan_folder, to_dataset
from tlhelpers.offline import WeightsUnavailableError
from tlhelpers.saving import save_model

from conftest import image_files, write_image_folder


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def decoded(images, size=16, **kwargs):
    batches = list(to_dataset(images, image_size=size, batch_size=64, **kwargs))
    return np.concatenate([x.numpy() for x, _ in batches]), np.concatenate([y.numpy() for _, y in batches])


# --------------------------------------------------------------------------- what a scan cannot trust
def test_file_rewritten_in_place_with_same_size_and_mtime_is_read_again(image_folder):
    root = image_folder(per_class=3, size=24)
    assert not scan_folder(root, verbose=False).report.skipped
    victim = root / "red" / "red_000.jpg"
    st = victim.stat()
    good = victim.read_bytes()
    victim.write_bytes(good[: st.st_size // 2] + b"\0" * (st.st_size - st.st_size // 2))  # rewritten: same size...
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and the old modification time
    again = scan_folder(root, verbose=False)
    assert again.report.skipped == {"red/red_000.jpg": "corrupt"} and len(again) == 5
    x, _ = decoded(again)
    assert x.shape[0] == 5


def test_file_that_breaks_after_the_scan_keeps_batches_aligned_and_named_by_a_rescan(image_folder):
    import tensorflow as tf

    root = image_folder(per_class=3, size=24)
    images = scan_folder(root, verbose=False)
    (root / "blue" / "blue_001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken since the scan")
    ds = to_dataset(images, image_size=16, shuffle=True)
    assert ds.cardinality().numpy() == 1  # known: Keras shows a whole progress bar and warns of nothing
    with pytest.raises(tf.errors.OpError):
        list(ds)
    assert scan_folder(root, verbose=False).report.skipped == {"blue/blue_001.png": "not an image"}


def test_unreadable_file_is_skipped_and_named(image_folder):
    root = image_folder(per_class=3, size=24)
    (root / "red" / "locked.jpg").symlink_to("/proc/self/mem")  # reading it fails with EIO, even as root
    images = scan_folder(root, verbose=False)
    assert images.report.skipped == {"red/locked.jpg": "unreadable (Input/output error)"} and len(images) == 6
    assert "1 unreadable (Input/output error)" in str(images.report)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission_is_skipped(image_folder):
    root = image_folder(per_class=3, size=24)
    (root / "red" / "red_000.jpg").chmod(0)
    assert scan_folder(root, verbose=False).report.skipped == {"red/red_000.jpg": "unreadable (Permission denied)"}


def test_unreadable_subfolder_is_named_not_dropped(image_folder, monkeypatch):
    root = image_folder(per_class=3, size=24)
    write_image_folder(root / "red" / "holiday", classes=("more",), per_class=2, size=24)
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "more":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    images = scan_folder(root, verbose=False)
    assert images.report.skipped == {"red/holiday/more": "unreadable folder (Permission denied)"}
    assert len(images) == 6 and images.report.total == 7


def test_broken_link_fifo_and_linked_folder_are_named(image_folder, tmp_path):
    root = image_folder(per_class=3, size=24)
    (root / "red" / "moved.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(root / "blue" / "pipe.jpg")  # reading it would wait forever
    (root / "blue" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    images = scan_folder(root, verbose=False)
    assert images.report.skipped == {"red/moved.jpg": "broken link", "blue/pipe.jpg": "not a plain file",
                                     "blue/elsewhere": "link to a folder (not followed)"}
    assert len(images) == 6


def test_scan_of_a_file_says_it_is_a_file(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        scan_folder(tmp_path / "photo.jpg")


def test_scan_of_a_dataset_root_names_the_split_to_pass(tmp_path):
    root = tmp_path / "hymenoptera_data"
    for split in ("train", "val"):
        write_image_folder(root / split, classes=("ants", "bees"), per_class=1, size=16)
    with pytest.raises(ValueError, match=r"holds splits \(train, val\), not classes; .*hymenoptera_data/train"):
        scan_folder(root)


# --------------------------------------------------------------------------- file names that are not UTF-8
def test_latin1_file_and_class_names_are_scanned_loaded_and_reported(tmp_path, capsys):
    root = write_image_folder(tmp_path / "old_zip", classes=("red", "blue"), per_class=2, size=16)
    latin = os.fsdecode(b"caf\xe9")
    os.rename(root / "blue", root / latin)
    for i, f in enumerate(image_files(root)):
        f.rename(f.parent / os.fsdecode(b"photo \xe9t\xe9 %d" % i + f.suffix.encode()))
    (root / "red" / os.fsdecode(b"notes \xe9.jpg")).write_text("not a photo")
    images = scan_folder(root)
    assert images.class_names == [latin, "red"] and len(images) == 4
    said = capsys.readouterr().out
    assert "notes \\xe9.jpg" in said  # printable, not a UnicodeEncodeError
    x, _ = decoded(images)
    assert x.shape == (4, 16, 16, 3)
    assert load_images([images.paths[0]], image_size=16).shape == (1, 16, 16, 3)


# --------------------------------------------------------------------------- EXIF orientation
@pytest.fixture
def sideways_photo(tmp_path):
    """A portrait phone photo stored sideways: 40 x 20 pixels, left half red, and EXIF orientation 6."""
    pixels = np.zeros((20, 40, 3), dtype="uint8")
    pixels[:, :20] = (230, 20, 20)
    pixels[:, 20:] = (20, 20, 230)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return path


def test_exif_orientation_is_applied_by_load_images(sideways_photo):
    upright = np.asarray(ImageOps.exif_transpose(Image.open(sideways_photo)).convert("RGB").resize((16, 16)),
                         dtype="float32")
    assert upright[0, 8, 0] > 150 and upright[15, 8, 2] > 150  # turned right: red on top, blue below
    loaded = load_images([sideways_photo], image_size=16)[0]
    assert np.abs(loaded - upright).mean() < 12


def test_exif_orientation_is_applied_by_scan_and_to_dataset(sideways_photo, tmp_path):
    root = tmp_path / "phone"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "portrait.jpg").write_bytes(sideways_photo.read_bytes())
    images = scan_folder(root, verbose=False)
    assert images.orientations == [6, 6]
    x, _ = decoded(images)
    np.testing.assert_allclose(x[0], load_images([sideways_photo], image_size=16)[0], atol=1e-3)
    assert x[0][0, 8, 0] > 150 and x[0][15, 8, 2] > 150
    bare = ImageSet(images.paths, images.labels, images.class_names)  # built by hand: orientation read then
    np.testing.assert_allclose(decoded(bare)[0], x, atol=1e-3)


# --------------------------------------------------------------------------- very large images
def test_large_image_is_kept_with_one_line_instead_of_pil_warnings(image_folder, capsys):
    root = image_folder(per_class=2, size=16)
    side = 9500  # 90 MP: above PIL's warning threshold (89.5 MP), below its refusal (179 MP)
    raw = zlib.compress(b"\0" * ((side + 1) * side), 9)  # gray, every row filter 0 and black: about 90 kB
    (root / "red" / "poster.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b""))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("default")
        images = scan_folder(root)
    assert not [w for w in said if issubclass(w.category, Image.DecompressionBombWarning)]
    assert len(images) == 5 and images.report.large == {"red/poster.png": pytest.approx(90.25)}
    line = capsys.readouterr().out.strip()
    assert len(line.splitlines()) == 1 and "kept 1 very large image(s)" in line and "90 MP" in line


def test_image_problem_names_folders_and_missing_files(tmp_path):
    assert image_problem(tmp_path) == "a folder"
    assert image_problem(tmp_path / "gone.jpg") == "does not exist"
    (tmp_path / "moved.jpg").symlink_to(tmp_path / "gone.jpg")
    assert image_problem(tmp_path / "moved.jpg") == "broken link"


# --------------------------------------------------------------------------- wrong calls from a notebook
@pytest.fixture
def small_set(image_folder):
    return scan_folder(image_folder(per_class=2, size=16), verbose=False)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"image_size": "160"}, TypeError, ["load_base: expected `image_size` to be an integer of at least 32",
                                         "received image_size='160' (str)"]),
    ({"image_size": 32.5}, TypeError, ["`image_size`", "received image_size=32.5 (float)"]),
    ({"image_size": 16}, ValueError, ["at least 32", "received image_size=16"]),
    ({"image_size": True}, TypeError, ["received image_size=True (bool)"]),
    ({"weights": 3}, TypeError, ["expected `weights` to be 'imagenet', 'offline', None or the path"]),
])
def test_load_base_checks_its_arguments(kwargs, error, words):
    with pytest.raises(error) as err:
        bases.load_base("mobilenet_v2", **{"weights": None, **kwargs})
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_load_base_with_a_model_instead_of_a_name():
    with pytest.raises(TypeError, match="expected `arch` to be the name of a base"):
        bases.load_base(keras.Sequential())


@pytest.mark.parametrize("base", ["vgg16", "keras model"])
def test_extract_features_needs_a_base(base, small_set):
    base = keras.Sequential([keras.Input((16, 16, 3))]) if base == "keras model" else base
    with pytest.raises(TypeError, match=r"extract_features: expected `base` to be a Base \(from load_base\); "
                                        r"received base=.*load_base\('vgg16'"):
        extract_features(base, small_set)


def test_extract_features_needs_an_image_set(tiny_base, small_set):
    with pytest.raises(TypeError, match="expected `images` to be an ImageSet"):
        extract_features(tiny_base, small_set.paths)
    with pytest.raises(ValueError, match="expected `batch_size` to be an integer of at least 1; received batch_size=0"):
        extract_features(tiny_base, small_set, batch_size=0)


def test_build_classifier_and_head_check_their_arguments(tiny_base):
    with pytest.raises(TypeError, match="build_classifier: expected `base` to be a Base"):
        build_classifier("mobilenet_v2", 2)
    with pytest.raises(TypeError, match="expected `n_classes` to be an integer"):
        build_classifier(tiny_base, "2")
    with pytest.raises(ValueError, match="received n_classes=1"):
        build_head((2, 2, 8), 1)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"image_size": 0}, ValueError, "to_dataset: expected `image_size` to be an integer of at least 1"),
    ({"image_size": "96"}, TypeError, "received image_size='96' (str)"),
    ({"image_size": 16, "batch_size": -1}, ValueError, "received batch_size=-1"),
])
def test_to_dataset_checks_its_arguments(kwargs, error, words, small_set):
    with pytest.raises(error) as err:
        to_dataset(small_set, **kwargs)
    assert words in str(err.value)


def test_to_dataset_needs_an_image_set(small_set):
    with pytest.raises(TypeError, match="to_dataset: expected `images` to be an ImageSet"):
        to_dataset(small_set.paths, image_size=16)


def test_load_images_checks_its_arguments(small_set):
    one = small_set.paths[0]
    with pytest.raises(TypeError, match=r"expected `paths` to be a list of image paths; .*Wrap one path in a list"):
        load_images(one, image_size=16)
    with pytest.raises(ValueError, match="received image_size=-3"):
        load_images([one], image_size=-3)
    with pytest.raises(TypeError, match="expected every item of `paths` to be a path"):
        load_images([one, 7], image_size=16)
    with pytest.raises(ValueError, match="at least one image path"):
        load_images([], image_size=16)


@pytest.mark.parametrize("args, error, words", [
    ((["a.jpg", "b.jpg"], [0, 2], ["cat", "dog"]), ValueError, "expected labels between 0 and 1 (one per class name); received label 2"),
    ((["a.jpg", "b.jpg"], [0, -1], ["cat", "dog"]), ValueError, "received label -1"),
    ((["a.jpg", "b.jpg"], [0.0, 1.0], ["cat", "dog"]), TypeError, "integer class indices"),
    ((["a.jpg", "b.jpg"], ["cat", "dog"], ["cat", "dog"]), TypeError, "class_names.index"),
    ((["a.jpg", "b.jpg"], [0, 1], ["cat", "cat"]), ValueError, "class names must be unique"),
    ((["a.jpg", "b.jpg"], [0, 1], "cd"), TypeError, "expected `class_names` to be a list"),
    (("a.jpg", [0], ["cat", "dog"]), TypeError, "Wrap one path in a list"),
    ((["a.jpg"], [0, 1], ["cat", "dog"]), ValueError, "one label per path (1)"),
])
def test_image_set_refuses_inconsistent_labels_and_classes(args, error, words):
    with pytest.raises(error) as err:
        ImageSet(*args)
    assert words in str(err.value)


def test_save_model_refuses_class_names_that_do_not_match_the_outputs(tmp_path):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    with pytest.raises(ValueError, match=r"the model has 3 outputs but 2 class names were given"):
        save_model(model, tmp_path / "m.keras", class_names=["cat", "dog"])
    with pytest.raises(TypeError, match="expected `class_names` to be a list"):
        save_model(model, tmp_path / "m.keras", class_names="cat dog fox")
    with pytest.raises(ValueError, match="distinct strings"):
        save_model(model, tmp_path / "m.keras", class_names=["cat", "cat", "dog"])
    with pytest.raises(TypeError, match="expected `model` to be a keras.Model"):
        save_model("model", tmp_path / "m.keras", class_names=["a", "b", "c"])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- environments that do not work
@pytest.fixture
def blocked(tmp_path):
    """A path no one can create a folder at (it lies under a regular file), root included."""
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file" / "cache"


def test_unwritable_cache_is_named_once_and_the_scan_goes_on(blocked, image_folder, monkeypatch, capsys):
    monkeypatch.setenv("TL_CACHE_DIR", str(blocked))
    monkeypatch.setattr(data, "_CACHE_WARNED", set())
    root = image_folder(per_class=2, size=16)
    assert len(scan_folder(root, verbose=False)) == 4
    assert len(scan_folder(root, verbose=False)) == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [f"tlhelpers: TL_CACHE_DIR={blocked} cannot be written (Not a directory: {blocked}/scans); set "
                   "TL_CACHE_DIR to a folder you can write to; continuing without caching folder scans."]


def test_download_into_an_unwritable_cache_names_the_variable(blocked, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(blocked))
    with pytest.raises(DatasetUnavailableError, match=f"cannot download hymenoptera_data: TL_CACHE_DIR={blocked}"):
        data.fetch("hymenoptera_data", progressbar=False)


def test_unwritable_keras_home_is_named(blocked, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(blocked))
    with pytest.raises(WeightsUnavailableError, match=f"KERAS_HOME={blocked} cannot be written") as err:
        bases.load_base("efficientnet_lite0", image_size=32, verbose=False)
    assert "set KERAS_HOME to a folder you can write to" in str(err.value)


def test_missing_dataset_in_a_notebook_is_a_short_error(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    import pooch

    monkeypatch.setattr(pooch, "retrieve", no_network)
    with pytest.raises(DatasetUnavailableError) as err:
        data.fetch("hymenoptera_data", progressbar=False)
    message = str(err.value)
    assert "could not download hymenoptera_data" in message and "TL_DATA_DIR" in message and "network" in message
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, CourseError)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chain into pooch
    assert err.value._render_traceback_() == [f"DatasetUnavailableError: {message}"]  # what Jupyter shows


def test_unwritable_data_dir_is_named_and_the_download_kept(blocked, monkeypatch, tmp_path):
    archive = tmp_path / "hymenoptera_data.zip"
    archive.write_bytes(b"PK")
    import pooch

    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: str(archive))
    monkeypatch.setenv("TL_DATA_DIR", str(blocked))
    with pytest.raises(DatasetUnavailableError, match=f"TL_DATA_DIR={blocked} cannot be written"):
        data.fetch("hymenoptera_data", progressbar=False)
    assert archive.exists()  # not mistaken for a damaged download


def test_skip_report_is_one_printable_line():
    from tlhelpers.imageset import SkipReport

    report = SkipReport(total=3, skipped={os.fsdecode(b"r\xe9d/x.jpg"): "corrupt"})
    text = str(report)
    assert "\n" not in text and "r\\xe9d/x.jpg" in text
    text.encode("utf-8")  # printable on any terminal


def test_decoding_a_sideways_png_without_exif_is_unchanged(tmp_path):
    pixels = np.zeros((10, 20, 3), dtype="uint8")
    pixels[:, :10] = 200
    Image.fromarray(pixels).save(tmp_path / "plain.png")
    loaded = load_images([tmp_path / "plain.png"], image_size=20)[0]
    assert loaded[10, 2, 0] > 150 and loaded[10, 17, 0] < 50  # still bright on the left


def test_missing_imagenet_weights_are_a_short_error_in_a_notebook(monkeypatch):
    real = bases.construct

    def construct(arch, weights, image_size, **kwargs):
        if weights == "imagenet":
            raise OSError("URL fetch failure on https://storage.googleapis.com/...: no network")
        return real(arch, weights, image_size, **kwargs)

    monkeypatch.setattr(bases, "construct", construct)
    with pytest.raises(WeightsUnavailableError) as err:
        bases.load_base("vgg16", image_size=32, allow_fallback=False)
    message = str(err.value)
    assert "Or use the base efficientnet_lite0" in message and "TL_PROFILE" not in message  # no advice in a circle
    assert err.value._render_traceback_() == [f"WeightsUnavailableError: {message}"]


def test_scan_folder_checks_its_arguments(image_folder):
    root = image_folder(per_class=1, size=16)
    with pytest.raises(TypeError, match="scan_folder: expected `root` to be a folder path"):
        scan_folder(123)
    with pytest.raises(TypeError, match=r"expected `class_names` to be a list of class folder names or None; "
                                        r"received class_names='red' \(str\)"):
        scan_folder(root, class_names="red")


def test_image_set_sampling_checks_its_arguments(small_set):
    with pytest.raises(ValueError, match="ImageSet.sample: expected `per_class` to be an integer of at least 0"):
        small_set.sample(-1)
    with pytest.raises(TypeError, match="received n='3' \\(str\\)"):
        small_set.subset("3")
    assert len(small_set.sample(np.int64(1))) == 2  # NumPy integers are integers


def test_damaged_feature_cache_is_recomputed_not_fatal(tiny_base, small_set, isolated_env):
    first, _ = extract_features(tiny_base, small_set, verbose=False)
    (cached,) = (isolated_env / "features").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])  # a disk that filled up, an interrupted copy
    again, labels = extract_features(tiny_base, small_set, verbose=False)
    np.testing.assert_allclose(again, first, atol=1e-5)
    assert len(labels) == len(small_set)


def test_load_model_of_a_folder_says_it_is_a_folder(tmp_path):
    from tlhelpers.saving import load_model

    (tmp_path / "m.keras").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder; pass the .keras file"):
        load_model(tmp_path / "m.keras")


@pytest.mark.parametrize("value", [0, 9, 255])
def test_nonsense_exif_orientation_leaves_the_image_as_stored(value, tmp_path):
    pixels = np.zeros((20, 40, 3), dtype="uint8")
    pixels[:, :20] = 230
    exif = Image.Exif()
    exif[0x0112] = value
    Image.fromarray(pixels).save(tmp_path / "odd.jpg", quality=95, exif=exif)
    loaded = load_images([tmp_path / "odd.jpg"], image_size=16)[0]
    assert loaded[8, 2, 0] > 150 and loaded[8, 13, 0] < 60  # bright on the left, as stored


def test_data_folder_that_cannot_be_listed_is_named(image_folder, monkeypatch):
    root = image_folder(per_class=1, size=16)
    real = os.listdir

    def listdir(path="."):
        if Path(path) == root:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    with pytest.raises(ValueError, match=f"cannot read folder {root} \\(Permission denied\\); check its permissions"):
        scan_folder(root)


def test_damaged_exif_block_costs_no_warning_and_no_image(image_folder):
    root = image_folder(per_class=2, size=16)
    Image.new("RGB", (20, 20), (200, 30, 30)).save(root / "red" / "camera.jpg",
                                                   exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 40)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        images = scan_folder(root, verbose=False)
        x = load_images([root / "red" / "camera.jpg"], image_size=16)
    assert [str(w.message) for w in said] == []
    assert len(images) == 5 and images.orientations[images.paths.index(str(root / "red" / "camera.jpg"))] == 1
    assert x[0, 8, 8, 0] > 150


def test_two_class_folders_that_are_one_folder_are_refused(image_folder):
    root = image_folder(per_class=2, size=16)
    (root / "crimson").symlink_to(root / "red", target_is_directory=True)
    with pytest.raises(ValueError, match="class folders 'crimson' and 'red' .* are the same folder"):
        scan_folder(root)


def test_interrupted_scan_keeps_what_it_read(image_folder, monkeypatch):
    root = image_folder(per_class=4, size=16)
    last = sorted(image_files(root))[-1]  # files are read in order: Ctrl-C arrives at the last one

    def interrupted(path):
        if path == last:
            raise KeyboardInterrupt
        return inspect_file(path)

    monkeypatch.setattr(images_module, "_inspect", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan_folder(root, verbose=False)
    again = []
    monkeypatch.setattr(images_module, "_inspect", lambda path: again.append(path) or inspect_file(path))
    assert len(scan_folder(root, verbose=False)) == 8
    assert again == [last]  # the seven read before the interruption were not read again


def test_a_newline_in_a_file_name_keeps_messages_on_one_line(image_folder):
    root = image_folder(per_class=2, size=16)
    (root / "red" / "two\nlines.jpg").write_text("not a photo")
    images = scan_folder(root, verbose=False)
    assert "\n" not in str(images.report) and "two\\nlines.jpg" in str(images.report)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"val_fraction": 1.2}, ValueError, "received val_fraction=1.2"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, "that leave images to train on"),
    ({"val_fraction": "0.2"}, TypeError, "expected `val_fraction` to be a number between 0 and 1"),
])
def test_load_splits_checks_its_fractions_before_downloading(kwargs, error, words, monkeypatch):
    from tlhelpers import splits

    monkeypatch.setattr(splits, "fetch", lambda *a, **k: pytest.fail("fetched before checking the arguments"))
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        splits.load_splits("trashnet", **kwargs)


def test_split_helpers_need_an_image_set(small_set):
    from tlhelpers.splits import deduplicate, stratified_split

    with pytest.raises(TypeError, match="deduplicate: expected `images` to be an ImageSet"):
        deduplicate(small_set.paths)
    with pytest.raises(TypeError, match="stratified_split: expected `fractions` to be a dict"):
        stratified_split(small_set, [0.8, 0.2])
