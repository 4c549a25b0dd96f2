"""Chapters 3-5 show the plain Keras behind their helpers, and each such block is checked against the helper.

The blocks run when the book builds (make test executes every chapter); the hidden cell after each one asserts
that the plain Keras gives what the helper gave, so a block that drifts from the helper fails the build. This test
checks the structure that makes that true, and that the mechanics the course promises are all shown.
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
TAG = "under-the-hood"
SHOWN = {  # what a learner must see written out in plain Keras, chapter by chapter
    "03_cats_vs_dogs.ipynb": ["keras.applications.", ".trainable = False", ".compile(", "GlobalAveragePooling2D",
                              "training=False", ".layers"],
    "04_trash_classifier.ipynb": ["keras.applications.InceptionV3", ".trainable", ".compile(", "BatchNormalization",
                                  "training=False"],
    "05_what_convnets_learn.ipynb": ["tf.GradientTape", "tape.gradient"],
}


def _cells(name):
    return json.loads((NOTEBOOKS / name).read_text())["cells"]


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_each_block_is_collapsed_and_followed_by_a_check(name):
    cells = _cells(name)
    blocks = [i for i, c in enumerate(cells) if TAG in _tags(c)]
    assert blocks, f"{name} has no '{TAG}' block"
    for i in blocks:
        cell, src = cells[i], "".join(cells[i]["source"])
        assert cell["cell_type"] == "code" and "hide-input" in _tags(cell), f"{name} cell {i}: a collapsed code cell"
        assert src.startswith("# Under the hood"), f"{name} cell {i}: start with '# Under the hood: <helper>'"
        prompt = cell["metadata"].get("mystnb", {}).get("code_prompt_show", "")
        assert prompt.startswith("Under the hood"), f"{name} cell {i}: its fold must say what it hides (mystnb code_prompt_show)"
        after = next(c for c in cells[i + 1:] if c["cell_type"] == "code")
        assert "remove-cell" in _tags(after) and "assert" in "".join(after["source"]), \
            f"{name} cell {i}: the next code cell must be a hidden check of the block against the helper"


@pytest.mark.parametrize("name, needles", sorted(SHOWN.items()))
def test_the_promised_mechanics_are_all_written_out(name, needles):
    shown = "\n".join("".join(c["source"]) for c in _cells(name) if TAG in _tags(c))
    missing = [n for n in needles if n not in shown]
    assert not missing, f"{name}: no '{TAG}' block shows {missing}"
