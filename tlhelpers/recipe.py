"""A practitioner's training recipe: warm-up + cosine learning rate, label smoothing, early stopping, class weights.

Each piece is a plain Keras object, usable on its own or through the options of `tlhelpers.train.fit`
(`schedule="warmup_cosine"`, `label_smoothing=0.1`, `early_stopping=3`, `class_weight=...`).

Example:
    >>> lr = WarmupCosine(1e-3, warmup_steps=50, total_steps=500)
    >>> model.compile(optimizer=keras.optimizers.Adam(lr), loss=SmoothedSparseCrossentropy(0.1))
    >>> model.fit(train_ds, validation_data=val_ds, epochs=10, callbacks=[early_stopping(3)])
"""

from __future__ import annotations

import math

import keras
import numpy as np

from .errors import check_int


@keras.saving.register_keras_serializable(package="tlhelpers")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate that rises linearly from 0 to `peak` over `warmup_steps`, then follows a cosine down to `floor`.

    Step s < warmup_steps: peak * (s + 1) / warmup_steps. Then, with t the fraction of the remaining
    steps done (0 to 1): floor + (peak - floor) * (1 + cos(pi * t)) / 2; after `total_steps`, `floor`.
    The warm-up keeps the first large updates from wrecking a pretrained base's features; the cosine
    spends most steps at a useful rate and ends with small, careful ones.

    Example:
        >>> lr = WarmupCosine(1e-3, warmup_steps=10, total_steps=100)
        >>> [round(float(lr(s)), 6) for s in (0, 9, 55, 100)]
        [0.0001, 0.001, 0.0005, 0.0]
    """

    def __init__(self, peak: float, *, warmup_steps: int, total_steps: int, floor: float = 0.0):
        if not (isinstance(peak, (int, float)) and peak > 0):
            raise ValueError(f"WarmupCosine: expected `peak` to be a positive learning rate; received peak={peak!r}.")
        check_int("total_steps", total_steps, minimum=1, where="WarmupCosine")
        check_int("warmup_steps", warmup_steps, minimum=0, maximum=total_steps, where="WarmupCosine")
        if not 0 <= floor <= peak:
            raise ValueError(f"WarmupCosine: expected 0 <= `floor` <= peak ({peak}); received floor={floor!r}.")
        self.peak, self.floor = float(peak), float(floor)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        t = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = self.floor + (self.peak - self.floor) * 0.5 * (1.0 + ops.cos(math.pi * t))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "floor": self.floor}


def warmup_cosine(peak: float, *, steps_per_epoch: int, epochs: int, warmup_fraction: float = 0.1) -> WarmupCosine:
    """Return a WarmupCosine over `epochs` epochs that warms up for `warmup_fraction` of the steps (at least one).

    Example:
        >>> lr = warmup_cosine(1e-3, steps_per_epoch=20, epochs=5)   # 10 warm-up steps of 100
        >>> lr.warmup_steps, lr.total_steps
        (10, 100)
    """
    total = check_int("steps_per_epoch", steps_per_epoch, minimum=1, where="warmup_cosine") * \
        check_int("epochs", epochs, minimum=1, where="warmup_cosine")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_cosine: expected `warmup_fraction` in [0, 1); received {warmup_fraction!r}.")
    return WarmupCosine(peak, warmup_steps=min(total, max(1, round(warmup_fraction * total))), total_steps=total)


@keras.saving.register_keras_serializable(package="tlhelpers")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras's sparse loss has none).

    The target of an image of class c becomes (1 - smoothing) on c plus smoothing / K on each of the
    K classes, so the model is never pushed towards probabilities of exactly 0 and 1: it stays better
    calibrated and fits noisy labels less. `smoothing=0` is the plain sparse categorical cross-entropy.

    Example:
        >>> loss = SmoothedSparseCrossentropy(0.1)
        >>> round(float(loss(np.array([0]), np.array([[1.0, 0.0]]))), 2)   # confident and right still costs
        0.81
    """

    def __init__(self, smoothing: float = 0.1, *, name: str = "smoothed_sparse_crossentropy", **kwargs):
        if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
            raise ValueError(f"SmoothedSparseCrossentropy: expected `smoothing` in [0, 1); received "
                             f"smoothing={smoothing!r}.")
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        n = y_pred.shape[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        target = ops.one_hot(labels, n, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


def early_stopping(patience: int = 3, *, monitor: str = "val_loss") -> keras.callbacks.EarlyStopping:
    """Return an EarlyStopping callback that stops after `patience` epochs without progress and restores the best weights.

    The model that comes back is the one of the best epoch on the validation split, not the last one.

    Example:
        >>> model.fit(x, y, validation_data=(xv, yv), epochs=50, callbacks=[early_stopping(3)])
    """
    check_int("patience", patience, minimum=1, where="early_stopping")
    mode = "max" if "acc" in monitor else "min"
    return keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)


def class_weights_if_imbalanced(labels, n_classes: int | None = None, *, ratio: float = 1.5) -> dict | None:
    """Return balanced class weights when the largest class has over `ratio` times the images of the smallest, else None.

    Balanced weights are n / (K * n_c) (see `tlhelpers.train.class_weights`); under the ratio they
    change little and only add noise, so None (no weighting) comes back.

    Example:
        >>> class_weights_if_imbalanced([0, 0, 0, 0, 1])
        {0: 0.625, 1: 2.5}
        >>> class_weights_if_imbalanced([0, 0, 1, 1]) is None
        True
    """
    names = getattr(labels, "class_names", None)  # an ImageSet: its labels and its classes
    labels = np.asarray(getattr(labels, "labels", labels), dtype=int).ravel()
    if n_classes is None:
        n_classes = len(names) if names else int(labels.max()) + 1
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"class_weights_if_imbalanced: expected every class to have images; received counts "
                         f"{counts.tolist()}; add images to the empty classes or drop them.")
    if counts.max() / counts.min() <= ratio:
        return None
    return {i: float(len(labels) / (n_classes * n)) for i, n in enumerate(counts)}
