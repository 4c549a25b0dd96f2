"""Models built around a base: augmentation, classifier heads, whole classifiers, the small from-scratch convnet.

Example:
    >>> model = build_classifier(base, n_classes=2, augment=augmentation())   # base frozen, training=False
    >>> head = build_head((5, 5, 512), 2)                                    # for cached features
"""

from __future__ import annotations

import keras

from .bases import Base, ImagePreprocess
from .errors import check_int, check_type


@keras.saving.register_keras_serializable(package="tlhelpers")
class RandomShear(keras.layers.RandomShear):
    """keras.layers.RandomShear that survives saving: Keras 3.15 writes its factors as a (-f, f) range
    that its own constructor then rejects, so a saved model with shear augmentation would not load."""

    def __init__(self, x_factor=0.0, y_factor=0.0, **kwargs):
        super().__init__(x_factor=x_factor, y_factor=y_factor, **kwargs)
        self._factors = (x_factor, y_factor)

    def get_config(self):
        return {**super().get_config(), "x_factor": self._factors[0], "y_factor": self._factors[1]}


def augmentation(*, flip: bool = True, rotation: float = 0.1, zoom: float = 0.2, shear: float = 0.0,
                 seed: int | None = None) -> keras.Sequential:
    """Random image augmentation as Keras preprocessing layers (active only in training).

    Example:
        >>> aug = augmentation(); aug(images, training=True).shape == images.shape
        True
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed))
    if shear:
        layers.append(RandomShear(x_factor=shear, y_factor=shear, seed=seed))
    return keras.Sequential(layers, name="augmentation")


def _head(x, n_classes, *, pooling, hidden, dropout):
    if pooling == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        raise ValueError(f"pooling must be 'flatten' or 'avg', got {pooling!r}.")
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)


def build_classifier(
    base: Base, n_classes: int, *, augment: keras.Sequential | None = None, pooling: str = "flatten",
    hidden: int | None = 256, dropout: float = 0.5, freeze_base: bool = True, name: str | None = None,
) -> keras.Model:
    """Return raw images -> [augmentation] -> preprocess_input -> base (training=False) -> head.

    The model takes RGB images in [0, 255] and outputs class probabilities. The base starts
    frozen unless `freeze_base=False`; its frozen BatchNormalization layers run in inference
    mode, so their statistics never move (unfreeze with `set_trainable`/`unfreeze_top_blocks`,
    which keep BatchNormalization frozen by default). With `freeze_base=False` (training from
    scratch) every layer trains, BatchNormalization statistics included.

    Example:
        >>> model = build_classifier(base, 2, augment=augmentation())
        >>> model.output_shape
        (None, 2)
    """
    check_type("base", base, Base, "a Base (from load_base)", where="build_classifier",
               hint="Make one with load_base('vgg16', image_size=...).")
    check_int("n_classes", n_classes, minimum=2, where="build_classifier", what=" (a classifier needs at least two classes)")
    if freeze_base:
        base.model.trainable = False
    s = base.image_size
    inputs = keras.Input((s, s, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = ImagePreprocess(base.arch, name="preprocess")(x)
    x = base.model(x, training=False)
    outputs = _head(x, n_classes, pooling=pooling, hidden=hidden, dropout=dropout)
    return keras.Model(inputs, outputs, name=name or f"{base.arch}_classifier")


def build_head(feature_shape, n_classes: int, *, pooling: str = "flatten", hidden: int | None = 256,
               dropout: float = 0.5) -> keras.Model:
    """Return a classifier that takes features of shape `feature_shape` (for cached features).

    Example:
        >>> head = build_head((5, 5, 512), 2); head.output_shape
        (None, 2)
    """
    check_int("n_classes", n_classes, minimum=2, where="build_head", what=" (a classifier needs at least two classes)")
    inputs = keras.Input(tuple(feature_shape), name="features")
    return keras.Model(inputs, _head(inputs, n_classes, pooling=pooling, hidden=hidden, dropout=dropout), name="head")


def stack(base: Base, head: keras.Model, *, name: str | None = None) -> keras.Model:
    """Join a base and a head trained on its features into one model on raw images."""
    s = base.image_size
    inputs = keras.Input((s, s, 3), name="image")
    x = ImagePreprocess(base.arch, name="preprocess")(inputs)
    x = base.model(x, training=False)
    return keras.Model(inputs, head(x), name=name or f"{base.arch}_features_classifier")


def small_convnet(image_size: int, n_classes: int, *, augment: keras.Sequential | None = None,
                  dropout: float = 0.5) -> keras.Model:
    """The small from-scratch convnet of Chollet (2021, ch. 8), as the baseline to beat.

    Example:
        >>> small_convnet(96, 2).count_params() > 0
        True
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = keras.layers.Rescaling(1.0 / 255)(x)
    for i, filters in enumerate((32, 64, 128, 256)):
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        later = 3 - i  # 3x3 'valid' convolutions still to come, each 2 pixels smaller: pool only if they fit
        if x.shape[1] >= 4 and x.shape[1] // 2 >= 2 * later + 1:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(256, 3, activation="relu", padding="same")(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_convnet")
