#!/usr/bin/env python
"""The recipe's additions one at a time on a dataset's own validation split, each against today's two-phase fit.

    nice -n 10 python benchmarks/recipe_ablation.py --dataset trashnet --image-size 224 --epochs 4 4
    python benchmarks/recipe_ablation.py --train-per-class 8 --val-per-class 8 --image-size 96 --epochs 1 1  # smoke

Every row is one two-phase fit of EfficientNet-Lite0 (ImageNet weights) as `tlh fit` does it (benchmarks/recipe.py's
`train_once`), on the same training images with the same seed, changed in one way only; test-time augmentation
needs no fit (the baseline model, predicting over flips). Each row is scored on the same validation images (never
the test folder) and compared with the baseline by McNemar's exact test: `p_value` < 0.05 with `gained` > `lost`
says the addition helped on these images, > 0.05 that this split cannot tell. Results: benchmarks/results/
recipe_ablation.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from recipe import _data, train_once  # noqa: E402  (benchmarks/recipe.py)

ADDITIONS = {  # name -> options for both phases' fit (tlhelpers.train.fit)
    "baseline (today's tlh fit)": {},
    "warm-up + cosine schedule": {"schedule": "warmup_cosine"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "early stopping (patience 2, best weights)": {"early_stopping": 2},
    "class weights if imbalanced": "class_weights",
    "all of the above": "all",
}


def _options(name: str, train) -> dict:
    from tlhelpers.recipe import class_weights_if_imbalanced

    spec = ADDITIONS[name]
    if spec == "class_weights":
        return {"class_weight": class_weights_if_imbalanced(train)}
    if spec == "all":
        return {"schedule": "warmup_cosine", "label_smoothing": 0.1, "early_stopping": 2,
                "class_weight": class_weights_if_imbalanced(train)}
    return dict(spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="trashnet")
    p.add_argument("--train-per-class", type=int, default=None, help="default: every training image")
    p.add_argument("--val-per-class", type=int, default=None, help="default: every validation image")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--epochs", type=int, nargs=2, default=[4, 4], metavar=("HEAD", "FINE_TUNE"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "recipe_ablation.json")
    args = p.parse_args(argv)
    from tlhelpers.evaluation import evaluate
    from tlhelpers.stats import mcnemar

    train, val = _data(args.dataset, args.train_per_class, args.val_per_class)
    fit_args = dict(image_size=args.image_size, epochs=tuple(args.epochs), batch_size=args.batch_size, seed=args.seed)
    rows, baseline = {}, None
    for name in ADDITIONS:
        options = _options(name, train)
        print(f"{name}: {options}", flush=True)
        run = train_once("float32", train, val, **fit_args, **options)
        model, correct = run.pop("model"), run.pop("correct")
        if baseline is None:
            baseline = correct
            tta = evaluate(model, val, tta=("identity", "flip"))
            tta_correct = (tta.y_pred == tta.y_true).tolist()
            rows["test-time augmentation (flip), baseline model"] = {
                "val_accuracy": round(tta.accuracy, 4), "val_interval_95": [round(v, 4) for v in tta.interval()],
                "vs_baseline": _versus(mcnemar(tta_correct, baseline))}
        run["options"] = {k: v for k, v in options.items()}
        run["vs_baseline"] = _versus(mcnemar(correct, baseline))
        rows[name] = run
        print(json.dumps({k: run[k] for k in ("val_accuracy", "wall_s", "vs_baseline")}), flush=True)
    result = {"dataset": args.dataset, "train_images": len(train), "val_images": len(val),
              "settings": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


def _versus(test: dict) -> dict:
    """McNemar's result renamed for a row against the baseline: images it gained, images it lost, p."""
    return {"gained": test["a_only"], "lost": test["b_only"], "p_value": round(test["p_value"], 4)}


if __name__ == "__main__":
    sys.exit(main())
