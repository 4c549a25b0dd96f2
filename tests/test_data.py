"""Datasets: scanning skips what cannot be read, splits never leak a file, downloads are checked."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tlhelpers.data as data
import tlhelpers.images as images_module
from tlhelpers.data import DatasetInfo, extract_archive, fetch
from tlhelpers.images import ImageSet, load_images, scan_folder, to_dataset
from tlhelpers.splits import deduplicate, load_splits, stratified_split

from conftest import image_files, write_image_folder


def dataset_pixels(images: ImageSet, size: int) -> np.ndarray:
    return np.concatenate([x.numpy() for x, _ in to_dataset(images, image_size=size, batch_size=8)])


def plant_bad_files(root: Path) -> dict:
    """A zero-byte file, a text file named .jpg and a JPEG cut in half; returns relative path -> reason."""
    (root / "red" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "notes.jpg").write_text("these are my notes, not a photo\n")
    # a 48-px JPEG cut in half: the header is whole, the image data ends early (only a full decode sees it)
    write_image_folder(root.parent / "whole", classes=("blue",), per_class=1, size=48, formats=("jpg",))
    good = (root.parent / "whole" / "blue" / "blue_000.jpg").read_bytes()
    (root / "blue" / "cut.jpg").write_bytes(good[: len(good) // 2])
    return {"red/empty.jpg": "zero-byte", "blue/notes.jpg": "not an image", "blue/cut.jpg": "corrupt"}


# --------------------------------------------------------------------------- scanning
def test_scan_skips_and_reports_unreadable_files(image_folder, capsys):
    root = image_folder(per_class=4)
    bad = plant_bad_files(root)
    images = scan_folder(root)
    assert images.class_names == ["blue", "red"]
    assert images.counts() == {"blue": 4, "red": 4}
    assert not any(Path(p).name in {"empty.jpg", "notes.jpg", "cut.jpg"} for p in images.paths)
    assert images.report.total == 11
    assert images.report.skipped == bad
    line = str(images.report)
    assert "\n" not in line
    assert line.startswith("skipped 3 of 11 files")
    for reason in ("1 zero-byte", "1 not an image", "1 corrupt"):
        assert reason in line
    assert capsys.readouterr().out.strip() == f"images: {line}"


def test_scan_of_a_clean_folder_says_none_skipped(image_folder):
    images = scan_folder(image_folder(per_class=3), verbose=False)
    assert str(images.report) == "6 files read, none skipped."
    assert len(images.digests) == len(images) == 6


def test_second_scan_reads_the_cache_and_sees_changes(image_folder, monkeypatch):
    root = image_folder(per_class=3)
    first = scan_folder(root, verbose=False)
    with monkeypatch.context() as m:
        m.setattr(images_module, "_inspect", lambda path: pytest.fail(f"{path} inspected again"))
        again = scan_folder(root, verbose=False)
    assert again.paths == first.paths and again.digests == first.digests
    (root / "red" / "red_001.png").write_bytes(b"")  # the file changed: it must be looked at again
    changed = scan_folder(root, verbose=False)
    assert changed.report.skipped == {"red/red_001.png": "zero-byte"}


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK"])
def test_unusual_modes_load_as_rgb_with_the_right_colour(tmp_path, mode):
    red = (230, 20, 20)
    root = tmp_path / "modes"
    for cls, colour in (("red", red), ("blue", (20, 20, 230))):
        (root / cls).mkdir(parents=True)
        rgb = Image.new("RGB", (20, 20), colour)
        if mode == "L":
            img, suffix = rgb.convert("L"), "png"
        elif mode == "P":
            img, suffix = rgb.convert("P", palette=Image.Palette.ADAPTIVE), "png"
        elif mode == "RGBA":
            img, suffix = rgb.convert("RGBA"), "png"
            img.putalpha(90)
        else:
            img, suffix = rgb.convert("CMYK"), "jpg"
        img.save(root / cls / f"{cls}.{suffix}", quality=95)
        assert Image.open(root / cls / f"{cls}.{suffix}").mode == mode
    images = scan_folder(root, verbose=False)
    assert len(images) == 2 and not images.report.skipped
    expected = np.array(red if mode != "L" else [Image.new("RGB", (1, 1), red).convert("L").getpixel((0, 0))] * 3)
    red_path = [p for p in images.paths if Path(p).parent.name == "red"]
    from_dataset = dataset_pixels(images.take([images.paths.index(red_path[0])]), 16)
    from_files = load_images(red_path, image_size=16)
    for x in (from_dataset, from_files):
        assert x.shape == (1, 16, 16, 3) and x.dtype == np.float32
        assert np.abs(x[0].reshape(-1, 3).mean(axis=0) - expected).max() < 6, x[0, 8, 8]
    np.testing.assert_allclose(from_dataset, from_files)


def test_load_images_refuses_unreadable_files_with_advice(image_folder):
    root = image_folder(per_class=2)
    plant_bad_files(root)
    for name in ("red/empty.jpg", "blue/notes.jpg", "blue/cut.jpg", "red/missing.jpg"):
        with pytest.raises(ValueError) as err:
            load_images([root / "red" / "red_000.jpg", root / name], image_size=16)
        assert name.split("/")[1] in str(err.value) and "pass a JPEG" in str(err.value)


def test_to_dataset_yields_labels_in_order(image_folder):
    images = scan_folder(image_folder(per_class=3), verbose=False)
    labels = np.concatenate([y.numpy() for _, y in to_dataset(images, image_size=16, batch_size=4)])
    np.testing.assert_array_equal(labels, images.labels)
    x = dataset_pixels(images, 16)
    assert x.shape == (6, 16, 16, 3) and x.min() >= 0 and x.max() <= 255
    # blue images (label 0) are bluer than red ones (label 1): the classes are separable
    blueness = x[..., 2].mean(axis=(1, 2)) - x[..., 0].mean(axis=(1, 2))
    assert (blueness[images.labels == 0] > 100).all() and (blueness[images.labels == 1] < -100).all()


def test_to_dataset_refuses_an_empty_set():
    with pytest.raises(ValueError, match="empty"):
        to_dataset(ImageSet([], [], ["a", "b"]), image_size=16)


# --------------------------------------------------------------------------- scan errors
def one_line_with_advice(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert ";" in message  # "what was wrong; what to do"
    return message


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        scan_folder(tmp_path / "nowhere")
    message = one_line_with_advice(err)
    assert "nowhere" in message and "one subfolder per class" in message


def test_fewer_than_two_classes(image_folder):
    with pytest.raises(ValueError) as err:
        scan_folder(image_folder(classes=("red",), per_class=2))
    message = one_line_with_advice(err)
    assert "1 class folder" in message and "at least two" in message


def test_class_folder_without_readable_images(image_folder):
    root = image_folder(per_class=2)
    (root / "green").mkdir()
    (root / "green" / "readme.jpg").write_text("nothing to see")
    with pytest.raises(ValueError) as err:
        scan_folder(root)
    message = one_line_with_advice(err)
    assert "green" in message and "add images or remove the folder" in message


def test_requested_class_without_folder(image_folder):
    with pytest.raises(ValueError) as err:
        scan_folder(image_folder(per_class=2), class_names=["red", "cats"])
    message = one_line_with_advice(err)
    assert "cats" in message and "blue" in message


# --------------------------------------------------------------------------- splitting
FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}


@pytest.fixture
def uneven_images(image_folder):
    return scan_folder(image_folder(classes=("red", "blue", "green"), per_class={"red": 11, "blue": 7, "green": 5},
                                    size=16), verbose=False)


def test_split_is_stratified_and_complete(uneven_images):
    parts = stratified_split(uneven_images, FRACTIONS, seed=0)
    assert sorted(p for part in parts.values() for p in part.paths) == sorted(uneven_images.paths)
    for name, part in parts.items():
        for cls, n in uneven_images.counts().items():
            assert abs(part.counts()[cls] - FRACTIONS[name] * n) <= 1, (name, cls, part.counts())


def test_split_is_seeded(uneven_images):
    a = stratified_split(uneven_images, FRACTIONS, seed=0)
    b = stratified_split(uneven_images, FRACTIONS, seed=0)
    c = stratified_split(uneven_images, FRACTIONS, seed=1)
    assert all(a[k].paths == b[k].paths for k in FRACTIONS)
    assert any(a[k].paths != c[k].paths for k in FRACTIONS)


def test_split_never_puts_identical_files_in_two_parts(image_folder):
    root = image_folder(per_class=8, size=16)
    # copies under other names: within a class, and one picture filed under both classes
    reds, blues = image_files(root / "red"), image_files(root / "blue")
    for i in range(4):
        shutil.copy(reds[i], root / "red" / f"copy_{i}{reds[i].suffix}")
        shutil.copy(blues[i + 1], root / "blue" / f"zz_copy_{i}{blues[i + 1].suffix}")
    shutil.copy(reds[5], root / "blue" / f"filed_twice{reds[5].suffix}")
    images = scan_folder(root, verbose=False)
    assert len(set(images.digests)) == len(images) - 9
    classes_of = {}
    for d, y in zip(images.digests, images.labels):
        classes_of.setdefault(d, set()).add(int(y))
    kept_whole = {p for p, d in zip(images.paths, images.digests) if len(classes_of[d]) == 1}
    assert len(kept_whole) == len(images) - 2
    for seed in range(6):
        parts = stratified_split(images, FRACTIONS, seed=seed)
        seen = {}
        for name, part in parts.items():
            for d in set(part.digests):
                assert seen.setdefault(d, name) == name, f"seed {seed}: content in {seen[d]} and {name}"
        # copies within a class travel together: none of them is dropped
        assert kept_whole <= {p for part in parts.values() for p in part.paths}, f"seed {seed}"


def test_split_rejects_bad_fractions(uneven_images):
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(uneven_images, {"train": 0.8, "test": 0.3})


def test_deduplicate_keeps_one_of_each_copy(image_folder):
    root = image_folder(per_class=3, size=16)
    shutil.copy(root / "red" / "red_000.jpg", root / "red" / "again.jpg")
    shutil.copy(root / "red" / "red_000.jpg", root / "red" / "and_again.jpg")
    images = scan_folder(root, verbose=False)
    unique, removed = deduplicate(images)
    assert removed == 2 and len(unique) == 6
    assert len(set(unique.digests)) == len(unique)
    assert unique.report is images.report
    assert sum(Path(p).read_bytes() == (root / "red" / "red_000.jpg").read_bytes() for p in unique.paths) == 1


def test_sample_is_stratified_and_seeded(uneven_images):
    s = uneven_images.sample(per_class=6, seed=3)
    assert s.counts() == {"red": 6, "blue": 6, "green": 5}
    assert set(s.paths) <= set(uneven_images.paths)
    assert all(uneven_images.labels[uneven_images.paths.index(p)] == y for p, y in zip(s.paths, s.labels))
    assert s.paths == uneven_images.sample(per_class=6, seed=3).paths
    assert s.paths != uneven_images.sample(per_class=6, seed=4).paths
    assert uneven_images.sample(None) is uneven_images


# --------------------------------------------------------------------------- fetch and archives
def tiny_info(name, url="http://127.0.0.1:9/none.zip", known_hash=None, official_splits=None):
    return DatasetInfo(name=name, url=url, known_hash=known_hash, layout=name, extract_to=".",
                       official_splits=official_splits or {}, description="test set", license="CC0")


def no_download(*args, **kwargs):
    raise AssertionError("pooch.retrieve was called")


def test_fetch_uses_tl_data_dir_without_downloading(tmp_path, monkeypatch):
    import pooch

    home = tmp_path / "datasets"
    write_image_folder(home / "hymenoptera_data" / "train", classes=("ants", "bees"), per_class=2, size=16)
    write_image_folder(home / "hymenoptera_data" / "val", classes=("ants", "bees"), per_class=1, size=16)
    monkeypatch.setenv("TL_DATA_DIR", str(home))
    monkeypatch.setattr(pooch, "retrieve", no_download)
    root = fetch("hymenoptera_data")
    assert root == home / "hymenoptera_data"
    assert sorted(p.name for p in root.iterdir()) == ["train", "val"]


def test_fetch_unknown_dataset_lists_the_registry():
    with pytest.raises(ValueError) as err:
        fetch("imagenet21k")
    assert all(name in str(err.value) for name in data.REGISTRY)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 (free port) serving tmp_path/www; yields (folder, base url)."""
    www = tmp_path / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def make_zip(path: Path, source: Path, prefix: str) -> str:
    """Zip `source` as `prefix/...` (plus a __MACOSX folder, as Mac archives have); return the sha256."""
    with zipfile.ZipFile(path, "w") as zf:
        for f in image_files(source):
            zf.write(f, f"{prefix}/{f.relative_to(source)}")
        zf.writestr("__MACOSX/._junk", b"resource fork")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.rglob(".extract-*")) if folder.exists() else []


def test_fetch_downloads_verifies_and_extracts(tmp_path, monkeypatch, local_server, isolated_env):
    www, url = local_server
    src = write_image_folder(tmp_path / "src", per_class=3, size=16)
    sha = make_zip(www / "toyset.zip", src, "toyset")
    monkeypatch.setitem(data.REGISTRY, "toyset", tiny_info("toyset", f"{url}/toyset.zip", f"sha256:{sha}"))
    root = fetch("toyset", progressbar=False)
    assert root == isolated_env / "datasets" / "toyset"
    assert sorted(p.name for p in root.iterdir()) == ["blue", "red"]
    assert not (isolated_env / "datasets" / "__MACOSX").exists()
    assert leftovers(isolated_env) == []
    images = scan_folder(root, verbose=False)
    assert images.counts() == {"blue": 3, "red": 3}
    assert sorted(images.digests) == sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in image_files(src))
    # the second call finds the folder and does not download again
    monkeypatch.setattr("pooch.retrieve", no_download)
    assert fetch("toyset") == root


def test_fetch_with_wrong_checksum_leaves_no_dataset(tmp_path, monkeypatch, local_server, isolated_env):
    www, url = local_server
    make_zip(www / "toyset.zip", write_image_folder(tmp_path / "src", per_class=2, size=16), "toyset")
    monkeypatch.setitem(data.REGISTRY, "toyset", tiny_info("toyset", f"{url}/toyset.zip", "sha256:" + "0" * 64))
    with pytest.raises(RuntimeError) as err:
        fetch("toyset", progressbar=False)
    message = str(err.value)
    assert "checksum" in message and "\n" not in message
    assert not (isolated_env / "datasets" / "toyset").exists()
    assert not (isolated_env / "downloads" / "toyset.zip").exists()  # a bad download is not kept
    assert leftovers(isolated_env) == []


def test_fetch_unreachable_server_says_what_to_do(monkeypatch, local_server):
    _, url = local_server
    monkeypatch.setitem(data.REGISTRY, "toyset", tiny_info("toyset", f"{url}/missing.zip"))
    with pytest.raises(RuntimeError) as err:
        fetch("toyset", progressbar=False)
    assert "TL_DATA_DIR" in str(err.value) and "toyset/" in str(err.value)


def test_extract_archive_corrupt_member_leaves_nothing(tmp_path, image_folder):
    src = image_folder(per_class=2, size=16)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in image_files(src):
            zf.write(f, f"set/{f.relative_to(src)}")
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        last = zf.infolist()[-1]
    middle = last.header_offset + 30 + len(last.filename) + last.file_size // 2
    raw[middle:middle + 8] = bytes(b ^ 0xFF for b in raw[middle:middle + 8])  # bad CRC in the last member
    archive.write_bytes(bytes(raw))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "other_dataset").mkdir()
    with pytest.raises(zipfile.BadZipFile):
        extract_archive(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["other_dataset"]


def test_extract_archive_non_archive_leaves_nothing(tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(b"<html>rate limited</html>" * 40)
    dest = tmp_path / "dest"
    with pytest.raises(RuntimeError, match="neither a zip nor a tar"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []


def test_extract_archive_tar_replaces_an_old_copy(tmp_path, image_folder):
    import tarfile

    src = image_folder(per_class=2, size=16)
    archive = tmp_path / "set.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="set")
    dest = tmp_path / "dest"
    (dest / "set" / "stale").mkdir(parents=True)
    extract_archive(archive, dest)
    assert sorted(p.name for p in (dest / "set").iterdir()) == ["blue", "red"]
    assert len(image_files(dest / "set")) == 4 and leftovers(dest) == []


def test_load_splits_removes_training_copies_of_test_files(tmp_path, monkeypatch, capsys, isolated_env):
    home = tmp_path / "datasets"
    write_image_folder(home / "toy" / "train", per_class=10, size=16, seed=1)
    write_image_folder(home / "toy" / "val", per_class=3, size=16, seed=2)
    leaked = home / "toy" / "train" / "red" / "red_003.png"
    shutil.copy(leaked, home / "toy" / "val" / "red" / "from_train.png")
    monkeypatch.setenv("TL_DATA_DIR", str(home))
    monkeypatch.setitem(data.REGISTRY, "toy", tiny_info("toy", official_splits={"train": "train", "test": "val"}))
    monkeypatch.setattr("pooch.retrieve", no_download)
    parts = load_splits("toy", seed=0, val_fraction=0.2)
    assert set(parts) == {"train", "validation", "test"}
    assert len(parts["test"]) == 7 and str(home / "toy" / "val" / "red" / "from_train.png") in parts["test"].paths
    fitting = parts["train"].paths + parts["validation"].paths
    assert str(leaked) not in fitting
    assert len(fitting) == 19
    test_digests = set(parts["test"].digests)
    assert not test_digests & set(parts["train"].digests)
    assert not test_digests & set(parts["validation"].digests)
    assert not set(parts["train"].digests) & set(parts["validation"].digests)
    assert parts["validation"].counts() == {"blue": 2, "red": 2}
    assert "1 training files identical to test files removed" in capsys.readouterr().out
    assert (isolated_env / "splits" / "toy-seed0.json").is_file()


def test_load_splits_without_official_split_uses_fractions(tmp_path, monkeypatch):
    home = tmp_path / "datasets"
    write_image_folder(home / "toy", per_class=10, size=16)
    shutil.copy(home / "toy" / "red" / "red_000.jpg", home / "toy" / "red" / "dup.jpg")
    monkeypatch.setenv("TL_DATA_DIR", str(home))
    monkeypatch.setitem(data.REGISTRY, "toy", tiny_info("toy"))
    parts = load_splits("toy", seed=0, val_fraction=0.2, test_fraction=0.2, verbose=False)
    assert sum(len(p) for p in parts.values()) == 20  # the duplicate is gone
    assert {k: v.counts()["red"] for k, v in parts.items()} == {"train": 6, "validation": 2, "test": 2}
    digests = [d for p in parts.values() for d in p.digests]
    assert len(digests) == len(set(digests))
