"""Saving and loading whole classifiers (.keras) with their class names; atomic, never half-written.

Example:
    >>> save_model(model, "trash.keras", class_names=["glass", "metal"])
    >>> model, meta = load_model("trash.keras"); meta["class_names"]
    ['glass', 'metal']
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras

from ._atomic import atomic_path


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
