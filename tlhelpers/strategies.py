"""The course's four ways to train a classifier on a folder of images, as one call.

- scratch:   the base architecture, randomly initialised, all layers trained.
- features:  frozen base, features computed once (cached), a dense head trained on them.
- finetune:  head on the frozen base with augmentation, then the top block at a low
             learning rate (RMSprop 1e-5), as in Chollet (2021, ch. 8).
- two-phase: head on the frozen base (RMSprop), then the top two blocks with
             SGD(1e-4, momentum 0.9), as in the InceptionV3 recipe of chapter 4.

With the course's offline source model (ten Imagenette classes), the second phase of finetune
and two-phase unfreezes the whole base instead, with Adam at 1e-4: its top blocks are too
specific to its ten classes to be worth keeping frozen. On 300 cats and 300 dogs (8 epochs,
96 px) that scored 69% on held-out images, against 64% for the top two blocks with SGD at 1e-3
and 58% from scratch. `unfreeze` and `phase2` override either choice.

`epochs` is the total number of passes over the training images for every strategy, so that
strategies compare at equal cost: finetune and two-phase spend half on the head (the larger half
when odd) and the rest on fine-tuning, or take an explicit `(head, fine-tuning)` pair.

Example:
    >>> model, history, base = fit_strategy("finetune", train, val, arch="vgg16", image_size=180, epochs=10)
"""

from __future__ import annotations

import numpy as np

from .data import ImageSet, to_dataset
from .features import extract_features
from .bases import blocks, freeze, load_base, set_batchnorm_momentum, set_trainable
from .builders import augmentation, build_classifier, build_head, stack
from .train import fit, two_phase

STRATEGIES = ("scratch", "features", "finetune", "two-phase")


def fit_strategy(
    strategy: str, train: ImageSet, val: ImageSet, *, arch: str = "mobilenet_v2", weights="imagenet",
    image_size: int = 160, epochs: int | tuple[int, int] = 10, batch_size: int = 32, allow_fallback: bool | None = None,
    base_kwargs: dict | None = None, unfreeze: int | str | None = None, phase2: tuple | None = None,
    verbose: int = 2,
):
    """Train a classifier with one of STRATEGIES; return (model on raw images, history, base).

    `unfreeze` (a number of top blocks, or "all") and `phase2` ((optimizer, learning rate)) set
    the fine-tuning phase of finetune and two-phase; None picks the strategy's recipe.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}.")
    n = len(train.class_names)
    if isinstance(epochs, (tuple, list)):
        phases = tuple(int(e) for e in epochs)
        if len(phases) != 2 or min(phases) < 1:
            raise ValueError(f"epochs must be a total or a (head, fine-tuning) pair of positive counts, got {epochs!r}.")
        epochs = sum(phases)
    else:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}.")
        phases = ((epochs + 1) // 2, epochs // 2)
    if unfreeze is not None and unfreeze != "all" and (not isinstance(unfreeze, int) or unfreeze < 1):
        raise ValueError(f"unfreeze must be a positive number of blocks or 'all', got {unfreeze!r}.")
    if strategy in ("finetune", "two-phase") and min(phases) < 1:
        raise ValueError(f"{strategy} trains in two phases: give it at least 2 epochs (one per phase), got {epochs}.")
    base_kwargs = base_kwargs or {}
    if strategy == "scratch":
        weights = None
    base = load_base(arch, weights=weights, image_size=image_size, allow_fallback=allow_fallback,
                     verbose=verbose > 0, **base_kwargs)
    if strategy == "features":
        freeze(base, verbose=verbose > 0)
        xtr, ytr = extract_features(base, train, batch_size=batch_size, verbose=verbose > 0)
        xva, yva = extract_features(base, val, batch_size=batch_size, verbose=verbose > 0)
        head = build_head(xtr.shape[1:], n, pooling="avg")
        history = fit(head, (xtr, ytr), (xva, yva), epochs=epochs, batch_size=batch_size, verbose=verbose)
        return stack(base, head), history, base
    train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True)
    val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
    aug = augmentation()
    if strategy == "scratch":
        model = build_classifier(base, n, augment=aug, pooling="avg", freeze_base=False)
        set_trainable(base, from_layer=0, train_batchnorm=True, verbose=verbose > 0)
        return model, fit(model, train_ds, val_ds, epochs=epochs, optimizer_name="adam", verbose=verbose), base
    model = build_classifier(base, n, augment=aug, pooling="avg")
    recipe = finetune_recipe(base, strategy)
    top = unfreeze if unfreeze is not None else recipe["top_blocks"]
    n_blocks = len(blocks(base))
    top = n_blocks if top == "all" else min(top, n_blocks)
    history = two_phase(model, base, train_ds, val_ds, epochs=phases, top_blocks=top, phase1=("rmsprop", 1e-3),
                        phase2=phase2 or (recipe["optimizer"], recipe["learning_rate"]), verbose=verbose)
    return model, history, base


def finetune_recipe(base, strategy: str = "two-phase") -> dict:
    """Return the fine-tuning phase a strategy uses on `base`: top_blocks, optimizer, learning_rate.

    ImageNet bases follow the course's recipes (finetune: the top block with RMSprop 1e-5;
    two-phase: the top two blocks with SGD 1e-4, momentum 0.9). The offline source model gets
    its whole base fine-tuned with Adam 1e-4, because its top blocks are specific to its ten
    source classes (see the module docstring for the measurement).

    Example:
        >>> finetune_recipe(base, "two-phase")
        {'top_blocks': 2, 'optimizer': 'sgd', 'learning_rate': 0.0001}
    """
    if strategy not in ("finetune", "two-phase"):
        raise ValueError(f"only finetune and two-phase have a fine-tuning phase, got {strategy!r}.")
    if base.offline:
        return {"top_blocks": "all", "optimizer": "adam", "learning_rate": 1e-4}
    if strategy == "finetune":
        return {"top_blocks": 1, "optimizer": "rmsprop", "learning_rate": 1e-5}
    return {"top_blocks": 2, "optimizer": "sgd", "learning_rate": 1e-4}


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
    import keras

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


def _resolve_weights(arch, weights, image_size, base_kwargs, verbose=True):
    """Load the base once (printing any fallback notice) and return the (arch, weights, kwargs) actually used."""
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
    import keras

    from .train import evaluate

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

    from .data import load_images
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
    from .train import accuracy_interval

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
