"""`tlh`'s checks on its options and paths, run before any work starts: each failure names the option and the fix.

Every check raises ValueError (or FileNotFoundError) with one line; `tlh` prints it and exits with 2.

Example:
    >>> check_fit(args)    # after argparse, before the folder is scanned or a model built
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from .choices import TWO_PHASE_STRATEGIES
from .errors import shown

MAX_IMAGE_SIZE = 1024  # px; the bases were trained at 224 px or less, and a batch at 1024 px already needs gigabytes
MAX_BATCH_SIZE = 65536
MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds are unsigned 32-bit integers


def check_writable(out: Path, flag: str = "--out") -> None:
    """Fail now, not after training, when `out` cannot be written (missing folders are created when saving)."""
    if out.is_dir():
        raise ValueError(f"{flag} {shown(out)} is a folder; pass a file name inside it.")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file, not a folder")
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        why = err.strerror or str(err)
        raise ValueError(f"cannot write {flag} {shown(out)} ({why}: {shown(folder)}); choose a folder you can write "
                         "to.") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def refuse_overwriting_inputs(out: Path, inputs: dict, flag: str = "--out") -> None:
    """Refuse an output path that is (a link to) one of the `inputs` ({what: path}): it would be destroyed."""
    for what, path in inputs.items():
        if path is not None and Path(path).exists() and _same_file(out, Path(path)):
            other = out.with_name(f"{out.stem}-{'explained' if out.suffix == '.png' else 'out'}{out.suffix}")
            raise ValueError(f"{flag} {shown(out)} is the {what} ({shown(path)}); writing there would destroy it. "
                             f"Choose another file, e.g. {flag} {shown(other)}.")


def check_folder(path: Path, what: str = "DATA_DIR") -> None:
    """A folder of class subfolders must exist and be a folder."""
    if path.is_dir():
        return
    if path.exists():
        raise ValueError(f"{what} {shown(path)} is a file, not a folder; pass a folder with one subfolder per class.")
    raise FileNotFoundError(f"folder {shown(path)} does not exist; pass a folder with one subfolder per class.")


def check_model_file(path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"MODEL {shown(path)} is a folder; pass the .keras file that `tlh fit` saved.")
    if not path.exists():
        raise FileNotFoundError(f"model file {shown(path)} does not exist; train one with `tlh fit` first.")


def check_batch_size(value: int) -> None:
    if value < 1:
        raise ValueError(f"--batch-size must be at least 1, got {value}.")
    if value > MAX_BATCH_SIZE:
        raise ValueError(f"--batch-size must be at most {MAX_BATCH_SIZE}, got {value}; try 32.")


# `tlh fit`'s recipe defaults (filled in by check_fit; cli.py names them in --help)
RECIPE_UNFREEZE = {"efficientnet_lite0": 6}  # top blocks fine-tuned by default (benchmarks/results/fit_defaults_*.json)
OTHER_BASES_UNFREEZE = 2  # the other bases' blocks are larger (VGG16 has five, InceptionV3's mixed blocks)
RECIPE_FINE_TUNE = ("adam", 1e-4)  # the fine-tuning phase's optimizer and learning rate
RECIPE_PATIENCE = 3
DEFAULT_EPOCHS = {"scratch": 10, "features": 20, "finetune": (20, 6), "two-phase": (20, 6)}
HEAD_ON_IMAGES_EPOCHS = (5, 6)  # --head-on images: each head epoch pushes every image through the base


def check_numbers(args, min_size: int) -> None:
    """--epochs, --batch-size, --image-size, --seed and --val-fraction of `tlh fit`."""
    two = args.strategy in TWO_PHASE_STRATEGIES
    if isinstance(args.epochs, tuple):
        if min(args.epochs) < 1:
            raise ValueError(f"--epochs HEAD,FINE_TUNE must be two positive numbers (e.g. 20,6), got "
                             f"{args.epochs[0]},{args.epochs[1]}.")
    elif args.epochs < (2 if two else 1):
        need = "at least 2 for " + args.strategy + " (one per phase)" if two else "at least 1"
        raise ValueError(f"--epochs must be {need}, got {args.epochs}.")
    check_batch_size(args.batch_size)
    if not min_size <= args.image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"--image-size must be between {min_size} and {MAX_IMAGE_SIZE} px for {args.base}, "
                         f"got {args.image_size}.")
    if not 0 <= args.seed <= MAX_SEED:
        raise ValueError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}.")
    if not (math.isfinite(args.val_fraction) and 0 < args.val_fraction < 1):
        raise ValueError(f"--val-fraction must be between 0 and 1 (e.g. 0.2), got {args.val_fraction}.")
    smoothing = getattr(args, "label_smoothing", 0.0)
    if not (math.isfinite(smoothing) and 0 <= smoothing < 1):
        raise ValueError(f"--label-smoothing must be at least 0 and below 1 (e.g. 0.1), got {smoothing}.")
    if getattr(args, "patience", 0) < 0:
        raise ValueError(f"--patience must be 0 (no early stopping) or a number of epochs, got {args.patience}.")


def parse_unfreeze(value: str | None):
    """--unfreeze: None, 'all' or a positive number of blocks."""
    if value is None or value == "all":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"--unfreeze must be a positive number of blocks or 'all', got {value!r}.")
    return int(value)


def fill_recipe_defaults(args, offline: bool) -> None:
    """--epochs and --unfreeze left out: the recipe's values for the strategy (and --head-on)."""
    two = args.strategy in TWO_PHASE_STRATEGIES
    if args.epochs is None:
        args.epochs = HEAD_ON_IMAGES_EPOCHS if two and args.head_on == "images" else DEFAULT_EPOCHS[args.strategy]
    if args.unfreeze is None and two and not offline:
        args.unfreeze = RECIPE_UNFREEZE.get(args.base, OTHER_BASES_UNFREEZE)


def check_fit(args) -> None:
    """Every option of `tlh fit`, with defaults filled in (base, image size, unfreeze), before any work starts."""
    from .bases import ARCHS

    offline = args.weights.lower() == "offline"
    if args.base is None:
        args.base = "mobilenet_v2" if offline else "efficientnet_lite0"
    if args.base not in ARCHS:
        raise ValueError(f"unknown base {args.base!r}; supported bases are: {', '.join(ARCHS)}.")
    if args.out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras, got {args.out.name!r}.")
    args.unfreeze = parse_unfreeze(args.unfreeze)
    fill_recipe_defaults(args, offline)
    if args.image_size is None:
        args.image_size = 96 if offline else ARCHS[args.base].native_size
    check_numbers(args, ARCHS[args.base].min_size)
    check_folder(args.data_dir)
    weights = None if args.weights.lower() in ("imagenet", "offline", "none") else Path(args.weights)
    refuse_overwriting_inputs(args.out, {"--weights file": weights})
    if _depth_inside(args.out, args.data_dir) > 1:
        raise ValueError(f"--out {shown(args.out)} is inside a subfolder of DATA_DIR {shown(args.data_dir)}, where "
                         "every subfolder is a class; save the model outside the class folders.")
    check_writable(args.out)


def _depth_inside(path: Path, folder: Path) -> int:
    """How many levels below `folder` `path` lies (1: directly in it), or 0 when it is not inside."""
    try:
        return len(path.resolve().relative_to(folder.resolve()).parts)
    except (ValueError, OSError):
        return 0


def check_explain(args) -> None:
    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {args.out.name!r}.")
    if args.layer and args.method != "gradcam":
        raise ValueError(f"--layer applies to --method gradcam only, not {args.method}; drop --layer.")
    check_model_file(args.model)
    refuse_overwriting_inputs(args.out, {"IMAGE being explained": args.image, "MODEL file": args.model})
    check_writable(args.out)
