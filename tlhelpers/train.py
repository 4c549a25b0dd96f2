"""Training: compile-and-fit in one call, fine-tuning the top blocks of a base, and both as two phases.

Every entry point can train under a `tf.distribute` strategy (see `distribution`): build the model
inside `strategy.scope()`, then pass the same strategy to `fit`, `fine_tune` or `two_phase`.

Example:
    >>> history = fit(model, train_ds, val_ds, epochs=5)
    >>> history = two_phase(model, base, train_ds, val_ds, epochs=(5, 5), top_blocks=2)
    >>> strategy = distribution("auto")          # MirroredStrategy when more than one GPU is visible
    >>> with strategy.scope():
    ...     model = build_head((512,), 2)
    >>> history = fit(model, (x, y), epochs=5, batch_size=64, strategy=strategy)   # 64 split across the replicas
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from .choices import DISTRIBUTIONS
from .images import ImageSet


def distribution(kind: str = "auto") -> tf.distribute.Strategy:
    """Return a `tf.distribute` strategy by name: 'auto', 'mirrored' or 'none'.

    - "auto": `MirroredStrategy` over the GPUs when more than one is visible, else the default strategy.
    - "mirrored": `MirroredStrategy` over every visible GPU or, without a GPU, over the logical CPU
      devices (one replica unless the CPU was split with `tf.config.set_logical_device_configuration`).
    - "none": the default strategy (`tf.distribute.get_strategy()`): one device, as without this helper.

    Build and compile a model inside `strategy.scope()`; `batch_size` stays the GLOBAL batch, so each
    of the `strategy.num_replicas_in_sync` replicas gets batch_size / N examples per step.
    The same devices give the same strategy object every call: a model built under
    `distribution("mirrored")` trains under a later `distribution("mirrored")`, and two strategies
    never run collective operations over the same devices side by side (they can clash).

    Example:
        >>> strategy = distribution("auto")
        >>> strategy.num_replicas_in_sync     # 1 on a CPU or one GPU, 2 on two GPUs
        1
        >>> with strategy.scope():
        ...     model = build_classifier(base, 2)
    """
    name = str(kind).strip().lower()
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {kind!r}; choose one of: {', '.join(DISTRIBUTIONS)}.")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = tuple(d.name for d in gpus or tf.config.list_logical_devices("CPU"))
        if devices not in _MIRRORED:
            _MIRRORED[devices] = tf.distribute.MirroredStrategy(devices=list(devices))
        return _MIRRORED[devices]
    return tf.distribute.get_strategy()


_MIRRORED: dict[tuple, tf.distribute.Strategy] = {}  # devices -> the one MirroredStrategy over them


def as_strategy(distribute) -> tf.distribute.Strategy:
    """A `tf.distribute.Strategy` from a name in DISTRIBUTIONS, a strategy (returned as is) or None ('none')."""
    if distribute is None:
        return tf.distribute.get_strategy()
    if isinstance(distribute, tf.distribute.Strategy):
        return distribute
    return distribution(distribute)


def _model_strategy(model: keras.Model, strategy: tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """The strategy to compile and train `model` under: its own, which `strategy`, when given, must be."""
    own = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    if strategy is None:
        return own
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy or None, got {strategy!r}; "
                        "use tlhelpers.train.distribution(name) for one by name.")
    if strategy is not own:
        raise ValueError(f"the model was built under {type(own).__name__.lstrip('_')}, not the "
                         f"{type(strategy).__name__.lstrip('_')} passed; "
                         "build it inside `with strategy.scope():` with the same strategy object.")
    return strategy


def optimizer(name: str, learning_rate: float, *, momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """An optimizer by name: 'rmsprop', 'adam' or 'sgd' (with momentum)."""
    name = name.lower()
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}; use 'rmsprop', 'adam' or 'sgd'.")


class EpochLog(keras.callbacks.Callback):
    """Print one short line per epoch: the metrics to three decimals and the time it took."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = "  ".join(f"{k} {v:.3f}" for k, v in (logs or {}).items() if k != "learning_rate")
        print(f"epoch {epoch + 1}/{self.epochs}  {metrics}  ({time.perf_counter() - self._start:.0f} s)")


def _xy(data):
    if isinstance(data, tuple) and len(data) == 2:
        return {"x": data[0], "y": data[1]}
    return {"x": data}


def fit(
    model: keras.Model, train, validation=None, *, epochs: int, optimizer_name: str = "rmsprop",
    learning_rate: float = 1e-3, momentum: float = 0.9, class_weight: dict | None = None,
    batch_size: int = 32, verbose: int = 2, strategy: tf.distribute.Strategy | None = None,
    schedule=None, label_smoothing: float = 0.0, early_stopping=None, callbacks: list | None = None,
) -> dict:
    """Compile `model` for integer labels and train it; return the history as a dict of lists.

    `verbose=2` prints one short line per epoch, 1 shows Keras's progress bar, 0 is silent.

    `train` and `validation` are tf.data datasets of (images, labels) or (x, y) array tuples.
    Compiling here, every time, makes changes to `trainable` take effect.

    `strategy` (a `tf.distribute.Strategy`, see `distribution`) must be the one the model was built
    under, inside `strategy.scope()`; None uses the model's own (the default strategy unless it was
    built in a scope). The model is compiled inside that scope. The batch is GLOBAL: `batch_size`
    (for arrays) or the dataset's batch is split across the N = `strategy.num_replicas_in_sync`
    replicas, batch_size / N examples each per step, and the gradients are summed across them.

    The recipe's options (all off by default; see `tlhelpers.recipe`):
    - `schedule="warmup_cosine"`: the learning rate warms up to `learning_rate` over the first 10% of
      the steps, then follows a cosine to 0 (a `LearningRateSchedule` is used as it is);
    - `label_smoothing=0.1`: cross-entropy against targets smoothed by that much;
    - `early_stopping=3` (a patience, or an EarlyStopping callback): stop after 3 epochs without a
      lower validation loss and restore the best epoch's weights (needs `validation`);
    - `callbacks`: more Keras callbacks (checkpoints, for instance).

    Example:
        >>> history = fit(model, train_ds, val_ds, epochs=2)
        >>> history["val_accuracy"]
        >>> history = fit(model, train_ds, val_ds, epochs=20, schedule="warmup_cosine", label_smoothing=0.1,
        ...               early_stopping=3)
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    lr = _learning_rate(schedule, learning_rate, train, epochs=epochs, batch_size=batch_size)
    loss = "sparse_categorical_crossentropy"
    if label_smoothing:
        from .recipe import SmoothedSparseCrossentropy

        loss = SmoothedSparseCrossentropy(label_smoothing)
    with _model_strategy(model, strategy).scope():
        model.compile(optimizer=optimizer(optimizer_name, lr, momentum=momentum), loss=loss, metrics=["accuracy"])
    kwargs = _xy(train)
    if isinstance(train, tuple):  # arrays: Keras batches and shuffles; datasets come batched and shuffled
        kwargs.update(batch_size=batch_size, shuffle=True)
    else:
        kwargs["shuffle"] = False
    if validation is not None:
        kwargs["validation_data"] = validation
    callbacks = ([EpochLog(epochs)] if verbose == 2 else []) + _recipe_callbacks(early_stopping, validation) + \
        list(callbacks or [])
    h = model.fit(**kwargs, epochs=epochs, class_weight=class_weight, verbose=1 if verbose == 1 else 0,
                  callbacks=callbacks)
    return {k: [float(v) for v in vals] for k, vals in h.history.items()}


def _steps_per_epoch(train, batch_size: int) -> int:
    """Batches in one pass over `train`: an (x, y) tuple of arrays, or a batched tf.data dataset of known size."""
    if isinstance(train, tuple):
        return max(1, -(-len(train[0]) // batch_size))
    n = int(train.cardinality()) if hasattr(train, "cardinality") else -1
    if n < 1:
        raise ValueError("fit: expected a dataset of known length for schedule='warmup_cosine'; received one of "
                         "unknown or infinite length; pass a LearningRateSchedule built with its steps instead.")
    return n


def _learning_rate(schedule, learning_rate: float, train, *, epochs: int, batch_size: int):
    """The optimizer's learning rate: the float itself, a LearningRateSchedule as is, or "warmup_cosine" built."""
    if schedule is None:
        return learning_rate
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    if schedule != "warmup_cosine":
        raise ValueError(f"fit: expected `schedule` to be None, 'warmup_cosine' or a LearningRateSchedule; "
                         f"received schedule={schedule!r}.")
    from .recipe import warmup_cosine

    return warmup_cosine(learning_rate, steps_per_epoch=_steps_per_epoch(train, batch_size), epochs=epochs)


def _recipe_callbacks(early_stopping, validation) -> list:
    """[] or [EarlyStopping restoring the best weights], from a patience (int) or a callback given as is."""
    if early_stopping is None or early_stopping is False:
        return []
    if validation is None:
        raise ValueError("fit: early_stopping watches the validation loss; pass `validation` data, or "
                         "early_stopping=None.")
    if isinstance(early_stopping, keras.callbacks.Callback):
        return [early_stopping]
    from .recipe import early_stopping as make

    return [make(early_stopping)]


def class_weights(images: ImageSet) -> dict:
    """Return {class index: weight} that balances the classes of `images` ("balanced" weighting).

    Each class gets n_images / (n_classes * n_images_of_that_class), so every class contributes
    the same total weight to the loss however rare it is; pass the result to `fit(class_weight=...)`.

    Example:
        >>> class_weights(train)   # a rare class gets a weight above 1
        {0: 0.74, 1: 1.31, ...}
    """
    counts = np.bincount(np.asarray(images.labels, dtype=int), minlength=len(images.class_names))
    if (counts == 0).any():
        empty = [c for c, n in zip(images.class_names, counts) if n == 0]
        raise ValueError(f"class(es) {', '.join(empty)} have no images, so they cannot be weighted; add images.")
    return {i: float(len(images.labels) / (len(counts) * n)) for i, n in enumerate(counts)}


def two_phase(
    model: keras.Model, base, train, validation=None, *, epochs: tuple[int, int], top_blocks: int,
    phase1: tuple[str, float] = ("rmsprop", 1e-3), phase2: tuple[str, float] = ("sgd", 1e-4),
    class_weight: dict | None = None, train_batchnorm: bool = False, verbose: int = 2,
    strategy: tf.distribute.Strategy | None = None, **recipe,
) -> dict:
    """Train the head on the frozen base, then unfreeze the top blocks and train again.

    Returns one history covering both phases, with `phase_boundary` the number of epochs of
    phase 1 (for plotting the boundary). BatchNormalization layers stay frozen, in inference
    mode, unless `train_batchnorm=True` (shown in chapter 4 to be a mistake). `strategy`: as in `fit`.
    `**recipe`: `fit`'s recipe options (schedule, label_smoothing, early_stopping, callbacks), used in
    both phases (a schedule is rebuilt for each phase; early stopping restores each phase's best epoch).

    Example:
        >>> h = two_phase(model, base, train_ds, val_ds, epochs=(5, 5), top_blocks=2)
        >>> h = two_phase(model, base, train_ds, val_ds, epochs=(5, 5), top_blocks=2, schedule="warmup_cosine",
        ...               label_smoothing=0.1, early_stopping=2)
    """
    from .freezing import freeze

    freeze(base, verbose=verbose > 0)
    h1 = fit(model, train, validation, epochs=epochs[0], optimizer_name=phase1[0], learning_rate=phase1[1],
             class_weight=class_weight, verbose=verbose, strategy=strategy, **recipe)
    h2 = fine_tune(model, base, train, validation, epochs=epochs[1], top_blocks=top_blocks,
                   optimizer_name=phase2[0], learning_rate=phase2[1], class_weight=class_weight,
                   train_batchnorm=train_batchnorm, verbose=verbose, strategy=strategy, **recipe)
    return join_phases(h1, h2)


def fine_tune(model: keras.Model, base, train, validation=None, *, epochs: int, top_blocks: int,
              optimizer_name: str = "sgd", learning_rate: float = 1e-4, class_weight: dict | None = None,
              train_batchnorm: bool = False, verbose: int = 2,
              strategy: tf.distribute.Strategy | None = None, **recipe) -> dict:
    """Phase 2 on its own: unfreeze the top `top_blocks` blocks of `base` and train `model` again.

    `strategy`: as in `fit` (the one `model` was built under; None: the model's own).
    `**recipe`: `fit`'s recipe options (schedule, label_smoothing, early_stopping, callbacks).

    Example:
        >>> h2 = fine_tune(model, base, train_ds, val_ds, epochs=5, top_blocks=2)
    """
    from .freezing import unfreeze_top_blocks

    unfreeze_top_blocks(base, top_blocks, train_batchnorm=train_batchnorm, verbose=verbose > 0)
    return fit(model, train, validation, epochs=epochs, optimizer_name=optimizer_name, learning_rate=learning_rate,
               class_weight=class_weight, verbose=verbose, strategy=strategy, **recipe)


def join_phases(first: dict, second: dict) -> dict:
    """One history from two phases, with `phase_boundary` set for `plot_history`."""
    merged = {k: first[k] + second.get(k, []) for k in first if k != "phase_boundary"}
    merged["phase_boundary"] = len(first["loss"])
    return merged
