"""What a chapter's verdict glues into its markdown: numbers, and the one sentence of several that the run supports.

The prose lives in the chapter's markdown and glues numbers (`glue_values`). Where a sentence depends on the
outcome, the hidden cell beside the assert writes each alternative out whole and glues the one that holds
(`glue_markdown` with `either`, or a dict keyed by `difference`), so the page reads as written sentences, never as
clauses assembled word by word, and can never claim more than the run measured.

Example:
    >>> glue_values("cvd", fe=results["feature extraction"], epochs=5)   # {glue:text}`cvd-fe`, {glue:text}`cvd-epochs`
    >>> glue_markdown("cvd", ft_verdict={1: "Fine-tuning paid off.", -1: "It cost accuracy.",
    ...                                  0: "The change is inside the noise."}[difference(ft, fe)])
"""

from __future__ import annotations

UP, DOWN, SAME = "raised", "lowered", "did not clearly change"


def difference(new, old) -> int:
    """+1 when `new` scored clearly above `old`, -1 clearly below, 0 when the paired test cannot tell them apart.

    Both are `Evaluation`s of the same images. "Clearly" is the course's one rule: McNemar's exact test on the images
    where exactly one of the two is right gives p < 0.05 (`tlhelpers.stats.compare`).

    Example:
        >>> difference(results["fine-tuning"], results["feature extraction"])
        0
    """
    from .stats import compare

    return compare(new, old).sign


def change(new, old, *, words: tuple = (UP, DOWN, SAME)) -> str:
    """The verb for how `new` compares with `old`: 'raised', 'lowered' or 'did not clearly change' (see `difference`).

    `words` replaces the three verbs (up, down, same), e.g. ("beat", "trailed", "matched").

    Example:
        >>> f"Augmentation {change(aug, plain)} test accuracy"
        'Augmentation raised test accuracy'
    """
    up, down, same = words
    return {1: up, -1: down, 0: same}[difference(new, old)]


def either(condition, yes: str, no: str) -> str:
    """`yes` when `condition` holds, else `no`: the two alternatives of a result that can go either way.

    Write each alternative as a whole sentence and glue it with `glue_markdown`.

    Example:
        >>> either(acc >= 0.9, "The model clears 90%.", "The model stays below 90%.")
        'The model clears 90%.'
    """
    return yes if condition else no


def weights_note(base) -> str:
    """One markdown sentence naming the weights behind a chapter's numbers, with a warning unless they are ImageNet's.

    Example:
        >>> weights_note(base)
        'These numbers were measured with **EfficientNet-Lite0, ImageNet weights — offline stand-in for vgg16**.'
    """
    label = f"{base.name}, ImageNet weights" if base.weights == "imagenet" else base.weights
    text = f"These numbers were measured with **{label}**."
    if base.imagenet:
        return text
    if base.offline:
        return text + (" That is the course's own Imagenette model, the last resort when no ImageNet weights could be"
                       " loaded: it transfers far less than ImageNet weights, so read the comparisons below with care.")
    return text + (" The base is randomly initialised, so the rows that reuse it had nothing to reuse: this run"
                   " checks that the code works, it does not show transfer.")


class Glued(dict):
    """{key: text} of what was glued; silent when it ends a cell (`glue_values` has already shown the table)."""

    def _ipython_display_(self):
        pass

    def table(self) -> str:
        """The glued values as a markdown table: what the `{glue:...}` roles below stand for."""
        rows = "\n".join(f"| `{key}` | {' '.join(text.split()).replace('|', '&#124;')} |" for key, text in self.items())
        return f"**Numbers quoted in the text below**\n\n| name | value |\n|---|---|\n{rows}\n"


def _glue(texts: Glued, markdown: bool = False) -> Glued:
    """Glue each text with myst_nb where it is installed (book builds), and show the learner the table of values.

    Outside a book build (Colab, Jupyter, VS Code) the markdown keeps its `{glue:text}` roles unrendered; the table
    says what each stands for. In the book the cells that glue are removed, so the table never shows there.
    """
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # plain Python: nothing to glue into, nobody to show
        return texts
    try:
        from myst_nb import glue
    except ImportError:  # Colab and other Jupyter set-ups without the book's toolchain
        glue = None
    for key, text in texts.items():
        if glue is not None:
            glue(key, Markdown(text) if markdown else text, display=False)
    if get_ipython() is not None:
        display(Markdown(texts.table()))
    return texts


def _text(value) -> str:
    if hasattr(value, "summary") and (hasattr(value, "interval") or hasattr(value, "p_value")):
        return value.summary()
    if isinstance(value, float):
        return f"{value:.1%}" if 0.0 <= value <= 1.0 else f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def glue_values(prefix: str, **values) -> dict:
    """Glue each value as text under `prefix-name` (underscores become hyphens) for `{glue:text}` in the markdown.

    An `Evaluation` or a `Comparison` is glued as its `summary()`, a float in [0, 1] as a percentage with one decimal, other
    floats with three significant digits, an int with thousands separators, anything else as `str`.
    Format a value yourself (pass a str) when it needs another form. Returns {key: text}. In a notebook it also
    shows them as a table; myst_nb is needed only to glue (book builds): without it (Colab) they are only shown.

    Example:
        >>> glue_values("cvd", fe=results["feature extraction"], n_train=1600)
        {'cvd-fe': '95.8% (95% CI 94.4–96.9%, 1000 images)', 'cvd-n-train': '1,600'}
    """
    return _glue(Glued({f"{prefix}-{name.replace('_', '-')}": _text(value) for name, value in values.items()}))


def glue_markdown(prefix: str, **texts: str) -> dict:
    """Glue each markdown text under `prefix-name` for `{glue:md}` (a sentence from `weights_note`, say).

    Example:
        >>> glue_markdown("cvd", weights=weights_note(base))   # {glue:md}`cvd-weights` in the markdown
    """
    return _glue(Glued({f"{prefix}-{name.replace('_', '-')}": str(text) for name, text in texts.items()}), markdown=True)
