#!/usr/bin/env python
"""The practitioner's recipe, measured: training speed under mixed precision, and exported models' latency.

    nice -n 10 python benchmarks/recipe.py                       # both parts, cats_and_dogs_filtered
    python benchmarks/recipe.py --only training --train-per-class 100 --val-per-class 100
    python benchmarks/recipe.py --only export
    python benchmarks/recipe.py --only ops --out benchmarks/results/recipe_ops.json   # why: layer kinds, per policy

Training: the end-to-end two-phase fit of `tlh fit` (EfficientNet-Lite0 with its ImageNet weights, augmentation,
head on the frozen base with RMSprop 1e-3, then the top two blocks with SGD 1e-4) on the same small stratified
subset of real photos, in one run: in float32 (today's setting) and under the dtype policy that
`tlhelpers.precision.hardware_policy()` picks for this machine (mixed_bfloat16 on CPUs with AVX512-BF16/AMX-BF16,
mixed_float16 on GPUs of compute capability >= 7, float32 otherwise: then both runs are float32). Each policy is fitted
--repeats times, alternating with the other, and images/s comes from each phase's fastest epoch over those fits
(the first epoch of a phase, which traces the graph and fills the image cache, left out; the fastest, because the
other jobs on a shared machine only ever slow an epoch down); the wall time covers everything. For reference, the
course's small from-scratch convnet (chapter 1) is timed the same way under both policies (3 epochs, the last 2
timed). The first two-phase model of each policy is scored on the same validation images and compared with McNemar's exact test
(tlhelpers.stats.mcnemar): accuracy "does not drop" when the mixed model is not significantly worse (p >= 0.05, or better).

Export: the float32 model from the training part (or, with --only export, an untrained classifier on the same base)
is saved as .keras, exported as a SavedModel and a TFLite file (tlhelpers.export), checked on the validation images
(max abs difference of probabilities), and timed: one image at a time (median of --single-repeats calls) and a batch
of 32 (median of --batch-repeats), for Keras's `model.predict`, a direct Keras call `model(x, training=False)`, the
SavedModel and TFLite (XNNPACK, as many threads as cores). Ratios are Keras predict's time / the other's.

Results go to benchmarks/results/recipe.json (the machine, the settings and every number).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _data(name: str, train_per_class: int, val_per_class: int):
    from tlhelpers.splits import load_splits

    splits = load_splits(name, verbose=False)
    return splits["train"].sample(train_per_class, seed=0), splits["validation"].sample(val_per_class, seed=0)


def _epoch_timer():
    """A Keras callback keeping each epoch's wall time in `.times`."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)

    return EpochTimer()


def train_once(policy: str, train, val, *, image_size: int, epochs: tuple, batch_size: int, seed: int,
               **recipe) -> dict:
    """One two-phase fit of tlh's recipe under `policy`; its speed, accuracy and per-image correctness.

    `**recipe`: options for both phases' `fit` (schedule, label_smoothing, early_stopping, class_weight).
    """
    import keras

    from tlhelpers.bases import load_base
    from tlhelpers.builders import augmentation, build_classifier
    from tlhelpers.evaluation import evaluate
    from tlhelpers.freezing import freeze
    from tlhelpers.images import to_dataset
    from tlhelpers.precision import float32_output, mixed_precision
    from tlhelpers.train import fine_tune, fit

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    with mixed_precision(policy):
        base = load_base("efficientnet_lite0", weights="imagenet", image_size=image_size, verbose=False)
        model = float32_output(build_classifier(base, len(train.class_names), augment=augmentation(), pooling="avg"))
    train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
    timers = [_epoch_timer(), _epoch_timer()]
    start = time.perf_counter()  # what two_phase does, one phase at a time so that each is timed
    freeze(base, verbose=False)
    fit(model, train_ds, val_ds, epochs=epochs[0], verbose=0, callbacks=[timers[0]], **recipe)
    fine_tune(model, base, train_ds, val_ds, epochs=epochs[1], top_blocks=2, verbose=0, callbacks=[timers[1]],
              **recipe)
    wall = time.perf_counter() - start
    result = evaluate(model, val)
    per_epoch = len(train)
    return {
        "policy": policy, "wall_s": round(wall, 1), "epoch_times_s": [[round(t, 2) for t in tm.times] for tm in timers],
        "images_per_s_overall": round(per_epoch * sum(epochs) / wall, 2),
        "val_accuracy": round(result.accuracy, 4), "val_interval_95": [round(v, 4) for v in result.interval()],
        "correct": (result.y_pred == result.y_true).tolist(), "model": model,
    }


def small_convnet_speed(policy: str, train, *, image_size: int, batch_size: int, epochs: int = 3) -> float:
    """Training images/s of the course's small from-scratch convnet under `policy` (epochs after the first)."""
    import keras

    from tlhelpers.builders import small_convnet
    from tlhelpers.images import to_dataset
    from tlhelpers.precision import float32_output, mixed_precision
    from tlhelpers.train import fit

    keras.backend.clear_session()
    with mixed_precision(policy):
        model = float32_output(small_convnet(image_size, len(train.class_names)))
    timer = _epoch_timer()
    fit(model, to_dataset(train, image_size=image_size, batch_size=batch_size), epochs=epochs, verbose=0,
        callbacks=[timer])
    return round(len(train) * (epochs - 1) / sum(timer.times[1:]), 2)


def _best_steady(runs: list, phase: int) -> float:
    """The fastest epoch of `phase` (0: head, 1: fine-tuning) over `runs`, first epochs (tracing) left out."""
    return min(t for r in runs for t in r["epoch_times_s"][phase][1:])


def bench_training(args, train, val) -> tuple[dict, object]:
    from tlhelpers.precision import hardware_policy
    from tlhelpers.stats import mcnemar

    chosen = hardware_policy()
    policies = list(dict.fromkeys(("float32", chosen)))
    runs = {p: [] for p in policies}
    for repeat in range(args.repeats):  # alternating, so that the other jobs on the machine load both alike
        for policy in policies:
            print(f"training under {policy} (run {repeat + 1} of {args.repeats}) ...", flush=True)
            runs[policy].append(train_once(policy, train, val, image_size=args.image_size, epochs=tuple(args.epochs),
                                           batch_size=args.batch_size, seed=args.seed))
    f32, mixed = runs["float32"][0], runs[chosen][0]
    test = mcnemar(mixed["correct"], f32["correct"])  # the first run of each, on the same validation images
    model = f32["model"]
    for r in (r for rs in runs.values() for r in rs):
        r.pop("correct"), r.pop("model")
    e1, e2 = args.epochs
    steady = {p: e1 * _best_steady(runs[p], 0) + e2 * _best_steady(runs[p], 1) for p in policies}
    small = {p: small_convnet_speed(p, train, image_size=args.image_size, batch_size=args.batch_size)
             for p in policies}
    return {
        "policy_chosen_by_hardware": chosen, "runs": runs,
        "two_phase_images_per_s_best_epochs": {p: round(len(train) * (e1 + e2) / steady[p], 2) for p in policies},
        "two_phase_speed_ratio": round(steady["float32"] / steady[chosen], 3),
        "head_phase_speed_ratio": round(_best_steady(runs["float32"], 0) / _best_steady(runs[chosen], 0), 3),
        "fine_tune_phase_speed_ratio": round(_best_steady(runs["float32"], 1) / _best_steady(runs[chosen], 1), 3),
        "wall_minutes_median": {p: round(statistics.median(r["wall_s"] for r in runs[p]) / 60, 2) for p in policies},
        "small_convnet_images_per_s": small,
        "small_convnet_speed_ratio": round(small[chosen] / small["float32"], 3),
        "mcnemar_mixed_vs_float32": test,
        "accuracy_does_not_drop": bool(test["p_value"] >= 0.05 or test["a_only"] >= test["b_only"]),
    }, model


def bench_ops(policy: str, *, repeats: int = 5) -> dict:
    """Forward time of four layers of one kind on a 32 x 40 x 40 x 96 batch, float32 vs `policy`, and the ratio.

    Why a policy speeds one network and slows another: on CPUs, bfloat16 speeds dense convolutions (AMX/AVX512-BF16
    matrix units) but not depthwise ones, and elementwise layers (BatchNormalization, ReLU6) pay for the casts.
    """
    import keras
    import tensorflow as tf

    from tlhelpers.precision import mixed_precision

    layers = {"conv3x3": lambda: keras.layers.Conv2D(96, 3, padding="same"),
              "depthwise3x3": lambda: keras.layers.DepthwiseConv2D(3, padding="same"),
              "pointwise1x1": lambda: keras.layers.Conv2D(96, 1), "batchnorm": keras.layers.BatchNormalization,
              "relu6": lambda: keras.layers.ReLU(6.0)}
    x = np.random.default_rng(0).uniform(0, 1, (32, 40, 40, 96)).astype("float32")
    out = {}
    for kind, make in layers.items():
        ms = {}
        for p in dict.fromkeys(("float32", policy)):
            with mixed_precision(p):
                inputs = keras.Input(x.shape[1:])
                h = inputs
                for _ in range(4):
                    h = make()(h)
                model = keras.Model(inputs, h)
            call = tf.function(lambda t, m=model: m(t, training=False))
            ms[p] = round(1000 * _median_time(call, x, repeats), 1)
        out[kind] = {"ms": ms, "speed_ratio": round(ms["float32"] / ms[policy], 2)}
    return out


def _median_time(fn, x, repeats: int) -> float:
    """Median seconds of `fn(x)` over `repeats` calls, after one warm-up call (tracing, allocation)."""
    fn(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_export(args, model, val) -> dict:
    from tlhelpers.export import export_model, load_for_prediction
    from tlhelpers.images import load_images
    from tlhelpers.saving import save_model

    size = model.input_shape[1]
    images = load_images(val.paths[:64], image_size=size)
    work = Path(tempfile.mkdtemp(prefix="tl-recipe-export-"))
    keras_path = save_model(model, work / "model.keras", class_names=val.class_names)
    out = {"image_size": size, "checked_on_images": len(images), "formats": {}}
    runners = {"keras_predict": lambda x: model.predict(x, verbose=0),
               "keras_call": lambda x: np.asarray(model(x, training=False))}
    want = model.predict(images, verbose=0)
    for fmt, path in (("savedmodel", work / "sm"), ("tflite", work / "model.tflite")):
        t = time.perf_counter()
        info = export_model(keras_path, path, format=fmt, check_images=images[:16])
        fn, _ = load_for_prediction(path)
        diff = float(np.max(np.abs(fn.predict(images) - want)))
        size_mb = sum(f.stat().st_size for f in Path(path).rglob("*")) if path.is_dir() else path.stat().st_size
        out["formats"][fmt] = {"export_s": round(time.perf_counter() - t, 1), "tolerance": info["tolerance"],
                               "max_abs_diff_on_real_images": diff, "within_tolerance": diff <= info["tolerance"],
                               "size_mb": round(size_mb / 2**20, 2)}
        runners[fmt] = fn
    one, batch = images[:1], images[:32]
    latency = {}
    for name, fn in runners.items():
        latency[name] = {"single_ms": round(1000 * _median_time(fn, one, args.single_repeats), 2),
                         "batch32_ms": round(1000 * _median_time(fn, batch, args.batch_repeats), 1)}
    ref = latency["keras_predict"]
    for lat in latency.values():
        lat["single_speedup_vs_keras_predict"] = round(ref["single_ms"] / lat["single_ms"], 2)
        lat["batch32_speedup_vs_keras_predict"] = round(ref["batch32_ms"] / lat["batch32_ms"], 2)
    out["latency"] = latency
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cats_and_dogs_filtered")
    p.add_argument("--only", choices=("training", "export", "ops"), default=None,
                   help="one part (default: training and export; ops: layer kinds under each policy)")
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--epochs", type=int, nargs=2, default=[2, 2], metavar=("HEAD", "FINE_TUNE"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="fits per policy, alternating (the fastest epochs count)")
    p.add_argument("--single-repeats", type=int, default=30)
    p.add_argument("--batch-repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results" / "recipe.json")
    args = p.parse_args(argv)
    import tensorflow as tf

    from tlhelpers.precision import cpu_flags, gpu_compute_capabilities

    train, val = _data(args.dataset, args.train_per_class, args.val_per_class)
    flags = cpu_flags()
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                    "cpu_bf16_flags": sorted(f for f in flags if "bf16" in f), "gpus": gpu_compute_capabilities(),
                    "nice": os.nice(0)},
        "dataset": args.dataset, "train_images": len(train), "val_images": len(val),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
    }
    model = None
    if args.only == "ops":
        from tlhelpers.precision import hardware_policy

        result["ops"] = bench_ops(hardware_policy())
        print(json.dumps(result["ops"]), flush=True)
    if args.only in (None, "training"):
        result["training"], model = bench_training(args, train, val)
        print(json.dumps({k: v for k, v in result["training"].items() if k != "runs"}), flush=True)
    if args.only in (None, "export"):
        if model is None:
            from tlhelpers.bases import load_base
            from tlhelpers.builders import build_classifier

            base = load_base("efficientnet_lite0", weights="imagenet", image_size=args.image_size, verbose=False)
            model = build_classifier(base, len(val.class_names), pooling="avg")
        result["export"] = bench_export(args, model, val)
        print(json.dumps(result["export"]["latency"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
