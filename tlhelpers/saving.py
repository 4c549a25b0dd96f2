"""Saving and loading whole classifiers (.keras) with their class names; atomic, never half-written.

Example:
    >>> save_model(model, "trash.keras", class_names=["glass", "metal"])
    >>> model, meta = load_model("trash.keras"); meta["class_names"]
    ['glass', 'metal']
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

import keras

from . import bases, builders, recipe  # noqa: F401  (they register tlhelpers' layers, losses and schedules)
from ._atomic import atomic_path
from .errors import check_type

_META = "tlhelpers.json"


def save_model(model: keras.Model, path: str | Path, *, class_names: list, extra: dict | None = None) -> Path:
    """Save `model` in the .keras format with its class names; atomic (never half-written).

    Example:
        >>> save_model(model, "trash.keras", class_names=["glass", "metal"])
    """
    check_type("model", model, keras.Model, "a keras.Model", where="save_model")
    check_type("path", path, (str, os.PathLike), "a file path ending in .keras", where="save_model")
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save models with the .keras extension, got {path.name!r}.")
    _check_class_names(model, class_names)
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(_META, json.dumps({"class_names": list(class_names), **(extra or {})}))
    return path


def _check_class_names(model: keras.Model, class_names) -> None:
    """One unique name (str) per output of `model` (two for a single sigmoid output), or ValueError/TypeError."""
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"save_model: expected `class_names` to be a list of names; received "
                        f"class_names={class_names!r} ({type(class_names).__name__}).")
    names = list(class_names)
    if any(not isinstance(c, str) for c in names) or len(set(names)) != len(names):
        raise ValueError(f"save_model: expected `class_names` to be distinct strings; received {names!r}.")
    try:
        n = model.output_shape[-1]
    except (AttributeError, ValueError, TypeError):  # a model not built yet: nothing to compare with
        return
    if isinstance(n, int) and len(names) != n and not (n == 1 and len(names) == 2):
        raise ValueError(f"save_model: the model has {n} outputs but {len(names)} class names were given "
                         f"({names!r}); pass one name per output, in the order of the labels.")


def _safe_mode():
    """Keras safe mode for one load, even where enable_unsafe_deserialization() turned it off globally
    (Keras lets that global setting override `safe_mode=True`)."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # a Keras without it: `safe_mode=True` alone then decides
        return contextlib.nullcontext()
    return SafeModeScope(True)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def load_model(path: str | Path) -> tuple[keras.Model, dict]:
    """Load a model saved by `save_model`; return (model, metadata with 'class_names').

    Loading uses Keras's safe mode, whatever `keras.config.enable_unsafe_deserialization()` said:
    a file that holds Python code (a Lambda layer) is refused, not run.
    """
    check_type("path", path, (str, os.PathLike), "the path of a .keras file", where="load_model")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"model file {path} is a folder; pass the .keras file that save_model or `tlh fit` "
                                "wrote.")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist; train one with `tlh fit` first.")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "config.json" not in names:
                raise ValueError("no config.json inside: a zip file, but not a Keras model")
            meta = json.loads(zf.read(_META)) if _META in names else {}
        with _safe_mode():
            model = keras.saving.load_model(path, safe_mode=True)
    except ValueError as err:
        if "Lambda" in str(err):
            raise ValueError(f"{path} contains a Lambda layer (Python code), which tlhelpers will not run: models "
                             "load in Keras safe mode; rebuild the model without Lambda layers.") from None
        raise ValueError(f"{path} is not a readable .keras model ({_first_line(err)}); "
                         "save it again with tlhelpers.") from None
    except (zipfile.BadZipFile, OSError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a readable .keras model ({type(err).__name__}: {_first_line(err)}); "
                         "save it again with tlhelpers, from Keras and tlhelpers layers only.") from None
    n = model.output_shape[-1]
    if "class_names" not in meta:
        meta["class_names"] = [str(i) for i in range(n)]
    elif len(meta["class_names"]) != n and not (n == 1 and len(meta["class_names"]) == 2):
        raise ValueError(f"{path} names {len(meta['class_names'])} classes but the model has {n} outputs; "
                         "save it again with save_model(model, path, class_names=...).")
    return model, meta
