"""The recipe section of book/using_tlhelpers.md quotes the benchmarks' own numbers, and every flag it lists exists."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tlhelpers.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
PAGE = " ".join((ROOT / "book" / "using_tlhelpers.md").read_text().split())
RESULTS = ROOT / "benchmarks" / "results"


def fit_defaults() -> dict:
    return json.loads((RESULTS / "fit_defaults_trashnet.json").read_text())


def test_the_table_is_the_benchmarks():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fit_defaults import markdown_table, markdown_verdicts

    result = fit_defaults()
    for line in (markdown_table(result) + "\n" + markdown_verdicts(result)).splitlines():
        assert " ".join(line.split()) in PAGE


def test_the_verdicts_hold():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fit_defaults import PARTS

    rows = fit_defaults()["rows"]
    best = rows["defaults"]["val_accuracy"]
    before = rows["before the recipe"]["vs_defaults"]
    assert before["p_value"] < 0.05 and before["lost"] > before["gained"]  # "together they are measured to help"
    gain = 100 * (best - rows["before the recipe"]["val_accuracy"])
    assert f"the recipe scored {gain:.1f} points above `tlh fit` as it was" in PAGE
    parts = [rows[r] for r in PARTS if r in rows]
    assert all(r["val_accuracy"] <= best for r in parts)  # "every row that turns one off scored at or below"
    assert all(r["vs_defaults"]["p_value"] >= 0.05 for r in parts)  # "no single part is shown to help on its own"
    assert max(parts, key=lambda r: best - r["val_accuracy"]) is rows["160 px instead of 224"]  # "the largest"
    for name in ("test-time augmentation: flip", "test-time augmentation: flip and crop"):
        assert rows[name]["vs_defaults"]["p_value"] >= 0.05  # --tta "stays a flag"


def test_the_speed_and_mixed_precision_sentences_are_the_benchmarks():
    speed = fit_defaults()["speed"]
    assert f"{speed['speed_ratio']:.1f} times as fast" in PAGE and speed["accuracy_does_not_drop"]
    test = speed["mcnemar_cached_vs_images"]
    assert test["cached_only"] > test["images_only"] and test["p_value"] < 0.05  # "scored higher, not lower"
    training = json.loads((RESULTS / "recipe.json").read_text())["training"]
    assert f"{training['two_phase_speed_ratio']:.1f} times the speed" in PAGE
    assert f"trained {training['small_convnet_speed_ratio']:.0f} times faster" in PAGE


def test_every_flag_on_the_page_is_a_flag_of_tlh():
    fit = _parser()._subparsers._group_actions[0].choices["fit"]
    flags = {opt for action in fit._actions for opt in action.option_strings}
    for flag in ("--no-augment", "--schedule", "--label-smoothing", "--patience", "--class-weights", "--precision",
                 "--head-on", "--fine-tune", "--unfreeze", "--image-size"):
        assert f"`{flag}" in PAGE and flag in flags
