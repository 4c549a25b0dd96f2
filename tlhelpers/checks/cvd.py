"""The exercise checks of chapter 3: cats vs. dogs."""

from __future__ import annotations

from ._core import close, number, register, trainable_after


def _count(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n))


@register("cvd-ex-blocks", 'tlh.check("cvd-ex-blocks", n_params, base=base)')
def _cvd_blocks(answer, *, base, n_blocks: int = 2):
    value = number(answer, "Answer with one number of parameters.")
    expected = trainable_after(base, n_blocks)
    if value == expected:
        return None
    if value == trainable_after(base, 1) and n_blocks != 1:
        return f"That is the count for the top block alone; the question unfreezes the top {_count(n_blocks)}."
    if n_blocks > 2 and value == trainable_after(base, n_blocks - 1):
        return (f"That is the count for the top {_count(n_blocks - 1)} blocks, the unit the chapter fine-tuned; the "
                "question adds one block below them.")
    if n_blocks > 1 and value == expected - trainable_after(base, n_blocks - 1):
        if n_blocks == 2:
            return "That is what the second block adds; the question asks for everything that trains with both."
        return "That is what the added block brings alone; the question asks for everything that trains with it."
    if value == base.model.count_params():
        return "That counts the whole base, frozen layers included: only the unfrozen blocks train."
    if value == trainable_after(base, n_blocks, train_batchnorm=True):
        return "That counts the BatchNormalization layers too, but unfreeze_top_blocks keeps them frozen."
    return "Not the number of parameters that train: read 'trainable_params' in the report unfreeze_top_blocks returns."


@register("cvd-ex-pooling", 'tlh.check("cvd-ex-pooling", n_params, features_shape=x_train.shape[1:])')
def _cvd_pooling(answer, *, features_shape, n_classes: int = 2):
    from ..builders import build_head

    value = number(answer, "Answer with one number of parameters.")
    expected = build_head(tuple(features_shape), n_classes=n_classes, pooling="avg").count_params()
    if value == expected:
        return None
    if value == build_head(tuple(features_shape), n_classes=n_classes).count_params():
        return "That is the flattening head's count; the question asks about the head that averages each feature map."
    return "Not the averaging head's parameter count: ask the head itself with count_params()."


@register("cvd-ex-gap", 'tlh.check("cvd-ex-gap", points, results=results)')
def _cvd_gap(answer, *, results):
    # The convnets from scratch train on every training photo, like the head in the row "feature extraction";
    # the "(subset)" head saw only the photos of the runs through the base.
    value = number(answer, "Answer with one number: the difference in percentage points.")
    scratch = sorted(results[k].accuracy for k in ("from scratch", "from scratch + augmentation"))
    fe_small, fe = results["feature extraction (subset)"].accuracy, results["feature extraction"].accuracy
    expected = (fe - scratch[1]) * 100
    if close(value, expected, abs_=0.5):
        return None
    if close(value * 100, expected, abs_=0.5):
        return "Give the difference in percentage points (12.5 for 0.125), not as a fraction."
    if close(value, -expected, abs_=0.5):
        return "The sign is the wrong way round: subtract the convnet from scratch from feature extraction."
    if close(value, (fe - scratch[0]) * 100, abs_=0.5):
        return "Compare with the better of the two convnets from scratch, not the worse."
    if close(value, (fe_small - scratch[1]) * 100, abs_=0.5) or close(value, (fe_small - scratch[0]) * 100, abs_=0.5):
        return ("That uses the head trained on the subset; the convnets from scratch trained on all the training "
                "photos, like the head in the row 'feature extraction'.")
    return "Not the gap between these rows of `results`: check which two rows you subtract."
