"""Whether a map explains the model at all: the randomisation test of Adebayo et al. (2018), by rank correlation.

Example:
    >>> df = randomization_check(model, images[:8], "gradcam")
    >>> df["spearman"]  # falls when the weights are randomised, if the maps depend on them
    >>> spearman(heatmap, heatmap)
    1.0
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import pandas as pd

from ._graph import _batch, _graph
from .attribution import gradcam, saliency, smoothgrad

__all__ = ["randomization_check", "spearman"]


_METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad")


# --------------------------------------------------------------------------- map comparison
def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (average ranks for ties); 1 if both constant, 0 if one is.

    Example:
        >>> spearman(heatmap, heatmap)
        1.0
    """
    a, b = np.ravel(a).astype("float64"), np.ravel(b).astype("float64")
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 1.0 if sa == sb else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _explainer(method, *, layer: str | None = None, **kwargs) -> Callable:
    """(model, image, class_index) -> map, for a method name or a callable."""
    if callable(method):
        return method
    if method in ("gradcam", "gradcam++"):
        return lambda m, im, k: gradcam(m, im, layer=layer, class_index=k, plus=method == "gradcam++", **kwargs)[0]
    if method == "saliency":
        return lambda m, im, k: saliency(m, im, class_index=k, **kwargs)
    if method == "smoothgrad":
        return lambda m, im, k: smoothgrad(m, im, class_index=k, **kwargs)
    raise ValueError(f"unknown method {method!r}; use one of: {', '.join(_METHODS)}, or a function (model, image, class_index) -> map.")


# --------------------------------------------------------------------------- randomised copies
# weight attribute -> the initializer attributes that may have drawn it (DepthwiseConv2D keeps
# its kernel in `kernel` but draws it with `depthwise_initializer`)
_INITIALIZERS = {"kernel": ("kernel_initializer", "depthwise_initializer"),
                 "depthwise_kernel": ("depthwise_initializer",), "pointwise_kernel": ("pointwise_initializer",),
                 "bias": ("bias_initializer",)}


def _reinitialise(layer, seed: int) -> None:
    """Draw a layer's kernels and biases afresh from its own initializers (seeded)."""
    for attr, init_attrs in _INITIALIZERS.items():
        var = getattr(layer, attr, None)
        init = next((getattr(layer, a) for a in init_attrs if getattr(layer, a, None) is not None), None)
        if var is None or init is None or not hasattr(var, "assign"):
            continue
        cfg = init.get_config()
        if "seed" in cfg:
            init = type(init).from_config({**cfg, "seed": seed})
        var.assign(init(tuple(var.shape), dtype=var.dtype))


def _weighted_layers(model: keras.Model) -> list:
    seen, out = set(), []
    for layer, _, _ in _graph(model).order:
        if id(layer) not in seen and any(getattr(layer, a, None) is not None for a in ("kernel", "depthwise_kernel")):
            seen.add(id(layer))
            out.append(layer)
    return out


def _copy(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# --------------------------------------------------------------------------- the test
def randomization_check(model: keras.Model, images, method: str | Callable = "gradcam", *, layer: str | None = None,
                        max_steps: int = 8, threshold: float = 0.5, seed: int = 0, **method_kwargs) -> pd.DataFrame:
    """Return how much the maps change as the weights are re-initialised from the top layer down.

    The model-parameter randomisation test of Adebayo et al. (2018): on a copy of the model
    (the original is never touched), the layers with kernels are re-drawn from their
    initializers in cascade, top (the classifier) first; at up to `max_steps` points of the
    cascade the maps of `images` are compared with the trained model's maps, for the class
    the trained model predicts, by Spearman rank correlation. A method whose maps barely
    change (mean correlation >= `threshold`) explains the image, not the model: `flag` marks
    those rows, and `df.attrs["passed"]` is False when it still holds with every layer random.
    `method` is "gradcam", "gradcam++", "saliency", "smoothgrad", or a function
    (model, image, class_index) -> map.

    Example:
        >>> df = randomization_check(model, images[:8], "gradcam")
        >>> df[["randomized_to", "spearman", "flag"]]
    """
    explain = _explainer(method, layer=layer, **method_kwargs)
    batch = _batch(images, model)
    classes = [int(np.argmax(p)) if np.size(p) > 1 else int(np.ravel(p)[0] > 0.5)
               for p in np.asarray(model(batch, training=False))]
    before = [explain(model, im, k) for im, k in zip(batch, classes)]
    copy = _copy(model)
    cascade = _weighted_layers(copy)[::-1]
    if not cascade:
        raise ValueError(f"model {model.name!r} has no layer with a kernel to randomise.")
    marks = set(np.unique(np.linspace(0, len(cascade) - 1, min(max_steps, len(cascade))).round().astype(int)).tolist())
    rows = [{"step": 0, "randomized_to": "(trained)", "layers_randomized": 0, "spearman": 1.0,
             "spearman_min": 1.0, "spearman_max": 1.0}]
    for i, lay in enumerate(cascade):
        _reinitialise(lay, seed + i)
        if i in marks:
            rho = [spearman(b, explain(copy, im, k)) for b, im, k in zip(before, batch, classes)]
            rows.append({"step": len(rows), "randomized_to": lay.name, "layers_randomized": i + 1,
                         "spearman": float(np.mean(rho)), "spearman_min": float(np.min(rho)),
                         "spearman_max": float(np.max(rho))})
    df = pd.DataFrame(rows)
    df["flag"] = df["spearman"] >= threshold
    df.loc[0, "flag"] = False
    df.attrs.update({"method": getattr(method, "__name__", method), "threshold": threshold,
                     "passed": not bool(df["flag"].iloc[-1])})
    return df
