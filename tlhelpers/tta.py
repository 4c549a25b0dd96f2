"""Test-time augmentation: average a model's probabilities over a few views of each image (flips, crops).

A classifier trained with random flips and zooms has seen each object in those views; asking it
about several of them and averaging the softmax outputs evens out the errors of any single view.
It costs one prediction per view.

Example:
    >>> probs = predict_tta(model, images, views=("identity", "flip"))
    >>> probs = predict_tta(model, images, views=VIEWS)   # flips and a central crop: 4 predictions
"""

from __future__ import annotations

from typing import Callable

import numpy as np

VIEWS = ("identity", "flip", "crop", "flip_crop")
CROP = 0.875  # the central crop keeps 87.5% of each side (ImageNet's usual 224 of 256), resized back


def _crop(images: np.ndarray, fraction: float = CROP) -> np.ndarray:
    import tensorflow as tf

    h, w = images.shape[1:3]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    cropped = images[:, top:top + ch, left:left + cw]
    return tf.image.resize(cropped, (h, w), method="bilinear").numpy().astype(images.dtype)


def view(images: np.ndarray, name: str) -> np.ndarray:
    """Return one view of a batch of images (N, H, W, C): 'identity', 'flip' (left-right), 'crop', 'flip_crop'.

    Example:
        >>> view(images, "flip")[0, :, 0] == images[0, :, -1]
    """
    if name == "identity":
        return images
    if name == "flip":
        return images[:, :, ::-1]
    if name == "crop":
        return _crop(images)
    if name == "flip_crop":
        return _crop(images[:, :, ::-1])
    raise ValueError(f"view: expected a view among {', '.join(VIEWS)}; received {name!r}.")


def _predictor(model) -> Callable:
    """images -> probabilities, for a Keras model (batched predict) or any callable (an exported model)."""
    if hasattr(model, "predict"):
        return lambda x: np.asarray(model.predict(x, verbose=0))
    if callable(model):
        return lambda x: np.asarray(model(x))
    raise TypeError(f"predict_tta: expected `model` to be a Keras model or a callable images -> probabilities; "
                    f"received {type(model).__name__}.")


def _check_views(views) -> tuple:
    views = (views,) if isinstance(views, str) else tuple(views)
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown:
        raise ValueError(f"predict_tta: expected `views` to be one or more of {', '.join(VIEWS)}; "
                         f"received {list(views)!r}.")
    return views


def predict_tta(model, images, *, views=("identity", "flip"), batch_size: int = 32) -> np.ndarray:
    """Return class probabilities averaged over `views` of each image: an array (N, n_classes).

    `images`: an array (N, H, W, 3) of raw 0-255 images, or an ImageSet (loaded at the model's input
    size, batch by batch). `model`: a Keras model, or a callable from images to probabilities (such as
    `tlhelpers.export.load_for_prediction(path)[0]`). `views=("identity",)` is a plain prediction.

    Example:
        >>> probs = predict_tta(model, x_val, views=("identity", "flip"))
        >>> (probs.argmax(1) == y_val).mean()
    """
    from .imageset import ImageSet

    views = _check_views(views)
    predict = _predictor(model)
    if isinstance(images, ImageSet):
        return _predict_imageset(predict, model, images, views, batch_size)
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"predict_tta: expected `images` as an array (N, H, W, C) or an ImageSet; received an "
                         f"array of shape {images.shape}.")
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        out.append(np.mean([predict(view(batch, v)) for v in views], axis=0))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype="float32")


def _predict_imageset(predict, model, images, views, batch_size: int) -> np.ndarray:
    from .images import to_dataset

    size = getattr(model, "image_size", None) or model.input_shape[1]
    ds = to_dataset(images, image_size=size, batch_size=batch_size, cache=False)
    out = [np.mean([predict(view(x.numpy(), v)) for v in views], axis=0) for x, _ in ds]
    return np.concatenate(out)
