"""`ImageSet`, a list of labelled image files, and `SkipReport`, what a folder scan left out and why.

Example:
    >>> images = ImageSet(["a.jpg", "b.jpg"], [0, 1], ["cat", "dog"])
    >>> images.counts()
    {'cat': 1, 'dog': 1}
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

import numpy as np

from .errors import check_int, shown


@dataclasses.dataclass
class SkipReport:
    """What a scan left out, and why (and which very large images it kept)."""

    total: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)  # relative path -> reason
    large: dict = dataclasses.field(default_factory=dict)  # relative path -> megapixels, kept but slow to decode

    def __str__(self) -> str:
        if not self.skipped:
            text = f"{self.total} files read, none skipped"
        else:
            reasons = Counter(self.skipped.values())
            detail = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
            example = shown(next(iter(self.skipped)))
            text = f"skipped {len(self.skipped)} of {self.total} files ({detail}), e.g. {example}"
        if self.large:
            path, mp = max(self.large.items(), key=lambda kv: kv[1])
            text += (f"; kept {len(self.large)} very large image(s), slow to decode (largest {mp:.0f} MP: "
                     f"{shown(path)})")
        return text + ("." if not self.skipped or self.large else "")


def _check_paths_and_classes(paths, class_names) -> tuple[list, list]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"ImageSet: expected `paths` to be a list of image paths; received paths={paths!r}. "
                        "Wrap one path in a list.")
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"ImageSet: expected `class_names` to be a list of class names; "
                        f"received class_names={class_names!r} ({type(class_names).__name__}).")
    class_names = list(class_names)
    if any(not isinstance(c, str) for c in class_names):
        raise TypeError(f"ImageSet: expected every class name to be a str; received class_names={class_names!r}.")
    if len(set(class_names)) != len(class_names):
        twice = sorted({c for c in class_names if class_names.count(c) > 1})
        raise ValueError(f"ImageSet: class names must be unique; {', '.join(map(repr, twice))} appear(s) twice.")
    return list(paths), class_names


def _check_labels(labels, n_paths: int, n_classes: int) -> np.ndarray:
    raw = np.asarray(labels)
    if raw.size and raw.dtype.kind not in "iu":
        raise TypeError(f"ImageSet: expected `labels` to be integer class indices; received labels of dtype "
                        f"{raw.dtype} (e.g. {raw.ravel()[0]!r}). Map class names to indices with class_names.index.")
    if raw.ndim != 1 or len(raw) != n_paths:
        raise ValueError(f"ImageSet: expected one label per path ({n_paths}); received labels of shape {raw.shape}.")
    bad = raw[(raw < 0) | (raw >= n_classes)] if raw.size else raw
    if bad.size:
        raise ValueError(f"ImageSet: expected labels between 0 and {n_classes - 1} (one per class name); "
                         f"received label {int(bad[0])}. Add the missing class name or fix the labels.")
    return raw.astype("int32")


@dataclasses.dataclass
class ImageSet:
    """A list of labelled image files: the unit the course splits, samples and loads.

    Labels index `class_names`: every label must name a class, and every class name must be unique.

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
    orientations: list = dataclasses.field(default_factory=list)  # EXIF orientation (1-8) of each file, if known

    def __post_init__(self):
        self.paths, self.class_names = _check_paths_and_classes(self.paths, self.class_names)
        self.labels = _check_labels(self.labels, len(self.paths), len(self.class_names))
        for name in ("digests", "orientations"):
            value = list(getattr(self, name) or [])
            if value and len(value) != len(self.paths):
                raise ValueError(f"ImageSet: expected one entry of `{name}` per path ({len(self.paths)}); "
                                 f"received {len(value)}.")
            setattr(self, name, value)

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
            orientations=[self.orientations[i] for i in index] if self.orientations else [],
        )

    def sample(self, per_class: int | None, *, seed: int = 0) -> "ImageSet":
        """A stratified random subset with at most `per_class` images of each class (None: all)."""
        if per_class is None:
            return self
        per_class = check_int("per_class", per_class, minimum=0, where="ImageSet.sample")
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
        check_int("n", n, where="ImageSet.subset")
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
