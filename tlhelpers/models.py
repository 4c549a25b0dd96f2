"""Pretrained convolutional bases, freezing by name or block, classifier heads, saving.

Example:
    >>> base = load_base("vgg16", image_size=180)          # ImageNet weights, or the offline fallback
    >>> model = build_classifier(base, n_classes=2)       # base frozen, called with training=False
    >>> unfreeze_top_blocks(base, 1)                       # block5 of VGG16 becomes trainable
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from . import profile as _profile
from ._atomic import atomic_path


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be loaded (usually: no network and no cached file)."""


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    constructor: str  # name in keras.applications
    module: str  # keras.applications submodule holding preprocess_input
    min_size: int
    block_of: Callable  # layer name -> block label, or None to stay in the current block


def _prefix(pattern, stem="stem", extra=None):
    rx = re.compile(pattern)

    def block_of(name):
        if extra and name in extra:
            return extra[name]
        m = rx.match(name)
        return m.group(1) if m else None

    return block_of


ARCHS = {
    "vgg16": ArchSpec("VGG16", "vgg16", 32, _prefix(r"^(block\d+)_")),
    "resnet50": ArchSpec("ResNet50", "resnet50", 32, _prefix(r"^(conv\d_block\d+)_", extra={"conv1_pad": "stem"})),
    "mobilenet_v2": ArchSpec(
        "MobileNetV2", "mobilenet_v2", 32,
        _prefix(r"^(block_\d+)_", extra={"Conv1": "stem", "expanded_conv_depthwise": "block_0", "Conv_1": "top"}),
    ),
    "xception": ArchSpec("Xception", "xception", 71, _prefix(r"^(block\d+)_")),
    # InceptionV3's layers carry automatic names; its blocks end at the concatenations mixed0..mixed10.
    "inception_v3": ArchSpec("InceptionV3", "inception_v3", 75, None),
}


def _arch(name: str) -> ArchSpec:
    if name not in ARCHS:
        raise ValueError(f"unknown base {name!r}; supported bases are: {', '.join(ARCHS)}.")
    return ARCHS[name]


@keras.saving.register_keras_serializable(package="tlhelpers")
class ImagePreprocess(keras.layers.Layer):
    """The `preprocess_input` of a keras.applications architecture, as a layer that saves and loads."""

    def __init__(self, arch: str, **kwargs):
        super().__init__(**kwargs)
        self.arch = arch
        self._fn = getattr(keras.applications, _arch(arch).module).preprocess_input

    def call(self, x):
        return self._fn(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "arch": self.arch}


@dataclasses.dataclass
class Base:
    """A convolutional base with what the course needs to know about it."""

    model: keras.Model
    arch: str
    weights: str  # human-readable: "imagenet", "random init", "random init (offline fallback)", a path
    image_size: int

    @property
    def pretrained(self) -> bool:
        return not self.weights.startswith("random")

    def preprocess(self, x):
        """Apply the architecture's own preprocess_input to a copy of `x` (RGB in [0, 255])."""
        fn = getattr(keras.applications, _arch(self.arch).module).preprocess_input
        return fn(np.array(x, dtype="float32", copy=True))

    def __repr__(self) -> str:
        return f"Base({self.arch}, {self.image_size} px, weights: {self.weights})"


@contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _construct(arch, weights, image_size, **kwargs):
    ctor = getattr(keras.applications, _arch(arch).constructor)
    return ctor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **kwargs)


def _keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def load_base(
    arch: str, *, weights: str | None = "imagenet", image_size: int = 224,
    allow_fallback: bool | None = None, verbose: bool = True, **kwargs,
) -> Base:
    """Return a keras.applications convolutional base (no top) as a `Base`.

    `weights` is "imagenet" (Keras's cache under KERAS_HOME, downloaded when online), a path to
    a weights file, or None / "none" for random initialisation. When ImageNet weights cannot
    be had, the `quick` profile continues with random initialisation and says so loudly (every
    result is then labelled by `base.weights`); the `full` profile, and `allow_fallback=False`,
    stop with an error that says how to provide the weights.

    Example:
        >>> base = load_base("mobilenet_v2", weights=None, image_size=96, alpha=0.5)
        >>> base.model.output_shape
        (None, 3, 3, 1280)
    """
    spec = _arch(arch)
    if image_size < spec.min_size:
        raise ValueError(f"{arch} needs images of at least {spec.min_size} px; got image_size={image_size}.")
    if weights is None or str(weights).lower() in ("none", "random"):
        return Base(_construct(arch, None, image_size, **kwargs), arch, "random init", image_size)
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist; pass 'imagenet', None or an existing .h5/.weights.h5 file.")
        model = _construct(arch, None, image_size, **kwargs)
        try:
            model.load_weights(str(path))
        except Exception as err:
            raise ValueError(f"{path} does not fit {arch} at {image_size} px without top ({err}); use weights saved from the same base.") from None
        return Base(model, arch, str(path), image_size)
    try:
        with _socket_timeout(30):
            model = _construct(arch, "imagenet", image_size, **kwargs)
        return Base(model, arch, "imagenet", image_size)
    except Exception as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = text.split(" -- ")[-1].strip()  # Keras: "URL fetch failure on URL: None -- [Errno -2] ..."
    by_profile = allow_fallback is None
    if by_profile:
        allow_fallback = _profile.current_profile() == "quick"
    help_ = (
        f"ImageNet weights for {arch} could not be loaded ({reason}). To provide them, run once on a "
        f"machine with internet access (they are cached in {_keras_models_dir()}), copy the {arch} "
        "*_notop.h5 file from such a machine's Keras cache there, or pass a weights file path."
    )
    if not allow_fallback:
        hint = " Or run with TL_PROFILE=quick to continue without them." if by_profile else " Or train without them (weights none)."
        raise WeightsUnavailableError(help_ + hint)
    if verbose:
        import textwrap

        notice = (
            f"NOTICE: {help_}\n\nQuick profile: continuing with a randomly initialised {arch}. Every result "
            "in this run is labelled 'random init (offline fallback)' and says nothing about what "
            "pretrained features can do."
        )
        print("\n".join(textwrap.fill(par, 78) if par else "" for par in notice.split("\n")))
    return Base(_construct(arch, None, image_size, **kwargs), arch, "random init (offline fallback)", image_size)


# --------------------------------------------------------------------------- blocks and freezing
def _model(obj) -> keras.Model:
    return obj.model if isinstance(obj, Base) else obj


def blocks(base: Base) -> list[tuple[str, int]]:
    """Return the base's blocks as (name, index of their first layer), bottom to top.

    Example:
        >>> [name for name, _ in blocks(load_base("vgg16", weights=None))]
        ['block1', 'block2', 'block3', 'block4', 'block5']
    """
    layers = base.model.layers
    out: list[tuple[str, int]] = []
    if base.arch == "inception_v3":
        start = 1
        for i, layer in enumerate(layers):
            if re.fullmatch(r"mixed\d+", layer.name):
                out.append((layer.name, start))
                start = i + 1
        return out
    block_of = _arch(base.arch).block_of
    current = None
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        label = block_of(layer.name) or current or "stem"
        if label != current:
            if any(name == label for name, _ in out):
                raise RuntimeError(f"block {label} of {base.arch} is not contiguous; the layer names changed.")
            out.append((label, i))
            current = label
    return out


def set_trainable(model, *, from_layer: str | int | None, train_batchnorm: bool = False) -> dict:
    """Freeze every layer below `from_layer` and make it and the layers above trainable.

    `from_layer` is a layer name or index; None freezes everything. BatchNormalization
    layers stay frozen unless `train_batchnorm`: a frozen BatchNormalization layer runs in
    inference mode, so its moving statistics never change. With `train_batchnorm=True` they
    do change during `fit`, because Keras 3 passes the outer `training=True` into nested
    models even where the base was called with `training=False`. Returns the trainable
    report and prints it.

    Example:
        >>> set_trainable(base, from_layer="block5_conv1")
    """
    m = _model(model)
    if from_layer is None:
        start = len(m.layers)
    elif isinstance(from_layer, int):
        start = from_layer
    else:
        names = [layer.name for layer in m.layers]
        if from_layer not in names:
            conv = [n for n, layer in zip(names, m.layers) if isinstance(layer, keras.layers.Conv2D)]
            raise ValueError(f"layer {from_layer!r} is not in {m.name}; its convolutional layers are: {', '.join(conv)}.")
        start = names.index(from_layer)
    m.trainable = True
    for i, layer in enumerate(m.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= start and (train_batchnorm or not is_bn)
    if from_layer is None:
        m.trainable = False
    report = trainable_report(m)
    print(f"{m.name}: {report['trainable_layers']} of {report['layers']} layers trainable (from index {start});\n"
          f"  {report['trainable_params']:,} trainable and {report['non_trainable_params']:,} frozen parameters.")
    return report


def freeze(model) -> dict:
    """Freeze every layer of a base (or model); return the trainable report."""
    return set_trainable(model, from_layer=None)


def unfreeze_top_blocks(base: Base, n: int, *, train_batchnorm: bool = False) -> dict:
    """Make the top `n` blocks of `base` trainable and keep the rest frozen.

    Example:
        >>> unfreeze_top_blocks(load_base("inception_v3", weights=None), 2)["from_index"]
        249
    """
    bl = blocks(base)
    if not 1 <= n <= len(bl):
        raise ValueError(f"{base.arch} has {len(bl)} blocks ({', '.join(b for b, _ in bl)}); choose n between 1 and {len(bl)}.")
    start = bl[-n][1]
    report = set_trainable(base, from_layer=start, train_batchnorm=train_batchnorm)
    report["from_index"] = start
    report["from_layer"] = base.model.layers[start].name
    return report


def trainable_report(model) -> dict:
    """Counts of trainable and frozen layers and parameters."""
    m = _model(model)
    leaf = [layer for layer in m.layers if layer.weights]
    return {
        "layers": len(leaf),
        "trainable_layers": sum(1 for layer in leaf if layer.trainable and layer.trainable_weights),
        "trainable_params": int(sum(np.prod(w.shape) for w in m.trainable_weights)),
        "non_trainable_params": int(sum(np.prod(w.shape) for w in m.non_trainable_weights)),
    }


# --------------------------------------------------------------------------- building models
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
        layers.append(keras.layers.RandomShear(x_factor=shear, y_factor=shear, seed=seed))
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
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got n_classes={n_classes}.")
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


# --------------------------------------------------------------------------- saving
_META = "tlhelpers.json"


def save_model(model: keras.Model, path: str | Path, *, class_names: list, extra: dict | None = None) -> Path:
    """Save `model` in the .keras format with its class names; atomic (never half-written).

    Example:
        >>> save_model(model, "trash.keras", class_names=["glass", "metal"])
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save models with the .keras extension, got {path.name!r}.")
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(_META, json.dumps({"class_names": list(class_names), **(extra or {})}))
    return path


def load_model(path: str | Path) -> tuple[keras.Model, dict]:
    """Load a model saved by `save_model`; return (model, metadata with 'class_names')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist; train one with `tlh fit` first.")
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read(_META)) if _META in zf.namelist() else {}
        model = keras.saving.load_model(path)
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(f"{path} is not a readable .keras model ({err}); save it again with tlhelpers.") from None
    if "class_names" not in meta:
        n = model.output_shape[-1]
        meta["class_names"] = [str(i) for i in range(n)]
    return model, meta
