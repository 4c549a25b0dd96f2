#!/usr/bin/env python
"""`tlh fit`'s defaults, measured: the whole recipe, then each part turned off in turn, on a folder's validation split.

    nice -n 10 python benchmarks/fit_defaults.py ../shared/datasets/trashnet/dataset-resized
    python benchmarks/fit_defaults.py DATA_DIR --rows defaults,"no label smoothing" --out /tmp/ablation.json

Every row is one real `tlh fit DATA_DIR --out MODEL` run (tlhelpers.cli.main) with the defaults and the row's flags,
on the same training images (the command's own stratified split, --seed 0) and scored on the same validation images
(never a test folder). Each row is compared with the defaults by McNemar's exact test on those images: `gained` and
`lost` count the images only one of the two got right, and p < 0.05 says the difference is more than this split's
noise. `speed` compares "before the recipe" with the same fit whose head trains on cached features: the wall
times as a ratio, the training images per second, and McNemar's test between those two. "before the recipe" is `tlh fit` as it was until December 2026 (160 px, the head on augmented images,
the top two blocks with SGD 1e-4, no schedule, no smoothing, no early stopping, no class weights). The
test-time-augmentation rows reuse the defaults' model. `wall_s` is the command's whole run, scan and save included.
Results: benchmarks/results/fit_defaults_<folder name>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ROWS = {  # name -> the flags that turn one part of the recipe off (or set the old defaults)
    "defaults": [],
    "before the recipe": ["--image-size", "160", "--epochs", "5,5", "--head-on", "images", "--unfreeze", "2",
                          "--fine-tune", "sgd:1e-4", "--schedule", "constant", "--label-smoothing", "0",
                          "--patience", "0", "--class-weights", "none"],
    "before the recipe with the head on cached features": [
        "--image-size", "160", "--epochs", "5,5", "--head-on", "features", "--unfreeze", "2", "--fine-tune", "sgd:1e-4",
        "--schedule", "constant", "--label-smoothing", "0", "--patience", "0", "--class-weights", "none"],
    "160 px instead of 224": ["--image-size", "160"],
    "constant learning rate": ["--schedule", "constant"],
    "no label smoothing": ["--label-smoothing", "0"],
    "no early stopping": ["--patience", "0"],
    "no class weights": ["--class-weights", "none"],
    "no augmentation": ["--no-augment"],
    "top 2 blocks with SGD 1e-4 (chapter 4)": ["--unfreeze", "2", "--fine-tune", "sgd:1e-4"],
    "head on augmented images (5 epochs)": ["--head-on", "images", "--epochs", "5,6"],
}
TTA = {"test-time augmentation: flip": ("identity", "flip"),
       "test-time augmentation: flip and crop": ("identity", "flip", "crop", "flip_crop")}


def validation_split(data_dir: Path, seed: int = 0, val_fraction: float = 0.2):
    """The validation images `tlh fit DATA_DIR --seed SEED` holds out (the same scan, deduplication and split)."""
    from tlhelpers.cli_fit import scan_and_split

    args = argparse.Namespace(val_fraction=val_fraction, seed=seed, data_dir=data_dir)
    return scan_and_split(args, verbose=False)[2:]


def run_row(data_dir: Path, flags: list, out: Path) -> float:
    """Run `tlh fit DATA_DIR --out OUT FLAGS`; return its wall time in seconds."""
    import keras

    from tlhelpers.cli import main

    keras.backend.clear_session()
    start = time.perf_counter()
    code = main(["fit", str(data_dir), "--out", str(out), *flags])
    if code != 0:
        raise SystemExit(f"tlh fit {' '.join(flags)} failed with exit code {code}")
    return time.perf_counter() - start


def default_out(data_dir: Path) -> Path:
    """benchmarks/results/fit_defaults_<name>.json, <name> the dataset's folder (trashnet for .../trashnet/dataset-resized)."""
    name = data_dir.resolve().parent.name if data_dir.name in ("train", "dataset-resized", "images") else data_dir.name
    return HERE / "results" / f"fit_defaults_{name}.json"


def markdown_table(result: dict) -> str:
    """The rows as the markdown table book/using_tlhelpers.md shows (accuracy in %, change in points, McNemar p)."""
    rows = result["rows"]
    base = rows["defaults"]["val_accuracy"]
    lines = ["| `tlh fit` | validation accuracy | vs the defaults | gained / lost | McNemar p | time |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lo, hi = row["val_interval_95"]
        vs = row["vs_defaults"]
        change = "" if name == "defaults" else f"{100 * (row['val_accuracy'] - base):+.1f} points"
        gained = "" if name == "defaults" else f"{vs['gained']} / {vs['lost']}"
        p = "" if name == "defaults" else f"{vs['p_value']:.3f}" if vs["p_value"] >= 0.001 else "< 0.001"
        wall = f"{row['wall_s'] / 60:.1f} min" if row.get("wall_s") else "(same model)"
        lines.append(f"| {name} | {row['val_accuracy']:.1%} ({lo:.1%}–{hi:.1%}) | {change} | {gained} | {p} | {wall} |")
    return "\n".join(lines)


PARTS = {  # the row that turns a part off -> the part, as the verdicts name it
    "160 px instead of 224": "the native 224 px",
    "constant learning rate": "the warm-up + cosine schedule",
    "no label smoothing": "label smoothing",
    "no early stopping": "early stopping",
    "no class weights": "class weights",
    "no augmentation": "augmentation",
    "top 2 blocks with SGD 1e-4 (chapter 4)": "fine-tuning the last stage with Adam",
    "head on augmented images (5 epochs)": "the head on cached features",
}


def verdict(result: dict, row: str) -> str:
    """One sentence: what a part of the recipe did, by McNemar's test of the row that turns it off."""
    r = result["rows"][row]
    points = 100 * (result["rows"]["defaults"]["val_accuracy"] - r["val_accuracy"])
    vs, part = r["vs_defaults"], PARTS[row]
    evidence = (f"{points:+.1f} points with it; right only with it on {vs['lost']} photos, only without it on "
                f"{vs['gained']}, p = {vs['p_value']:.3f}")
    if vs["p_value"] >= 0.05:
        return f"- {part}: no difference this split can detect ({evidence});"
    return f"- {part}: {'helped' if vs['lost'] > vs['gained'] else 'hurt'} ({evidence});"


def markdown_verdicts(result: dict) -> str:
    """The verdict of every part that was measured, one line each."""
    return "\n".join(verdict(result, row) for row in PARTS if row in result["rows"])


def _speed(rows: dict, correct_of: dict, mcnemar, n_train: int) -> dict | None:
    """The cached head's gain on the old fit: wall-time ratio and McNemar between the two rows (None until both ran)."""
    old, new = "before the recipe", "before the recipe with the head on cached features"
    if old not in rows or new not in rows:
        return None
    test = mcnemar(correct_of[new], correct_of[old])
    per_s = {k: round(n_train * rows[r]["epochs_run"] / rows[r]["wall_s"], 1)
             for k, r in (("head on augmented images", old), ("head on cached features", new))}
    return {"wall_s": {"head on augmented images": rows[old]["wall_s"], "head on cached features": rows[new]["wall_s"]},
            "training_images_per_s": per_s,
            "speed_ratio": round(rows[old]["wall_s"] / rows[new]["wall_s"], 2),
            "mcnemar_cached_vs_images": {"cached_only": test["a_only"], "images_only": test["b_only"],
                                         "p_value": round(test["p_value"], 4)},
            "accuracy_does_not_drop": bool(test["p_value"] >= 0.05 or test["a_only"] >= test["b_only"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names (default: all); defaults first")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--table", action="store_true", help="print the results already in --out as a markdown table")
    args = p.parse_args(argv)
    if args.table:
        result = json.loads((args.out or default_out(args.data_dir)).read_text())
        print(markdown_table(result) + "\n\n" + markdown_verdicts(result))
        return 0
    import tensorflow as tf

    from tlhelpers.evaluation import evaluate
    from tlhelpers.saving import load_model
    from tlhelpers.stats import mcnemar

    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown or "defaults" not in names:
        p.error(f"--rows: unknown {unknown}; choose among {list(ROWS)}, defaults included")
    names = ["defaults"] + [n for n in names if n != "defaults"]
    out = args.out or default_out(args.data_dir)
    train, val = validation_split(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="tl-fit-defaults-"))
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                          "nice": os.nice(0)},
              "data_dir": args.data_dir.name, "train_images": len(train), "val_images": len(val), "rows": {}}
    baseline, correct_of = None, {}
    for i, name in enumerate(names):
        print(f"== {name}: tlh fit {' '.join(ROWS[name])}", flush=True)
        model_path = work / f"row{i}.keras"
        wall = run_row(args.data_dir, ROWS[name], model_path)
        model, meta = load_model(model_path)
        views = [(name, None)] + (list(TTA.items()) if name == "defaults" else [])
        for row_name, tta in views:
            res = evaluate(model, val, tta=tta)
            correct = (res.y_pred == res.y_true).tolist()
            if baseline is None:
                baseline = correct
            correct_of[row_name] = correct
            test = mcnemar(correct, baseline)
            row = {"flags": ROWS.get(row_name, ["--tta-views", ",".join(tta or ())]),
                   "val_accuracy": round(res.accuracy, 4), "val_interval_95": [round(v, 4) for v in res.interval()],
                   "vs_defaults": {"gained": test["a_only"], "lost": test["b_only"],
                                   "p_value": round(test["p_value"], 4)}}
            if tta is None:
                row.update(wall_s=round(wall, 1), epochs_run=len(meta["history"]["loss"]), recipe=meta["recipe"])
            result["rows"][row_name] = row
            print(json.dumps({k: row.get(k) for k in ("val_accuracy", "val_interval_95", "wall_s", "vs_defaults")}),
                  flush=True)
        result["speed"] = _speed(result["rows"], correct_of, mcnemar, len(train))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every row: a stopped run keeps what it measured
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
