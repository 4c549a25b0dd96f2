"""Experiments that compare: strategies, training-set sizes, transfer effects, BatchNorm settings, bases.

Each returns the numbers a chapter plots or tabulates (a DataFrame, or {label: history}), with the
same data, seed and budget for every variant so that only the thing compared differs:

- compare_strategies, accuracy_by_size, transfer_effects: the strategies of `fit_strategy`, by test
  accuracy, by images per class, and by start, slope and asymptote of their learning curves;
- ValidationRecorder, effect_tests: which validation images each run gets right after every epoch, and
  whether one run's start and slope beat another's on those same images (paired tests);
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


class ValidationRecorder(keras.callbacks.Callback):
    """A Keras callback that records, after every epoch, which validation images the model gets right.

    `correct` is then an (epochs, images) boolean array: row e holds the model's right answers after epoch
    e + 1, so two runs scored on the same images can be compared image by image (`effect_tests`).
    Its row means are the validation accuracies Keras reports. Predictions are made in batches of
    `batch_size`, in inference mode (no dropout, BatchNormalization's moving statistics).

    Example:
        >>> record = ValidationRecorder(x_val, y_val)
        >>> model.fit(x_train, y_train, epochs=10, validation_data=(x_val, y_val), callbacks=[record])
        >>> record.correct.mean(axis=1)   # the validation curve
    """

    def __init__(self, x, y, *, batch_size: int = 256):
        super().__init__()
        self.x, self.y, self.batch_size = x, np.asarray(y, dtype=int).ravel(), int(batch_size)
        if len(self.x) != len(self.y) or len(self.y) == 0:
            raise ValueError(f"ValidationRecorder: expected one label per validation input; received "
                             f"{len(self.x)} inputs and {len(self.y)} labels.")
        self._rows = []

    def on_epoch_end(self, epoch, logs=None):
        pred = np.concatenate([np.asarray(self.model(self.x[i:i + self.batch_size], training=False)).argmax(-1)
                               for i in range(0, len(self.x), self.batch_size)])
        self._rows.append(pred == self.y)

    @property
    def correct(self) -> np.ndarray:
        return np.array(self._rows, dtype=bool).reshape(len(self._rows), len(self.y))


def _slope(curves: np.ndarray) -> np.ndarray:
    """transfer_effects's slope of (..., epochs) accuracy curves: the mean gain per epoch over the first half."""
    half = max(2, (curves.shape[-1] + 1) // 2)
    return (curves[..., half - 1] - curves[..., 0]) / (half - 1)


def effect_tests(correct: dict, *, baseline: str, draws: int = 2000, seed: int = 0, level: float = 0.95):
    """Return a DataFrame: each run's start and slope against `baseline`'s, tested on the same validation images.

    `correct` maps a run's name to its `ValidationRecorder.correct`, an (epochs, images) boolean array;
    every run must have the same epochs and images. For each run other than `baseline`:

    - start gap: points ahead after the first epoch; start p: McNemar's exact test of the two runs'
      right answers after that epoch (the course's paired test, `tlh.compare`);
    - slope gap: the difference in mean gain per epoch over the first half (`transfer_effects`'s slope),
      in points per epoch; slope low / slope high: its `level` interval from a paired bootstrap, `draws`
      resamples of the validation images (the same images for both runs). A slope is not one right or
      wrong answer per image, so it has no McNemar test: a slope differs where this interval excludes 0.

    Example:
        >>> effect_tests({"no transfer": rec_a.correct, "feature extraction": rec_b.correct},
        ...              baseline="no transfer")
    """
    import pandas as pd

    from .stats import mcnemar

    arrays = {name: np.asarray(c, dtype=bool) for name, c in correct.items()}
    if baseline not in arrays:
        raise ValueError(f"effect_tests: baseline {baseline!r} is not one of the runs: {', '.join(arrays)}.")
    shapes = {c.shape for c in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] < 2:
        raise ValueError(f"effect_tests: every run needs the same (epochs, images) array, with at least 2 epochs; "
                         f"received shapes {sorted(shapes)}.")
    base = arrays[baseline]
    n = base.shape[1]
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, n, size=(draws, n))
    rows = {}
    for name, run in arrays.items():
        if name == baseline:
            continue
        start = mcnemar(run[0], base[0])
        gap = _slope(run.mean(1)) - _slope(base.mean(1))
        boot = _slope(run[:, resamples].mean(2).T) - _slope(base[:, resamples].mean(2).T)
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        rows[name] = {"start gap": 100 * (start["accuracy_a"] - start["accuracy_b"]), "start p": start["p_value"],
                      "slope gap": 100 * gap, "slope low": 100 * low, "slope high": 100 * high}
    table = pd.DataFrame(rows).T
    table.index.name = f"run against {baseline}"
    return table


def batchnorm_experiment(model: keras.Model, base, train, validation, *, start_weights: list, epochs: int,
                         top_blocks: int | str, optimizer_name: str = "sgd", learning_rate: float = 1e-4,
                         class_weight: dict | None = None, seed: int = 0, evaluate_on: ImageSet | None = None):
    """Run phase 2 twice from `start_weights`: BatchNormalization frozen, then in training mode.

    Both runs see the same batches and augmentations (same seed). Returns a DataFrame with one
    row per mode: validation accuracy after each epoch (none when `validation` is None), and how
    far the BatchNormalization moving means moved (mean absolute change). The model gets its
    current weights and compile back, and the base is frozen again, so the experiment leaves no
    trace.

    `evaluate_on`: an ImageSet to score each run's model on after training; the table then adds the
    training accuracy of the last epoch (on the run's own batches, in the mode it trained in) and the
    accuracy on `evaluate_on`, whose `Evaluation`s are in `table.attrs["evaluations"]` ({row label:
    Evaluation}), ready for `compare` (the paired test).

    Example:
        >>> after_head = model.get_weights()   # right after phase 1
        >>> batchnorm_experiment(model, base, train_ds, val_ds, start_weights=after_head, epochs=3, top_blocks=2)
        >>> t = batchnorm_experiment(model, base, train_ds, None, start_weights=after_head, epochs=1,
        ...                          top_blocks="all", evaluate_on=val)
        >>> compare(*t.attrs["evaluations"].values())
    """
    import pandas as pd

    from .bases import as_model
    from .freezing import freeze

    bn = [layer for layer in as_model(base)._flatten_layers(include_self=False)
          if isinstance(layer, keras.layers.BatchNormalization)]
    current = model.get_weights()
    compiled = model.get_compile_config() if model.compiled else None
    rows, evaluations = {}, {}
    try:
        for label, train_bn in (("frozen (inference mode)", False), ("training mode", True)):
            model.set_weights(start_weights)
            before = [layer.moving_mean.numpy().copy() for layer in bn]
            keras.utils.set_random_seed(seed)
            h = fine_tune(model, base, train, validation, epochs=epochs, top_blocks=top_blocks,
                          optimizer_name=optimizer_name, learning_rate=learning_rate, class_weight=class_weight,
                          train_batchnorm=train_bn, verbose=0)
            drift = float(np.mean([np.abs(layer.moving_mean.numpy() - b).mean() for layer, b in zip(bn, before)]))
            row = f"BatchNorm {label}"
            rows[row] = {
                **{f"val. accuracy, epoch {i + 1}": v for i, v in enumerate(h.get("val_accuracy", []))},
                "moving-mean change": drift,
            }
            if evaluate_on is not None:
                evaluations[row] = evaluate(model, evaluate_on)
                rows[row]["training accuracy"] = h["accuracy"][-1]  # on its own batches, last epoch
                rows[row]["accuracy"] = evaluations[row].accuracy
    finally:
        model.set_weights(current)
        freeze(base, verbose=False)
        if compiled:  # its own compile back, the optimizer built for what trains now (saves and reloads cleanly)
            model.compile_from_config(compiled)
    table = pd.DataFrame(rows).T
    table.index.name = "phase 2 with"
    if evaluate_on is not None:
        table.attrs["evaluations"] = evaluations
    return table


def compare_batchnorm_momentum(
    train: ImageSet, val: ImageSet, *, momenta=(0.999, 0.9), image_size: int = 96, epochs: int = 3,
    batch_size: int = 32, alpha: float = 0.5, seed: int = 0, evaluate: bool = False,
):
    """Train MobileNetV2 from scratch once per BatchNormalization momentum; return {label: history}.

    Every run uses the same seed, data, augmentation and optimiser (Adam 1e-3), so the momentum
    is the only difference. Keras's default for MobileNetV2 is 0.999. `evaluate=True` returns
    (runs, {label: Evaluation on `val`}) instead, so that two runs compare by the paired test.

    Example:
        >>> runs = compare_batchnorm_momentum(train, val, momenta=(0.999, 0.9), epochs=3)
        >>> plot_history(runs)
    """
    train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
    runs, evaluations = {}, {}
    for m in momenta:
        keras.utils.set_random_seed(seed)
        base = load_base("mobilenet_v2", weights=None, image_size=image_size, alpha=alpha, verbose=False)
        set_batchnorm_momentum(base, m)
        model = build_classifier(base, len(train.class_names), augment=augmentation(), pooling="avg", hidden=None,
                                 dropout=0.2, freeze_base=False)
        set_trainable(base, from_layer=0, train_batchnorm=True, verbose=False)
        runs[f"momentum {m}"] = fit(model, train_ds, val_ds, epochs=epochs, optimizer_name="adam", verbose=0)
        if evaluate:
            from .evaluation import evaluate as evaluate_model  # the module's name, shadowed here

            evaluations[f"momentum {m}"] = evaluate_model(model, val)
    return (runs, evaluations) if evaluate else runs


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
    batch_size: int = 32, repeats: int = 3, verbose: bool = False, return_evaluations: bool = False,
):
    """Return a DataFrame comparing bases on one target: test accuracy with its 95% interval, images/s, parameters.

    Every base in `bases` ({label: Base}) is scored the same cheap way: a linear probe on its
    average-pooled features of `train`, tested on `test` (features cached). `trained` ({label:
    (Base, test accuracy or Evaluation)}) adds models already trained end to end and evaluated on the same
    `test` images, such as a from-scratch run; their Base gives the speed and size. images/s counts
    forward passes through the base alone (no decoding, batch `batch_size`, best of `repeats`
    passes over `speed_images` test images); parameters are the base's, without a head.

    `return_evaluations=True` returns (table, {label: Evaluation}) instead: each probe's predictions on
    `test` (and each trained model's, where `trained` gave an Evaluation), for paired tests between
    bases on the same images (`tlh.compare`).

    Example:
        >>> table = compare_bases({"EfficientNet-Lite0": lite0, "Imagenette MobileNetV2": own}, train, test)
        >>> table[["test accuracy", "95% interval", "images/s", "parameters"]]
        >>> table, evals = compare_bases(bases, train, test, return_evaluations=True)
        >>> tlh.compare(evals["EfficientNet-Lite0"], evals["Imagenette MobileNetV2"]).summary()
    """
    import pandas as pd

    from .evaluation import Evaluation
    from .features import evaluate_probe

    n_test = len(test)
    scored, evaluations = {}, {}
    for label, base in bases.items():
        x_train, y_train = extract_features(base, train, pooling="avg", batch_size=batch_size, verbose=verbose)
        x_test, y_test = extract_features(base, test, pooling="avg", batch_size=batch_size, verbose=verbose)
        evaluations[label] = evaluate_probe(x_train, y_train, x_test, y_test, classes=list(test.class_names))
        scored[label] = (base, evaluations[label].accuracy, "linear probe on pooled features")
    for label, (base, result) in (trained or {}).items():
        if isinstance(result, Evaluation):
            evaluations[label], accuracy = result, result.accuracy
        else:
            accuracy = result
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
    return (table, evaluations) if return_evaluations else table
