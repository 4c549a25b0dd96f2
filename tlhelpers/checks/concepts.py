"""The exercise checks of chapter 1: what transfer learning is."""

from __future__ import annotations

import numpy as np

from ._core import best_row, close, number, pick_row, register


@register("concepts-ex-scenario", 'tlh.check("concepts-ex-scenario", scenario)')
def _concepts_scenario(answer, *, n_per_class: int = 300, similarity="different"):
    """The weld-defect team: 300 images per class, X-ray images far from ImageNet's photos (the exercise's facts)."""
    from ..formalism import recommend_strategy

    expected = recommend_strategy(n_per_class, similarity).scenario
    if not isinstance(answer, str):
        return "Answer with the scenario's name, a string such as '<small or large> dataset, <similar or different> domain'."
    words = answer.lower()
    size = [w for w in ("small", "large") if w in words]
    domain = [w for w in ("similar", "different") if w in words]
    if len(size) != 1 or len(domain) != 1:
        return "Name one size and one similarity: '<small or large> dataset, <similar or different> domain'."
    size_ok, domain_ok = size[0] in expected, domain[0] in expected
    if size_ok and domain_ok:
        return None
    if not size_ok and not domain_ok:
        return "Both halves are off: compare the number of images with recommend_strategy's threshold, and the images with ImageNet's."
    if not size_ok:
        return (f"The size half is off: {n_per_class} images per class is measured against recommend_strategy's "
                "`large_from` threshold, not against the number of classes.")
    return "The similarity half is off: ask whether X-ray images of welds look like the everyday photos of ImageNet."


@register("concepts-ex-depth", 'tlh.check("concepts-ex-depth", layer_or_depth, by_depth=by_depth)')
def _concepts_depth(answer, *, by_depth):
    rows, accepted, peak = best_row(by_depth, "probe accuracy", ("layer",))
    if isinstance(answer, (np.integer,)):
        answer = int(answer)
    if answer in accepted:
        return None
    row = pick_row(by_depth, answer, ("layer",))
    if row is None:
        return "That is neither a depth (the table's index) nor a layer name of the `by_depth` table."
    gap = (peak - float(by_depth.loc[row, "probe accuracy"])) * 100
    if row == by_depth.index[-1]:
        return (f"The top of the base is not the best depth in this run: its probe scores {gap:.1f} points below "
                "the best one. Look at the whole 'probe accuracy' column.")
    return f"That depth's probe scores {gap:.1f} points below the best one: look at the whole 'probe accuracy' column."


@register("concepts-ex-speed",
           'tlh.check("concepts-ex-speed", times_faster, comparison=comparison)')
def _concepts_speed(answer, *, comparison, fast: str = "own MobileNetV2, Imagenette",
                    slow: str = "EfficientNet-Lite0, ImageNet"):
    value = number(answer, "Answer with one number: how many times more images per second the faster base processes.")
    expected = comparison.loc[fast, "images/s"] / comparison.loc[slow, "images/s"]
    if close(value, expected, rel=0.05):
        return None
    if close(value, 1 / expected, rel=0.05):
        return "You divided the other way round: a 'times faster' of the faster base is above 1."
    size_ratio = comparison.loc[slow, "parameters"] / comparison.loc[fast, "parameters"]
    if close(value, size_ratio, rel=0.05):
        return "That is how many times smaller it is (the 'parameters' column); the question asks about speed."
    if close(value, expected - 1, rel=0.05) or close(value, (expected - 1) * 100, rel=0.05):
        return "That is how much faster in relative terms; give the ratio of the two speeds."
    return "Not the ratio of the two bases' speeds: use the 'images/s' column of `comparison`."
