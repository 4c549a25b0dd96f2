"""Feature extraction: stream images through a frozen base once, cache the result on disk.

Example:
    >>> base = load_base("vgg16", image_size=180)
    >>> x_train, y_train = extract_features(base, splits["train"])   # slow the first time
    >>> x_train, y_train = extract_features(base, splits["train"])   # instant: read from the cache
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ._atomic import atomic_path
from .data import ImageSet, cache_home, to_dataset
from .models import Base


def weights_fingerprint(model) -> str:
    """SHA-256 over every weight of `model`: equal fingerprints mean equal features."""
    h = hashlib.sha256()
    for w in model.weights:
        h.update(np.ascontiguousarray(w.numpy()).tobytes())
    return h.hexdigest()


def cache_key(base: Base, images: ImageSet) -> str:
    """Key of a feature cache entry: the base, its weights, the image size and the exact files."""
    files = []
    for p in images.paths:
        st = os.stat(p)
        files.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    payload = {
        "arch": base.arch, "weights": weights_fingerprint(base.model), "image_size": base.image_size,
        "files": files, "labels": images.labels.tolist(), "version": 1,
    }
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:24]


def _infer_fn(base: Base):
    """The base's compiled inference function, traced once per base and reused by every call."""
    infer = getattr(base, "_infer", None)
    if infer is None:
        import tensorflow as tf

        from .models import ImagePreprocess

        pre = ImagePreprocess(base.arch)
        model = base.model

        @tf.function(reduce_retracing=True)
        def infer(x):
            return model(pre(x), training=False)

        base._infer = infer  # variables are captured by reference: fine-tuned weights are seen
    return infer


def extract_features(
    base: Base, images: ImageSet, *, batch_size: int = 32, cache: bool = True, verbose: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (features, labels): the base's output for every image, computed once and cached.

    Images are decoded in parallel and streamed through the frozen base batch by batch
    (never all in memory). The result is stored under the cache folder, keyed by the base,
    a fingerprint of its weights, the image size and the file list, so a rerun is instant and
    any change recomputes.

    Example:
        >>> x, y = extract_features(base, splits["train"]); x.shape
        (2000, 5, 5, 512)
    """
    if cache:  # the key stats every file and hashes every weight: only worth it when caching
        path = cache_home() / "features" / f"{base.arch}-{base.image_size}-{cache_key(base, images)}.npz"
        if path.is_file():
            with np.load(path) as f:
                if verbose:
                    print(f"features of {len(images)} images: read from cache ({path.name})")
                return f["features"], f["labels"]
    from tqdm.auto import tqdm

    infer = _infer_fn(base)
    ds = to_dataset(images, image_size=base.image_size, batch_size=batch_size, cache=False)
    out = np.empty((len(images), *base.model.output_shape[1:]), dtype="float32")
    i = 0
    with tqdm(total=len(images), desc=f"{base.arch} features", unit="img", disable=not verbose, leave=False) as bar:
        for x, _ in ds:
            f = infer(x).numpy()
            out[i:i + len(f)] = f
            i += len(f)
            bar.update(len(f))
    labels = images.labels.copy()
    if cache:
        with atomic_path(path) as tmp:
            np.savez(tmp, features=out, labels=labels)
    if verbose:
        print(f"features of {len(images)} images: computed, shape {out.shape[1:]}" + (", cached" if cache else ""))
    return out, labels
