"""One image file at a time: can it be used, how is it oriented, and which files a class folder holds.

`inspect_file` decodes a file fully (as the scan does) and says why it cannot be used, if it
cannot; `class_files` walks a class folder and names what it had to leave out (unreadable
folders, broken links, anything that is not a plain file) instead of dropping it silently.

Example:
    >>> image_problem("notes.txt")
    'not an image'
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import shown

# Formats that tf.io.decode_image reads (the same set image_dataset_from_directory accepts, plus WebP).
SUPPORTED_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held (1 = upright, 6 = turned right, ...)



def _quiet_pil() -> None:
    """PIL warns (two lines, per file) about images above MAX_IMAGE_PIXELS; the scan reports them in its own
    one-line report instead ("kept 1 very large image"), and skips files above twice the limit as too many pixels.
    Re-asserted before each file, so that a notebook's `warnings.simplefilter(...)` does not bring the lines back.
    Damaged EXIF blocks (PIL: "Corrupt EXIF data") only cost the orientation, which is then taken as upright."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", message=r"(?i).*exif", category=UserWarning, module=r"PIL\.")


def image_problem(path: str | Path) -> str | None:
    """Why `path` cannot be used as an image ('does not exist', 'a folder', 'corrupt', ...), or None if it can.

    Example:
        >>> image_problem("holiday/")
        'a folder'
    """
    path = Path(path)
    if path.is_dir():
        return "a folder"
    if not path.exists():
        return "broken link" if path.is_symlink() else "does not exist"
    if not path.is_file():
        return "not a plain file"
    return inspect_file(path)[0]


def inspect_file(path: Path) -> tuple[str | None, str, int, float]:
    """Return (problem or None, sha256 of the bytes, EXIF orientation 1-8, megapixels), decoding the file fully."""
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"unreadable ({err.strerror or type(err).__name__})", "", 1, 0.0
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return "zero-byte", digest, 1, 0.0
    orientation, megapixels = 1, 0.0
    _quiet_pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            megapixels = im.size[0] * im.size[1] / 1e6
            if fmt not in SUPPORTED_FORMATS:
                return f"unsupported format ({fmt})", digest, 1, megapixels
            variant = _undecodable_variant(fmt, im, data)
            if variant:
                return f"unsupported format ({variant})", digest, 1, megapixels
            orientation = exif_orientation(im)
            if fmt == "JPEG":
                im.draft("RGB", (64, 64))  # decode at reduced scale: still reads every byte
            im.load()
    except UnidentifiedImageError:
        return "not an image", digest, 1, 0.0
    except Image.DecompressionBombError:
        return "too many pixels", digest, 1, megapixels
    except (OSError, SyntaxError, ValueError, EOFError):
        return "corrupt", digest, 1, megapixels
    return None, digest, orientation, megapixels


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) of an open image; 1 where it has none or a nonsense value."""
    try:
        value = int(im.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block: use the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def file_orientation(path) -> int:
    """The EXIF orientation (1-8) of the image file `path`, reading its header only; 1 if it has none."""
    _quiet_pil()
    try:
        with Image.open(os.fsdecode(path)) as im:
            return exif_orientation(im)
    except Exception:  # unreadable files are reported by the scan, not here
        return 1


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


# --------------------------------------------------------------------------- walking class folders
def class_folders(root: Path) -> list:
    """The class folders of `root`: its visible subfolders' names, sorted (ValueError if `root` cannot be read)."""
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        raise ValueError(f"cannot read folder {shown(root)} ({err.strerror or type(err).__name__}); check its "
                         "permissions, or pass a folder you can read.") from None


def check_class_link(root: Path, name: str) -> None:
    """Refuse a class folder that is a link back to the data folder or one of its ancestors (it would hold them all)."""
    folder = root / name
    if not folder.is_symlink():
        return
    target, top = folder.resolve(), root.resolve()
    if target == top or target in top.parents:
        raise ValueError(f"class folder {name!r} in {root} is a link to {target}, which holds the data folder "
                         "itself; remove the link (each class needs a folder of its own images).")


def _refuse_the_same_folder_twice(root: Path, class_names: list) -> None:
    """Two class folders that are one folder (a link to another class) would label every image twice."""
    seen = {}
    for cls in class_names:
        target = (root / cls).resolve()
        if target in seen:
            raise ValueError(f"class folders {seen[target]!r} and {cls!r} in {shown(root)} are the same folder (a "
                             "link); remove the link so that each class has its own images.")
        seen[target] = cls


def class_files(root: Path, class_names: list) -> tuple[list, dict]:
    """Return ([(path, label)] of every visible plain file under each class folder, sorted; {relative path: why left out}).

    Unreadable folders, broken links, links to folders (not followed) and special files are left out and named.
    """
    files, left_out = [], {}
    _refuse_the_same_folder_twice(root, class_names)
    for label, cls in enumerate(class_names):
        check_class_link(root, cls)
        found = []

        def unreadable(err: OSError, folder=root / cls):
            where = Path(err.filename) if err.filename else folder
            left_out[_relative(where, root)] = f"unreadable folder ({err.strerror or type(err).__name__})"

        for dirpath, dirnames, filenames in os.walk(root / cls, onerror=unreadable):
            for d in dirnames:
                if os.path.islink(os.path.join(dirpath, d)):
                    left_out[_relative(Path(dirpath, d), root)] = "link to a folder (not followed)"
            for name in filenames:
                if name.startswith("."):
                    continue
                p = Path(dirpath, name)
                if p.is_file():
                    found.append((p, label))
                else:
                    left_out[_relative(p, root)] = "broken link" if p.is_symlink() else "not a plain file"
        files.extend(sorted(found, key=lambda t: t[0]))
    return files, left_out


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
