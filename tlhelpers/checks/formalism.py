"""The exercise checks of chapter 2: domains and tasks."""

from __future__ import annotations

from ._core import close, number, register


@register("formalism-ex-score", 'tlh.check("formalism-ex-score", trash_score, table=mid, target="TrashNet")')
def _formalism_score(answer, *, table, target: str = "TrashNet"):
    value = number(answer, "Answer with one number, the similarity score.")
    ratio = float(table.loc[target, "MMD² ÷ reference"])
    expected = 1.0 / (1.0 + max(ratio, 0.0))
    if close(value, expected, abs_=0.005):
        return None
    if not 0.0 <= value <= 1.0:
        return "A similarity score lies between 0 and 1: turn the ratio into a score with the chapter's formula."
    if close(value, ratio, abs_=0.005):
        return "That is MMD² ÷ reference itself, the distance; the score is the chapter's function of it."
    if close(value, 1.0 / (1.0 + float(table.loc[target, "MMD²"])), abs_=0.005):
        return "That score uses the raw MMD²; the chapter's score uses MMD² in units of the reference's."
    if close(value, 1.0 - expected, abs_=0.005):
        return "That is one minus the score: the score is 1 for the source itself and falls as the distance grows."
    return f"Not the score of {target} in this table: check the row and the formula `1 / (1 + MMD² ÷ reference)`."


def _setting(same_task: bool, target_labels: bool, source_labels: bool = True) -> str:
    """The chapter's table of settings (after Pan and Yang, 2010)."""
    if not target_labels and not source_labels:
        return "unsupervised"
    if same_task and not target_labels:
        return "transductive"
    return "inductive"


@register("formalism-ex-setting", 'tlh.check("formalism-ex-setting", setting)')
def _formalism_setting(answer, *, same_task: bool = True, target_labels: bool = False, source_labels: bool = True):
    """The two clinics: the same diagnoses, labels only in the first clinic (the exercise's facts)."""
    expected = _setting(same_task, target_labels, source_labels)
    word = answer.strip().lower().split()[0] if isinstance(answer, str) and answer.strip() else ""
    settings = ("inductive", "transductive", "unsupervised")
    if word not in settings:
        return f"Name one of the chapter's three settings: {', '.join(settings)}."
    if word == expected:
        return None
    if word == "inductive":
        return "Inductive transfer has labelled target images and a new task: does the second clinic label any image, and is the task new?"
    if word == "unsupervised":
        return "Unsupervised transfer has no labels at all, but the first clinic's images are labelled."
    return "Transductive transfer keeps the task and has no target labels: check both against the exercise."
