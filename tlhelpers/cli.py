"""`tlh`: apply the course to your own folder of images (one subfolder per class).

    tlh fit DATA_DIR --strategy two-phase --epochs 10 --out model.keras      # EfficientNet-Lite0, ImageNet weights
    tlh fit DATA_DIR --strategy two-phase --weights offline --image-size 96 --out model.keras
    tlh fit DATA_DIR --distribute mirrored --batch-size 64 --out model.keras   # 64 split across the GPUs
    tlh evaluate model.keras DATA_DIR --json
    tlh predict model.keras photo1.jpg photo2.jpg
    tlh explain model.keras photo1.jpg --method gradcam --out why.png

Bad input ends with one line on stderr and exit code 2; an interruption (Ctrl-C, SIGTERM) with one
line and 128 + the signal's number, leaving no partial output file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

EXIT_USAGE = 2
MAX_IMAGE_SIZE = 1024  # px; the bases were trained at 224 px or less, and a batch at 1024 px already needs gigabytes


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other input error
        self.exit(EXIT_USAGE, f"tlh: error: {message} (see `tlh {self.prog.split()[-1]} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from .choices import BASE_NAMES, DISTRIBUTIONS, STRATEGIES  # names only: --help needs no TensorFlow

    p = _Parser(prog="tlh", description="Transfer learning on your own folder of images.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit", help="train a classifier on DATA_DIR (one subfolder per class)")
    f.add_argument("data_dir", type=Path)
    f.add_argument("--strategy", choices=STRATEGIES, default="two-phase")
    f.add_argument("--base", default=None,
                   help=f"one of: {', '.join(BASE_NAMES)} (default: efficientnet_lite0, whose ImageNet weights install "
                        "offline; mobilenet_v2 with --weights offline)")
    f.add_argument("--weights", default="imagenet", help="imagenet; offline (the course's own MobileNetV2 source model, trained on "
                   "Imagenette, no download); none; or a path to a weights file")
    f.add_argument("--image-size", type=int, default=None,
                   help="square input size in pixels (default: 96 with --weights offline, its training size; else 160)")
    f.add_argument("--epochs", type=int, default=10,
                   help="total epochs; finetune and two-phase spend half on the head, half on fine-tuning")
    f.add_argument("--unfreeze", default=None,
                   help="blocks of the base to fine-tune in finetune/two-phase: a number or 'all' (default: 1 for "
                        "finetune, 2 for two-phase; all with --weights offline)")
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--val-fraction", type=float, default=0.2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--distribute", choices=DISTRIBUTIONS, default="auto",
                   help="tf.distribute strategy: auto (MirroredStrategy when more than one GPU is visible, else one "
                        "device), mirrored (every GPU, or the logical CPUs), none; --batch-size is the global batch, "
                        "split across the replicas (default: auto)")
    f.add_argument("--out", type=Path, required=True, help="where to save the model (.keras)")

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix")
    e.add_argument("model", type=Path)
    e.add_argument("data_dir", type=Path)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--batch-size", type=int, default=32)

    r = sub.add_parser("predict", help="class and probability for each image")
    r.add_argument("model", type=Path)
    r.add_argument("images", type=Path, nargs="+")
    r.add_argument("--json", action="store_true")

    x = sub.add_parser("explain", help="a picture of which pixels one prediction rests on")
    x.add_argument("model", type=Path)
    x.add_argument("image", type=Path)
    x.add_argument("--method", choices=("gradcam", "saliency", "smoothgrad"), default="gradcam")
    x.add_argument("--out", type=Path, required=True, help="where to write the figure (.png)")
    x.add_argument("--layer", metavar="NAME", help="layer for Grad-CAM (default: the last convolutional layer)")
    x.add_argument("--class", dest="class_name", metavar="NAME", help="class to explain (default: the predicted class)")
    return p


def _check_writable(out: Path, flag: str = "--out") -> None:
    """Fail now, not after training, when `out` cannot be written (missing folders are created when saving)."""
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; pass a file name inside it.")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file, not a folder")
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        why = err.strerror or str(err)
        raise ValueError(f"cannot write {flag} {out} ({why}: {folder}); choose a folder you can write to.") from None


def _check_fit_numbers(args, min_size: int) -> None:
    two = args.strategy in ("finetune", "two-phase")
    if args.epochs < (2 if two else 1):
        need = "at least 2 for " + args.strategy + " (one per phase)" if two else "at least 1"
        raise ValueError(f"--epochs must be {need}, got {args.epochs}.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if not min_size <= args.image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"--image-size must be between {min_size} and {MAX_IMAGE_SIZE} px for {args.base}, "
                         f"got {args.image_size}.")


def _fit(args) -> int:
    import keras

    from .bases import ARCHS
    from .evaluation import evaluate
    from .images import scan_folder
    from .saving import save_model
    from .splits import deduplicate, stratified_split
    from .strategies import fit_strategy

    if args.base is None:
        args.base = "mobilenet_v2" if args.weights.lower() == "offline" else "efficientnet_lite0"
    if args.base not in ARCHS:
        raise ValueError(f"unknown base {args.base!r}; supported bases are: {', '.join(ARCHS)}.")
    if args.out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras, got {args.out.name!r}.")
    if not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}.")
    unfreeze = args.unfreeze
    if unfreeze is not None and unfreeze != "all":
        if not unfreeze.isdigit() or int(unfreeze) < 1:
            raise ValueError(f"--unfreeze must be a positive number of blocks or 'all', got {unfreeze!r}.")
        unfreeze = int(unfreeze)
    if args.image_size is None:
        args.image_size = 96 if args.weights.lower() == "offline" else 160
    _check_fit_numbers(args, ARCHS[args.base].min_size)
    _check_writable(args.out)
    keras.utils.set_random_seed(args.seed)
    images = scan_folder(args.data_dir)
    images, dups = deduplicate(images)
    parts = stratified_split(images, {"train": 1 - args.val_fraction, "validation": args.val_fraction}, seed=args.seed)
    train, val = parts["train"], parts["validation"]
    if len(val) == 0 or min(val.counts().values()) == 0:
        raise ValueError(f"{args.data_dir} has too few images to hold out a validation image of every class; add images.")
    print(f"{len(images)} images in {len(images.class_names)} classes ({', '.join(images.class_names)}); "
          f"train {len(train)}, validation {len(val)}; {dups} duplicates removed; {images.report}")
    weights = None if args.weights.lower() == "none" else args.weights
    model, history, base = fit_strategy(
        args.strategy, train, val, arch=args.base, weights=weights, image_size=args.image_size,
        epochs=args.epochs, batch_size=args.batch_size, allow_fallback=False, unfreeze=unfreeze,
        distribute=args.distribute,
    )
    result = evaluate(model, val)
    save_model(model, args.out, class_names=images.class_names, extra={
        "strategy": args.strategy, "base": args.base, "weights": base.weights, "image_size": args.image_size,
        "epochs": args.epochs, "validation_accuracy": result.accuracy, "history": history,
    })
    print(f"validation accuracy {result.accuracy:.3f} on {len(val)} images; model saved to {args.out}")
    return 0


def _check_classes(meta, data_dir: Path):
    from .images import class_folders

    found = class_folders(data_dir)
    if found != sorted(meta["class_names"]):
        raise ValueError(
            f"the model was trained on classes {meta['class_names']} but {data_dir} has {found}; "
            "evaluate on a folder with the same class subfolders."
        )


def _evaluate(args) -> int:
    from .evaluation import evaluate
    from .images import scan_folder
    from .saving import load_model

    if not args.data_dir.is_dir():
        raise FileNotFoundError(f"folder {args.data_dir} does not exist; pass a folder with one subfolder per class.")
    model, meta = load_model(args.model)
    _check_classes(meta, args.data_dir)
    images = scan_folder(args.data_dir, class_names=meta["class_names"], verbose=not args.json)
    result = evaluate(model, images, batch_size=args.batch_size)
    out = result.to_dict()
    out["skipped"] = len(images.report.skipped)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"accuracy {result.accuracy:.3f} on {len(images)} images ({images.report})")
    print(result.table().to_string(float_format=lambda v: f"{v:.3f}"))
    print("confusion matrix (rows: true, columns: predicted):")
    width = max(len(c) for c in result.classes)
    for name, row in zip(result.classes, result.confusion):
        print(f"  {name:>{width}}  " + " ".join(f"{v:5d}" for v in row))
    return 0


def _predict(args) -> int:
    import numpy as np

    from .images import image_problem, load_images
    from .saving import load_model

    model, meta = load_model(args.model)
    size = model.input_shape[1]
    good, skipped = [], []
    for p in args.images:
        problem = image_problem(p)
        (skipped if problem else good).append((p, problem))
    if not good:
        raise ValueError(f"none of the {len(args.images)} file(s) is a readable image; pass JPEG, PNG, GIF, BMP or WebP files.")
    probs = model.predict(load_images([p for p, _ in good], image_size=size), verbose=0)
    classes = meta["class_names"]
    rows = [{"image": str(p), "class": classes[int(np.argmax(pr))], "probability": float(np.max(pr))}
            for (p, _), pr in zip(good, probs)]
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": {str(p): why for p, why in skipped}}))
    else:
        for r in rows:
            print(f"{r['image']}: {r['class']} ({r['probability']:.3f})")
        if skipped:
            print(f"skipped {len(skipped)} unreadable file(s): " + ", ".join(f"{p} ({why})" for p, why in skipped),
                  file=sys.stderr)
    return 0


def _explain(args) -> int:
    import numpy as np
    from matplotlib.figure import Figure

    from ._atomic import atomic_path
    from .explain import gradcam, last_conv_layer, saliency, smoothgrad
    from .images import image_problem, load_images
    from .saving import load_model
    from .viz import plot_heatmap

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {args.out.name!r}.")
    if args.layer and args.method != "gradcam":
        raise ValueError(f"--layer applies to --method gradcam only, not {args.method}; drop --layer.")
    _check_writable(args.out)
    model, meta = load_model(args.model)
    classes = meta["class_names"]
    if args.class_name is not None and args.class_name not in classes:
        raise ValueError(f"the model does not know class {args.class_name!r}; its classes are: {', '.join(classes)}.")
    problem = image_problem(args.image)
    if problem == "missing":
        raise FileNotFoundError(f"image {args.image} does not exist; pass an existing JPEG, PNG, GIF, BMP or WebP file.")
    if problem:
        raise ValueError(f"cannot read image {args.image} ({problem}); pass a JPEG, PNG, GIF, BMP or WebP file.")
    image = load_images([args.image], image_size=model.input_shape[1])[0]
    probs = np.ravel(model.predict(image[None], verbose=0)[0])
    probs = np.array([1 - probs[0], probs[0]]) if probs.size == 1 else probs
    predicted = int(np.argmax(probs))
    wanted = None if args.class_name is None else classes.index(args.class_name)
    if args.method == "gradcam":
        layer = args.layer or last_conv_layer(model)
        heatmap, k = gradcam(model, image, layer=layer, class_index=wanted)
        what = f"Grad-CAM at {layer}"
    else:
        k = predicted if wanted is None else wanted
        heatmap = (saliency if args.method == "saliency" else smoothgrad)(model, image, class_index=k)
        what = "saliency" if args.method == "saliency" else "SmoothGrad"
    fig = Figure(figsize=(8, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(np.clip(image, 0, 255).astype("uint8"))
    left.set_title(args.image.name, fontsize="small")
    left.set_axis_off()
    plot_heatmap(image, heatmap, ax=right)
    right.set_title(f"{what} for {classes[k]}", fontsize="small")
    fig.suptitle(f"predicted: {classes[predicted]} (probability {probs[predicted]:.2f})")
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    print(f"{args.image}: {classes[predicted]} ({probs[predicted]:.3f}); {what} for {classes[k]} written to {args.out}")
    return 0


class _Interrupted(KeyboardInterrupt):  # a BaseException, so no `except Exception` on the way swallows it
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum, frame):
    raise _Interrupted(signum)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr closed: its C++ start-up lines (oneDNN, absl) ignore TF_CPP_MIN_LOG_LEVEL."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def main(argv=None) -> int:
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, _on_signal)
    try:
        args = _parser().parse_args(argv)  # --help and bad arguments end here, before TensorFlow loads
        _import_tensorflow_quietly()
        return {"fit": _fit, "evaluate": _evaluate, "predict": _predict, "explain": _explain}[args.command](args)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM through _on_signal
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"tlh: error: interrupted by {signal.Signals(signum).name}; no output file was written",
              file=sys.stderr)
        return 128 + signum
    except (OSError, ValueError, RuntimeError) as err:  # RuntimeError includes WeightsUnavailableError
        print(f"tlh: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
