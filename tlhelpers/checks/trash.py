"""The exercise checks of chapter 4: the trash classifier."""

from __future__ import annotations

import numpy as np

from ._core import close, number, register, trainable_after


@register("trash-ex-blocks", 'tlh.check("trash-ex-blocks", extra_params, base=base)')
def _trash_blocks(answer, *, base, fewer: int = 2, more: int = 3):
    value = number(answer, "Answer with one number of parameters.")
    a, b = trainable_after(base, fewer), trainable_after(base, more)
    if value == b - a:
        return None
    if value == b:
        return f"That is everything that trains with {more} blocks; the question asks how many *more* than with {fewer}."
    if value == a:
        return f"That is the count with {fewer} blocks; the question asks what the next block down adds."
    if value == a - b:
        return "The sign is the wrong way round: unfreezing more blocks trains more parameters."
    return "Not the difference of the two reports' 'trainable_params': check both calls to unfreeze_top_blocks."


@register("trash-ex-classweight",
           'tlh.check("trash-ex-classweight", weight, images=train, class_name="trash")')
def _trash_classweight(answer, *, images, class_name: str = "trash"):
    value = number(answer, "Answer with one number, the class weight.")
    labels = np.asarray(images.labels, dtype=int)
    n, k = len(labels), len(images.class_names)
    n_c = int(np.sum(labels == list(images.class_names).index(class_name)))
    expected = n / (k * n_c)
    if close(value, expected, rel=0.01, abs_=0.005):
        return None
    if close(value, k * n_c / n, rel=0.01):
        return "That is the inverse: a rare class should get a weight above 1."
    if close(value, n / n_c, rel=0.01):
        return "Divide by the number of classes too: the weights should average out over the classes."
    if close(value, n_c / n, rel=0.01):
        return "That is the class's share of the training images, not its weight."
    return f"Not the weight of {class_name!r}: count n, k and n_c on the split you are weighting."
