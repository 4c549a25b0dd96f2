"""Auto-checks for the chapters' exercises: `check(exercise_id, answer, **context)` says "correct" or gives a hint.

Every check recomputes the expected answer from the objects the learner passes (the chapter's base, its results,
its tables), never from a stored constant, so it stays right whatever the profile, the weights or the run:

    >>> tlh.check("cvd-ex-blocks", n_params, base=base)
    correct

A wrong answer gets a hint that says what is off without giving the answer away. Measured numbers are compared
with a tolerance. `CHECKS` maps each exercise label to its check; an unknown label raises ValueError.
"""

from . import concepts, cvd, explain, formalism, keras_models, src, trash  # noqa: F401, E402  (importing them registers their checks)
from ._core import CHECKS, CORRECT, USAGE, Verdict, check  # noqa: F401
