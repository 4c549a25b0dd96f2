"""Which pixels a prediction rests on: Grad-CAM (and Grad-CAM++), saliency and SmoothGrad maps.

Gradients are taken of the class logit, not of the saturated softmax; each map is an (H, W)
array in [0, 1] at the image's own resolution (`viz.plot_heatmap` draws it over the image).
`image` is one RGB image in [0, 255]; another size is resized to the model's input.

Example:
    >>> heatmap, k = gradcam(model, image)             # last convolutional layer, predicted class
    >>> plot_heatmap(image, heatmap)
    >>> m = smoothgrad(model, image, n=25, noise=0.15)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ._graph import _cached, _feature_map, _Graph, _graph, _input_shape, _n_classes, _normalise, _prepare, _resize_map
from .inspect import last_conv_layer

__all__ = ["gradcam", "saliency", "smoothgrad"]


# --------------------------------------------------------------------------- logits and gradients
def _logits(g: _Graph, pre):
    """Class scores before the softmax: x @ kernel + bias of a final softmax Dense, else its input."""
    if g.head is None:
        return pre
    z = keras.ops.matmul(pre, g.head.kernel)
    return z + g.head.bias if g.head.use_bias else z


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
