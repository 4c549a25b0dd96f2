"""`tlh fit`'s reasons: why a folder has too few images (which cause applies), and which files broke during a run.

Example:
    >>> train, val = split_for_fit(args, images, duplicates_removed)   # or ValueError naming the cause and fix
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .errors import shown


def listed(pairs, limit: int = 5) -> str:
    """'a.jpg (does not exist), b (a folder)' for up to `limit` (path, why) pairs, then 'and N more'."""
    text = ", ".join(f"{shown(p)} ({why})" for p, why in pairs[:limit])
    return text + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def too_few(data_dir: Path, images, dups: int, val_fraction: float) -> str:
    """Which of the causes of "too few images" applies, and its fix."""
    counts = images.counts()
    n_min, cls = min((n, c) for c, n in counts.items())
    where = f"{shown(data_dir)} has too few images"
    if n_min < 2:
        text = (f"{where}: class {shown(cls)} has {n_min} distinct image(s), and fitting needs at least 2 per class "
                "(one to train on, one to validate)")
        if dups:
            text += f"; {dups} byte-identical duplicate(s) were removed, so copies of a file do not count"
        return text + "; add different images of that class."
    need = min(0.5, math.ceil(50 / n_min) / 100)
    fix = f"raise --val-fraction to at least {need:.2f}, or add images" if need > val_fraction else "add images"
    return (f"{where} to hold out a validation image of every class at --val-fraction {val_fraction:g}: class "
            f"{shown(cls)} has {n_min}; {fix}.")


def scan_and_split(args, *, verbose: bool = True):
    """(images, duplicates removed, train, validation) as `tlh fit DATA_DIR` sees them: scanned, deduplicated, split.

    Example:
        >>> images, dups, train, val = scan_and_split(argparse.Namespace(data_dir=path, val_fraction=0.2, seed=0))
    """
    from .images import scan_folder
    from .splits import deduplicate

    images, dups = deduplicate(scan_folder(args.data_dir, verbose=verbose))
    return (images, dups, *split_for_fit(args, images, dups))


def split_for_fit(args, images, dups):
    """(train, validation) for `tlh fit`, or ValueError saying which cause of "too few images" applies."""
    from .splits import stratified_split

    parts = stratified_split(images, {"train": 1 - args.val_fraction, "validation": args.val_fraction}, seed=args.seed)
    train, val = parts["train"], parts["validation"]
    if min(images.counts().values()) < 2 or len(val) == 0 or min(val.counts().values()) == 0:
        raise ValueError(too_few(args.data_dir, images, dups, args.val_fraction))
    if len(train) == 0 or min(train.counts().values()) == 0:
        empty = next(c for c, n in train.counts().items() if n == 0)
        raise ValueError(f"--val-fraction {args.val_fraction:g} leaves class {shown(empty)} no training image; "
                         "lower --val-fraction (e.g. 0.2) or add images.")
    return train, val


def name_files_that_broke(args, images, err: Exception) -> None:
    """TensorFlow stopped reading (a file changed during training): name the files and say that a rerun skips them."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(err, tf.errors.OpError):
        return
    from .images import scan_folder

    try:
        again = scan_folder(args.data_dir, class_names=images.class_names, verbose=False)
    except (OSError, ValueError):
        return
    changed = [(rel, why) for rel, why in again.report.skipped.items() if rel not in images.report.skipped]
    if changed:
        raise ValueError(f"{len(changed)} file(s) in {shown(args.data_dir)} changed during training and can no longer "
                         f"be read: {listed(changed)}; no model was saved. Run the same command again: the scan now "
                         "leaves them out.") from None


def changed_during_fit(args, images, val):
    """Files that could no longer be read after training (changed meanwhile): named, and left out of validation."""
    from .images import scan_folder

    try:
        again = scan_folder(args.data_dir, class_names=images.class_names, verbose=False)
    except (OSError, ValueError) as err:
        print(f"tlh: could not check {shown(args.data_dir)} again after training ({err})", file=sys.stderr)
        return val
    changed = {rel: why for rel, why in again.report.skipped.items() if rel not in images.report.skipped}
    if not changed:
        return val
    print(f"tlh: {len(changed)} file(s) changed during training and could no longer be read; left out: "
          + ", ".join(f"{shown(rel)} ({why})" for rel, why in list(changed.items())[:5]), file=sys.stderr)
    bad = {str(args.data_dir / rel) for rel in changed}
    return val.take([i for i, p in enumerate(val.paths) if p not in bad])
