"""`tlh`: apply the course to your own folder of images (one subfolder per class).

    tlh fit DATA_DIR --out model.keras          # EfficientNet-Lite0, ImageNet weights, 224 px, the recipe
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
import threading
import time
from pathlib import Path

from .choices import OPTIMIZERS, TWO_PHASE_STRATEGIES
from .cli_checks import (
    MAX_IMAGE_SIZE,  # noqa: F401  (re-exported: tlh's limit on --image-size)
    OTHER_BASES_UNFREEZE,
    RECIPE_FINE_TUNE,
    RECIPE_PATIENCE,
    RECIPE_UNFREEZE,
)
from .cli_fit import listed
from .cli_recipe import add_export_command, add_tta_argument, run_export, tta_views
from .errors import shown

EXIT_USAGE = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other input error
        self.exit(EXIT_USAGE, f"tlh: error: {message} (see `{self.prog} --help`)\n")


def _path(text: str) -> Path:
    """A path argument; an empty one (an unset shell variable) is refused instead of meaning the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?); pass a file or folder")
    return Path(text)


def parse_epochs(text: str):
    """--epochs: a positive total ('10') or a HEAD,FINE_TUNE pair ('20,6')."""
    parts = text.split(",")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        return numbers[0]  # check_numbers says what a total must be
    if len(numbers) == 2:
        return tuple(numbers)
    raise argparse.ArgumentTypeError(f"expected a positive number of epochs or HEAD,FINE_TUNE (e.g. 20,6), got {text!r}")


def parse_optimizer(text: str):
    """--fine-tune: OPTIMIZER:LR, e.g. 'adam:1e-4'."""
    name, _, rate = text.partition(":")
    try:
        lr = float(rate)
    except ValueError:
        lr = -1.0
    if name not in OPTIMIZERS or not 0 < lr < 1:
        raise argparse.ArgumentTypeError(f"expected OPTIMIZER:LR with {', '.join(OPTIMIZERS[:-1])} or "
                                         f"{OPTIMIZERS[-1]} and a rate in (0, 1), "
                                         f"e.g. adam:1e-4; got {text!r}")
    return name, lr


def _parser() -> argparse.ArgumentParser:
    from .choices import BASE_NAMES, DISTRIBUTIONS, PRECISIONS, SCHEDULES, STRATEGIES  # names only: --help needs no TF

    p = _Parser(prog="tlh", description="Transfer learning on your own folder of images.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit", help="train a classifier on DATA_DIR (one subfolder per class)")
    f.add_argument("data_dir", type=_path)
    f.add_argument("--strategy", choices=STRATEGIES, default="two-phase")
    f.add_argument("--base", default=None,
                   help=f"one of: {', '.join(BASE_NAMES)} (default: efficientnet_lite0, whose ImageNet weights install "
                        "offline; mobilenet_v2 with --weights offline)")
    f.add_argument("--weights", default="imagenet", help="imagenet; offline (the course's own MobileNetV2 source model, trained on "
                   "Imagenette, no download); none; or a path to a weights file")
    f.add_argument("--image-size", type=int, default=None,
                   help="square input size in pixels (default: the base's native size, 224 for efficientnet_lite0, "
                        "299 for xception and inception_v3; 96 with --weights offline, its training size)")
    f.add_argument("--epochs", type=parse_epochs, default=None, metavar="N or HEAD,FINE_TUNE",
                   help="epochs: a total (finetune and two-phase spend half on the head, half on fine-tuning) or a "
                        "HEAD,FINE_TUNE pair (default: 20,6 for finetune and two-phase, 20 for features, 10 for "
                        "scratch; 5,6 with --head-on images)")
    f.add_argument("--unfreeze", default=None,
                   help="blocks of the base to fine-tune in finetune/two-phase: a number or 'all' (default: "
                        f"{RECIPE_UNFREEZE['efficientnet_lite0']} for efficientnet_lite0, its last stage; "
                        f"{OTHER_BASES_UNFREEZE} for the others; all with --weights offline)")
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--val-fraction", type=float, default=0.2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--distribute", choices=DISTRIBUTIONS, default="auto",
                   help="tf.distribute strategy: auto (MirroredStrategy when more than one GPU is visible, else one "
                        "device), mirrored (every GPU, or the logical CPUs), none; --batch-size is the global batch, "
                        "split across the replicas (default: auto)")
    f.add_argument("--out", type=_path, required=True, help="where to save the model (.keras)")
    r = f.add_argument_group(
        "the recipe (each part on by default; book/using_tlhelpers.md measures each one on a validation split)")
    r.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without random flips, rotations and zooms (default: with them, except for "
                        "--strategy features, which trains on cached features)")
    r.add_argument("--head-on", choices=("features", "images"), default="features",
                   help="finetune/two-phase: train the head on the frozen base's features computed once "
                        "(default), or on augmented images at every epoch (slower; chapter 4's way)")
    r.add_argument("--fine-tune", type=parse_optimizer, default=RECIPE_FINE_TUNE, metavar="OPTIMIZER:LR",
                   help="optimizer and learning rate of the fine-tuning phase: adam, sgd (momentum 0.9) or rmsprop "
                        f"(default: {RECIPE_FINE_TUNE[0]}:{RECIPE_FINE_TUNE[1]:g}; chapter 4 uses sgd:1e-4)")
    r.add_argument("--schedule", choices=SCHEDULES, default="warmup-cosine",
                   help="learning rate of each phase: constant, or warm-up over its first 10%% of steps then a "
                        "cosine to 0 (default: warmup-cosine)")
    r.add_argument("--label-smoothing", type=float, default=0.1, metavar="EPS",
                   help="cross-entropy against targets smoothed by EPS; 0 turns it off (default: 0.1)")
    r.add_argument("--patience", type=int, default=RECIPE_PATIENCE, metavar="N",
                   help="early stopping: end a phase after N epochs without a lower validation loss and keep its "
                        f"best epoch's weights; 0 turns it off (default: {RECIPE_PATIENCE})")
    r.add_argument("--class-weights", choices=("none", "auto"), default="auto",
                   help="auto: balanced class weights when the largest class has over 1.5 times the images of the "
                        "smallest; none turns them off (default: auto)")
    r.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float32, or mixed precision: auto picks bfloat16 on CPUs with AVX512-BF16/AMX and float16 "
                        "on GPUs from Volta on; measured here it trains EfficientNet-Lite0 0.7x as fast, a small "
                        "convnet 4x (default: float32)")

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix")
    e.add_argument("model", type=_path)
    e.add_argument("data_dir", type=_path)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--batch-size", type=int, default=32)
    add_tta_argument(e)

    r = sub.add_parser("predict", help="class and probability for each image (a .keras model or an export)")
    r.add_argument("model", type=_path)
    r.add_argument("images", type=_path, nargs="+")
    r.add_argument("--json", action="store_true")
    add_tta_argument(r)

    x = sub.add_parser("explain", help="a picture of which pixels one prediction rests on")
    x.add_argument("model", type=_path)
    x.add_argument("image", type=_path)
    x.add_argument("--method", choices=("gradcam", "saliency", "smoothgrad"), default="gradcam")
    x.add_argument("--out", type=_path, required=True, help="where to write the figure (.png)")
    x.add_argument("--layer", metavar="NAME", help="layer for Grad-CAM (default: the last convolutional layer)")
    x.add_argument("--class", dest="class_name", metavar="NAME", help="class to explain (default: the predicted class)")
    add_export_command(sub)
    return p


def recipe_options(args) -> dict:
    """`fit_strategy`'s recipe keywords from `tlh fit`'s flags (after `check_fit` filled in the defaults)."""
    options = {"augment": args.augment, "schedule": "warmup_cosine" if args.schedule == "warmup-cosine" else None,
               "label_smoothing": args.label_smoothing, "early_stopping": args.patience or None,
               "class_weight": "auto" if args.class_weights == "auto" else None, "precision": args.precision}
    if args.strategy in TWO_PHASE_STRATEGIES:
        options["cached_head"] = args.head_on == "features"
        if args.weights.lower() != "offline":  # the offline source model keeps its own (finetune_recipe)
            options["phase2"] = args.fine_tune
    return options


def fit_options(args) -> dict:
    """Every keyword `tlh fit` passes to `fit_strategy` besides the strategy and the two image sets."""
    weights = None if args.weights.lower() == "none" else args.weights
    return {"arch": args.base, "weights": weights, "image_size": args.image_size, "epochs": args.epochs,
            "batch_size": args.batch_size, "allow_fallback": False, "unfreeze": args.unfreeze,
            "distribute": args.distribute, **recipe_options(args)}


def recipe_summary(args) -> dict:
    """The recipe a model was trained with, as saved beside it (flag names, plain values)."""
    return {"augment": args.augment, "head_on": args.head_on, "fine_tune": list(args.fine_tune),
            "schedule": args.schedule, "label_smoothing": args.label_smoothing, "patience": args.patience,
            "class_weights": args.class_weights, "precision": args.precision, "epochs": args.epochs,
            "unfreeze": args.unfreeze, "image_size": args.image_size}


def _fit(args) -> int:
    import keras

    from .cli_checks import check_fit
    from .cli_fit import changed_during_fit, name_files_that_broke, scan_and_split
    from .evaluation import evaluate
    from .offline import WeightsUnavailableError
    from .saving import save_model
    from .strategies import fit_strategy

    start = time.perf_counter()
    check_fit(args)
    keras.utils.set_random_seed(args.seed)
    images, dups, train, val = scan_and_split(args)
    print(f"{len(images)} images in {len(images.class_names)} classes ({', '.join(map(shown, images.class_names))}); "
          f"train {len(train)}, validation {len(val)}; {dups} duplicates removed; {images.report}")
    try:
        model, history, base = fit_strategy(args.strategy, train, val, **fit_options(args))
    except WeightsUnavailableError as err:
        other = "" if args.base == "efficientnet_lite0" else "--base efficientnet_lite0 (ImageNet weights that install " \
            "offline) or "
        raise WeightsUnavailableError(f"{str(err).rstrip('.')}. With tlh: {other}--weights offline (the course's own "
                                      "source model, no download).") from None
    except Exception as err:
        name_files_that_broke(args, images, err)
        raise
    val = changed_during_fit(args, images, val)
    result = evaluate(model, val)
    save_model(model, args.out, class_names=images.class_names, extra={
        "strategy": args.strategy, "base": args.base, "weights": base.weights, "image_size": args.image_size,
        "epochs": args.epochs, "validation_accuracy": result.accuracy, "history": history,
        "recipe": recipe_summary(args),
    })
    lo, hi = result.interval()
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"validation accuracy {result.accuracy:.3f} (95% interval {lo:.3f}-{hi:.3f}) on {len(val)} images, "
          f"trained in {minutes} min {seconds:02d} s; model saved to {shown(args.out)}")
    return 0


def _check_classes(meta, data_dir: Path):
    from .images import class_folders, refuse_split_folders

    refuse_split_folders(data_dir, prefer=("test", "testing", "val", "validation", "valid"))
    found = class_folders(data_dir)
    if found != sorted(meta["class_names"]):
        raise ValueError(
            f"the model was trained on classes {meta['class_names']} but {shown(data_dir)} has {found}; "
            "evaluate on a folder with the same class subfolders."
        )


def _evaluate(args) -> int:
    from .cli_checks import check_batch_size, check_folder, check_model_file
    from .evaluation import evaluate
    from .images import scan_folder

    check_batch_size(args.batch_size)
    check_model_file(args.model)
    check_folder(args.data_dir)
    model, meta, _ = _load(args.model)
    _check_classes(meta, args.data_dir)
    images = scan_folder(args.data_dir, class_names=meta["class_names"], verbose=not args.json)
    result = evaluate(model, images, batch_size=args.batch_size, tta=tta_views(args))
    out = result.to_dict()
    out["skipped"] = len(images.report.skipped)
    out["tta"] = list(tta_views(args) or [])
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


def _load(path: Path):
    """(model, metadata, image size) of a saved classifier on square RGB images; anything else is refused."""
    from .saving import load_model

    model, meta = load_model(path)
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    if shape is None or len(shape) != 4 or shape[3] != 3 or not shape[1] or shape[1] != shape[2]:
        raise ValueError(f"{shown(path)} takes inputs of shape {model.input_shape}, not square RGB images of a fixed "
                         "size; pass a model saved by `tlh fit` (or save_model) on images.")
    return model, meta, int(shape[1])


def _predict(args) -> int:
    import numpy as np

    from .cli_checks import check_model_file
    from .cli_recipe import is_export, load_predictor, predict_images
    from .images import image_problem, load_images

    if is_export(args.model):  # a SavedModel folder or a .tflite file that `tlh export` wrote
        model, classes = load_predictor(args.model)
        size = model.image_size
    else:
        check_model_file(args.model)
        model, meta, size = _load(args.model)
        classes = meta["class_names"]
    good, skipped = [], []
    for p in args.images:
        problem = image_problem(p)
        (skipped if problem else good).append((p, problem))
    if not good:
        raise ValueError(f"none of the {len(args.images)} file(s) is a readable image: {listed(skipped)}; "
                         "pass JPEG, PNG, GIF, BMP or WebP files.")
    paths = [p for p, _ in good]  # 64 at a time: ten thousand photos need not fit in memory at once
    probs = np.concatenate([predict_images(model, load_images(paths[i:i + 64], image_size=size), tta=tta_views(args))
                            for i in range(0, len(paths), 64)])
    rows = [{"image": shown(p), "class": classes[int(np.argmax(pr))], "probability": float(np.max(pr))}
            for (p, _), pr in zip(good, probs)]
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": {shown(p): why for p, why in skipped}}))
    else:
        for r in rows:
            print(f"{r['image']}: {r['class']} ({r['probability']:.3f})")
        if skipped:
            print(f"skipped {len(skipped)} unreadable file(s): {listed(skipped, limit=len(skipped))}", file=sys.stderr)
    return 0


def _explain_image(args, size: int):
    from .images import image_problem, load_images

    problem = image_problem(args.image)
    if problem == "does not exist":
        raise FileNotFoundError(f"image {shown(args.image)} does not exist; pass an existing JPEG, PNG, GIF, BMP or "
                                "WebP file.")
    if problem:
        raise ValueError(f"cannot read image {shown(args.image)} ({problem}); pass a JPEG, PNG, GIF, BMP or WebP file.")
    return load_images([args.image], image_size=size)[0]


def _explain(args) -> int:
    import numpy as np
    from matplotlib.figure import Figure

    from ._atomic import atomic_path
    from .cli_checks import check_explain
    from .explain import gradcam, last_conv_layer, saliency, smoothgrad
    from .viz import plot_heatmap

    check_explain(args)
    model, meta, size = _load(args.model)
    classes = meta["class_names"]
    if args.class_name is not None and args.class_name not in classes:
        raise ValueError(f"the model does not know class {args.class_name!r}; its classes are: {', '.join(classes)}.")
    image = _explain_image(args, size)
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
    left.set_title(shown(args.image.name), fontsize="small")
    left.set_axis_off()
    plot_heatmap(image, heatmap, ax=right)
    right.set_title(f"{what} for {classes[k]}", fontsize="small")
    fig.suptitle(f"predicted: {classes[predicted]} (probability {probs[predicted]:.2f})")
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    print(f"{shown(args.image)}: {classes[predicted]} ({probs[predicted]:.3f}); {what} for {classes[k]} written to "
          f"{shown(args.out)}")
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


def _one_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _unexpected(err: Exception) -> int:
    """Any other failure: one line naming it (a traceback only with TLH_DEBUG=1), never a page of stack."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):  # e.g. a file TensorFlow could not decode after all
        print(f"tlh: error: TensorFlow stopped: {_one_line(err)}; check the files named above, or rerun after "
              "fixing them.", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("TLH_DEBUG"):
        raise err
    print(f"tlh: error: unexpected {type(err).__name__}: {_one_line(err)} (set TLH_DEBUG=1 to see where; please "
          "report it)", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv=None) -> int:
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        previous = {s: signal.getsignal(s) for s in handled}
        for s in previous:
            signal.signal(s, _on_signal)  # a closed terminal (SIGHUP) too: clean up, as for Ctrl-C
    try:
        args = _parser().parse_args(argv)  # --help and bad arguments end here, before TensorFlow loads
        _import_tensorflow_quietly()
        commands = {"fit": _fit, "evaluate": _evaluate, "predict": _predict, "explain": _explain, "export": run_export}
        return commands[args.command](args)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP through _on_signal
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"tlh: error: interrupted by {signal.Signals(signum).name}; no output file was written",
              file=sys.stderr)
        return 128 + signum
    except (OSError, ValueError, RuntimeError, TypeError) as err:  # RuntimeError includes WeightsUnavailableError
        print(f"tlh: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        return _unexpected(err)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
