"""Folders of images: scanning them into ImageSets (skipping unreadable files) and decoding them for Keras.

A folder holds one subfolder per class. `scan_folder` reads every file once, fully decoding it
to catch what TensorFlow could not read, and caches the verdict by path, size and mtime;
`to_dataset` and `load_images` decode and resize the files the same way for training and
prediction.

Example:
    >>> images = scan_folder("my_photos")
    >>> ds = to_dataset(images.sample(per_class=100, seed=0), image_size=96, shuffle=True)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._atomic import write_json_atomic
from .data import cache_home

# Formats that tf.io.decode_image reads (the same set image_dataset_from_directory accepts, plus WebP).
SUPPORTED_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


# --------------------------------------------------------------------------- scanning
@dataclasses.dataclass
class SkipReport:
    """What a scan left out, and why."""

    total: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)  # relative path -> reason

    def __str__(self) -> str:
        if not self.skipped:
            return f"{self.total} files read, none skipped."
        reasons = Counter(self.skipped.values())
        detail = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        example = next(iter(self.skipped))
        return f"skipped {len(self.skipped)} of {self.total} files ({detail}), e.g. {example}"


@dataclasses.dataclass
class ImageSet:
    """A list of labelled image files: the unit the course splits, samples and loads.

    Example:
        >>> images = scan_folder("my_photos")     # one subfolder per class
        >>> images.counts()
        {'cats': 12, 'dogs': 15}
    """

    paths: list
    labels: np.ndarray
    class_names: list
    digests: list = dataclasses.field(default_factory=list)  # content hash of each file
    report: SkipReport | None = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype="int32")
        if len(self.paths) != len(self.labels):
            raise ValueError("paths and labels differ in length")

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict:
        """Number of images per class."""
        c = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, c)}

    def take(self, index) -> "ImageSet":
        index = np.asarray(index, dtype=int)
        return ImageSet(
            [self.paths[i] for i in index], self.labels[index], list(self.class_names),
            [self.digests[i] for i in index] if self.digests else [],
        )

    def sample(self, per_class: int | None, *, seed: int = 0) -> "ImageSet":
        """A stratified random subset with at most `per_class` images of each class (None: all)."""
        if per_class is None:
            return self
        rng = np.random.default_rng(seed)
        keep = []
        for c in range(len(self.class_names)):
            idx = np.flatnonzero(self.labels == c)
            keep.extend(rng.permutation(idx)[:per_class])
        return self.take(sorted(keep))

    def subset(self, n: int, *, seed: int = 0) -> "ImageSet":
        """A random subset of `n` images in total, spread over the classes as evenly as they allow.

        Example:
            >>> len(images.subset(200))   # e.g. 34 of each of six classes, less 4
            200
        """
        if not 0 < n <= len(self):
            raise ValueError(f"cannot take {n} of {len(self)} images; choose n between 1 and {len(self)}.")
        rng = np.random.default_rng(seed)
        pools = [list(rng.permutation(np.flatnonzero(self.labels == c))) for c in range(len(self.class_names))]
        keep = []
        while len(keep) < n:  # round robin over the classes that still have images
            for pool in rng.permutation(len(pools)):
                if pools[pool] and len(keep) < n:
                    keep.append(pools[pool].pop())
        return self.take(sorted(keep))


def image_problem(path: str | Path) -> str | None:
    """Why `path` cannot be used as an image ('missing', 'zero-byte', 'corrupt', ...), or None if it can."""
    path = Path(path)
    return "missing" if not path.is_file() else _inspect(path)[0]


def _inspect(path: Path) -> tuple[str | None, str]:
    """Return (problem or None, sha256 of the bytes) for one file, decoding it fully."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return "zero-byte", digest
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            if fmt not in SUPPORTED_FORMATS:
                return f"unsupported format ({fmt})", digest
            variant = _undecodable_variant(fmt, im, data)
            if variant:
                return f"unsupported format ({variant})", digest
            if fmt == "JPEG":
                im.draft("RGB", (64, 64))  # decode at reduced scale: still reads every byte
            im.load()
    except UnidentifiedImageError:
        return "not an image", digest
    except Image.DecompressionBombError:
        return "too large", digest
    except (OSError, SyntaxError, ValueError):
        return "corrupt", digest
    return None, digest


def _undecodable_variant(fmt: str, im, data: bytes) -> str | None:
    """Name the variant of a supported format that TensorFlow's decoder rejects (animated WebP, 1/4/16-bit BMP)."""
    if fmt == "WEBP" and getattr(im, "n_frames", 1) > 1:
        return "animated WebP"
    if fmt == "BMP" and len(data) >= 34:
        header = int.from_bytes(data[14:18], "little")
        bits = int.from_bytes(data[24:26] if header == 12 else data[28:30], "little")
        compression = 0 if header == 12 else int.from_bytes(data[30:34], "little")
        if bits not in (8, 24, 32):
            return f"{bits}-bit BMP"
        if compression in (1, 2):  # RLE8, RLE4
            return "run-length compressed BMP"
    return None


def class_folders(root: Path) -> list:
    """The class folders of `root`: its visible subfolders' names, sorted."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_names(root: Path, class_names: list | None) -> list:
    """The classes to scan: `class_names` (each must have a folder) or every class folder; at least two."""
    found = class_folders(root)
    if class_names is None:
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


def _class_files(root: Path, class_names: list) -> list:
    """(path, label) of every visible file under each class folder, in a stable order."""
    files = []
    for label, cls in enumerate(class_names):
        for p in sorted((root / cls).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                files.append((p, label))
    return files


def _scan_cache_file(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_home() / "scans" / f"{root.name}-{key}.json"


def _inspected(root: Path, files: list, verbose: bool) -> dict:
    """{relative path: [size, mtime_ns, problem, digest]} of `files`; only files changed since the last scan are read."""
    cache_file = _scan_cache_file(root)
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    todo = []
    for p, _ in files:
        st = p.stat()
        rel = str(p.relative_to(root))
        hit = cache.get(rel)
        if not hit or hit[0] != st.st_size or hit[1] != st.st_mtime_ns:
            todo.append((p, rel, st))
    if todo:
        from tqdm.auto import tqdm

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
            results = pool.map(lambda t: _inspect(t[0]), todo)
            for (_, rel, st), (problem, digest) in tqdm(
                zip(todo, results), total=len(todo), desc=f"checking {root.name}",
                disable=not verbose or len(todo) < 500, leave=False,
            ):
                cache[rel] = [st.st_size, st.st_mtime_ns, problem, digest]
        write_json_atomic(cache_file, cache)
    return cache


def _readable(root: Path, files: list, cache: dict, class_names: list) -> ImageSet:
    """The ImageSet of the readable `files`, with the others in its report; every class must keep an image."""
    report = SkipReport(total=len(files))
    paths, labels, digests = [], [], []
    for p, label in files:
        rel = str(p.relative_to(root))
        _, _, problem, digest = cache[rel]
        if problem:
            report.skipped[rel] = problem
        else:
            paths.append(str(p))
            labels.append(label)
            digests.append(digest)
    images = ImageSet(paths, labels, list(class_names), digests, report)
    empty = [c for c, n in images.counts().items() if n == 0]
    if empty:
        raise ValueError(f"class folder(s) {', '.join(empty)} in {root} hold no readable images; add images or remove the folder.")
    return images


def scan_folder(root: str | Path, *, class_names: list | None = None, verbose: bool = True) -> ImageSet:
    """Return the ImageSet of a folder with one subfolder per class, skipping unreadable files.

    Zero-byte, corrupt, non-image and unsupported files are left out and counted in
    `images.report` (printed as one line). Results are cached by path, size and mtime,
    so a second scan of a large folder is instant.

    Example:
        >>> images = scan_folder("data/train")
        >>> print(images.report)
        2000 files read, none skipped.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"folder {root} does not exist; pass a folder with one subfolder per class.")
    class_names = _class_names(root, class_names)
    files = _class_files(root, class_names)
    images = _readable(root, files, _inspected(root, files, verbose), class_names)
    if verbose and images.report.skipped:
        print(f"{root.name}: {images.report}")
    return images


# --------------------------------------------------------------------------- loading
def _decode(path, image_size):
    import tensorflow as tf

    raw = tf.io.read_file(path)
    img = tf.io.decode_image(raw, channels=3, expand_animations=False)  # gray, palette, RGBA, CMYK -> RGB
    img.set_shape([None, None, 3])
    img = tf.image.resize(img, [image_size, image_size])
    return tf.cast(img, "float32")


def to_dataset(
    images: ImageSet, *, image_size: int, batch_size: int = 32, shuffle: bool = False,
    seed: int = 0, cache: bool | None = None,
):
    """Return a batched tf.data.Dataset of (float32 RGB images in [0, 255], integer labels).

    Decoding runs in parallel and batches are prefetched. Small sets are cached in memory
    after the first pass (`cache=None` decides by size).

    Example:
        >>> ds = to_dataset(images, image_size=96, shuffle=True)
        >>> x, y = next(iter(ds)); x.shape
        TensorShape([32, 96, 96, 3])
    """
    import tensorflow as tf

    if len(images) == 0:
        raise ValueError("the image set is empty; check the folder and the sample sizes.")
    ds = tf.data.Dataset.from_tensor_slices((list(images.paths), images.labels))
    if cache is None:
        cache = len(images) * image_size * image_size * 3 * 4 < 2**31
    ds = ds.map(lambda p, y: (_decode(p, image_size), y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(len(images), 4096), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_images(paths, *, image_size: int) -> np.ndarray:
    """Load a few image files into one float32 array (N, size, size, 3) in [0, 255].

    Decoding and resizing are exactly those of `to_dataset`, so a model sees a file the
    same way at prediction time as it did in training.

    Example:
        >>> x = load_images(["cat.jpg"], image_size=96); x.shape
        (1, 96, 96, 3)
    """
    import tensorflow as tf

    out = []
    for p in paths:
        problem = image_problem(p)
        if problem:
            raise ValueError(f"cannot read image {p} ({problem}); pass a JPEG, PNG, GIF, BMP or WebP file.")
        out.append(_decode(tf.constant(str(p)), image_size).numpy())
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
