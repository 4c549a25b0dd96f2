"""Splitting ImageSets without leaks: deduplication, stratified splits, and the course's dataset splits.

Example:
    >>> splits = load_splits("cats_and_dogs_filtered")
    >>> train = splits["train"].sample(per_class=100, seed=0)
"""

from __future__ import annotations

import os

import numpy as np

from ._atomic import write_json_atomic
from .data import _info, cache_home, cache_write_failed, fetch
from .errors import check_type
from .images import ImageSet, scan_folder


def deduplicate(images: ImageSet) -> tuple[ImageSet, int]:
    """Keep one file of each group of byte-identical files; return (images, number removed)."""
    check_type("images", images, ImageSet, "an ImageSet (from scan_folder or load_splits)", where="deduplicate")
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
    check_type("images", images, ImageSet, "an ImageSet (from scan_folder or load_splits)", where="stratified_split")
    check_type("fractions", fractions, dict, "a dict of part name -> fraction, e.g. {'train': 0.8, 'validation': 0.2}",
               where="stratified_split")
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
    if val_fraction is None:
        val_fraction = 0.2 if info.official_splits else 0.15
    _check_fractions(val_fraction, 0.0 if info.official_splits else test_fraction)
    root = fetch(name)
    if info.official_splits:
        parts, removed, note = _split_official(root, info.official_splits, val_fraction, seed=seed, verbose=verbose)
    else:
        images, removed = deduplicate(scan_folder(root, verbose=verbose))
        fr = {"train": 1 - val_fraction - test_fraction, "validation": val_fraction, "test": test_fraction}
        parts = stratified_split(images, fr, seed=seed)
        note = ""
    names = info.class_names
    for part in parts.values():
        part.class_names = [names.get(c, c) for c in part.class_names]
    manifest = {
        "dataset": name, "root": str(root), "seed": seed,
        "splits": {k: [[os.path.relpath(p, root), int(y)] for p, y in zip(v.paths, v.labels)] for k, v in parts.items()},
        "class_names": parts["train"].class_names,
    }
    try:
        write_json_atomic(cache_home() / "splits" / f"{name}-seed{seed}.json", manifest)
    except OSError as err:
        cache_write_failed(err, "split manifests")
    if verbose:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        print(f"{name}: {sizes} images; {removed} byte-identical duplicates removed{note}.")
    return parts


def _check_fractions(val_fraction, test_fraction) -> None:
    """Validation and test fractions of load_splits: numbers in [0, 1) that leave some images to train on."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"load_splits: expected `{name}` to be a number between 0 and 1; received "
                            f"{name}={value!r} ({type(value).__name__}).")
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"load_splits: expected `val_fraction` in (0, 1) and `test_fraction` in [0, 1) that leave "
                         f"images to train on; received val_fraction={val_fraction}, test_fraction={test_fraction}.")


def _split_official(root, official: dict, val_fraction: float, *, seed: int, verbose: bool):
    """The official held-out folder as test; validation carved from the official training folder.

    Returns (parts, duplicates removed, a note on training files identical to test files).
    """
    train_all = scan_folder(root / official["train"], verbose=verbose)
    test = scan_folder(root / official["test"], class_names=train_all.class_names, verbose=verbose)
    test, dup_test = deduplicate(test)
    train_all, dup_train = deduplicate(train_all)
    leaked = set(test.digests)
    keep = [i for i, d in enumerate(train_all.digests) if d not in leaked]
    n_leak = len(train_all) - len(keep)
    parts = stratified_split(train_all.take(keep), {"train": 1 - val_fraction, "validation": val_fraction}, seed=seed)
    parts["test"] = test
    note = f"; {n_leak} training files identical to test files removed" if n_leak else ""
    return parts, dup_test + dup_train, note
