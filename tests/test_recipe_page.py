"""The recipe section of book/using_tlhelpers.md quotes the benchmarks' own numbers, and every flag it lists exists."""

from __future__ import annotations

import json
from pathlib import Path

from tlhelpers.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
PAGE = " ".join((ROOT / "book" / "using_tlhelpers.md").read_text().split())
RESULTS = ROOT / "benchmarks" / "results"


def test_the_ablation_numbers_are_the_benchmarks():
    rows = json.loads((RESULTS / "recipe_ablation.json").read_text())["rows"]
    schedule, baseline = rows["warm-up + cosine schedule"], rows["baseline (today's tlh fit)"]
    assert (f"{schedule['val_accuracy']:.1%} against {baseline['val_accuracy']:.1%}, McNemar p = "
            f"{schedule['vs_baseline']['p_value']:.3f}") in PAGE
    assert schedule["vs_baseline"]["p_value"] < 0.05  # "lowered": a difference by the paired test
    for name in ("label smoothing 0.1", "early stopping (patience 2, best weights)"):
        assert rows[name]["vs_baseline"]["p_value"] > 0.05  # "nothing measurable"
    assert rows["class weights if imbalanced"]["options"]["class_weight"] is None  # "never came into play"
    training = json.loads((RESULTS / "recipe.json").read_text())["training"]
    assert f"{training['two_phase_speed_ratio']:.1f} times the speed" in PAGE
    assert f"trained {training['small_convnet_speed_ratio']:.0f} times faster" in PAGE


def test_every_flag_on_the_page_is_a_flag_of_tlh():
    fit = _parser()._subparsers._group_actions[0].choices["fit"]
    flags = {opt for action in fit._actions for opt in action.option_strings}
    for flag in ("--no-augment", "--schedule", "--label-smoothing", "--patience", "--class-weights", "--precision"):
        assert f"`{flag}" in PAGE and flag in flags
