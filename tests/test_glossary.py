"""The glossary's worked examples are the helpers' own numbers."""

from __future__ import annotations

import re
from pathlib import Path

import tlhelpers as tlh
from tlhelpers.stats import mcnemar

GLOSSARY = (Path(__file__).resolve().parents[1] / "book" / "glossary.md").read_text()


def entry(term: str) -> str:
    """The text of one glossary entry (its indented lines)."""
    match = re.search(rf"^{re.escape(term)}\n((?:  .*\n|\n)+)", GLOSSARY, re.M)
    assert match, f"no glossary entry {term!r}"
    return " ".join(match.group(1).split())


def test_the_interval_examples_are_wilsons_intervals():
    text = entry("95% interval")
    for correct, n in [(950, 1000), (95, 100)]:
        low, high = tlh.accuracy_interval(correct, n)
        assert f"from {low:.1%} to {high:.1%}" in text


def test_the_paired_test_is_the_helpers_mcnemar():
    text = entry("Paired test")
    assert "tlh.mcnemar" in text and "{cite}`mcnemar1947`" in text and "mcnemar1947" in (
        Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text()
    assert hasattr(tlh, "mcnemar") and tlh.mcnemar is mcnemar
