"""The machinery of the exercise checks: the registry, `check`, and what the chapter checks share (reading answers)."""

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


def register(label: str, usage: str):
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
    except Hint as err:  # the answer could not even be read (see number)
        hint = str(err)
    verdict = Verdict(CORRECT if hint is None else hint)
    if not quiet:
        print(verdict)
    return verdict



class Hint(Exception):
    """Raised inside a check to give its message as the hint at once."""


def number(answer, hint: str | None = None):
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
        raise Hint(hint)
    return None


def close(a: float, b: float, *, rel: float = 0.0, abs_: float = 0.0) -> bool:
    return abs(a - b) <= max(abs_, rel * abs(b))


def trainable_after(base, n: int, *, train_batchnorm: bool = False) -> int:
    """Trainable parameters with the top `n` blocks unfrozen; the base's own trainable flags are restored."""
    from ..freezing import unfreeze_top_blocks

    m = base.model
    saved = (m.trainable, [layer.trainable for layer in m.layers])
    try:
        return int(unfreeze_top_blocks(base, n, train_batchnorm=train_batchnorm, verbose=False)["trainable_params"])
    finally:
        m.trainable = saved[0]
        for layer, flag in zip(m.layers, saved[1]):
            layer.trainable = flag


def best_row(frame, column: str, names: tuple[str, ...]):
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


def pick_row(frame, answer, names: tuple[str, ...]):
    """The index label that `answer` names (an index label or a value of one of `names`), or None."""
    if answer in list(frame.index):
        return answer
    for n in names:
        hit = frame.index[frame[n] == answer]
        if len(hit):
            return hit[0]
    return None
