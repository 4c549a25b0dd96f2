"""The exercise checks of the source-model page."""

from __future__ import annotations

import math

from ._core import close, number, register


@register("src-ex-halflife", 'tlh.check("src-ex-halflife", steps, momentum=0.999)')
def _src_halflife(answer, *, momentum: float):
    value = number(answer, "Answer with one number of training steps.")
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"a BatchNormalization momentum lies strictly between 0 and 1, got {momentum}.")
    expected = math.log(0.5) / math.log(momentum)
    if abs(value - expected) <= max(1.0, 0.01 * expected):
        return None
    if close(value, 1.0 / (1.0 - momentum), rel=0.01):
        return "That is the average's time constant, after which about 63% of the way is covered, not half of it."
    if close(value, 0.5 / (1.0 - momentum), rel=0.01):
        return ("The steps compound: each one moves the running mean a fixed share of the distance that *remains*, "
                "not of the original distance.")
    return "Not the number of steps after which the running mean has covered half the way: write the remaining distance after k steps."


@register("src-ex-share", 'tlh.check("src-ex-share", share, table=probe_table)')
def _src_share(answer, *, table, px: int = 96):
    value = number(answer, "Answer with one number, the share as a fraction between 0 and 1.")
    trained = table.index.get_level_values("trained on")
    at = table.index.get_level_values("px") == px

    def acc(word):
        rows = table[at & trained.str.contains(word, case=False)]
        if len(rows) != 1:
            raise ValueError(f"expected one row trained on {word!r} at {px} px in the table, found {len(rows)}.")
        return float(rows["acc"].iloc[0])

    rnd, ours, lite = acc("random"), acc("Imagenette"), acc("ImageNet:")
    if lite == rnd:
        raise ValueError("the ImageNet and random rows score the same: the share is undefined on this run.")
    expected = (ours - rnd) / (lite - rnd)
    if close(value, expected, abs_=0.01):
        return None
    if close(value / 100, expected, abs_=0.01):
        return "Give the share as a fraction (0.25 for 25%)."
    if close(value, 1 - expected, abs_=0.01):
        return "That is the share of the gap still left; the question asks how much the ten classes closed."
    if expected != 0 and close(value, 1 / expected, abs_=0.01):
        return "The fraction is upside down: what ten classes gained over random weights, over what ImageNet gained."
    return f"Not the share of the gap at {px} px: take each accuracy from the table's 'acc' column."
