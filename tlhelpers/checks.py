"""Auto-checks for the chapters' exercises: `check(exercise_id, answer, **context)` says "correct" or gives a hint.

Every check recomputes the expected answer from the objects the learner passes (the chapter's base, its results,
its tables), never from a stored constant, so it stays right whatever the profile, the weights or the run:

    >>> tlh.check("cvd-ex-blocks", n_params, base=base)
    correct

A wrong answer gets a hint that says what is off without giving the answer away. Measured numbers are compared
with a tolerance. `CHECKS` maps each exercise label to its check; an unknown label raises ValueError.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import numpy as np

CORRECT = "correct"


class Verdict(str):
    """The text `check` returns: printed once by `check`, so a notebook does not echo it a second time."""

    def _ipython_display_(self):  # IPython calls this instead of showing the repr
        pass


CHECKS: dict[str, Callable] = {}
USAGE: dict[str, str] = {}


def _register(label: str, usage: str):
    def wrap(fn):
        CHECKS[label], USAGE[label] = fn, usage
        return fn
    return wrap


def check(exercise_id: str, answer, *, quiet: bool = False, **context) -> str:
    """Check `answer` to the exercise labelled `exercise_id`; print and return "correct" or a hint.

    `context` holds the chapter objects the check recomputes the answer from (see each exercise's text for
    the call). `quiet=True` returns the verdict without printing it.

    Example:
        >>> check("trash-ex-classweight", 1.9, images=train, class_name="trash")
    """
    if exercise_id not in CHECKS:
        raise ValueError(f"no check for exercise {exercise_id!r}; the known ids are: {', '.join(sorted(CHECKS))}.")
    fn = CHECKS[exercise_id]
    try:
        inspect.signature(fn).bind(answer, **context)
    except TypeError as err:
        raise TypeError(f"{err}; call it as {USAGE[exercise_id]}") from None
    try:
        hint = fn(answer, **context)
    except _Hint as err:  # the answer could not even be read (see _number)
        hint = str(err)
    verdict = Verdict(CORRECT if hint is None else hint)
    if not quiet:
        print(verdict)
    return verdict


# --------------------------------------------------------------------------- helpers
class _Hint(Exception):
    """Raised inside a check to give its message as the hint at once."""


def _number(answer, hint: str | None = None):
    """The answer as a float; when it is not a single finite number, None, or with `hint`, that hint (raised)."""
    value = None
    if not isinstance(answer, bool):
        try:
            value = float(np.asarray(answer).item())
        except (TypeError, ValueError):
            pass
    if value is not None and math.isfinite(value):
        return value
    if hint is not None:
        raise _Hint(hint)
    return None


def _close(a: float, b: float, *, rel: float = 0.0, abs_: float = 0.0) -> bool:
    return abs(a - b) <= max(abs_, rel * abs(b))


def _trainable_after(base, n: int, *, train_batchnorm: bool = False) -> int:
    """Trainable parameters with the top `n` blocks unfrozen; the base's own trainable flags are restored."""
    from .bases import unfreeze_top_blocks

    m = base.model
    saved = (m.trainable, [layer.trainable for layer in m.layers])
    try:
        return int(unfreeze_top_blocks(base, n, train_batchnorm=train_batchnorm, verbose=False)["trainable_params"])
    finally:
        m.trainable = saved[0]
        for layer, flag in zip(m.layers, saved[1]):
            layer.trainable = flag


def _best_row(frame, column: str, names: tuple[str, ...]):
    """(index labels of the rows where `column` peaks, the accepted answers, the peak value)."""
    values = frame[column].astype(float)
    peak = values.max()
    rows = list(values.index[values >= peak - 1e-12])
    accepted = set()
    for r in rows:
        accepted.add(r)
        for n in names:
            accepted.add(frame.loc[r, n])
    return rows, accepted, peak


def _pick_row(frame, answer, names: tuple[str, ...]):
    """The index label that `answer` names (an index label or a value of one of `names`), or None."""
    if answer in list(frame.index):
        return answer
    for n in names:
        hit = frame.index[frame[n] == answer]
        if len(hit):
            return hit[0]
    return None


# --------------------------------------------------------------------------- chapter 1
@_register("concepts-ex-scenario", 'tlh.check("concepts-ex-scenario", scenario)')
def _concepts_scenario(answer, *, n_per_class: int = 300, similarity="different"):
    """The weld-defect team: 300 images per class, X-ray images far from ImageNet's photos (the exercise's facts)."""
    from .formalism import recommend_strategy

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


@_register("concepts-ex-depth", 'tlh.check("concepts-ex-depth", layer_or_depth, by_depth=by_depth)')
def _concepts_depth(answer, *, by_depth):
    rows, accepted, peak = _best_row(by_depth, "probe accuracy", ("layer",))
    if isinstance(answer, (np.integer,)):
        answer = int(answer)
    if answer in accepted:
        return None
    row = _pick_row(by_depth, answer, ("layer",))
    if row is None:
        return "That is neither a depth (the table's index) nor a layer name of the `by_depth` table."
    gap = (peak - float(by_depth.loc[row, "probe accuracy"])) * 100
    if row == by_depth.index[-1]:
        return (f"The top of the base is not the best depth in this run: its probe scores {gap:.1f} points below "
                "the best one. Look at the whole 'probe accuracy' column.")
    return f"That depth's probe scores {gap:.1f} points below the best one: look at the whole 'probe accuracy' column."


@_register("concepts-ex-speed",
           'tlh.check("concepts-ex-speed", times_faster, comparison=comparison)')
def _concepts_speed(answer, *, comparison, fast: str = "own MobileNetV2, Imagenette",
                    slow: str = "EfficientNet-Lite0, ImageNet"):
    value = _number(answer, "Answer with one number: how many times more images per second the faster base processes.")
    expected = comparison.loc[fast, "images/s"] / comparison.loc[slow, "images/s"]
    if _close(value, expected, rel=0.05):
        return None
    if _close(value, 1 / expected, rel=0.05):
        return "You divided the other way round: a 'times faster' of the faster base is above 1."
    size_ratio = comparison.loc[slow, "parameters"] / comparison.loc[fast, "parameters"]
    if _close(value, size_ratio, rel=0.05):
        return "That is how many times smaller it is (the 'parameters' column); the question asks about speed."
    if _close(value, expected - 1, rel=0.05) or _close(value, (expected - 1) * 100, rel=0.05):
        return "That is how much faster in relative terms; give the ratio of the two speeds."
    return "Not the ratio of the two bases' speeds: use the 'images/s' column of `comparison`."


# --------------------------------------------------------------------------- chapter 2
@_register("formalism-ex-score", 'tlh.check("formalism-ex-score", trash_score, table=mid, target="TrashNet")')
def _formalism_score(answer, *, table, target: str = "TrashNet"):
    value = _number(answer, "Answer with one number, the similarity score.")
    ratio = float(table.loc[target, "MMD² ÷ reference"])
    expected = 1.0 / (1.0 + max(ratio, 0.0))
    if _close(value, expected, abs_=0.005):
        return None
    if not 0.0 <= value <= 1.0:
        return "A similarity score lies between 0 and 1: turn the ratio into a score with the chapter's formula."
    if _close(value, ratio, abs_=0.005):
        return "That is MMD² ÷ reference itself, the distance; the score is the chapter's function of it."
    if _close(value, 1.0 / (1.0 + float(table.loc[target, "MMD²"])), abs_=0.005):
        return "That score uses the raw MMD²; the chapter's score uses MMD² in units of the reference's."
    if _close(value, 1.0 - expected, abs_=0.005):
        return "That is one minus the score: the score is 1 for the source itself and falls as the distance grows."
    return f"Not the score of {target} in this table: check the row and the formula `1 / (1 + MMD² ÷ reference)`."


def _setting(same_task: bool, target_labels: bool, source_labels: bool = True) -> str:
    """The chapter's table of settings (after Pan and Yang, 2010)."""
    if not target_labels and not source_labels:
        return "unsupervised"
    if same_task and not target_labels:
        return "transductive"
    return "inductive"


@_register("formalism-ex-setting", 'tlh.check("formalism-ex-setting", setting)')
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


# --------------------------------------------------------------------------- chapter 3
@_register("cvd-ex-blocks", 'tlh.check("cvd-ex-blocks", n_params, base=base)')
def _cvd_blocks(answer, *, base, n_blocks: int = 2):
    value = _number(answer, "Answer with one number of parameters.")
    expected = _trainable_after(base, n_blocks)
    if value == expected:
        return None
    if value == _trainable_after(base, 1) and n_blocks != 1:
        return "That is the count for the top block alone; the question unfreezes the top two."
    if n_blocks > 1 and value == expected - _trainable_after(base, n_blocks - 1):
        return "That is what the second block adds; the question asks for everything that trains with both."
    if value == base.model.count_params():
        return "That counts the whole base, frozen layers included: only the unfrozen blocks train."
    if value == _trainable_after(base, n_blocks, train_batchnorm=True):
        return "That counts the BatchNormalization layers too, but unfreeze_top_blocks keeps them frozen."
    return "Not the number of parameters that train: read 'trainable_params' in the report unfreeze_top_blocks returns."


@_register("cvd-ex-pooling", 'tlh.check("cvd-ex-pooling", n_params, features_shape=x_train.shape[1:])')
def _cvd_pooling(answer, *, features_shape, n_classes: int = 2):
    from .builders import build_head

    value = _number(answer, "Answer with one number of parameters.")
    expected = build_head(tuple(features_shape), n_classes=n_classes, pooling="avg").count_params()
    if value == expected:
        return None
    if value == build_head(tuple(features_shape), n_classes=n_classes).count_params():
        return "That is the flattening head's count; the question asks about the head that averages each feature map."
    return "Not the averaging head's parameter count: ask the head itself with count_params()."


@_register("cvd-ex-gap", 'tlh.check("cvd-ex-gap", points, results=results)')
def _cvd_gap(answer, *, results):
    value = _number(answer, "Answer with one number: the difference in percentage points.")
    scratch = sorted(results[k].accuracy for k in ("from scratch", "from scratch + augmentation"))
    fe_small, fe = results["feature extraction (subset)"].accuracy, results["feature extraction"].accuracy
    expected = (fe_small - scratch[1]) * 100
    if _close(value, expected, abs_=0.5):
        return None
    if _close(value * 100, expected, abs_=0.5):
        return "Give the difference in percentage points (12.5 for 0.125), not as a fraction."
    if _close(value, -expected, abs_=0.5):
        return "The sign is the wrong way round: subtract the convnet from scratch from feature extraction."
    if _close(value, (fe_small - scratch[0]) * 100, abs_=0.5):
        return "Compare with the better of the two convnets from scratch, not the worse."
    if _close(value, (fe - scratch[1]) * 100, abs_=0.5) or _close(value, (fe - scratch[0]) * 100, abs_=0.5):
        return ("That uses the head trained on all the training photos; for a fair comparison use the head trained "
                "on the subset the convnets from scratch saw.")
    return "Not the gap between these rows of `results`: check which two rows you subtract."


# --------------------------------------------------------------------------- chapter 4
@_register("trash-ex-blocks", 'tlh.check("trash-ex-blocks", extra_params, base=base)')
def _trash_blocks(answer, *, base, fewer: int = 2, more: int = 3):
    value = _number(answer, "Answer with one number of parameters.")
    a, b = _trainable_after(base, fewer), _trainable_after(base, more)
    if value == b - a:
        return None
    if value == b:
        return f"That is everything that trains with {more} blocks; the question asks how many *more* than with {fewer}."
    if value == a:
        return f"That is the count with {fewer} blocks; the question asks what the next block down adds."
    if value == a - b:
        return "The sign is the wrong way round: unfreezing more blocks trains more parameters."
    return "Not the difference of the two reports' 'trainable_params': check both calls to unfreeze_top_blocks."


@_register("trash-ex-classweight",
           'tlh.check("trash-ex-classweight", weight, images=train, class_name="trash")')
def _trash_classweight(answer, *, images, class_name: str = "trash"):
    value = _number(answer, "Answer with one number, the class weight.")
    labels = np.asarray(images.labels, dtype=int)
    n, k = len(labels), len(images.class_names)
    n_c = int(np.sum(labels == list(images.class_names).index(class_name)))
    expected = n / (k * n_c)
    if _close(value, expected, rel=0.01, abs_=0.005):
        return None
    if _close(value, k * n_c / n, rel=0.01):
        return "That is the inverse: a rare class should get a weight above 1."
    if _close(value, n / n_c, rel=0.01):
        return "Divide by the number of classes too: the weights should average out over the classes."
    if _close(value, n_c / n, rel=0.01):
        return "That is the class's share of the training images, not its weight."
    return f"Not the weight of {class_name!r}: count n, k and n_c on the split you are weighting."


# --------------------------------------------------------------------------- chapter 5
def _grid(model, layer, image=None) -> tuple[int, int]:
    from .explain import activations

    if image is None:
        image = np.zeros(tuple(model.input_shape[1:]), "float32")
    return tuple(int(s) for s in activations(model, image, layer).shape[:2])


@_register("explain-ex-layer", 'tlh.check("explain-ex-layer", (height, width), model=model, layer=middle)')
def _explain_layer(answer, *, model, layer, image=None):
    expected = _grid(model, layer, image)
    try:
        got = tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        value = _number(answer)
        if value is not None and value == expected[0] * expected[1]:
            return "That is the number of positions; give the grid as (height, width)."
        return "Answer with the feature map's (height, width)."
    if got == expected:
        return None
    if len(got) == 3 and got[:2] == expected:
        return "Give the grid only, (height, width), without the number of channels."
    from .explain import last_conv_layer

    if got == _grid(model, last_conv_layer(model), image):
        return "That is the grid of the last convolutional layer, the one Grad-CAM uses by default; ask about `layer`."
    if got == tuple(int(s) for s in model.input_shape[1:3]):
        return "That is the input image's size; the layer's feature maps are smaller."
    return "Not that layer's grid: look at the shape of tlh.activations(model, image, layer)."


@_register("explain-ex-sparsity", 'tlh.check("explain-ex-sparsity", layer_name, sparsity=sparsity)')
def _explain_sparsity(answer, *, sparsity):
    rows, accepted, peak = _best_row(sparsity, "sparsity", ("layer", "measured"))
    if answer in accepted:
        return None
    row = _pick_row(sparsity, answer, ("layer", "measured"))
    if row is None:
        return "That is not a layer of the `sparsity` table: use its 'measured' (or 'layer') column."
    gap = (peak - float(sparsity.loc[row, "sparsity"])) * 100
    if float(sparsity.loc[row, "dead_fraction"]) == float(sparsity["dead_fraction"].max()) and gap > 0:
        return (f"That layer has the most dead channels, but its share of zero activations is {gap:.1f} points "
                "below the sparsest: the question is about the 'sparsity' column.")
    return f"That layer's share of zeros is {gap:.1f} points below the sparsest one: look at the whole 'sparsity' column."


# --------------------------------------------------------------------------- the source model
@_register("src-ex-halflife", 'tlh.check("src-ex-halflife", steps, momentum=0.999)')
def _src_halflife(answer, *, momentum: float):
    value = _number(answer, "Answer with one number of training steps.")
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"a BatchNormalization momentum lies strictly between 0 and 1, got {momentum}.")
    expected = math.log(0.5) / math.log(momentum)
    if abs(value - expected) <= max(1.0, 0.01 * expected):
        return None
    if _close(value, 1.0 / (1.0 - momentum), rel=0.01):
        return "That is the average's time constant, after which about 63% of the way is covered, not half of it."
    if _close(value, 0.5 / (1.0 - momentum), rel=0.01):
        return ("The steps compound: each one moves the running mean a fixed share of the distance that *remains*, "
                "not of the original distance.")
    return "Not the number of steps after which the running mean has covered half the way: write the remaining distance after k steps."


@_register("src-ex-share", 'tlh.check("src-ex-share", share, table=probe_table)')
def _src_share(answer, *, table, px: int = 96):
    value = _number(answer, "Answer with one number, the share as a fraction between 0 and 1.")
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
    if _close(value, expected, abs_=0.01):
        return None
    if _close(value / 100, expected, abs_=0.01):
        return "Give the share as a fraction (0.25 for 25%)."
    if _close(value, 1 - expected, abs_=0.01):
        return "That is the share of the gap still left; the question asks how much the ten classes closed."
    if expected != 0 and _close(value, 1 / expected, abs_=0.01):
        return "The fraction is upside down: what ten classes gained over random weights, over what ImageNet gained."
    return f"Not the share of the gap at {px} px: take each accuracy from the table's 'acc' column."
