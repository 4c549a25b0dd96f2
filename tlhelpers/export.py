"""Exporting a classifier for use outside Keras: a TensorFlow SavedModel or a TFLite file, checked and atomic.

The exported model takes raw RGB images in [0, 255] (float32, N x S x S x 3) and returns class
probabilities: the preprocessing is inside, as in the course's .keras models, and augmentation
is left out (the model is traced with training=False). The class names travel with it: in
`tlhelpers_export.json` inside the SavedModel folder, or in `<name>.tflite.json` beside the .tflite.

Before anything appears at `out`, the export is checked against the Keras model on a few images:
the largest absolute difference of any probability must be at most TOLERANCE[format] (1e-4 for a
SavedModel, which runs the same TensorFlow kernels; 1e-3 for TFLite, whose kernels differ). The
export is written beside `out` under a hidden temporary name and renamed into place only once it
passed, so a failure (a layer TFLite cannot convert, a full disk, a read-only folder) leaves nothing.

Example:
    >>> export_model("cats.keras", "cats.tflite", format="tflite")
    >>> predict_fn, classes = load_for_prediction("cats.tflite")
    >>> classes[predict_fn(images).argmax(1)[0]]
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import recipe  # noqa: F401  (registers the schedule and loss that a model compiled by fit's recipe names)
from .errors import CourseError

FORMATS = ("savedmodel", "tflite")
TOLERANCE = {"savedmodel": 1e-4, "tflite": 1e-3}
META = "tlhelpers_export.json"


class ExportError(CourseError):
    """An export that could not be written or did not match its Keras model; the message says what to do."""


def _source(model_or_path, class_names):
    """(keras model, class names, a label for the source) from a .keras path or a model."""
    import keras

    if isinstance(model_or_path, keras.Model):
        n = model_or_path.output_shape[-1]
        return model_or_path, list(class_names or [str(i) for i in range(n)]), "a keras.Model"
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"export_model: expected a .keras path or a keras.Model; received "
                        f"{type(model_or_path).__name__}.")
    from .saving import load_model

    path = Path(model_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"export_model: model file {path} does not exist; train one with `tlh fit` first.")
    model, meta = load_model(path)
    return model, list(class_names or meta["class_names"]), str(path)


def _check_out(out: Path, source: str, fmt: str, overwrite: bool) -> None:
    if source != "a keras.Model" and out.resolve() == Path(source).resolve():
        raise ValueError(f"export_model: the output {out} is the input model; pass another --out.")
    if fmt == "tflite" and out.suffix != ".tflite":
        raise ValueError(f"export_model: expected a TFLite output path ending in .tflite; received {out.name!r}.")
    if out.exists() and not overwrite:
        raise FileExistsError(f"export_model: {out} exists already; remove it or pass another --out.")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"export_model: folder {out.parent} does not exist; create it or pass another --out.")


def _image_size(model) -> int:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2] or shape[1] is None:
        raise ValueError(f"export_model: expected a model on square RGB images (None, S, S, 3); received input "
                         f"shape {shape}; export a model built by build_classifier, stack or small_convnet.")
    return int(shape[1])


def _write_savedmodel(model, folder: str, size: int) -> None:
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda images: model(images, training=False),  # no augmentation
                         input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name="images")])
    archive.write_out(folder, verbose=False)


def _tflite_bytes(savedmodel_dir: str) -> bytes:
    import tensorflow as tf

    try:
        return tf.lite.TFLiteConverter.from_saved_model(savedmodel_dir).convert()
    except Exception as err:  # ConverterError: pages of MLIR; keep the ops it names
        ops = sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9]+)", str(err))))
        what = f"operations TFLite has no kernel for: {', '.join(ops)}" if ops else type(err).__name__
        raise ExportError(f"TFLite cannot convert this model ({what}); export --format savedmodel instead.") from None


def _check_images(size: int, images) -> np.ndarray:
    if images is not None:
        images = np.asarray(images, dtype="float32")
        if images.ndim != 4 or images.shape[1:] != (size, size, 3) or len(images) == 0:
            raise ValueError(f"export_model: expected `check_images` of shape (N, {size}, {size}, 3) in [0, 255]; "
                             f"received shape {images.shape}; load them with load_images(paths, image_size={size}).")
        return images
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (4, size, size, 3))
    ramp = np.linspace(0, 255, size)[None, :, None, None] * np.ones((4, 1, size, 3))
    return np.concatenate([noise, ramp * rng.uniform(0.2, 1.0, (4, 1, 1, 3))]).astype("float32")


def _verify(model, exported, images: np.ndarray, fmt: str) -> float:
    want = np.asarray(model.predict(images, verbose=0), dtype="float64")
    got = np.asarray(exported(images), dtype="float64")
    diff = float(np.max(np.abs(got - want)))
    if not diff <= TOLERANCE[fmt]:
        raise ExportError(f"the {fmt} export disagrees with the Keras model (max abs difference of probabilities "
                          f"{diff:.2g} > {TOLERANCE[fmt]:g}); nothing written; try --format savedmodel.")
    return diff


def _os_error(err: OSError, out: Path) -> ExportError:
    if err.errno == errno.ENOSPC:
        return ExportError(f"no space left on the device of {out.parent}; free some space or pass --out elsewhere.")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExportError(f"cannot write in {out.parent} (read-only or not permitted); pass --out in a folder "
                           "you can write to.")
    return ExportError(f"could not write {out} ({err.strerror or type(err).__name__}); nothing written.")


def _remove(path) -> None:
    if path and os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path and os.path.lexists(path):
        os.remove(path)


def _replace(tmp: str, out: Path) -> None:
    """Move `tmp` to `out`; an existing `out` (overwrite=True) goes only once the new one is in place."""
    old = None
    if out.exists():
        old = tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent)
        os.replace(out, os.path.join(old, out.name))
    try:
        os.replace(tmp, out)
    except OSError:
        if old:
            os.replace(os.path.join(old, out.name), out)
        raise
    finally:
        _remove(old)


def export_model(model_path_or_model, out: str | os.PathLike | None = None, *, format: str = "savedmodel",
                 class_names: list | None = None, check_images=None, overwrite: bool = False) -> dict:
    """Export a classifier as a SavedModel folder or a .tflite file that takes raw 0-255 images; return its metadata.

    `out` defaults to the model's path with `_savedmodel` (a folder) or `.tflite`. The export is
    checked against the Keras model on `check_images` (N x S x S x 3 in [0, 255]; default: 8
    synthetic images) within TOLERANCE[format], then renamed into place: on any failure nothing is
    left at `out`. The returned dict (also stored with the export) has `path`, `class_names`,
    `image_size`, `format`, `max_abs_diff` and `tolerance`.

    Example:
        >>> info = export_model("cats.keras", format="tflite")   # writes cats.tflite and cats.tflite.json
        >>> info["max_abs_diff"] <= info["tolerance"]
        True
    """
    if format not in FORMATS:
        raise ValueError(f"export_model: expected `format` in {', '.join(FORMATS)}; received format={format!r}.")
    model, names, source = _source(model_path_or_model, class_names)
    if out is None:
        if source == "a keras.Model":
            raise ValueError("export_model: pass `out` when exporting a model that is not a file.")
        out = Path(source).with_suffix(".tflite" if format == "tflite" else "").as_posix() + \
            ("" if format == "tflite" else "_savedmodel")
    out = Path(out)
    _check_out(out, source, format, overwrite)
    size = _image_size(model)
    images = _check_images(size, check_images)
    meta = {"class_names": names, "image_size": size, "format": format, "source": source,
            "tolerance": TOLERANCE[format], "checked_on": int(len(images))}
    try:
        return (_export_savedmodel if format == "savedmodel" else _export_tflite)(model, out, size, images, meta)
    except OSError as err:
        raise _os_error(err, out) from None


def _export_savedmodel(model, out: Path, size: int, images, meta: dict) -> dict:
    tmp = tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the export gets a folder's usual permissions
        _write_savedmodel(model, tmp, size)
        meta["max_abs_diff"] = _verify(model, _SavedModel(tmp), images, "savedmodel")
        Path(tmp, META).write_text(json.dumps(meta))
        _replace(tmp, out)
    finally:
        _remove(tmp)
    return {**meta, "path": str(out)}


def _export_tflite(model, out: Path, size: int, images, meta: dict) -> dict:
    sidecar = out.with_name(out.name + ".json")
    work = tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent)
    try:
        _write_savedmodel(model, os.path.join(work, "savedmodel"), size)
        tmp = os.path.join(work, out.name)
        Path(tmp).write_bytes(_tflite_bytes(os.path.join(work, "savedmodel")))
        meta["max_abs_diff"] = _verify(model, _TFLite(tmp), images, "tflite")
        Path(work, "meta.json").write_text(json.dumps(meta))
        _replace(os.path.join(work, "meta.json"), sidecar)
        try:
            _replace(tmp, out)
        except OSError:
            _remove(sidecar)
            raise
    finally:
        _remove(work)
    return {**meta, "path": str(out)}


class _SavedModel:
    def __init__(self, path):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(str(path))  # keep it: its functions refer to its variables
        self._fn = self._loaded.serve

    def __call__(self, images):
        return self._fn(np.asarray(images, dtype="float32")).numpy()


class _TFLite:
    def __init__(self, path):
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (LiteRT), once per load
            warnings.simplefilter("ignore")
            self._it = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())  # as many as Keras
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]
        self._shape = None

    def __call__(self, images):
        images = np.asarray(images, dtype="float32")
        if self._shape != images.shape:
            self._it.resize_tensor_input(self._in, images.shape)
            self._it.allocate_tensors()
            self._shape = images.shape
        self._it.set_tensor(self._in, images)
        self._it.invoke()
        return self._it.get_tensor(self._out).copy()


class ExportedModel:
    """An exported classifier as a callable: images (N, S, S, 3) in [0, 255] -> probabilities (N, n_classes)."""

    def __init__(self, run, image_size: int, fmt: str):
        self._run, self.image_size, self.format = run, image_size, fmt
        self.input_shape = (None, image_size, image_size, 3)

    def __call__(self, images) -> np.ndarray:
        return self._run(images)

    def predict(self, images, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        images = np.asarray(images, dtype="float32")
        return np.concatenate([self._run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def load_for_prediction(path) -> tuple[ExportedModel, list]:
    """Return (a callable images -> probabilities, class names) for a .keras file, a SavedModel folder or a .tflite.

    The callable takes raw RGB images in [0, 255] at its `image_size` and has `.predict(images)` too,
    so `predict_tta` and `tlh predict` treat the three kinds alike.

    Example:
        >>> predict_fn, classes = load_for_prediction("cats.tflite")
        >>> predict_fn(load_images(["cat.jpg"], image_size=predict_fn.image_size))
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".keras":
        from .saving import load_model

        model, meta = load_model(path)
        run = lambda x: np.asarray(model.predict(np.asarray(x, "float32"), verbose=0))  # noqa: E731
        return ExportedModel(run, int(model.input_shape[1]), "keras"), list(meta["class_names"])
    meta_file = path / META if path.is_dir() else path.with_name(path.name + ".json")
    if not path.exists():
        raise FileNotFoundError(f"model {path} does not exist; train one with `tlh fit` or export one with "
                                "`tlh export`.")
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a .keras model nor a tlhelpers export ({meta_file.name} missing); "
                         "export it again with `tlh export`.")
    meta = json.loads(meta_file.read_text())
    run = _SavedModel(path) if path.is_dir() else _TFLite(path)
    return ExportedModel(run, int(meta["image_size"]), meta["format"]), list(meta["class_names"])
