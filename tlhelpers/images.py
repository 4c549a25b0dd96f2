"""Folders of images: scanning them into ImageSets (skipping unreadable files) and decoding them for Keras.

A folder holds one subfolder per class. `scan_folder` reads every file once, fully decoding it
to catch what TensorFlow could not read, and caches the verdict by path, size, mtime, ctime and
inode (a file rewritten in place with its old size and mtime is still read again);
`to_dataset` and `load_images` decode, turn upright (EXIF orientation) and resize the files the
same way for training and prediction.

Example:
    >>> images = scan_folder("my_photos")
    >>> ds = to_dataset(images.sample(per_class=100, seed=0), image_size=96, shuffle=True)
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ._atomic import write_json_atomic
from .data import cache_home, cache_write_failed
from .errors import check_int, check_paths, check_type, shown
from .imagefiles import IMAGE_SUFFIXES, SUPPORTED_FORMATS, class_files, class_folders, file_orientation, image_problem
from .imagefiles import inspect_file as _inspect
from .imageset import ImageSet, SkipReport

__all__ = ["IMAGE_SUFFIXES", "SUPPORTED_FORMATS", "ImageSet", "SkipReport", "class_folders", "image_problem",
           "load_images", "scan_folder", "to_dataset", "example_photos"]

SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")


# --------------------------------------------------------------------------- scanning
def _class_names(root: Path, class_names: list | None) -> list:
    """The classes to scan: `class_names` (each must have a folder) or every class folder; at least two."""
    found = class_folders(root)
    if class_names is not None and (isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__")):
        raise TypeError(f"scan_folder: expected `class_names` to be a list of class folder names or None; received "
                        f"class_names={class_names!r} ({type(class_names).__name__}).")
    if class_names is None:
        refuse_split_folders(root, found)
        class_names = found
    else:
        missing = [c for c in class_names if c not in found]
        if missing:
            raise ValueError(f"{root} has no folder for class(es) {', '.join(missing)}; it has: {', '.join(found)}.")
    if len(class_names) < 2:
        raise ValueError(
            f"{root} has {len(class_names)} class folder(s); put the images of each class (at least two) "
            "in their own subfolder."
        )
    return class_names


def refuse_split_folders(root: Path, found: list | None = None, *, prefer=("train", "training")) -> None:
    """A dataset root (train/, val/, ... each holding class folders) is not a folder of classes: say which to pass.

    `prefer` names the split to suggest first (training for fitting; test or val for evaluating).
    """
    found = [f for f in (class_folders(root) if found is None else found) if f != "__MACOSX"]
    splits = [f for f in found if f.lower() in SPLIT_NAMES]
    if not splits or len(splits) != len(found):
        return
    try:
        if not all(class_folders(root / f) for f in splits):
            return
    except (OSError, ValueError):
        return
    pick = next((f for p in prefer for f in splits if f.lower() == p), splits[0])
    raise ValueError(f"{shown(root)} holds splits ({', '.join(splits)}), not classes; pass the split to use, "
                     f"e.g. {shown(root / pick)} (a folder with one subfolder per class).")


def _scan_cache_file(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_home() / "scans" / f"{root.name}-{key}.json"


def _inspected(root: Path, files: list, verbose: bool) -> dict:
    """{relative path: [size, mtime_ns, ctime_ns, inode, problem, digest, orientation, megapixels]} of `files`.

    Only files whose size, mtime, ctime or inode changed since the last scan are read again: a file
    rewritten in place keeps none of its old ctime, even when a sync tool restores its size and mtime.
    """
    cache_file = _scan_cache_file(root)
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    todo = []
    for p, _ in files:
        rel = str(p.relative_to(root))
        try:
            st = p.stat()
        except OSError as err:
            cache[rel] = [None, None, None, None, f"unreadable ({err.strerror})", "", 1, 0.0]
            continue
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = cache.get(rel)
        if not isinstance(hit, list) or len(hit) != 8 or hit[:4] != key:
            todo.append((p, rel, key))
    if todo:
        try:
            _inspect_all(root, todo, cache, verbose)
        finally:  # an interrupted scan keeps what it read: the next one starts where it stopped
            try:
                write_json_atomic(cache_file, cache)
            except OSError as err:
                cache_write_failed(err, "folder scans")
    return cache


def _inspect_all(root: Path, todo: list, cache: dict, verbose: bool) -> None:
    """Inspect `todo` [(path, rel, key)] on a thread pool into `cache`; Ctrl-C stops at once, not after every file."""
    from tqdm.auto import tqdm

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2))
    try:
        results = pool.map(lambda t: _inspect(t[0]), todo)
        for (_, rel, key), found in tqdm(
            zip(todo, results), total=len(todo), desc=f"checking {shown(root.name)}",
            disable=not verbose or len(todo) < 500, leave=False,
        ):
            cache[rel] = [*key, *found]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _readable(root: Path, files: list, cache: dict, class_names: list, left_out: dict) -> ImageSet:
    """The ImageSet of the readable `files`, with the others in its report; every class must keep an image."""
    report = SkipReport(total=len(files) + len(left_out), skipped=dict(left_out))
    paths, labels, digests, orientations = [], [], [], []
    for p, label in files:
        rel = str(p.relative_to(root))
        problem, digest, orientation, megapixels = cache[rel][4:]
        if problem:
            report.skipped[rel] = problem
            continue
        if megapixels * 1e6 > Image.MAX_IMAGE_PIXELS:
            report.large[rel] = megapixels
        paths.append(str(p))
        labels.append(label)
        digests.append(digest)
        orientations.append(orientation)
    images = ImageSet(paths, labels, list(class_names), digests, report, orientations)
    empty = [c for c, n in images.counts().items() if n == 0]
    if empty:
        unreadable = [c for c in empty if str(c) in left_out]
        why = "are unreadable folders; check their permissions" if unreadable else "hold no readable images"
        raise ValueError(f"class folder(s) {', '.join(map(shown, empty))} in {shown(root)} {why}; add images or "
                         "remove the folder.")
    return images


def scan_folder(root: str | Path, *, class_names: list | None = None, verbose: bool = True) -> ImageSet:
    """Return the ImageSet of a folder with one subfolder per class, skipping unreadable files.

    Zero-byte, corrupt, non-image, unsupported and unreadable files (and unreadable folders,
    broken links) are left out and counted in `images.report` (printed as one line). Results
    are cached by path, size, mtime, ctime and inode, so a second scan of a large folder is instant.
    A folder of splits (train/, val/, ...) is refused with the name of the split to pass.

    Example:
        >>> images = scan_folder("data/train")
        >>> print(images.report)
        2000 files read, none skipped.
    """
    check_type("root", root, (str, os.PathLike), "a folder path (str or Path)", where="scan_folder")
    root = Path(root).expanduser()
    if not root.is_dir():
        if root.exists():
            raise NotADirectoryError(f"{shown(root)} is a file, not a folder; pass the folder that holds one "
                                     "subfolder per class.")
        raise FileNotFoundError(f"folder {shown(root)} does not exist; pass a folder with one subfolder per class.")
    class_names = _class_names(root, class_names)
    files, left_out = class_files(root, class_names)
    images = _readable(root, files, _inspected(root, files, verbose), class_names, left_out)
    if verbose and (images.report.skipped or images.report.large):
        print(f"{shown(root.name)}: {images.report}")
    return images


# --------------------------------------------------------------------------- loading
def _upright(img, orientation):
    """Apply EXIF `orientation` (1-8) to a decoded image tensor, as PIL's ImageOps.exif_transpose does."""
    import tensorflow as tf

    def transpose():
        return tf.transpose(img, [1, 0, 2])

    branches = [
        lambda: img,                                      # 1: upright
        lambda: tf.reverse(img, [1]),                     # 2: mirrored left-right
        lambda: tf.image.rot90(img, 2),                   # 3: upside down
        lambda: tf.reverse(img, [0]),                     # 4: mirrored top-bottom
        transpose,                                        # 5: transposed
        lambda: tf.image.rot90(img, 3),                   # 6: turned right: rotate 90 degrees clockwise
        lambda: tf.image.rot90(transpose(), 2),           # 7: transversed
        lambda: tf.image.rot90(img, 1),                   # 8: turned left: rotate 90 degrees counter-clockwise
    ]
    index = tf.clip_by_value(tf.cast(orientation, "int32") - 1, 0, 7)
    return tf.switch_case(index, branches)


def _decode(path, image_size, orientation=1):
    import tensorflow as tf

    raw = tf.io.read_file(path)
    img = tf.io.decode_image(raw, channels=3, expand_animations=False)  # gray, palette, RGBA, CMYK -> RGB
    img.set_shape([None, None, 3])
    img = _upright(img, orientation)
    img.set_shape([None, None, 3])
    img = tf.image.resize(img, [image_size, image_size])
    return tf.cast(img, "float32")


def _file_names(paths) -> list:
    """Paths as bytes for TensorFlow: names that are not valid UTF-8 (Latin-1 from an old zip) survive as they are."""
    return [os.fsencode(p) for p in paths]


def to_dataset(
    images: ImageSet, *, image_size: int, batch_size: int = 32, shuffle: bool = False,
    seed: int = 0, cache: bool | None = None,
):
    """Return a batched tf.data.Dataset of (float32 RGB images in [0, 255], integer labels).

    Decoding runs in parallel, turns each image upright (EXIF orientation) and batches are
    prefetched. Small sets are cached in memory after the first pass (`cache=None` decides by
    size). Every image is kept, in order, so the number of batches is known and predictions line
    up with `images.labels`; a file changed since the scan so that it no longer decodes stops the
    pass with TensorFlow's error (`scan_folder` again names it and leaves it out).

    Example:
        >>> ds = to_dataset(images, image_size=96, shuffle=True)
        >>> x, y = next(iter(ds)); x.shape
        TensorShape([32, 96, 96, 3])
    """
    import tensorflow as tf

    check_type("images", images, ImageSet, "an ImageSet (from scan_folder or load_splits)", where="to_dataset")
    image_size = check_int("image_size", image_size, minimum=1, where="to_dataset")
    batch_size = check_int("batch_size", batch_size, minimum=1, where="to_dataset")
    if len(images) == 0:
        raise ValueError("the image set is empty; check the folder and the sample sizes.")
    orientations = images.orientations or [file_orientation(p) for p in images.paths]
    ds = tf.data.Dataset.from_tensor_slices((_file_names(images.paths), images.labels, orientations))
    if cache is None:
        cache = len(images) * image_size * image_size * 3 * 4 < 2**31
    ds = ds.map(lambda p, y, o: (_decode(p, image_size, o), y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(len(images), 4096), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_images(paths, *, image_size: int) -> np.ndarray:
    """Load a few image files into one float32 array (N, size, size, 3) in [0, 255].

    Decoding, EXIF orientation and resizing are exactly those of `to_dataset`, so a model sees a
    file the same way at prediction time as it did in training.

    Example:
        >>> x = load_images(["cat.jpg"], image_size=96); x.shape
        (1, 96, 96, 3)
    """
    import tensorflow as tf

    paths = [os.fsdecode(p) if isinstance(p, bytes) else p for p in check_paths("paths", paths, where="load_images")]
    image_size = check_int("image_size", image_size, minimum=1, where="load_images")
    if not paths:
        raise ValueError("load_images: expected at least one image path; received an empty list.")
    out = []
    for p in paths:
        problem = image_problem(p)
        if problem:
            raise ValueError(f"cannot read image {shown(p)} ({problem}); pass a JPEG, PNG, GIF, BMP or WebP file.")
        name = os.fsencode(p)
        out.append(_decode(tf.constant(name), image_size, file_orientation(name)).numpy())
    return np.stack(out)


EXAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def example_photos(names=EXAMPLE_PHOTOS, *, image_size: int = 224) -> dict:
    """Return {name: (size, size, 3) float32 array in [0, 255]}: public-domain photos shipped with scikit-image.

    Each photo is cropped to its central square, then resized like every other image in the course.
    chelsea is a tabby cat, coffee a cup of coffee, astronaut Eileen Collins, rocket a launch.

    Example:
        >>> example_photos(["chelsea"], image_size=96)["chelsea"].shape
        (96, 96, 3)
    """
    import tensorflow as tf

    try:
        import skimage.data
    except ImportError:
        raise ImportError("example_photos needs scikit-image: pip install scikit-image") from None
    out = {}
    for name in names:
        if name not in EXAMPLE_PHOTOS:
            raise ValueError(f"unknown example photo {name!r}; choose from: {', '.join(EXAMPLE_PHOTOS)}.")
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        img = img[..., :3]
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out[name] = tf.image.resize(tf.constant(img, dtype="float32"), [image_size, image_size]).numpy()
    return out
