"""What the layers of a convnet compute: their names, feature maps, dead channels, filter patterns and edges.

Every function takes a classifier or a `Base` and arrays, and returns arrays or a DataFrame;
layers inside a nested base can be named directly. The pictures are in `viz`.

Example:
    >>> a = activations(base, images[0], "block_1_expand_relu")
    >>> sparsity_by_depth(base, images[:32])[["layer", "dead_fraction", "sparsity"]]
    >>> p = filter_pattern(base, "block_3_expand", 7, size=96)
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ._graph import (
    _CONV,
    _batch,
    _cached,
    _conv_names,
    _feature_map,
    _Graph,
    _graph,
    _is_feature_map,
    _prepare,
    _trace,
    _unwrap,
)

__all__ = ["activations", "conv_layers", "edge_alignment", "filter_pattern", "last_conv_layer", "sparsity_by_depth"]


# --------------------------------------------------------------------------- layers
def conv_layers(model_or_base) -> list[str]:
    """Return the names of the convolutional layers of a model (nested bases included), bottom to top.

    Example:
        >>> conv_layers(build_classifier(base, 2))[-1]
        'Conv_1'
    """
    model, _ = _unwrap(model_or_base)
    return _conv_names(model)


def last_conv_layer(model_or_base) -> str:
    """Return the name of the layer Grad-CAM uses by default: the last 4-D feature map, pooling excluded.

    That is the last layer with an (H, W, C) output at or after the first convolution,
    nested bases included: `out_relu` for MobileNetV2, `block5_conv3` for VGG16.

    Example:
        >>> last_conv_layer(build_classifier(load_base("vgg16"), 2))
        'block5_conv3'
    """
    model, _ = _unwrap(model_or_base)
    order = _graph(model).order
    first = next((i for i, (layer, _, _) in enumerate(order) if isinstance(layer, _CONV)), None)
    if first is None:
        raise ValueError(f"model {model.name!r} has no convolutional layer; Grad-CAM needs one (saliency and SmoothGrad "
                         "do not).")
    for layer, _, out in reversed(order[first:]):
        if _is_feature_map(layer, out):
            return layer.name
    return order[first][0].name


# --------------------------------------------------------------------------- activations
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
    model, pre = _unwrap(model_or_base)
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
    model, pre = _unwrap(model_or_base)
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
    model, pre = _unwrap(model_or_base)
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


# --------------------------------------------------------------------------- edges
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
