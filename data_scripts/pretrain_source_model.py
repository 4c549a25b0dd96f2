"""Develop the course's own source model: MobileNetV2 (alpha 0.5, 96 px) trained from scratch on Imagenette.

This is the "develop-model approach" of chapter 1, run for real: a source task with plenty of
labelled data (Imagenette, 10 ImageNet classes, 9469 training images), a model trained on it,
and its convolutional base kept for reuse. It is also what lets the course run where ImageNet
weights cannot be downloaded (`weights="offline"`).

Run (about 40 minutes on 2 CPU cores; the shipped weights were made by exactly this command):

    TL_DATA_DIR=../shared/datasets python data_scripts/pretrain_source_model.py

It writes, atomically, into `tlhelpers/weights/`:
    mobilenet_v2_a050_imagenette.weights.h5   the convolutional base (include_top=False)
    mobilenet_v2_a050_imagenette_head.npz     its 10-way Imagenette classifier (dense kernel and bias)
    mobilenet_v2_a050_imagenette.json         the model card's data: recipe, history, accuracy, sha256
and `book/images/source_model_history.png`; then regenerate MODEL_CARD.md with
`python data_scripts/pretrain_source_model.py --card-only`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "tlhelpers" / "weights"
sys.path.insert(0, str(ROOT))  # run from a checkout: class names and the file stem live in tlhelpers, once
from tlhelpers.data import IMAGENETTE_NAMES  # noqa: E402
from tlhelpers.offline import OFFLINE_STEM as STEM  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=26)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--bn-momentum", type=float, default=0.9,
                   help="BatchNormalization momentum (Keras's MobileNetV2 uses 0.999, too slow for a short run)")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only this many images per class (smoke test)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--card-only", action="store_true", help="only rewrite MODEL_CARD.md from the JSON")
    return p.parse_args(argv)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pipeline(images, *, image_size, batch_size, n_classes, train, seed):
    """Decode once (kept in memory as uint8), then random-resized-crop + flip per batch in training."""
    import tensorflow as tf

    def decode(path, label):
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img.set_shape([None, None, 3])
        size = 128 if train else image_size
        img = tf.image.resize(img, [size, size])
        return tf.cast(tf.round(img), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices((list(images.paths), images.labels))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if train:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def augment(x, y):
        # Random resized crop: area 25-100% of the image, aspect ratio 3/4-4/3, then a horizontal flip.
        n = tf.shape(x)[0]
        area = tf.random.uniform([n], 0.25, 1.0)
        log_ratio = tf.random.uniform([n], math.log(3 / 4), math.log(4 / 3))
        ratio = tf.exp(log_ratio)
        h = tf.minimum(tf.sqrt(area / ratio), 1.0)
        w = tf.minimum(tf.sqrt(area * ratio), 1.0)
        y0 = tf.random.uniform([n]) * (1 - h)
        x0 = tf.random.uniform([n]) * (1 - w)
        boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
        x = tf.image.crop_and_resize(tf.cast(x, "float32"), boxes, tf.range(n), [image_size, image_size])
        x = tf.where(tf.random.uniform([n, 1, 1, 1]) < 0.5, tf.reverse(x, axis=[2]), x)
        return x, tf.one_hot(y, n_classes)

    def plain(x, y):
        return tf.cast(x, "float32"), tf.one_hot(y, n_classes)

    ds = ds.map(augment if train else plain, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build(args, n_classes):
    import keras

    from tlhelpers.bases import ImagePreprocess, load_base
    from tlhelpers.freezing import set_batchnorm_momentum

    base = load_base("mobilenet_v2", weights=None, image_size=args.image_size, alpha=args.alpha, verbose=False)
    set_batchnorm_momentum(base, args.bn_momentum)
    inputs = keras.Input((args.image_size, args.image_size, 3), name="image")
    x = ImagePreprocess("mobilenet_v2", name="preprocess")(inputs)
    x = base.model(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return base, keras.Model(inputs, outputs, name="imagenette_mobilenet_v2")


def plot_history(history, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tlhelpers._atomic import atomic_path

    epochs = range(1, len(history["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, history["loss"], label="train")
    a.plot(epochs, history["val_loss"], label="validation")
    a.set(xlabel="epoch", ylabel="loss (label-smoothed)")
    b.plot(epochs, history["accuracy"], label="train (augmented)")
    b.plot(epochs, history["val_accuracy"], label="validation")
    b.axhline(0.1, color="grey", ls=":", lw=1, label="chance")
    b.set(xlabel="epoch", ylabel="top-1 accuracy", ylim=(0, 1))
    for ax in (a, b):
        ax.legend(frameon=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_card(out: Path) -> Path:
    from tlhelpers._atomic import atomic_path

    info = json.loads((out / f"{STEM}.json").read_text())
    r = info["recipe"]
    h = info["history"]
    best = max(h["val_accuracy"])
    classes = ", ".join(f"{IMAGENETTE_NAMES.get(c, c)}" for c in info["class_names"])
    text = f"""# Model card: the course's source model

`tlhelpers/weights/{STEM}.weights.h5`, loaded by `load_base("mobilenet_v2", weights="offline")`
and `tlh ... --weights offline`.

| | |
|---|---|
| Architecture | `keras.applications.MobileNetV2(alpha={r['alpha']}, include_top=False)`, {info['base_params']:,} parameters |
| Trained at | {r['image_size']}×{r['image_size']} px (the base is fully convolutional and loads at any size ≥ 32 px) |
| Source task | Imagenette (`imagenette2-160`), 10 ImageNet classes: {classes} |
| Training data | official train split, {info['n_train']} images; no ImageNet weights, trained from random initialisation |
| Evaluation data | official val split, {info['n_val']} images, never used for any choice during training |
| Preprocessing | RGB in [0, 255] → `keras.applications.mobilenet_v2.preprocess_input` (scales to [-1, 1]) |
| Augmentation | random resized crop (25–100 % of the area, aspect 3/4–4/3) from 128 px, horizontal flip |
| Optimisation | AdamW, peak learning rate {r['learning_rate']}, weight decay {r['weight_decay']}, 1 warm-up epoch then cosine decay; batch {r['batch_size']}; label smoothing {r['label_smoothing']}; dropout 0.2 before the 10-way softmax head |
| BatchNormalization | momentum {r['bn_momentum']} instead of Keras's 0.999: with 0.999 the moving statistics lag a short from-scratch run and validation accuracy sits near chance |
| Epochs | {r['epochs']} ({info['train_seconds'] / 60:.1f} min on {info['machine']}) |
| **Imagenette val top-1** | **{info['val_accuracy']:.3f}** after the last epoch (best epoch: {best:.3f}; chance 0.100) |
| Weights file | {info['weights_bytes'] / 1e6:.2f} MB, sha256 `{info['sha256']}` |
| Software | TensorFlow {info['tensorflow']}, Keras {info['keras']}, Python {info['python']} |

Reproduce with the exact command:

```bash
{info['command']}
```

## What it is for, and what it is not

It is a *small* source model: 10 classes and under ten thousand images, against ImageNet's 1000
classes and 1.28 million images. Its features are far less general than ImageNet features. The
course uses it to run every chapter offline (the `quick` profile falls back to it when ImageNet
weights cannot be loaded, and says so), and chapter 1 uses it to show the develop-model approach.
Numbers produced with it are labelled "offline source model" and are not ImageNet results.

The images are Imagenette's (ImageNet images; research and teaching use). The weights are
released with the course under its MIT license.
"""
    path = out / "MODEL_CARD.md"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path


def main(argv=None):
    args = parse_args(argv)
    if args.card_only:
        print(write_card(args.out))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tlhelpers import data, images
    from tlhelpers.train import EpochLog

    keras.utils.set_random_seed(args.seed)
    root = data.dataset_path("imagenette2-160")
    train = images.scan_folder(root / "train")
    val = images.scan_folder(root / "val", class_names=train.class_names)
    if args.limit:
        train, val = train.sample(args.limit, seed=args.seed), val.sample(max(10, args.limit // 2), seed=args.seed)
    n_classes = len(train.class_names)
    print(f"Imagenette: {len(train)} training and {len(val)} validation images, {n_classes} classes.")

    train_ds = pipeline(train, image_size=args.image_size, batch_size=args.batch_size, n_classes=n_classes,
                        train=True, seed=args.seed)
    val_ds = pipeline(val, image_size=args.image_size, batch_size=128, n_classes=n_classes, train=False,
                      seed=args.seed)
    base, model = build(args, n_classes)
    steps = math.ceil(len(train) / args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps * (args.epochs - 1), warmup_target=args.learning_rate, warmup_steps=steps,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
    )
    print(f"MobileNetV2 alpha {args.alpha} at {args.image_size} px: {base.model.count_params():,} base parameters; "
          f"BatchNormalization momentum {args.bn_momentum}; {args.epochs} epochs of {steps} steps.")
    start = time.perf_counter()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=0, callbacks=[EpochLog(args.epochs)])
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    val_loss, val_acc = model.evaluate(val_ds, verbose=0)
    print(f"Final Imagenette validation top-1: {val_acc:.4f} (loss {val_loss:.3f}); trained in {seconds / 60:.1f} min.")

    save(args, argv, base, model, history=history, n_train=len(train), n_val=len(val), class_names=train.class_names,
         val_accuracy=float(val_acc), val_loss=float(val_loss), seconds=seconds)
    return 0


def save(args, argv, base, model, *, history: dict, n_train: int, n_val: int, class_names: list, val_accuracy: float,
         val_loss: float, seconds: float) -> None:
    """Write the base's weights, the 10-way head, the run's record (JSON), the history plot and the model card."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tlhelpers._atomic import atomic_path

    args.out.mkdir(parents=True, exist_ok=True)
    weights_path = args.out / f"{STEM}.weights.h5"
    with atomic_path(weights_path, suffix=".weights.h5") as tmp:
        base.model.save_weights(tmp)
    head_path = args.out / f"{STEM}_head.npz"  # the 10-way Imagenette classifier on top (51 kB)
    kernel, bias = model.get_layer("predictions").get_weights()
    with atomic_path(head_path) as tmp:
        np.savez(tmp, kernel=kernel, bias=bias)
    cmd = " ".join(["python data_scripts/pretrain_source_model.py", *(argv if argv is not None else sys.argv[1:])])
    info = {
        "arch": "mobilenet_v2",
        "alpha": args.alpha,
        "image_size": args.image_size,
        "class_names": class_names,
        "n_train": n_train,
        "n_val": n_val,
        "base_params": int(base.model.count_params()),
        "recipe": {k: v for k, v in vars(args).items() if k not in ("out", "card_only")},
        "history": history,
        "val_accuracy": val_accuracy,
        "val_loss": val_loss,
        "train_seconds": round(seconds, 1),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "command": "TL_DATA_DIR=../shared/datasets " + cmd.strip(),
        "weights_bytes": weights_path.stat().st_size,
        "sha256": sha256(weights_path),
        "head_sha256": sha256(head_path),
    }
    with atomic_path(args.out / f"{STEM}.json") as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1))
    plot_history(history, ROOT / "book" / "images" / "source_model_history.png")
    print(f"Wrote {weights_path} ({info['weights_bytes'] / 1e6:.2f} MB, sha256 {info['sha256'][:12]}...) and "
          f"{write_card(args.out)}.")


if __name__ == "__main__":
    sys.exit(main())
