"""What a convnet learned: activations, filter patterns, Grad-CAM, saliency and their sanity checks.

Every function takes arrays and returns arrays (or a DataFrame); the pictures are in `viz`.
Images are RGB float arrays in [0, 255], as `load_images` returns them; grayscale and RGBA
images are converted to RGB, and an image of another size is resized to the model's input
with `tf.image.resize` (maps come back at the image's own resolution).

Works on the models transfer learning produces, where the pretrained base is a model nested
inside the classifier (`build_classifier`): the nested graph is re-run layer by layer, so any
layer of the base can be inspected, and gradients are taken of the class logit, not of the
saturated softmax.

Example:
    >>> heatmap, k = gradcam(model, image)             # last convolutional layer, predicted class
    >>> plot_heatmap(image, heatmap)
    >>> randomization_check(model, images)["spearman"]  # falls when the weights are randomised
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .bases import Base, preprocess_fn

__all__ = [
    "activations", "conv_layers", "edge_alignment", "explorer", "filter_pattern", "gradcam", "last_conv_layer",
    "randomization_check", "saliency", "smoothgrad", "sparsity_by_depth", "spearman",
]

_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
         keras.layers.Conv2DTranspose)
_NOT_A_FEATURE_MAP = ("Pooling", "Dropout", "Padding", "Cropping", "Reshape", "UpSampling", "Noise")
_METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad")


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


# --------------------------------------------------------------------------- model graphs
def _model(model_or_base) -> tuple[keras.Model, Callable | None]:
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


def conv_layers(model_or_base) -> list[str]:
    """Return the names of the convolutional layers of a model (nested bases included), bottom to top.

    Example:
        >>> conv_layers(build_classifier(base, 2))[-1]
        'Conv_1'
    """
    model, _ = _model(model_or_base)
    return list(dict.fromkeys(layer.name for layer, _, _ in _graph(model).order if isinstance(layer, _CONV)))


def _names(names: list[str]) -> str:
    if len(names) <= 20:
        return ", ".join(names)
    return (", ".join(names[:3]) + ", ..., " + ", ".join(names[-12:])
            + f" ({len(names)} in all; tlhelpers.conv_layers(model) lists them)")


def _conv_hint(model) -> str:
    names = conv_layers(model)
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


def last_conv_layer(model_or_base) -> str:
    """Return the name of the layer Grad-CAM uses by default: the last 4-D feature map, pooling excluded.

    That is the last layer with an (H, W, C) output at or after the first convolution,
    nested bases included: `out_relu` for MobileNetV2, `block5_conv3` for VGG16.

    Example:
        >>> last_conv_layer(build_classifier(load_base("vgg16"), 2))
        'block5_conv3'
    """
    model, _ = _model(model_or_base)
    order = _graph(model).order
    first = next((i for i, (layer, _, _) in enumerate(order) if isinstance(layer, _CONV)), None)
    if first is None:
        raise ValueError(f"model {model.name!r} has no convolutional layer; Grad-CAM needs one.")
    for layer, _, out in reversed(order[first:]):
        if _is_feature_map(layer, out):
            return layer.name
    return order[first][0].name


# --------------------------------------------------------------------------- logits and gradients
def _logits(g: _Graph, pre):
    """Class scores before the softmax: x @ kernel + bias of a final softmax Dense, else its input."""
    if g.head is None:
        return pre
    z = keras.ops.matmul(pre, g.head.kernel)
    return z + g.head.bias if g.head.use_bias else z


def _n_classes(model: keras.Model) -> int:
    n = int(model.output_shape[-1])
    return 2 if n == 1 else n


def _scores(z, classes):
    """Pick each row's class score from logits z (N, K); a single sigmoid unit scores class 0 as -z."""
    if z.shape[-1] == 1:
        predicted = tf.cast(z[:, 0] > 0, "int32")
        classes = tf.where(classes < 0, predicted, classes)
        return tf.where(classes == 1, z[:, 0], -z[:, 0]), classes
    classes = tf.where(classes < 0, tf.cast(tf.argmax(z, axis=-1), "int32"), classes)
    return tf.gather(z, classes, axis=-1, batch_dims=1), classes


def _class_arg(model: keras.Model, class_index: int | None) -> int:
    if class_index is None:
        return -1
    n = _n_classes(model)
    if not 0 <= int(class_index) < n:
        raise ValueError(f"class_index {class_index} is out of range for a model with {n} classes (0 to {n - 1}).")
    return int(class_index)


def _signature(model):
    h, w, c = _input_shape(model)
    return [tf.TensorSpec((None, h, w, 3), "float32"), tf.TensorSpec((None,), "int32")]


def _gradcam_fn(model: keras.Model, layer: str):
    """Compiled (images, classes) -> (feature maps, d score / d maps, classes), cached per (model, layer)."""

    def build():
        g = _graph(model)
        sub = keras.Model(g.input, [_feature_map(model, layer), g.pre])

        @tf.function(input_signature=_signature(model))
        def fn(x, classes):
            with tf.GradientTape() as tape:
                maps, pre = sub(x, training=False)
                scores, classes = _scores(_logits(g, pre), classes)
            return maps, tape.gradient(scores, maps), classes

        return fn

    return _cached(model, ("gradcam", layer), build)


def _input_grad_fn(model: keras.Model):
    """Compiled (images, classes) -> (d score / d image, classes), cached per model."""

    def build():
        g = _graph(model)
        sub = keras.Model(g.input, g.pre)

        @tf.function(input_signature=_signature(model))
        def fn(x, classes):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores, classes = _scores(_logits(g, sub(x, training=False)), classes)
            return tape.gradient(scores, x), classes

        return fn

    return _cached(model, "input_grad", build)


def _prepare(model: keras.Model, image) -> tuple[np.ndarray, tuple]:
    if isinstance(model, Base):
        raise TypeError("a Base has no classes to explain; explain a classifier, e.g. build_classifier(base, n_classes).")
    _model(model)
    x = _rgb(image)
    h, w, _ = _input_shape(model)
    return _fit_to(x, (h, w)), x.shape[:2]


# --------------------------------------------------------------------------- Grad-CAM
def _cam(maps: np.ndarray, grads: np.ndarray, *, plus: bool) -> np.ndarray:
    """Grad-CAM (channel weights = mean gradient) or Grad-CAM++ (Chattopadhyay et al. 2018) of one map."""
    if plus:
        g2, g3 = grads**2, grads**3
        denom = 2.0 * g2 + maps.sum(axis=(0, 1), keepdims=True) * g3
        alpha = g2 / np.where(denom != 0.0, denom, 1.0)
        weights = (alpha * np.maximum(grads, 0.0)).sum(axis=(0, 1))
    else:
        weights = grads.mean(axis=(0, 1))
    return np.maximum((maps * weights).sum(axis=-1), 0.0)


def gradcam(model: keras.Model, image, *, layer: str | None = None, class_index: int | None = None,
            plus: bool = False) -> tuple[np.ndarray, int]:
    """Return (heatmap in [0, 1] at the image's resolution, class index) by Grad-CAM.

    The heatmap weighs each channel of `layer`'s feature map by the gradient of the class
    logit (the score before the softmax, which saturates), keeps the positive evidence and
    is upsampled to the image. `layer=None` takes the last layer with a 4-D output (for
    MobileNetV2 `out_relu`, for VGG16 `block5_conv3`), also inside a nested base;
    `class_index=None` explains the predicted class; `plus=True` gives Grad-CAM++.
    `image` is one RGB image in [0, 255]; another size is resized to the model's input.

    Example:
        >>> heatmap, k = gradcam(model, images[0])
        >>> heatmap.shape, class_names[k]
        ((160, 160), 'cat')
    """
    layer = layer or last_conv_layer(model)
    x, hw = _prepare(model, image)
    fn = _gradcam_fn(model, layer)
    maps, grads, k = fn(tf.constant(x[None]), tf.constant([_class_arg(model, class_index)], "int32"))
    cam = _cam(maps.numpy()[0].astype("float64"), grads.numpy()[0].astype("float64"), plus=plus)
    return _normalise(_resize_map(_normalise(cam), hw)), int(k.numpy()[0])


# --------------------------------------------------------------------------- saliency
def _sensitivity(model: keras.Model, batch: np.ndarray, classes: np.ndarray, *, chunk: int = 16) -> np.ndarray:
    """Max |d logit / d pixel| over the colour channels, per image: (N, H, W), not normalised."""
    fn = _input_grad_fn(model)
    out = []
    for i in range(0, len(batch), chunk):
        grads, _ = fn(tf.constant(batch[i:i + chunk], "float32"), tf.constant(classes[i:i + chunk], "int32"))
        out.append(np.abs(grads.numpy()).max(axis=-1))
    return np.concatenate(out)


def _predicted(model: keras.Model, x: np.ndarray, class_index: int | None) -> int:
    if class_index is not None:
        return _class_arg(model, class_index)
    _, k = _input_grad_fn(model)(tf.constant(x[None]), tf.constant([-1], "int32"))
    return int(k.numpy()[0])


def saliency(model: keras.Model, image, *, class_index: int | None = None) -> np.ndarray:
    """Return the vanilla-gradient saliency map (H, W) in [0, 1] of the class logit.

    Each pixel gets the largest |gradient| over its colour channels (Simonyan et al. 2014);
    `class_index=None` explains the predicted class.

    Example:
        >>> m = saliency(model, images[0])
        >>> m.shape == images[0].shape[:2]
        True
    """
    x, hw = _prepare(model, image)
    k = _predicted(model, x, class_index)
    return _normalise(_resize_map(_sensitivity(model, x[None], np.array([k]))[0], hw))


def smoothgrad(model: keras.Model, image, *, class_index: int | None = None, n: int = 25,
               noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """Return the SmoothGrad map (H, W) in [0, 1]: saliency averaged over `n` noisy copies.

    The noise is Gaussian with standard deviation `noise` times the image's value range
    (Smilkov et al. 2017); the class is fixed to the clean image's prediction unless given.
    With n=1 and noise=0 it is exactly `saliency`.

    Example:
        >>> m = smoothgrad(model, images[0], n=25, noise=0.15)
        >>> float(m.max())
        1.0
    """
    if n < 1:
        raise ValueError(f"smoothgrad needs n >= 1 noisy copies, got n={n}.")
    if noise < 0:
        raise ValueError(f"noise is a fraction of the image's value range and cannot be negative, got {noise}.")
    x, hw = _prepare(model, image)
    k = _predicted(model, x, class_index)
    sigma = noise * float(x.max() - x.min())
    rng = np.random.default_rng(seed)
    batch = x[None] + rng.normal(0.0, 1.0, (n, *x.shape)).astype("float32") * sigma
    maps = _sensitivity(model, batch.astype("float32"), np.full(n, k))
    return _normalise(_resize_map(maps.mean(axis=0), hw))


# --------------------------------------------------------------------------- activations
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


def _outputs_fn(model: keras.Model, names: tuple, reduce: Callable | None = None):
    """Compiled images -> outputs of the named layers (optionally reduced in-graph), cached."""

    def build():
        g = _graph(model)
        sub = keras.Model(g.input, [g.tensor(name) for name in names])

        @tf.function(reduce_retracing=True)
        def fn(x):
            outs = sub(x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            return [reduce(o) for o in outs] if reduce else outs

        return fn

    return _cached(model, ("outputs", names, reduce), build)


def activations(model_or_base, image, layer: str) -> np.ndarray:
    """Return the feature map (H, W, C) that `layer` produces for one image.

    `layer` may sit inside a nested base. A `Base` gets its own preprocess_input first; a
    classifier from `build_classifier` preprocesses inside; a bare keras.applications model
    sees the pixels as given.

    Example:
        >>> a = activations(base, images[0], "block_1_expand_relu")
        >>> a.shape
        (48, 48, 96)
    """
    model, pre = _model(model_or_base)
    _feature_map(model, layer, what="activations")
    x, _ = _prepare(model, image)
    x = x[None] if pre is None else np.asarray(pre(tf.constant(x[None])))
    return np.asarray(_outputs_fn(model, (layer,))(tf.constant(x, "float32"))[0][0])


def _relu_like(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return True
    act = getattr(getattr(layer, "activation", None), "__name__", "")
    return act in ("relu", "relu6")


def _relu_after_conv(order: list) -> list[tuple[str, str]]:
    """(conv layer, the ReLU that follows it through BatchNormalization only) pairs, bottom to top."""
    producer = {id(out): (layer, x) for layer, x, out in order}
    pairs = []
    for layer, x, _ in order:
        if isinstance(layer, _CONV) and _relu_like(layer):
            pairs.append((layer.name, layer.name))
        elif _relu_like(layer) and not isinstance(layer, keras.layers.Dense):
            src, src_in = producer.get(id(x), (None, None))
            while isinstance(src, keras.layers.BatchNormalization):
                src, src_in = producer.get(id(src_in), (None, None))
            if isinstance(src, _CONV):
                pairs.append((src.name, layer.name))
    return list(dict.fromkeys(pairs))


def _channel_stats(a):
    """Per channel: largest |activation|, and the number of exact zeros, over batch and positions."""
    a = tf.reshape(a, (-1, tf.shape(a)[-1]))
    return tf.reduce_max(tf.abs(a), axis=0), tf.reduce_sum(tf.cast(a == 0, "float32"), axis=0)


def sparsity_by_depth(model_or_base, images, *, layers: Sequence[str] | None = None,
                      batch_size: int = 16) -> pd.DataFrame:
    """Return one row per convolutional layer: its share of dead channels and of zero activations.

    For each convolution followed by a ReLU (directly or through BatchNormalization; linear
    bottlenecks are skipped), `dead_fraction` is the share of channels that are exactly zero
    on every position of every image given, and `sparsity` the fraction of activations that
    are zero after the ReLU. `layers` measures those layers' outputs instead.

    Example:
        >>> df = sparsity_by_depth(base, images[:32])
        >>> df[["layer", "dead_fraction", "sparsity"]].tail(3)
    """
    model, pre = _model(model_or_base)
    order = _graph(model).order
    if layers is None:
        pairs = _relu_after_conv(order)
        if not pairs:
            raise ValueError(f"model {model.name!r} has no convolution followed by a ReLU; pass layers=[...].")
    else:
        pairs = [(name, name) for name in layers]
        for name in layers:
            _feature_map(model, name, what="sparsity_by_depth")
    batch = _batch(images, model)
    fn = _outputs_fn(model, tuple(m for _, m in pairs), reduce=_channel_stats)
    peak = count = None
    for i in range(0, len(batch), batch_size):
        x = batch[i:i + batch_size]
        x = x if pre is None else np.asarray(pre(tf.constant(x)))
        stats = [(m.numpy(), z.numpy()) for m, z in fn(tf.constant(x, "float32"))]
        peak = [m for m, _ in stats] if peak is None else [np.maximum(p, m) for p, (m, _) in zip(peak, stats)]
        count = [z for _, z in stats] if count is None else [c + z for c, (_, z) in zip(count, stats)]
    g = _graph(model)
    rows = []
    for depth, ((conv, measured), p, c) in enumerate(zip(pairs, peak, count)):
        h, w = g.tensor(measured).shape[1:3]
        rows.append({"depth": depth, "layer": conv, "measured": measured, "channels": len(p),
                     "dead_fraction": float(np.mean(p == 0)),
                     "sparsity": float(c.sum() / (len(batch) * h * w * len(p)))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- filter patterns
def _blur_kernel(sigma: float) -> tf.Tensor:
    r = max(1, int(round(2 * sigma)))
    t = np.arange(-r, r + 1, dtype="float32")
    k1 = np.exp(-(t**2) / (2 * sigma**2))
    k = np.outer(k1, k1)
    k /= k.sum()
    return tf.constant(np.repeat(k[:, :, None, None], 3, axis=2))


def _response(g: _Graph, name: str) -> Callable:
    """images -> the layer's response before its ReLU, so that a filter silent on grey noise still has a gradient."""
    lay = g.layer(name)
    if isinstance(lay, keras.layers.Conv2D) and _relu_like(lay) and hasattr(lay, "convolution_op"):
        sub = keras.Model(g.input, g.input_of(name))

        def conv(x):
            z = lay.convolution_op(sub(x, training=False), lay.kernel)
            return z + lay.bias if lay.use_bias else z

        return conv
    if _relu_like(lay) and not isinstance(lay, (keras.layers.Dense, *_CONV)):
        sub = keras.Model(g.input, g.input_of(name))
    else:
        sub = keras.Model(g.input, g.tensor(name))
    return lambda x: sub(x, training=False)


def _filter_step(model: keras.Model, layer: str, pre: Callable | None):
    """Compiled one step of gradient ascent on the image, cached per (model, layer)."""

    def build():
        g = _cached(model, ("free", layer), lambda: _trace(model, free_size=True, until=(layer,)))
        response = _response(g, layer)

        @tf.function(reduce_retracing=True)
        def step(img, shift, index, step_size, border):
            with tf.GradientTape() as tape:
                tape.watch(img)
                x = tf.roll(img, shift, axis=[1, 2])
                a = response(pre(x) if pre is not None else x)
                bh = tf.minimum(border, (tf.shape(a)[1] - 1) // 2)  # skip the edge, where padding rules
                bw = tf.minimum(border, (tf.shape(a)[2] - 1) // 2)
                a = a[:, bh:tf.shape(a)[1] - bh, bw:tf.shape(a)[2] - bw, index]
                loss = tf.reduce_mean(a)
            grad = tape.gradient(loss, img)
            grad /= tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-8
            return loss, tf.clip_by_value(img + step_size * grad, 0.0, 255.0)

        return step

    return _cached(model, ("filter_step", layer, pre), build)


def filter_pattern(model_or_base, layer: str, filter_index: int, *, size: int = 96, steps: int = 40,
                   step_size: float = 8.0, jitter: int = 4, blur: float = 0.6, blur_every: int = 4,
                   seed: int = 0) -> np.ndarray:
    """Return the (size, size, 3) uint8 image that most excites one filter, by gradient ascent.

    Starting from grey noise, each step shifts the image by up to `jitter` pixels, adds the
    normalised gradient of the filter's mean response (`step_size` in pixel units; taken
    before the layer's ReLU, so that a filter silent on grey noise still moves), and
    every `blur_every` steps blurs it (Gaussian, `blur` pixels): both keep the pattern from
    dissolving into high-frequency noise (Olah et al. 2017). Works at any `size` the layer's
    receptive field allows, whatever the model's own input size.

    Example:
        >>> p = filter_pattern(base, "block_3_expand", 7, size=96)
        >>> p.shape, p.dtype
        ((96, 96, 3), dtype('uint8'))
    """
    model, pre = _model(model_or_base)
    out = _feature_map(model, layer, what="filter_pattern")
    n = int(out.shape[-1])
    if not 0 <= int(filter_index) < n:
        raise ValueError(f"layer {layer!r} has {n} filters; filter_index must be between 0 and {n - 1}, got {filter_index}.")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}.")
    rng = np.random.default_rng(seed)
    img = tf.constant(128.0 + rng.uniform(-16, 16, (1, size, size, 3)), "float32")
    step = _filter_step(model, layer, pre)
    kernel = _blur_kernel(blur) if blur > 0 else None
    border = tf.constant(1 if size >= 32 else 0)
    for i in range(steps):
        shift = rng.integers(-jitter, jitter + 1, size=2) if jitter else np.zeros(2, "int64")
        _, img = step(img, tf.constant(shift, "int32"), tf.constant(int(filter_index)),
                      tf.constant(float(step_size)), border)
        if kernel is not None and blur_every and (i + 1) % blur_every == 0 and i + 1 < steps:
            r = kernel.shape[0] // 2  # reflect, not zero, padding: no dark frame creeping in
            img = tf.nn.depthwise_conv2d(tf.pad(img, [[0, 0], [r, r], [r, r], [0, 0]], "REFLECT"), kernel,
                                         [1, 1, 1, 1], "VALID")
    return np.clip(np.round(img.numpy()[0]), 0, 255).astype("uint8")


# --------------------------------------------------------------------------- sanity checks
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


# --------------------------------------------------------------------------- live notebooks
def explorer(model: keras.Model, images, *, class_names: Sequence[str] | None = None):
    """Return an ipywidgets panel: pick an image, layer, channel and class; see Grad-CAM and the channel.

    For live notebooks only (the book shows static figures); needs ipywidgets.

    Example:
        >>> explorer(model, images[:8], class_names=["cat", "dog"])
    """
    try:
        import ipywidgets as w
    except ImportError:
        raise ImportError("explorer needs ipywidgets: pip install ipywidgets") from None
    import matplotlib.pyplot as plt

    from .viz import plot_heatmap

    batch = _batch(images, model)
    g = _graph(model)
    first = next((i for i, (lay, _, _) in enumerate(g.order) if isinstance(lay, _CONV)), 0)
    names = list(dict.fromkeys(lay.name for lay, _, out in g.order[first:] if _is_feature_map(lay, out)))
    names = names or [last_conv_layer(model)]
    classes = list(class_names or [str(i) for i in range(_n_classes(model))])
    pick_image = w.Dropdown(options=[(f"image {i}", i) for i in range(len(batch))], description="image")
    pick_layer = w.Dropdown(options=names, value=last_conv_layer(model), description="layer")
    pick_channel = w.IntSlider(0, min=0, max=int(g.tensor(pick_layer.value).shape[-1]) - 1, description="channel")
    pick_class = w.Dropdown(options=[("predicted", -1)] + [(c, i) for i, c in enumerate(classes)], description="class")
    pick_layer.observe(lambda ch: setattr(pick_channel, "max", int(g.tensor(ch["new"]).shape[-1]) - 1), names="value")

    def draw(i, layer, channel, k):
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
        heat, cls = gradcam(model, batch[i], layer=layer, class_index=None if k < 0 else k)
        plot_heatmap(batch[i], heat, ax=a)
        a.set_title(f"Grad-CAM for {classes[cls]} at {layer}", fontsize="small")
        b.imshow(activations(model, batch[i], layer)[..., channel], cmap="viridis")
        b.set_title(f"{layer}, channel {channel}", fontsize="small")
        b.axis("off")
        plt.show()

    out = w.interactive_output(draw, {"i": pick_image, "layer": pick_layer, "channel": pick_channel, "k": pick_class})
    return w.VBox([w.HBox([pick_image, pick_layer]), w.HBox([pick_channel, pick_class]), out])


def edge_alignment(model_or_base, images, *, layers: Sequence[str]) -> pd.DataFrame:
    """Return, per layer, how closely its best channel follows the edges of the images.

    For each image, the Sobel edge strength of the (grayscale) image is compared with every
    channel of the layer's feature map, resized to the image; the best Pearson correlation over
    the channels is averaged over the images. High values mean some channel acts as an edge
    detector for these images.

    Example:
        >>> edge_alignment(model, images, layers=["Conv1", "Conv_1"])
    """
    batch = np.asarray(images, dtype="float32")
    if batch.ndim == 3:
        batch = batch[None]
    gray = tf.image.rgb_to_grayscale(tf.constant(batch[..., :3]))
    sob = tf.image.sobel_edges(gray)  # (N, H, W, 1, 2)
    edges = tf.sqrt(tf.reduce_sum(sob**2, axis=-1))[..., 0].numpy()
    rows = {}
    for layer in layers:
        best = []
        for img, e in zip(batch, edges):
            a = activations(model_or_base, img, layer)
            a = tf.image.resize(a, e.shape).numpy().reshape(-1, a.shape[-1])
            ev = (e.ravel() - e.mean()) / (e.std() + 1e-8)
            av = (a - a.mean(0)) / (a.std(0) + 1e-8)
            best.append(float(np.max(ev @ av / len(ev))))
        rows[layer] = {"edge correlation": float(np.mean(best)), "channels": a.shape[-1]}
    table = pd.DataFrame(rows).T
    table.index.name = "layer"
    return table
