"""The course's datasets: the registry, where each one lives on disk, and checked, atomic downloads.

A dataset is found, in order, under `TL_DATA_DIR` (a folder of already extracted
datasets in their official layouts, used as they are) or in the download cache
(`~/.cache/tlhelpers/datasets`, or `TL_DATA_DIR` when it is set and the dataset is
missing there). Downloads go through pooch: checksum-verified when a checksum is
published, shown with a progress bar, and extracted atomically. Scanning a dataset's
folders is in `images`, splitting it in `splits`.

Example:
    >>> root = fetch("hymenoptera_data")
    >>> dataset_path("hymenoptera_data") == root
    True
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import DatasetUnavailableError


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


def cache_folder_problem(err: OSError) -> str:
    """One sentence naming the unusable cache folder and the variable that moves it (TL_CACHE_DIR)."""
    home = cache_home()
    where = f"TL_CACHE_DIR={home}" if os.environ.get("TL_CACHE_DIR") else f"the cache folder {home}"
    why = err.strerror or type(err).__name__
    return f"{where} cannot be written ({why}: {err.filename or home}); set TL_CACHE_DIR to a folder you can write to"


_CACHE_WARNED: set = set()


def cache_write_failed(err: OSError, what: str) -> None:
    """Say once, on stderr, that the cache folder cannot be written and the run goes on without caching `what`."""
    import sys

    key = (str(cache_home()), what)
    if key not in _CACHE_WARNED:
        _CACHE_WARNED.add(key)
        print(f"tlhelpers: {cache_folder_problem(err)}; continuing without caching {what}.", file=sys.stderr)


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
    try:
        downloads.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetUnavailableError(f"cannot download {name}: {cache_folder_problem(err)}, or extract the "
                                      f"official archive under TL_DATA_DIR so that {info.layout}/ exists.") from None
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
        raise DatasetUnavailableError(
            f"could not download {name} from {info.url} ({type(err).__name__}: {err}); check the network "
            f"(a download gives up after {timeout:g} s without data; TL_DOWNLOAD_TIMEOUT changes that), "
            f"or extract the official archive under TL_DATA_DIR so that {info.layout}/ exists."
        ) from None
    _check_data_home(name, data_home() / info.extract_to)
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


def _check_data_home(name: str, folder: Path) -> None:
    """Fail with the variable to change (TL_DATA_DIR) when the datasets folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        where = f"TL_DATA_DIR={data_home()}" if os.environ.get("TL_DATA_DIR") else f"the datasets folder {data_home()}"
        raise DatasetUnavailableError(
            f"cannot extract {name}: {where} cannot be written ({err.strerror or type(err).__name__}: {folder}); "
            "set TL_DATA_DIR to a folder you can write to."
        ) from None


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

