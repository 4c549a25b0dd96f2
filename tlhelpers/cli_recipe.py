"""`tlh` pieces for the practitioner's recipe: the `export` command, `--tta`, and predicting with an exported model.

`tlhelpers.cli` wires them (this module never imports it):

    tlh export model.keras --format savedmodel|tflite [--out PATH] [--force]
    tlh predict model.tflite photo.jpg --tta
    tlh evaluate model.keras DATA_DIR --tta --json

Example (inside cli._parser and cli.main):
    >>> add_export_command(sub)                  # sub = parser.add_subparsers(...)
    >>> add_tta_argument(evaluate_parser)
    >>> {"export": run_export, ...}[args.command](args)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import shown

EXPORT_FORMATS = ("savedmodel", "tflite")  # names only, so `tlh --help` needs no TensorFlow
DEFAULT_TTA = ("identity", "flip")
TTA_VIEWS = ("identity", "flip", "crop", "flip_crop")


def add_export_command(subparsers) -> argparse.ArgumentParser:
    """Add `tlh export MODEL --format savedmodel|tflite [--out PATH] [--force]` to `subparsers`; return its parser.

    Example:
        >>> add_export_command(parser.add_subparsers(dest="command"))
    """
    x = subparsers.add_parser(
        "export", help="write the model as a TensorFlow SavedModel or a TFLite file (raw 0-255 images in)",
        description="Export a .keras model for use outside Keras. The export takes raw RGB images in [0, 255] "
                    "(preprocessing inside, augmentation left out), is checked against the .keras model "
                    "(probabilities within 1e-4 for savedmodel, 1e-3 for tflite) and appears only when whole; "
                    "`tlh predict` accepts it.")
    x.add_argument("model", type=Path, help="the .keras file `tlh fit` saved")
    x.add_argument("--format", choices=EXPORT_FORMATS, default="savedmodel")
    x.add_argument("--out", type=Path, default=None,
                   help="where to write (default: MODEL without .keras plus _savedmodel, or .tflite); class names "
                        "go inside the SavedModel folder or beside the .tflite as OUT.json")
    x.add_argument("--force", action="store_true", help="replace an existing export at --out")
    return x


def run_export(args) -> int:
    """`tlh export`: export, check and report in one line; return the exit code (0).

    Errors (missing model, --out the input or in a read-only folder, no space, a layer TFLite
    cannot convert) raise OSError/ValueError/RuntimeError with one line, which `tlh` prints.

    Example:
        >>> run_export(argparse.Namespace(model=Path("cats.keras"), format="tflite", out=None, force=False))
    """
    from .export import export_model

    if args.model.is_dir():
        raise ValueError(f"MODEL {shown(args.model)} is a folder; pass the .keras file that `tlh fit` saved.")
    if args.model.suffix != ".keras":
        raise ValueError(f"MODEL {shown(args.model)} is not a .keras file; export the model `tlh fit` saved.")
    info = export_model(args.model, args.out, format=args.format, overwrite=args.force)
    print(f"exported {shown(info['path'])} ({info['format']}, {info['image_size']} px, "
          f"{len(info['class_names'])} classes); same predictions as {shown(args.model)} on {info['checked_on']} "
          f"images (max abs difference {info['max_abs_diff']:.1g} <= {info['tolerance']:g})")
    return 0


def add_tta_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--tta` (average over left-right flips) and `--tta-views LIST` to an evaluate or predict parser.

    Example:
        >>> add_tta_argument(predict_parser)   # then: tta_views(args) -> ("identity", "flip") or None
    """
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the probabilities of each image and its mirror image")
    parser.add_argument("--tta-views", default=None, metavar="LIST",
                        help=f"comma-separated views to average (implies --tta): {', '.join(TTA_VIEWS)} "
                             f"(default with --tta: {','.join(DEFAULT_TTA)})")


def tta_views(args) -> tuple | None:
    """The views `--tta`/`--tta-views` asked for, or None (one plain prediction); unknown views raise ValueError."""
    listed = getattr(args, "tta_views", None)
    if listed:
        views = tuple(v.strip() for v in listed.split(",") if v.strip())
        unknown = [v for v in views if v not in TTA_VIEWS]
        if unknown or not views:
            raise ValueError(f"--tta-views: expected views among {', '.join(TTA_VIEWS)}; received {listed!r}.")
        return views
    return DEFAULT_TTA if getattr(args, "tta", False) else None


def is_export(path: Path) -> bool:
    """True for what `tlh export` wrote: a SavedModel folder holding tlhelpers_export.json, or a .tflite file.

    Example:
        >>> is_export(Path("cats.tflite")), is_export(Path("cats.keras"))
        (True, False)
    """
    path = Path(path)
    return (path.is_dir() and (path / "tlhelpers_export.json").is_file()) or path.suffix == ".tflite"


def load_predictor(path: Path):
    """(callable images -> probabilities with .image_size, class names) for a .keras, a SavedModel folder or a .tflite.

    Example:
        >>> model, classes = load_predictor(Path("cats.tflite"))
        >>> probs = predict_images(model, load_images(paths, image_size=model.image_size), tta=None)
    """
    from .export import META, load_for_prediction

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model {shown(path)} does not exist; train one with `tlh fit` (or export one with "
                                "`tlh export`) first.")
    if path.is_dir() and not (path / META).is_file():
        raise ValueError(f"MODEL {shown(path)} is a folder but not a `tlh export` SavedModel; pass the .keras file "
                         "that `tlh fit` saved, or an exported model.")
    if path.is_file() and path.suffix not in (".keras", ".tflite"):
        raise ValueError(f"MODEL {shown(path)} is neither a .keras model nor a .tflite export; pass the file "
                         "`tlh fit` or `tlh export` wrote.")
    return load_for_prediction(path)


def predict_images(model, images, *, tta: tuple | None = None):
    """Probabilities for an array of images from any predictor, averaged over `tta` views when given."""
    from .tta import predict_tta

    return predict_tta(model, images, views=tta or ("identity",))
