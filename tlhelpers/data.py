"""The course's datasets: where they come from, how they are checked, split and loaded.

A dataset is found, in order, under `TL_DATA_DIR` (a folder of already extracted
datasets in their official layouts, used as they are) or in the download cache
(`~/.cache/tlhelpers/datasets`, or `TL_DATA_DIR` when it is set and the dataset is
missing there). Downloads go through pooch: checksum-verified when a checksum is
published, shown with a progress bar, and extracted atomically.

Example:
    >>> splits = load_splits("cats_and_dogs_filtered")
    >>> train = splits["train"].sample(per_class=100, seed=0)
    >>> ds = to_dataset(train, image_size=96, shuffle=True)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._atomic import atomic_path

# Formats that tf.io.decode_image reads (the same set image_dataset_from_directory accepts, plus WebP).
SUPPORTED_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """One entry of the course's dataset registry."""

    name: str
    url: str
    known_hash: str | None  # pooch format ("md5:..."), None where no checksum is published
    layout: str  # folder, relative to the data home, that holds the class (or split) folders
    extract_to: str  # folder, relative to the data home, the archive is extracted into
    official_splits: dict  # course split -> official subfolder; empty when the archive has none
    description: str
    license: str
    class_names: dict = dataclasses.field(default_factory=dict)  # folder name -> readable name


IMAGENETTE_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn",
    "n03417042": "garbage truck", "n03425413": "gas pump", "n03445777": "golf ball",
    "n03888257": "parachute",
}

REGISTRY = {
    "cats_and_dogs_filtered": DatasetInfo(
        name="cats_and_dogs_filtered",
        url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        known_hash=None,  # Google publishes no checksum; pooch logs the SHA256 it computes
        layout="cats_and_dogs_filtered",
        extract_to=".",
        official_splits={"train": "train", "test": "validation"},
        description="Google's 2000/1000 subset of Kaggle's Dogs vs. Cats (Asirra) images",
        license="research and teaching use (Asirra / Kaggle terms)",
    ),
    "trashnet": DatasetInfo(
        name="trashnet",
        url="https://huggingface.co/datasets/garythung/trashnet/resolve/main/dataset-resized.zip",
        known_hash=None,  # the Hugging Face repository publishes no checksum for the archive
        layout="trashnet/dataset-resized",
        extract_to="trashnet",
        official_splits={},
        description="TrashNet (Thung & Yang 2016): 6 classes of waste photographed on a white board",
        license="MIT",
    ),
    "imagenette2-160": DatasetInfo(
        name="imagenette2-160",
        url="https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
        known_hash="md5:e793b78cc4c9e9a4ccc0c1155377a412",
        layout="imagenette2-160",
        extract_to=".",
        official_splits={"train": "train", "test": "val"},
        description="Imagenette: fast.ai's 10-class subset of ImageNet, shortest side 160 px",
        license="ImageNet terms (research and teaching use)",
        class_names=IMAGENETTE_NAMES,
    ),
    "hymenoptera_data": DatasetInfo(
        name="hymenoptera_data",
        url="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
        known_hash=None,  # PyTorch publishes no checksum for the archive
        layout="hymenoptera_data",
        extract_to=".",
        official_splits={"train": "train", "test": "val"},
        description="Ants vs. bees (ImageNet images) from PyTorch's transfer-learning tutorial",
        license="ImageNet terms (research and teaching use)",
    ),
}


# --------------------------------------------------------------------------- paths
def data_home() -> Path:
    """Folder that holds extracted datasets: TL_DATA_DIR, or ~/.cache/tlhelpers/datasets."""
    env = os.environ.get("TL_DATA_DIR")
    return Path(env).expanduser() if env else cache_home() / "datasets"


def cache_home() -> Path:
    """Folder for everything the course derives (scans, splits, features): TL_CACHE_DIR or ~/.cache/tlhelpers."""
    env = os.environ.get("TL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tlhelpers"


def _info(name: str) -> DatasetInfo:
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; the course's datasets are: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def dataset_path(name: str) -> Path:
    """Return where dataset `name` is (or will be) extracted."""
    return data_home() / _info(name).layout


# --------------------------------------------------------------------------- download
DOWNLOAD_TIMEOUT = 30.0  # seconds a download waits for the server to send something (TL_DOWNLOAD_TIMEOUT)


def download_timeout() -> float:
    """Seconds a download waits for data before giving up: TL_DOWNLOAD_TIMEOUT, or 30."""
    raw = os.environ.get("TL_DOWNLOAD_TIMEOUT")
    if raw is None:
        return DOWNLOAD_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"TL_DOWNLOAD_TIMEOUT must be a positive number of seconds, got {raw!r}; "
                         f"unset it for the default of {DOWNLOAD_TIMEOUT:g}.")
    return value


def fetch(name: str, *, progressbar: bool = True, timeout: float | None = None) -> Path:
    """Return the folder of dataset `name`, downloading and extracting it if it is not there yet.

    A download that gets no data for `timeout` seconds (default: `download_timeout()`) fails;
    a failed or corrupt download leaves nothing behind, so calling again starts afresh.

    Example:
        >>> root = fetch("hymenoptera_data")
        >>> sorted(p.name for p in root.iterdir())
        ['train', 'val']
    """
    info = _info(name)
    target = dataset_path(name)
    if target.is_dir() and any(target.iterdir()):
        return target
    import pooch

    downloads = cache_home() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    fname = info.url.rsplit("/", 1)[-1]
    timeout = download_timeout() if timeout is None else timeout
    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout) if info.url.startswith("http") else None
    try:
        archive = pooch.retrieve(
            info.url, known_hash=info.known_hash, fname=fname, path=downloads, progressbar=progressbar,
            downloader=downloader,
        )
    except ValueError as err:  # pooch raises ValueError on a checksum mismatch
        raise RuntimeError(
            f"download of {name} failed its checksum ({err}); delete {downloads / fname} and try again."
        ) from None
    except Exception as err:
        raise RuntimeError(
            f"could not download {name} from {info.url} ({type(err).__name__}: {err}); check the network "
            f"(a download gives up after {timeout:g} s without data; TL_DOWNLOAD_TIMEOUT changes that), "
            f"or extract the official archive under TL_DATA_DIR so that {info.layout}/ exists."
        ) from None
    try:
        extract_archive(archive, data_home() / info.extract_to)
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as err:
        Path(archive).unlink(missing_ok=True)  # a corrupt download must not be found again next time
        raise RuntimeError(
            f"{fname} from {info.url} is damaged ({err}); it was deleted, so the next call downloads it again."
        ) from None
    if not target.is_dir():
        raise RuntimeError(f"{fname} did not contain {info.layout}/; the archive may have changed upstream.")
    return target


def extract_archive(archive: str | Path, destination: str | Path) -> Path:
    """Extract a .zip or .tgz into `destination` atomically: all of it appears, or none of it.

    Members are unpacked into a temporary sibling folder and moved into place only when
    extraction finished, so an interrupted run never leaves a half-extracted dataset. An
    archive with a member that would land outside `destination` (`../x`, an absolute path,
    a link pointing out) is refused before anything is written.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=destination))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for m in zf.infolist():
                    link = zf.read(m).decode("utf-8", "replace") if stat.S_ISLNK(m.external_attr >> 16) else None
                    _refuse_unsafe(archive, m.filename, link)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf_:
                for m in tf_.getmembers():
                    _refuse_unsafe(archive, m.name, m.linkname if m.issym() else None,
                                   m.linkname if m.islnk() else None)
                try:
                    tf_.extractall(tmp, filter="data")
                except tarfile.FilterError as err:
                    raise RuntimeError(f"{archive.name} has an unsafe member ({err}); refusing to extract it.") from None
        else:
            raise RuntimeError(f"{archive} is neither a zip nor a tar archive; delete it and download again.")
        for item in tmp.iterdir():
            if item.name == "__MACOSX":
                continue
            final = destination / item.name
            if final.exists():
                shutil.rmtree(final) if final.is_dir() else final.unlink()
            os.replace(item, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return destination


def _escapes(parts: list, target: str) -> bool:
    """True if `target` (a relative link), followed from the folder `parts`, leaves the archive's root."""
    for part in PurePosixPath(target.replace("\\", "/")).parts:
        if part == "..":
            if not parts:
                return True
            parts = parts[:-1]
        elif part != ".":
            parts = [*parts, part]
    return False


def _refuse_unsafe(archive: Path, name: str, symlink: str | None = None, hardlink: str | None = None) -> None:
    """Raise RuntimeError if member `name` (or the link it is) would write outside the extraction folder."""
    def absolute(p):
        return p.startswith(("/", "\\")) or bool(PureWindowsPath(p).drive)

    why = None
    if absolute(name):
        why = "absolute path"
    elif ".." in PurePosixPath(name.replace("\\", "/")).parts:
        why = "path with '..'"
    elif symlink is not None and (absolute(symlink) or _escapes(list(PurePosixPath(name).parent.parts), symlink)):
        why = f"symbolic link to {symlink}, outside the archive"
    elif hardlink is not None and (absolute(hardlink) or _escapes([], hardlink)):
        why = f"hard link to {hardlink}, outside the archive"
    if why:
        raise RuntimeError(f"{archive.name} has an unsafe member {name!r} ({why}); refusing to extract it. "
                           "Delete the archive and download it from its official source.")


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


def _scan_cache_file(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_home() / "scans" / f"{root.name}-{key}.json"


def _write_json_atomic(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj))


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
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
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
    files = []
    for label, cls in enumerate(class_names):
        for p in sorted((root / cls).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                files.append((p, label))

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
            for (p, rel, st), (problem, digest) in tqdm(
                zip(todo, results), total=len(todo), desc=f"checking {root.name}",
                disable=not verbose or len(todo) < 500, leave=False,
            ):
                cache[rel] = [st.st_size, st.st_mtime_ns, problem, digest]
        _write_json_atomic(cache_file, cache)

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
    if verbose and report.skipped:
        print(f"{root.name}: {report}")
    return images


# --------------------------------------------------------------------------- splitting
def deduplicate(images: ImageSet) -> tuple[ImageSet, int]:
    """Keep one file of each group of byte-identical files; return (images, number removed)."""
    seen, keep = set(), []
    for i, d in enumerate(images.digests):
        if d not in seen:
            seen.add(d)
            keep.append(i)
    out = images.take(keep)
    out.report = images.report
    return out, len(images) - len(keep)


def stratified_split(images: ImageSet, fractions: dict, *, seed: int = 0) -> dict:
    """Split `images` into named parts by `fractions`, per class, never splitting identical files.

    Files with the same content hash always land in the same part, so no image can be
    both trained on and tested on.

    Example:
        >>> parts = stratified_split(images, {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=0)
        >>> len(parts["train"]) + len(parts["validation"]) + len(parts["test"]) == len(images)
        True
    """
    names = list(fractions)
    total = sum(fractions.values())
    if any(f < 0 for f in fractions.values()) or not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}.")
    digests = images.digests or [p for p in images.paths]
    rng = np.random.default_rng(seed)
    chosen = {n: [] for n in names}
    bounds = np.cumsum([fractions[n] for n in names])
    for c in range(len(images.class_names)):
        groups: dict = {}
        for i in np.flatnonzero(images.labels == c):
            groups.setdefault(digests[i], []).append(int(i))
        order = [groups[k] for k in sorted(groups)]
        order = [order[j] for j in rng.permutation(len(order))]
        n_files = sum(len(g) for g in order)
        done = 0
        for g in order:
            position = (done + 0.5 * len(g)) / n_files
            part = names[int(np.searchsorted(bounds, position, side="right"))] if position < bounds[-1] else names[-1]
            chosen[part].extend(g)
            done += len(g)
    # A picture filed under two classes (conflicting labels) is kept once, in the first part that
    # received it; its copies under other labels are dropped.
    owner = {}
    for n in names:
        for i in chosen[n]:
            owner.setdefault(digests[i], n)
    return {n: images.take(sorted(i for i in chosen[n] if owner[digests[i]] == n)) for n in names}


def load_splits(
    name: str, *, seed: int = 0, val_fraction: float | None = None, test_fraction: float = 0.15,
    verbose: bool = True,
) -> dict:
    """Return {"train", "validation", "test"} ImageSets of a registry dataset, fetching it if needed.

    Where the archive has an official held-out split, it becomes the test set and the
    validation set is carved out of the official training set. Otherwise the whole set is
    split train/validation/test (70/15/15 by default). Byte-identical duplicates are removed, splits are
    stratified and seeded, and no file content appears in two splits. The split is saved
    as a manifest under the cache folder.

    Example:
        >>> splits = load_splits("trashnet")
        >>> {k: len(v) for k, v in splits.items()}
    """
    info = _info(name)
    root = fetch(name)
    if val_fraction is None:
        val_fraction = 0.2 if info.official_splits else 0.15
    if info.official_splits:
        train_all = scan_folder(root / info.official_splits["train"], verbose=verbose)
        test = scan_folder(root / info.official_splits["test"], class_names=train_all.class_names, verbose=verbose)
        test, dup_test = deduplicate(test)
        train_all, dup_train = deduplicate(train_all)
        leaked = set(test.digests)
        keep = [i for i, d in enumerate(train_all.digests) if d not in leaked]
        n_leak = len(train_all) - len(keep)
        train_all = train_all.take(keep)
        parts = stratified_split(train_all, {"train": 1 - val_fraction, "validation": val_fraction}, seed=seed)
        parts["test"] = test
        removed = dup_test + dup_train
        note = f"; {n_leak} training files identical to test files removed" if n_leak else ""
    else:
        images = scan_folder(root, verbose=verbose)
        images, removed = deduplicate(images)
        fr = {"train": 1 - val_fraction - test_fraction, "validation": val_fraction, "test": test_fraction}
        parts = stratified_split(images, fr, seed=seed)
        note = ""
    names = info.class_names
    for part in parts.values():
        part.class_names = [names.get(c, c) for c in part.class_names]
    manifest = {
        "dataset": name, "root": str(root), "seed": seed,
        "splits": {k: [[os.path.relpath(p, root), int(l)] for p, l in zip(v.paths, v.labels)] for k, v in parts.items()},
        "class_names": parts["train"].class_names,
    }
    _write_json_atomic(cache_home() / "splits" / f"{name}-seed{seed}.json", manifest)
    if verbose:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        print(f"{name}: {sizes} images; {removed} byte-identical duplicates removed{note}.")
    return parts


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
