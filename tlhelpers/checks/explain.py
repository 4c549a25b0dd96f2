"""The exercise checks of chapter 5: what convnets learn."""

from __future__ import annotations

import numpy as np

from ._core import best_row, number, pick_row, register


def _grid(model, layer, image=None) -> tuple[int, int]:
    from ..explain import activations

    if image is None:
        image = np.zeros(tuple(model.input_shape[1:]), "float32")
    return tuple(int(s) for s in activations(model, image, layer).shape[:2])


@register("explain-ex-layer", 'tlh.check("explain-ex-layer", (height, width), model=model, layer=middle)')
def _explain_layer(answer, *, model, layer, image=None):
    expected = _grid(model, layer, image)
    try:
        got = tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        value = number(answer)
        if value is not None and value == expected[0] * expected[1]:
            return "That is the number of positions; give the grid as (height, width)."
        return "Answer with the feature map's (height, width)."
    if got == expected:
        return None
    if len(got) == 3 and got[:2] == expected:
        return "Give the grid only, (height, width), without the number of channels."
    from ..explain import last_conv_layer

    if got == _grid(model, last_conv_layer(model), image):
        return "That is the grid of the last convolutional layer, the one Grad-CAM uses by default; ask about `layer`."
    if got == tuple(int(s) for s in model.input_shape[1:3]):
        return "That is the input image's size; the layer's feature maps are smaller."
    return "Not that layer's grid: look at the shape of tlh.activations(model, image, layer)."


@register("explain-ex-sparsity", 'tlh.check("explain-ex-sparsity", layer_name, sparsity=sparsity)')
def _explain_sparsity(answer, *, sparsity):
    rows, accepted, peak = best_row(sparsity, "sparsity", ("layer", "measured"))
    if answer in accepted:
        return None
    row = pick_row(sparsity, answer, ("layer", "measured"))
    if row is None:
        return "That is not a layer of the `sparsity` table: use its 'measured' (or 'layer') column."
    gap = (peak - float(sparsity.loc[row, "sparsity"])) * 100
    if float(sparsity.loc[row, "dead_fraction"]) == float(sparsity["dead_fraction"].max()) and gap > 0:
        return (f"That layer has the most dead channels, but its share of zero activations is {gap:.1f} points "
                "below the sparsest: the question is about the 'sparsity' column.")
    return f"That layer's share of zeros is {gap:.1f} points below the sparsest one: look at the whole 'sparsity' column."
