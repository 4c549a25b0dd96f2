"""Experiments that compare: strategies, training-set sizes, transfer effects, BatchNorm settings, bases.

Each returns the numbers a chapter plots or tabulates (a DataFrame, or {label: history}), with the
same data, seed and budget for every variant so that only the thing compared differs:

- compare_strategies, accuracy_by_size, transfer_effects: the strategies of `fit_strategy`, by test
  accuracy, by images per class, and by start, slope and asymptote of their learning curves;
- batchnorm_experiment, compare_batchnorm_momentum: BatchNormalization frozen or trained during
  fine-tuning, and its moving-average momentum when training from scratch;
- available_bases, compare_bases: which ImageNet bases load here, and how they compare on one target.

Example:
    >>> histories, table = compare_strategies(train, val, test, epochs=6)
"""

from __future__ import annotations

import keras
import numpy as np

from .bases import load_base
from .builders import augmentation, build_classifier
from .evaluation import accuracy_interval, evaluate
from .features import extract_features
from .freezing import set_batchnorm_momentum, set_trainable
from .images import ImageSet, load_images, to_dataset
from .strategies import fit_strategy
from .train import fine_tune, fit


def _resolve_weights(arch, weights, image_size, base_kwargs, verbose=True):
    """Load the base once (printing any fallback notice); return (arch, weights, kwargs, base).

    arch, weights and kwargs are what every strategy then passes to `load_base`, so all of them
    use the same architecture and weights; `base` is the Base loaded, whose `weights` labels the table.
    """
    base = load_base(arch, weights=weights, image_size=image_size, verbose=verbose, **(base_kwargs or {}))
    if base.stand_in and base.imagenet:  # every strategy, scratch included, then uses the stand-in's architecture
        return base.arch, "imagenet", {}, base
    if base.offline:  # every strategy, scratch included, then uses the offline model's architecture
        from .bases import OFFLINE_ALPHA

        return base.arch, "offline", {"alpha": OFFLINE_ALPHA}, base
    return arch, weights, base_kwargs or {}, base


def compare_strategies(
    train: ImageSet, val: ImageSet, test: ImageSet, *, strategies=("scratch", "features", "finetune"),
    arch: str = "mobilenet_v2", weights="imagenet", image_size: int = 96, epochs: int = 6, batch_size: int = 32,
    seed: int = 0, base_kwargs: dict | None = None, verbose: bool = True,
):
    """Train one classifier per strategy on the same data and budget; return (histories, table).

    The base is loaded once first, so a fallback notice is printed once and every strategy
    uses the same weights. `table` has one row per strategy with its test accuracy and the
    weights used; every strategy gets `epochs` passes over the training images in total.

    Example:
        >>> histories, table = compare_strategies(train, val, test, epochs=6)
    """
    arch, weights, kwargs, resolved = _resolve_weights(arch, weights, image_size, base_kwargs, verbose)
    histories, rows = {}, {}
    for strategy in strategies:
        keras.utils.set_random_seed(seed)
        model, history, base = fit_strategy(strategy, train, val, arch=arch, weights=weights, image_size=image_size,
                                            epochs=epochs, batch_size=batch_size, base_kwargs=kwargs, verbose=0)
        histories[strategy] = history
        label = resolved.weights if base.pretrained else base.weights  # a stand-in keeps its label
        result = evaluate(model, test)
        rows[strategy] = {"test accuracy": result.accuracy, "95% interval": "{:.3f}–{:.3f}".format(*result.interval()),
                          "weights": label}
    import pandas as pd

    table = pd.DataFrame(rows).T
    table.index.name = "strategy"
    return histories, table


def accuracy_by_size(
    train: ImageSet, val: ImageSet, test: ImageSet, *, sizes=(10, 30, None), seed: int = 0, **kwargs,
):
    """Return a DataFrame of test accuracy by strategy and number of training images per class.

    Each size draws a stratified sample of `train` (None: all of it) and calls
    `compare_strategies` with the remaining keyword arguments.

    Example:
        >>> accuracy_by_size(train, val, test, sizes=(10, 30, None), epochs=6)
    """
    import pandas as pd

    frames = []
    for n in sizes:
        part = train.sample(n, seed=seed)
        _, table = compare_strategies(part, val, test, seed=seed, verbose=not frames, **kwargs)
        table = table.assign(**{"images per class": min(part.counts().values())})
        frames.append(table.reset_index())
    return pd.concat(frames, ignore_index=True)


def transfer_effects(histories: dict, *, metric: str = "val_accuracy"):
    """Return the three classic effects of transfer for each run: start, slope and asymptote.

    - start: the metric after the first epoch;
    - slope: its mean gain per epoch over the first half of training;
    - asymptote: its mean over the last two epochs.

    Example:
        >>> transfer_effects({"scratch": h1, "fine-tuning": h2})
    """
    import pandas as pd

    rows = {}
    for name, h in histories.items():
        v = np.asarray(h[metric], dtype=float)
        if len(v) < 2:
            raise ValueError(f"run {name!r} has {len(v)} epoch(s); start, slope and asymptote need at least 2.")
        half = max(2, (len(v) + 1) // 2)
        rows[name] = {"start": v[0], "slope": (v[half - 1] - v[0]) / (half - 1), "asymptote": v[-2:].mean()}
    table = pd.DataFrame(rows).T
    table.index.name = "run"
    return table


def batchnorm_experiment(model: keras.Model, base, train, validation, *, start_weights: list, epochs: int,
                         top_blocks: int, optimizer_name: str = "sgd", learning_rate: float = 1e-4,
                         class_weight: dict | None = None, seed: int = 0):
    """Run phase 2 twice from `start_weights`: BatchNormalization frozen, then in training mode.

    Both runs see the same batches and augmentations (same seed). Returns a DataFrame with one
    row per mode: validation accuracy after each epoch, and how far the BatchNormalization
    moving means moved (mean absolute change). The model gets its current weights back, and
    the base is frozen again, so the experiment leaves no trace.

    Example:
        >>> after_head = model.get_weights()   # right after phase 1
        >>> batchnorm_experiment(model, base, train_ds, val_ds, start_weights=after_head, epochs=3, top_blocks=2)
    """
    import pandas as pd

    from .bases import as_model
    from .freezing import freeze

    bn = [layer for layer in as_model(base)._flatten_layers(include_self=False)
          if isinstance(layer, keras.layers.BatchNormalization)]
    current = model.get_weights()
    rows = {}
    try:
        for label, train_bn in (("frozen (inference mode)", False), ("training mode", True)):
            model.set_weights(start_weights)
            before = [layer.moving_mean.numpy().copy() for layer in bn]
            keras.utils.set_random_seed(seed)
            h = fine_tune(model, base, train, validation, epochs=epochs, top_blocks=top_blocks,
                          optimizer_name=optimizer_name, learning_rate=learning_rate, class_weight=class_weight,
                          train_batchnorm=train_bn, verbose=0)
            drift = float(np.mean([np.abs(layer.moving_mean.numpy() - b).mean() for layer, b in zip(bn, before)]))
            rows[f"BatchNorm {label}"] = {
                **{f"val. accuracy, epoch {i + 1}": v for i, v in enumerate(h["val_accuracy"])},
                "moving-mean change": drift,
            }
    finally:
        model.set_weights(current)
        freeze(base, verbose=False)
    table = pd.DataFrame(rows).T
    table.index.name = "phase 2 with"
    return table


def compare_batchnorm_momentum(
    train: ImageSet, val: ImageSet, *, momenta=(0.999, 0.9), image_size: int = 96, epochs: int = 3,
    batch_size: int = 32, alpha: float = 0.5, seed: int = 0,
) -> dict:
    """Train MobileNetV2 from scratch once per BatchNormalization momentum; return {label: history}.

    Every run uses the same seed, data, augmentation and optimiser (Adam 1e-3), so the momentum
    is the only difference. Keras's default for MobileNetV2 is 0.999.

    Example:
        >>> runs = compare_batchnorm_momentum(train, val, momenta=(0.999, 0.9), epochs=3)
        >>> plot_history(runs)
    """
    train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
    runs = {}
    for m in momenta:
        keras.utils.set_random_seed(seed)
        base = load_base("mobilenet_v2", weights=None, image_size=image_size, alpha=alpha, verbose=False)
        set_batchnorm_momentum(base, m)
        model = build_classifier(base, len(train.class_names), augment=augmentation(), pooling="avg", hidden=None,
                                 dropout=0.2, freeze_base=False)
        set_trainable(base, from_layer=0, train_batchnorm=True, verbose=False)
        runs[f"momentum {m}"] = fit(model, train_ds, val_ds, epochs=epochs, optimizer_name="adam", verbose=0)
    return runs


def available_bases(archs=("mobilenet_v2", "resnet50", "vgg16"), *, image_size: int = 128) -> tuple[dict, dict]:
    """Return ({arch: Base}, {arch: reason}): the bases whose ImageNet weights load, and why the others did not.

    Never falls back to a stand-in (allow_fallback=False): a base is included only when its own
    ImageNet weights are present (in Keras's cache, or downloadable). Keras's download chatter is
    kept out of the output.

    Example:
        >>> bases, skipped = available_bases(("vgg16", "resnet50"), image_size=128)
        >>> skipped   # offline: {'vgg16': 'ImageNet weights for vgg16 could not be loaded ...', ...}
    """
    import contextlib
    import io

    from .offline import WeightsUnavailableError

    found, skipped = {}, {}
    for arch in archs:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                found[arch] = load_base(arch, image_size=image_size, allow_fallback=False, verbose=False)
        except WeightsUnavailableError as err:
            skipped[arch] = str(err).split(". To provide")[0]
    return found, skipped


def _images_per_second(base, images: ImageSet, *, n: int, batch_size: int, repeats: int) -> float:
    """Forward passes of `base` per second on `n` already decoded images (best of `repeats`, after a warm-up)."""
    import time

    from .features import _infer_fn

    paths = list(images.paths[:n])
    x = load_images(paths, image_size=base.image_size)
    infer = _infer_fn(base)
    infer(x[:batch_size]).numpy()  # trace once, outside the timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            infer(x[i:i + batch_size]).numpy()
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def compare_bases(
    bases: dict, train: ImageSet, test: ImageSet, *, trained: dict | None = None, speed_images: int = 128,
    batch_size: int = 32, repeats: int = 3, verbose: bool = False,
):
    """Return a DataFrame comparing bases on one target: test accuracy with its 95% interval, images/s, parameters.

    Every base in `bases` ({label: Base}) is scored the same cheap way: a linear probe on its
    average-pooled features of `train`, tested on `test` (features cached). `trained` ({label:
    (Base, test accuracy)}) adds models already trained end to end and evaluated on the same `test`
    images, such as a from-scratch run; their Base gives the speed and size. images/s counts
    forward passes through the base alone (no decoding, batch `batch_size`, best of `repeats`
    passes over `speed_images` test images); parameters are the base's, without a head.

    Example:
        >>> table = compare_bases({"EfficientNet-Lite0": lite0, "Imagenette MobileNetV2": own}, train, test)
        >>> table[["test accuracy", "95% interval", "images/s", "parameters"]]
    """
    import pandas as pd

    from .features import linear_probe

    n_test = len(test)
    scored = {}
    for label, base in bases.items():
        x_train, y_train = extract_features(base, train, pooling="avg", batch_size=batch_size, verbose=verbose)
        x_test, y_test = extract_features(base, test, pooling="avg", batch_size=batch_size, verbose=verbose)
        scored[label] = (base, linear_probe(x_train, y_train, x_test, y_test), "linear probe on pooled features")
    for label, (base, accuracy) in (trained or {}).items():
        if not 0 <= accuracy <= 1:
            raise ValueError(f"the test accuracy of {label!r} must be between 0 and 1, got {accuracy}.")
        scored[label] = (base, float(accuracy), "trained end to end")
    rows = {}
    for label, (base, accuracy, protocol) in scored.items():
        low, high = accuracy_interval(int(round(accuracy * n_test)), n_test)
        rows[label] = {
            "test accuracy": accuracy, "95% interval": f"{low:.3f}–{high:.3f}", "ci low": low, "ci high": high,
            "images/s": _images_per_second(base, test, n=min(speed_images, n_test), batch_size=batch_size,
                                           repeats=repeats),
            "parameters": int(base.model.count_params()), "image size": base.image_size, "protocol": protocol,
            "weights": base.weights,
        }
    table = pd.DataFrame(rows).T
    for col in ("test accuracy", "ci low", "ci high", "images/s"):
        table[col] = table[col].astype(float)
    for col in ("parameters", "image size"):
        table[col] = table[col].astype(int)
    table.index.name = "base"
    return table
