"""Training and evaluation: compile-and-fit in one call, two-phase fine-tuning, metrics.

Example:
    >>> history = fit(model, train_ds, val_ds, epochs=5)
    >>> result = evaluate(model, test_images)
    >>> result.accuracy, result.table()
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from .data import ImageSet, to_dataset


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
    batch_size: int = 32, verbose: int = 2,
) -> dict:
    """Compile `model` for integer labels and train it; return the history as a dict of lists.

    `verbose=2` prints one short line per epoch, 1 shows Keras's progress bar, 0 is silent.

    `train` and `validation` are tf.data datasets of (images, labels) or (x, y) array tuples.
    Compiling here, every time, makes changes to `trainable` take effect.

    Example:
        >>> history = fit(model, train_ds, val_ds, epochs=2)
        >>> history["val_accuracy"]
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    model.compile(
        optimizer=optimizer(optimizer_name, learning_rate, momentum=momentum),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    kwargs = _xy(train)
    if isinstance(train, tuple):  # arrays: Keras batches and shuffles; datasets come batched and shuffled
        kwargs.update(batch_size=batch_size, shuffle=True)
    else:
        kwargs["shuffle"] = False
    if validation is not None:
        kwargs["validation_data"] = validation
    callbacks = [EpochLog(epochs)] if verbose == 2 else []
    h = model.fit(**kwargs, epochs=epochs, class_weight=class_weight, verbose=1 if verbose == 1 else 0,
                  callbacks=callbacks)
    return {k: [float(v) for v in vals] for k, vals in h.history.items()}


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
) -> dict:
    """Train the head on the frozen base, then unfreeze the top blocks and train again.

    Returns one history covering both phases, with `phase_boundary` the number of epochs of
    phase 1 (for plotting the boundary). BatchNormalization layers stay frozen, in inference
    mode, unless `train_batchnorm=True` (shown in chapter 4 to be a mistake).

    Example:
        >>> h = two_phase(model, base, train_ds, val_ds, epochs=(5, 5), top_blocks=2)
    """
    from .bases import freeze

    freeze(base, verbose=verbose > 0)
    h1 = fit(model, train, validation, epochs=epochs[0], optimizer_name=phase1[0], learning_rate=phase1[1],
             class_weight=class_weight, verbose=verbose)
    h2 = fine_tune(model, base, train, validation, epochs=epochs[1], top_blocks=top_blocks,
                   optimizer_name=phase2[0], learning_rate=phase2[1], class_weight=class_weight,
                   train_batchnorm=train_batchnorm, verbose=verbose)
    return join_phases(h1, h2)


def fine_tune(model: keras.Model, base, train, validation=None, *, epochs: int, top_blocks: int,
              optimizer_name: str = "sgd", learning_rate: float = 1e-4, class_weight: dict | None = None,
              train_batchnorm: bool = False, verbose: int = 2) -> dict:
    """Phase 2 on its own: unfreeze the top `top_blocks` blocks of `base` and train `model` again.

    Example:
        >>> h2 = fine_tune(model, base, train_ds, val_ds, epochs=5, top_blocks=2)
    """
    from .bases import unfreeze_top_blocks

    unfreeze_top_blocks(base, top_blocks, train_batchnorm=train_batchnorm, verbose=verbose > 0)
    return fit(model, train, validation, epochs=epochs, optimizer_name=optimizer_name, learning_rate=learning_rate,
               class_weight=class_weight, verbose=verbose)


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

    from .bases import as_model, freeze

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


def join_phases(first: dict, second: dict) -> dict:
    """One history from two phases, with `phase_boundary` set for `plot_history`."""
    merged = {k: first[k] + second.get(k, []) for k in first if k != "phase_boundary"}
    merged["phase_boundary"] = len(first["loss"])
    return merged


def classify(model: keras.Model, paths, classes: list, *, top: int = 3):
    """Return a DataFrame of the `top` most probable classes for each image file.

    Example:
        >>> classify(model, ["my_bottle.jpg"], class_names)
    """
    import pandas as pd

    from .data import load_images

    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "suffix") else list(paths)
    probs = model.predict(load_images(paths, image_size=model.input_shape[1]), verbose=0)
    if probs.shape[-1] != len(classes):
        raise ValueError(f"the model predicts {probs.shape[-1]} classes but {len(classes)} class names were given.")
    rows = []
    for path, p in zip(paths, probs):
        for rank, i in enumerate(np.argsort(-p)[:top], start=1):
            rows.append({"image": str(path), "rank": rank, "class": classes[i], "probability": float(p[i])})
    return pd.DataFrame(rows).set_index(["image", "rank"])


def predict(model: keras.Model, data, *, image_size: int | None = None, batch_size: int = 32) -> np.ndarray:
    """Class probabilities for an ImageSet, a dataset, or an array of images or features."""
    if isinstance(data, ImageSet):
        image_size = image_size or model.input_shape[1]
        data = to_dataset(data, image_size=image_size, batch_size=batch_size, cache=False)
        return model.predict(data, verbose=0)
    return model.predict(data, batch_size=batch_size, verbose=0)


@dataclasses.dataclass
class Evaluation:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of one model on one set."""

    classes: list
    y_true: np.ndarray
    y_prob: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.y_prob.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.y_pred == self.y_true).mean())

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The Wilson score interval of the accuracy at `level`: the test set's own noise."""
        return accuracy_interval(int((self.y_pred == self.y_true).sum()), len(self.y_true), level=level)

    def summary(self) -> str:
        """'97.1% (95% CI 96.0-97.9%, 1000 images)': the accuracy with its interval, for prose and tables."""
        lo, hi = self.interval()
        return f"{self.accuracy:.1%} (95% CI {lo:.1%}–{hi:.1%}, {len(self.y_true)} images)"

    @property
    def confusion(self) -> np.ndarray:
        """confusion[i, j]: images of true class i predicted as class j."""
        k = len(self.classes)
        return np.bincount(self.y_true * k + self.y_pred, minlength=k * k).reshape(k, k)

    def per_class(self) -> dict:
        cm = self.confusion
        out = {}
        for i, name in enumerate(self.classes):
            tp, predicted, actual = cm[i, i], cm[:, i].sum(), cm[i, :].sum()
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(actual)}
        return out

    def misclassified(self) -> np.ndarray:
        """Indices of the wrongly classified images, most confident mistakes first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.y_prob[wrong].max(axis=1))]

    def table(self):
        """Per-class metrics as a pandas DataFrame."""
        import pandas as pd

        table = pd.DataFrame(self.per_class()).T
        table["support"] = table["support"].astype(int)
        return table

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy, "accuracy_95_interval": list(self.interval()), "n_images": int(len(self.y_true)),
            "classes": list(self.classes),
            "per_class": self.per_class(), "confusion_matrix": self.confusion.tolist(),
        }


def accuracy_interval(correct: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval for `correct` successes out of `n` (a binomial proportion).

    A test accuracy measured on n images is itself uncertain; two models whose intervals overlap
    widely have not been told apart by that test set.

    Example:
        >>> accuracy_interval(950, 1000)
        (0.935, 0.962)
    """
    from statistics import NormalDist

    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n >= 1, got correct={correct}, n={n}.")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def evaluate(model: keras.Model, data, *, classes: list | None = None, batch_size: int = 32) -> Evaluation:
    """Evaluate `model` on an ImageSet (or an (x, y) tuple of features); return an Evaluation.

    Example:
        >>> result = evaluate(model, splits["test"])
        >>> print(f"{result.accuracy:.1%}")
    """
    if isinstance(data, ImageSet):
        y_true, classes = data.labels, classes or data.class_names
        y_prob = predict(model, data, batch_size=batch_size)
    else:
        x, y_true = data
        if classes is None:
            raise ValueError("pass classes=[...] when evaluating on arrays.")
        y_prob = predict(model, x, batch_size=batch_size)
    return Evaluation(list(classes), np.asarray(y_true, dtype=int), np.asarray(y_prob))


def results_table(results: dict, *, weights: dict | None = None):
    """A DataFrame with one row per approach: test accuracy, test images, and the weights used.

    Example:
        >>> results_table({"from scratch": ev1, "fine-tuning": ev2},
        ...               weights={"from scratch": "none", "fine-tuning": base.weights})
    """
    import pandas as pd

    table = pd.DataFrame(
        {name: {"test accuracy": round(r.accuracy, 3), "95% interval": "{:.3f}–{:.3f}".format(*r.interval()),
                "test images": len(r.y_true)} for name, r in results.items()}
    ).T
    table["test accuracy"] = table["test accuracy"].astype(float)
    table["test images"] = table["test images"].astype(int)
    if weights is not None:
        table["weights"] = [weights.get(name, "") for name in results]
    table.index.name = "approach"
    return table
