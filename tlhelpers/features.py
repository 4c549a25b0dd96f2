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
import zipfile

import numpy as np

from ._atomic import atomic_path
from .bases import Base
from .data import cache_home, cache_write_failed
from .errors import check_int, check_type
from .images import ImageSet, to_dataset

BASE_HINT = "Make one with load_base('vgg16', image_size=...)."


def check_base_and_images(base, images, *, where: str, batch_size: int = 32) -> None:
    """Raise TypeError/ValueError naming the argument when `base` is not a Base or `images` not an ImageSet."""
    check_type("base", base, Base, "a Base (from load_base)", where=where, hint=BASE_HINT)
    check_type("images", images, ImageSet, "an ImageSet (from scan_folder or load_splits)", where=where)
    check_int("batch_size", batch_size, minimum=1, where=where)


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

        from .bases import ImagePreprocess

        pre = ImagePreprocess(base.arch)
        model = base.model

        @tf.function(reduce_retracing=True)
        def infer(x):
            return model(pre(x), training=False)

        base._infer = infer  # variables are captured by reference: fine-tuned weights are seen
    return infer


def extract_features(
    base: Base, images: ImageSet, *, batch_size: int = 32, cache: bool = True, verbose: bool = True,
    pooling: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (features, labels): the base's output for every image, computed once and cached.

    Images are decoded in parallel and streamed through the frozen base batch by batch
    (never all in memory). The result is stored under the cache folder, keyed by the base,
    a fingerprint of its weights, the image size and the file list, so a rerun is instant and
    any change recomputes. `pooling="avg"` averages each feature map over its positions
    (N x channels), as a global-average-pooling head would.

    Example:
        >>> x, y = extract_features(base, splits["train"]); x.shape
        (2000, 5, 5, 512)
    """
    check_base_and_images(base, images, where="extract_features", batch_size=batch_size)
    if pooling not in (None, "avg"):
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}.")
    x, y = _extract(base, images, batch_size=batch_size, cache=cache, verbose=verbose)
    if pooling == "avg" and x.ndim == 4:
        x = x.mean(axis=(1, 2))
    return x, y


def _read_cached(path):
    """(features, labels) from a cache file, or None when there is none or it is damaged (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            return f["features"], f["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _extract(base, images, *, batch_size, cache, verbose):
    if cache:  # the key stats every file and hashes every weight: only worth it when caching
        path = cache_home() / "features" / f"{base.arch}-{base.image_size}-{cache_key(base, images)}.npz"
        found = _read_cached(path)
        if found is not None:
            if verbose:
                print(f"features of {len(images)} images: read from cache ({path.name})")
            return found
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
        try:
            with atomic_path(path) as tmp:
                np.savez(tmp, features=out, labels=labels)
        except OSError as err:
            cache_write_failed(err, "features")
            cache = False
    if verbose:
        print(f"features of {len(images)} images: computed, shape {out.shape[1:]}" + (", cached" if cache else ""))
    return out, labels


def features_by_depth(base: Base, images: ImageSet, *, layers: list | None = None, batch_size: int = 32,
                      verbose: bool = True) -> dict:
    """Return {layer name: (N, channels) array}: average-pooled features at several depths, in one pass.

    `layers` defaults to the end of every block of the base (`block_outputs`). One model with
    one output per layer runs over the images once, so twenty depths cost about one.

    Example:
        >>> by_depth = features_by_depth(base, splits["train"])
        >>> {name: x.shape for name, x in by_depth.items()}
    """
    import keras

    from .bases import block_outputs

    check_base_and_images(base, images, where="features_by_depth", batch_size=batch_size)
    layers = list(layers or block_outputs(base))
    known = {layer.name for layer in base.model.layers}
    missing = [name for name in layers if name not in known]
    if missing:
        raise ValueError(f"{', '.join(missing)} not in {base.arch}; block ends are: {', '.join(block_outputs(base))}.")
    pooled = [keras.layers.GlobalAveragePooling2D()(base.model.get_layer(name).output) for name in layers]
    probe = keras.Model(base.model.input, pooled)
    from .bases import ImagePreprocess

    prep = ImagePreprocess(base.arch)
    ds = to_dataset(images, image_size=base.image_size, batch_size=batch_size, cache=False)
    outs = probe.predict(ds.map(lambda x, y: prep(x)), verbose=1 if verbose else 0)
    parts = outs if isinstance(outs, (list, tuple)) else [outs]
    return {name: np.asarray(x) for name, x in zip(layers, parts)}


def linear_probe(x_train, y_train, x_test, y_test, *, l2: float = 1.0) -> float:
    """Return the test accuracy of a linear classifier (one-vs-rest logistic regression) on fixed features.

    Features are standardised on the training set. A linear probe measures how much of what a
    task needs is already laid out linearly in a representation.

    Example:
        >>> linear_probe(x_train, y_train, x_test, y_test)
        0.87
    """
    y_test = np.asarray(y_test, int)
    if len(x_test) != len(y_test):
        raise ValueError("train and test features must have the same width and one label per row.")
    return float((probe_predictions(x_train, y_train, x_test, l2=l2) == y_test).mean())


def probe_predictions(x_train, y_train, x_test, *, l2: float = 1.0, scores: bool = False,
                      method: str = "lbfgs"):
    """Return the class `linear_probe`'s classifier predicts for each row of `x_test` (or its scores).

    The same standardisation and penalised one-vs-rest logistic regression as `linear_probe`, whose
    accuracy is the mean of these predictions' agreement with the labels. `scores=True` returns
    (classes, scores) instead: the decision values, one column per class (a single column for two).
    Predictions are what a paired test of two probes on the same test images needs (`tlh.compare`).
    `method`: "lbfgs" (SciPy, as `linear_probe`) or "newton" (faster on a thousand features; same optimum).

    Example:
        >>> pred = probe_predictions(x_train, y_train, x_test)
        >>> (pred == y_test).mean() == linear_probe(x_train, y_train, x_test, y_test)
        True
    """
    from .formalism import _logistic_fit

    x_train, x_test = np.asarray(x_train, "float64"), np.asarray(x_test, "float64")
    y_train = np.asarray(y_train, int)
    if x_train.shape[1:] != x_test.shape[1:] or len(x_train) != len(y_train):
        raise ValueError("train and test features must have the same width and one label per row.")
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ValueError("the training labels hold a single class; a probe needs at least two.")
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    columns = []
    for c in classes if len(classes) > 2 else classes[1:]:
        w = _logistic_fit(a, (y_train == c).astype(float), l2=l2, method=method)
        columns.append(b @ w[:-1] + w[-1])
    columns = np.stack(columns, axis=1)
    if scores:
        return classes, columns
    return classes[columns.argmax(1)] if len(classes) > 2 else np.where(columns[:, 0] > 0, classes[1], classes[0])


def evaluate_probe(x_train, y_train, x_test, y_test, *, classes: list | None = None, l2: float = 1.0,
                   method: str = "lbfgs"):
    """Return `linear_probe`'s classifier as an `Evaluation` on the test features (the same accuracy).

    Built on `probe_predictions`; `y_prob` holds the softmax of the decision values (for two classes, the
    logistic output), whose argmax is the probe's prediction, so two probes scored on the same test images
    compare by the paired test, `tlh.compare`. `classes`: the class names (default: "0", "1", ...).

    Example:
        >>> top = evaluate_probe(xa_train, y_train, xa_test, y_test, classes=test.class_names)
        >>> compare(top, evaluate_probe(xb_train, y_train, xb_test, y_test)).summary()
    """
    from .evaluation import Evaluation

    y_test = np.asarray(y_test, int)
    if len(x_test) != len(y_test):
        raise ValueError("train and test features must have the same width and one label per row.")
    labels, columns = probe_predictions(x_train, y_train, x_test, l2=l2, scores=True, method=method)
    k = int(max(labels.max(), y_test.max())) + 1 if classes is None else len(classes)
    scores = np.full((len(y_test), k), -np.inf)
    if columns.shape[1] == 1:  # one classifier: positive scores mean the second class
        scores[:, labels[0]], scores[:, labels[1]] = -columns[:, 0] / 2, columns[:, 0] / 2
    else:
        scores[:, labels] = columns
    prob = np.exp(scores - scores.max(1, keepdims=True))
    names = list(classes) if classes is not None else [str(c) for c in range(k)]
    return Evaluation(names, y_test, prob / prob.sum(1, keepdims=True))


def transferability(base: Base, train: ImageSet, test: ImageSet, *, layers: list | None = None,
                    verbose: bool = True, return_predictions: bool = False):
    """Return a DataFrame: linear-probe test accuracy of features from each depth of `base`.

    The question is Yosinski et al.'s (2014): early layers hold general features, late ones features
    specific to the source task, and how well each depth serves a target shows where the transition
    lies for that target. They answered it by transplanting layers; a linear probe at each depth
    (Alain & Bengio, 2016) is the cheaper way used here.

    `return_predictions=True` returns (table, {depth: the probe's predicted class for each test image}),
    for paired tests between depths on the same images (`tlh.mcnemar`).

    Example:
        >>> transferability(base, splits["train"], splits["test"]).plot(x="depth", y="probe accuracy")
        >>> table, answers = transferability(base, train, test, return_predictions=True)
    """
    import pandas as pd

    tr = features_by_depth(base, train, layers=layers, verbose=verbose)
    te = features_by_depth(base, test, layers=layers, verbose=verbose)
    rows, answers = [], {}
    for i, name in enumerate(tr):
        answers[i + 1] = probe_predictions(tr[name], train.labels, te[name])
        rows.append({"depth": i + 1, "layer": name, "channels": tr[name].shape[1],
                     "probe accuracy": float((answers[i + 1] == np.asarray(test.labels)).mean())})
    table = pd.DataFrame(rows).set_index("depth")
    return (table, answers) if return_predictions else table


def probe_by_size(base: Base, train: ImageSet, test: ImageSet, *, sizes=(5, 10, 25, 50, None), draws: int = 5,
                  seed: int = 0, label: str = "linear probe", verbose: bool = False, against=None):
    """Return a DataFrame: linear-probe test accuracy on `base`'s pooled features by training images per class.

    Features of all of `train` and `test` are extracted once (and cached); each size then draws
    `draws` stratified samples of the training features and trains a linear probe on each (None, or
    a size the smallest class cannot fill: all of them, one draw, reported as the smallest class's
    count). Columns: strategy (`label`), images per class, test accuracy (mean over draws), ci low
    and ci high (the Wilson 95% interval of that accuracy on the test images: the test set's noise),
    draws min and draws max (the spread between samples: the training set's luck) and draws. The
    columns fit `plot_accuracy_by_size`.

    `against`: another model's `Evaluation` on the same `test` images, in the same order (say, a network
    trained from scratch on all of `train`). Each draw is then compared with it by the paired test
    (`tlh.compare`, McNemar's exact test), and two columns are added: draws ahead (the draws clearly
    ahead of it, p < 0.05) and p max (the largest p-value among the draws: the weakest draw's).

    Example:
        >>> table = probe_by_size(base, splits["train"], splits["test"], sizes=(5, 10, None))
        >>> table[["images per class", "test accuracy", "draws min"]]
        >>> probe_by_size(base, train, test, against=evaluate(scratch, test))[["draws ahead", "p max"]]
    """
    import pandas as pd

    from .evaluation import accuracy_interval

    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}.")
    x_train, y_train = extract_features(base, train, pooling="avg", verbose=verbose)
    x_test, y_test = extract_features(base, test, pooling="avg", verbose=verbose)
    available = min(train.counts().values())
    other = None if against is None else _paired_with(against, y_test)
    rng = np.random.default_rng(seed)
    rows, done = [], set()
    for size in sizes:
        everything = size is None or int(size) >= available
        n = available if everything else int(size)
        if n in done:  # two sizes the classes cannot fill are one and the same run
            continue
        done.add(n)
        accs, tests = [], []
        for _ in range(1 if everything else draws):
            keep = (np.arange(len(y_train)) if everything else np.concatenate(
                [rng.permutation(np.flatnonzero(y_train == c))[:n] for c in np.unique(y_train)]))
            right = probe_predictions(x_train[keep], y_train[keep], x_test) == y_test
            accs.append(float(right.mean()))
            if other is not None:
                tests.append(_paired_test(right, other))
        mean = float(np.mean(accs))
        low, high = accuracy_interval(int(round(mean * len(y_test))), len(y_test))
        row = {"strategy": label, "images per class": n, "test accuracy": mean, "ci low": low, "ci high": high,
               "draws min": float(min(accs)), "draws max": float(max(accs)), "draws": len(accs)}
        if other is not None:
            row["draws ahead"] = sum(t.sign > 0 for t in tests)
            row["p max"] = max(t.p_value for t in tests)
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_with(against, y_test) -> np.ndarray:
    """Per-image correctness of the model `against` (an Evaluation, or booleans) on the probe's test images."""
    if hasattr(against, "y_pred") and hasattr(against, "y_true"):
        if not np.array_equal(np.asarray(against.y_true), y_test):
            raise ValueError("against: the evaluation is not of the same test images (its labels differ); evaluate "
                             "the other model on the same ImageSet, in the same order.")
        return np.asarray(against.y_pred) == y_test
    right = np.asarray(against)
    if right.shape != y_test.shape:
        raise ValueError(f"against: expected an Evaluation or one boolean per test image ({len(y_test)}); "
                         f"received shape {right.shape}.")
    return right.astype(bool)


def _paired_test(right_new, right_old):
    """The course's paired test (McNemar's exact test) of two per-image correctness vectors: a Comparison."""
    from .stats import Comparison, mcnemar

    r = mcnemar(right_new, right_old)
    return Comparison(new_accuracy=r["accuracy_a"], old_accuracy=r["accuracy_b"], new_only=r["a_only"],
                      old_only=r["b_only"], n=r["n"], p_value=r["p_value"])


def ridge_readout(x: np.ndarray, y: np.ndarray, train: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """Predictions for the rows not in `train` of a ridge regression from `x` to `y` fitted on the rows in `train`.

    Features are standardised on the training rows; the penalty is `alpha` per training row, so one `alpha`
    means the same at every depth. `train` is a boolean mask over the rows.

    Example:
        >>> guess = ridge_readout(features, np.eye(10)[labels], half).argmax(1)   # a linear probe
    """
    mu, sd, y_mean = x[train].mean(0), x[train].std(0) + 1e-6, y[train].mean(0)
    a, b = (x[train] - mu) / sd, (x[~train] - mu) / sd
    w = np.linalg.solve(a.T @ a + alpha * len(a) * np.eye(a.shape[1], dtype=a.dtype), a.T @ (y[train] - y_mean))
    return b @ w + y_mean


def _cells(thumbs: np.ndarray, k: int) -> np.ndarray:
    """Each (s, s, 3) thumbnail cut into k x k cells: one row per cell, holding that cell's pixels."""
    n, s = len(thumbs), thumbs.shape[1] // k
    return thumbs.reshape(n, k, s, k, s, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n * k * k, -1)


def information_by_depth(maps: dict, thumbnails: np.ndarray, labels, *, alpha: float = 1.0):
    """How much of the class and of the photo a linear read-out recovers at each depth: a DataFrame, one row a layer.

    `maps` is {layer: (N, k, k, channels)} feature maps (pooled to at most the thumbnail's size), `thumbnails`
    the (N, s, s, 3) photos, s divisible by every k, `labels` one class per photo. Two ridge read-outs
    (`ridge_readout`), each fitted on every other photo of each class and scored on the rest, then the other
    way round: the class from the maps averaged over positions ("class recovered", accuracy), and the
    thumbnail's pixels, each position reading out the pixels it covers ("pixels recovered (R²)").

    Example:
        >>> information_by_depth({"stem": stem_maps, "top": top_maps}, thumbs, labels)["class recovered"]
    """
    import pandas as pd

    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    half = np.zeros(len(y), bool)
    half[np.argsort(y, kind="stable")[::2]] = True  # every other photo of each class
    onehot = np.eye(y.max() + 1, dtype="float32")[y]
    rows = []
    for name, m in maps.items():
        k, pooled = m.shape[1], m.mean(axis=(1, 2))
        if thumbnails.shape[1] % k:
            raise ValueError(f"{name}: {k}×{k} positions do not tile {thumbnails.shape[1]}-px thumbnails; pool the maps "
                             "to a divisor of the thumbnail size.")
        guess = np.empty(len(y), int)
        guess[~half] = ridge_readout(pooled, onehot, half, alpha=alpha).argmax(1)
        guess[half] = ridge_readout(pooled, onehot, ~half, alpha=alpha).argmax(1)
        x, pixels, at = m.reshape(-1, m.shape[-1]), _cells(thumbnails, k), np.repeat(half, k * k)
        copy = np.empty_like(pixels)
        copy[~at], copy[at] = ridge_readout(x, pixels, at, alpha=alpha), ridge_readout(x, pixels, ~at, alpha=alpha)
        rows.append({"layer": name, "positions": f"{k}×{k}", "channels": m.shape[-1],
                     "class recovered": float(np.mean(guess == y)),
                     "pixels recovered (R²)": float(1 - ((pixels - copy) ** 2).sum() / ((pixels - pixels.mean(0)) ** 2).sum())})
    return pd.DataFrame(rows).set_index("layer")
