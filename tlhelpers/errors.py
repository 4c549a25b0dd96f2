"""Errors a reader can act on: argument checks at the boundary of the public helpers, and short notebook errors.

The checks raise TypeError/ValueError in Keras's style, naming the argument, what was given and
what is expected, so a wrong call in a notebook fails at the call and not deep inside TensorFlow.

Example:
    >>> check_int("image_size", "160", minimum=32, where="load_base")
    Traceback (most recent call last):
    TypeError: load_base: expected `image_size` to be an integer of at least 32; received image_size='160' (str).
"""

from __future__ import annotations

import numbers
import os


class CourseError(RuntimeError):
    """An error whose one-line message says what to do; in Jupyter it is shown without the traceback."""

    def _render_traceback_(self):  # IPython calls this instead of printing the stack
        return [f"{type(self).__name__}: {self}"]


class DatasetUnavailableError(CourseError):
    """A course dataset is neither on disk nor downloadable: the message says how to provide it."""


def _received(name: str, value) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"received {name}={shown} ({type(value).__name__})"


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              where: str | None = None, what: str = "") -> int:
    """Return `value` as an int if it is an integer within [minimum, maximum]; else raise TypeError/ValueError."""
    bounds = (f" of at least {minimum}" if maximum is None else f" between {minimum} and {maximum}") \
        if minimum is not None else (f" of at most {maximum}" if maximum is not None else "")
    expected = f"expected `{name}` to be an integer{bounds}{what}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(where)}{expected}; {_received(name, value)}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{_prefix(where)}{expected}; {_received(name, value)}.")
    return value


def check_type(name: str, value, types, expected: str, *, where: str | None = None, hint: str = ""):
    """Return `value` if it is an instance of `types`; else raise TypeError naming the argument."""
    if not isinstance(value, types):
        hint = f" {hint}" if hint else ""
        raise TypeError(f"{_prefix(where)}expected `{name}` to be {expected}; {_received(name, value)}.{hint}")
    return value


def check_paths(name: str, value, *, where: str | None = None) -> list:
    """Return `value` (a list, tuple or other iterable of paths) as a list; a lone string or path is refused."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{_prefix(where)}expected `{name}` to be a list of image paths; {_received(name, value)}. "
                        f"Wrap one path in a list: [{value!r}].")
    try:
        paths = list(value)
    except TypeError:
        raise TypeError(f"{_prefix(where)}expected `{name}` to be a list of image paths; "
                        f"{_received(name, value)}.") from None
    for p in paths:
        if not isinstance(p, (str, bytes, os.PathLike)):
            raise TypeError(f"{_prefix(where)}expected every item of `{name}` to be a path (str or Path); "
                            f"{_received('item', p)}.")
    return paths


def shown(path) -> str:
    """`path` as one printable line: bytes that are not UTF-8 shown as \\xNN, control characters as \\n, \\t, ..."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # a newline in a name keeps one line
