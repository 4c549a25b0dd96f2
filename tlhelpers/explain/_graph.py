"""The private engine of `explain`: models re-run layer by layer, and images coerced to a model's input.

Nothing here is public; the other modules of the package import what they need.
Images are RGB float arrays in [0, 255], as `load_images` returns them; grayscale and RGBA
images are converted to RGB, and an image of another size is resized to the model's input
with `tf.image.resize` (maps come back at the image's own resolution).

The pretrained base of a transfer model is a model nested inside the classifier
(`build_classifier`): `_trace` re-runs the nested graph layer by layer on a new input, so
that the output of any layer of the base is a tensor of one graph (`_Graph`), and `_cached`
keeps those graphs and the functions compiled on them with the model.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..bases import Base, preprocess_fn

_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
         keras.layers.Conv2DTranspose)
_NOT_A_FEATURE_MAP = ("Pooling", "Dropout", "Padding", "Cropping", "Reshape", "UpSampling", "Noise")


# --------------------------------------------------------------------------- images
def _rgb(image) -> np.ndarray:
    """`image` as a float32 (H, W, 3) array: grayscale repeated, alpha dropped, anything else rejected."""
    x = np.asarray(image, dtype="float32")
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"expected one image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {x.shape}; "
            "pass a single RGB image in [0, 255] (index a batch with images[i])."
        )
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    elif x.shape[-1] == 4:
        x = x[..., :3]
    if not np.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite values; pass pixel values in [0, 255].")
    return x


def _fit_to(x: np.ndarray, size) -> np.ndarray:
    """Resize an (H, W, 3) image to size = (h, w) when both are known and differ."""
    if size is None or None in size or tuple(x.shape[:2]) == tuple(size):
        return x
    return tf.image.resize(x, size).numpy()


def _resize_map(m: np.ndarray, hw) -> np.ndarray:
    if tuple(m.shape) == tuple(hw):
        return m
    return tf.image.resize(m[..., None], hw).numpy()[..., 0]


def _normalise(m: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (all zeros stay zeros)."""
    m = np.nan_to_num(np.maximum(np.asarray(m, dtype="float32"), 0.0))
    top = float(m.max()) if m.size else 0.0
    return m / top if top > 0 else np.zeros_like(m)


def _prepare(model: keras.Model, image) -> tuple[np.ndarray, tuple]:
    if isinstance(model, Base):
        raise TypeError("a Base has no classes to explain; explain a classifier, e.g. build_classifier(base, n_classes).")
    _unwrap(model)
    x = _rgb(image)
    h, w, _ = _input_shape(model)
    return _fit_to(x, (h, w)), x.shape[:2]


def _batch(images, model: keras.Model) -> np.ndarray:
    """A batch (N, H, W, C) or list of images as float32 (N, h, w, 3) at the model's input size."""
    if not isinstance(images, (list, tuple)) and np.ndim(images) != 4:
        raise ValueError(
            f"expected a batch of images (N, H, W, C) or a list of images, got shape {np.shape(images)}; "
            "wrap a single image as [image]."
        )
    if len(images) == 0:
        raise ValueError("no images given; pass at least one.")
    h, w, _ = _input_shape(model)
    return np.stack([_fit_to(_rgb(im), (h, w)) for im in images])


# --------------------------------------------------------------------------- model graphs
def _unwrap(model_or_base) -> tuple[keras.Model, Callable | None]:
    """(keras model, preprocessing for tensors or None): a `Base` brings its preprocess_input."""
    if isinstance(model_or_base, Base):
        return model_or_base.model, preprocess_fn(model_or_base.arch)
    if not isinstance(model_or_base, keras.Model):
        raise TypeError(f"expected a keras.Model or a tlhelpers Base, got {type(model_or_base).__name__}.")
    return model_or_base, None


def _is_container(layer) -> bool:
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph") and hasattr(layer, "_nodes_by_depth")
    )


class _Done(Exception):
    """Raised inside a graph walk once every requested layer has been computed."""


def _walk(model, x, on_call: Callable, stop: Callable[[], bool]):
    """Call every layer of `model` on `x` in order, recursing into nested models; return the output."""
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = _walk(layer, x, on_call, stop) if _is_container(layer) else _leaf(layer, (x,), {}, on_call, stop)
        return x
    if _is_container(model):
        def operation_fn(op):
            def call(*args, **kwargs):
                if _is_container(op):  # a nested base: walk its layers instead of calling it whole
                    return _walk(op, args[0], on_call, stop)
                return _leaf(op, args, kwargs, on_call, stop)
            return call

        out = model._run_through_graph(x, operation_fn=operation_fn)
        flat = keras.tree.flatten(out)
        return flat[0] if len(flat) == 1 else out
    raise ValueError(
        f"cannot look inside {model.name!r} ({type(model).__name__}); tlhelpers explains Functional and "
        "Sequential models, as build_classifier and keras.applications make them."
    )


def _leaf(layer, args, kwargs, on_call, stop):
    out = layer(*args, **kwargs)
    on_call(layer, args[0] if args else None, out)
    if stop():
        raise _Done
    return out


@dataclasses.dataclass
class _Graph:
    """A model re-run layer by layer on a new input: every layer's output is reachable from it."""

    input: object
    output: object
    pre: object  # the logits, or what the last layer turns into probabilities
    head: keras.layers.Layer | None  # the final Dense whose activation we skip, or None
    order: list  # (layer, input tensor, output tensor) in the order they were called

    def tensor(self, name: str):
        for layer, _, out in reversed(self.order):
            if layer.name == name:
                return out
        return None

    def layer(self, name: str):
        for layer, _, _ in reversed(self.order):
            if layer.name == name:
                return layer
        return None

    def input_of(self, name: str):
        for layer, x, _ in reversed(self.order):
            if layer.name == name:
                return x
        return None


class _Cache:
    """Per-model store of traced graphs and compiled functions, invisible to Keras saving."""

    def __init__(self):
        self.items: dict = {}


def _cached(model: keras.Model, key, build: Callable):
    store = model.__dict__.get("_tlh_explain")
    if store is None:
        store = _Cache()
        object.__setattr__(model, "_tlh_explain", store)  # bypass Keras's attribute tracking
    if key not in store.items:
        store.items[key] = build()
    return store.items[key]


def _input_shape(model: keras.Model) -> tuple:
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        raise ValueError(f"model {model.name!r} has no defined input; build it on a keras.Input first.") from None
    if isinstance(shape[0], tuple) or len(shape) != 4:
        raise ValueError(f"model {model.name!r} must take one image input (N, H, W, C), not {shape}.")
    return shape[1:]


def _trace(model: keras.Model, *, free_size: bool = False, until: Sequence[str] = ()) -> _Graph:
    """Re-run `model` on a new keras.Input, layer by layer; stop early once every layer in `until` is done."""
    h, w, c = _input_shape(model)
    inp = keras.Input((None, None, c) if free_size else (h, w, c), name="explain_image")
    order: list = []
    wanted = set(until)

    def on_call(layer, x, out):
        order.append((layer, x, out))
        wanted.discard(layer.name)

    try:
        out = _walk(model, inp, on_call, stop=lambda: bool(until) and not wanted)
    except _Done:
        out = None
    pre, head = out, None
    if out is not None and order and order[-1][2] is out:
        last, last_in, _ = order[-1]
        act = getattr(getattr(last, "activation", None), "__name__", "")
        if isinstance(last, keras.layers.Dense) and act in ("softmax", "sigmoid"):
            pre, head = last_in, last
        elif isinstance(last, (keras.layers.Softmax, keras.layers.Activation)) and (
            isinstance(last, keras.layers.Softmax) or act in ("softmax", "sigmoid")
        ):
            pre = last_in
    return _Graph(inp, out, pre, head, order)


def _graph(model: keras.Model) -> _Graph:
    return _cached(model, "graph", lambda: _trace(model))


def _is_feature_map(layer, out) -> bool:
    return len(out.shape) == 4 and not any(s in type(layer).__name__ for s in _NOT_A_FEATURE_MAP)


def _n_classes(model: keras.Model) -> int:
    n = int(model.output_shape[-1])
    return 2 if n == 1 else n


# --------------------------------------------------------------------------- layers by name
def _conv_names(model: keras.Model) -> list[str]:
    """The names of the convolutional layers of a keras model (nested bases included), bottom to top."""
    return list(dict.fromkeys(layer.name for layer, _, _ in _graph(model).order if isinstance(layer, _CONV)))


def _names(names: list[str]) -> str:
    if len(names) <= 20:
        return ", ".join(names)
    return (", ".join(names[:3]) + ", ..., " + ", ".join(names[-12:])
            + f" ({len(names)} in all; tlhelpers.conv_layers(model) lists them)")


def _conv_hint(model) -> str:
    names = _conv_names(model)
    return f"convolutional layers are: {_names(names)}." if names else "it has no convolutional layers."


def _find(model: keras.Model, name: str):
    """The output tensor of layer `name` in the traced graph, or a ValueError listing the conv layers."""
    g = _graph(model)
    out = g.tensor(name)
    if out is None:
        raise ValueError(f"layer {name!r} not in model {model.name!r}; {_conv_hint(model)}")
    return out


def _feature_map(model: keras.Model, name: str, *, what: str = "Grad-CAM"):
    out = _find(model, name)
    if len(out.shape) != 4:
        raise ValueError(
            f"{what} needs a layer with a 4-D (H, W, C) output; {name!r} outputs shape {tuple(out.shape)}. "
            f"Its {_conv_hint(model)}"
        )
    return out
