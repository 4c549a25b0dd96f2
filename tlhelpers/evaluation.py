"""Evaluation: predictions, accuracy with its interval, per-class metrics and results tables.

Example:
    >>> result = evaluate(model, test_images)
    >>> result.accuracy, result.summary(), result.table()
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import numpy as np

from .images import ImageSet, to_dataset

if TYPE_CHECKING:
    import keras


def classify(model: keras.Model, paths, classes: list, *, top: int = 3):
    """Return a DataFrame of the `top` most probable classes for each image file.

    Example:
        >>> classify(model, ["my_bottle.jpg"], class_names)
    """
    import pandas as pd

    from .images import load_images

    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "suffix") else list(paths)
    probs = model.predict(load_images(paths, image_size=model.input_shape[1]), verbose=0)
    if probs.shape[-1] != len(classes):
        raise ValueError(f"the model predicts {probs.shape[-1]} classes but {len(classes)} class names were given.")
    rows = []
    for path, p in zip(paths, probs):
        for rank, i in enumerate(np.argsort(-p)[:top], start=1):
            rows.append({"image": shown_path(path), "rank": rank, "class": classes[i], "probability": float(p[i])})
    return _probability_table_class()(pd.DataFrame(rows).set_index(["image", "rank"]))


def shown_path(path) -> str:
    """A file as a reader should see it: under the datasets folder, its path there (`trashnet/...`); else as given.

    Example:
        >>> shown_path(data_home() / "trashnet" / "dataset-resized" / "glass" / "glass1.jpg")
        'trashnet/dataset-resized/glass/glass1.jpg'
    """
    from pathlib import Path

    from .data import data_home

    try:
        return Path(path).resolve().relative_to(data_home().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _percent(x) -> str:
    return f"{x:.1%}"


@functools.cache
def _probability_table_class():
    import pandas as pd

    class ClassProbabilities(pd.DataFrame):
        """`classify`'s table: the probabilities stay floats, and show as percentages (99.9%, not 9.99e-01)."""

        @property
        def _constructor(self):
            return ClassProbabilities

        def _formats(self) -> dict:
            return {"probability": _percent} if "probability" in self.columns else {}

        def _repr_html_(self):
            return self.style.format(self._formats()).to_html()

        def __repr__(self) -> str:
            return self.to_string(formatters=self._formats())

    ClassProbabilities.__qualname__ = "ClassProbabilities"
    return ClassProbabilities


def predict(model: keras.Model, data, *, image_size: int | None = None, batch_size: int = 32,
            tta=None) -> np.ndarray:
    """Class probabilities for an ImageSet, a dataset, or an array of images or features.

    `tta`: None, or views of each image whose probabilities are averaged (test-time augmentation,
    `tlhelpers.tta.predict_tta`), e.g. ("identity", "flip"); for an ImageSet or an array of images.

    Example:
        >>> probs = predict(model, val_images, tta=("identity", "flip"))
    """
    if tta:
        from .tta import predict_tta

        if isinstance(data, ImageSet) and image_size and image_size != model.input_shape[1]:
            raise ValueError(f"predict: tta loads images at the model's size {model.input_shape[1]}; "
                             f"received image_size={image_size}; leave it out.")
        return predict_tta(model, data, views=tta, batch_size=batch_size)
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


def evaluate(model: keras.Model, data, *, classes: list | None = None, batch_size: int = 32,
             tta=None) -> Evaluation:
    """Evaluate `model` on an ImageSet (or an (x, y) tuple of features); return an Evaluation.

    `tta`: views averaged at prediction (see `predict`), e.g. ("identity", "flip"); None: one view.

    Example:
        >>> result = evaluate(model, splits["test"])
        >>> print(f"{result.accuracy:.1%}")
        >>> evaluate(model, splits["val"], tta=("identity", "flip")).accuracy
    """
    if isinstance(data, ImageSet):
        y_true, classes = data.labels, classes or data.class_names
        y_prob = predict(model, data, batch_size=batch_size, tta=tta)
    else:
        x, y_true = data
        if classes is None:
            raise ValueError("pass classes=[...] when evaluating on arrays.")
        y_prob = predict(model, x, batch_size=batch_size, tta=tta)
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
