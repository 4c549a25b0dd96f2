"""The words a chapter's verdict glues in follow the measured numbers, never the other way round."""

import sys

import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers.evaluation import Evaluation


def _evaluation(correct: int, n: int = 1000) -> Evaluation:
    """An Evaluation of n two-class predictions, `correct` of them right."""
    y_true = np.zeros(n, dtype=int)
    y_prob = np.tile([1.0, 0.0], (n, 1))
    y_prob[correct:] = [0.0, 1.0]
    return Evaluation(classes=["a", "b"], y_true=y_true, y_prob=y_prob)


def test_change_reads_the_gap_against_the_test_sets_noise():
    base = _evaluation(800)
    assert tlh.change(_evaluation(900), base) == "raised"
    assert tlh.change(_evaluation(700), base) == "lowered"
    assert tlh.change(_evaluation(805), base) == "did not clearly change"  # 0.5 points, inside ±2.5
    assert tlh.difference(_evaluation(805), base) == 0
    assert tlh.change(_evaluation(900), base, words=("beat", "trailed", "matched")) == "beat"


def test_either_picks_the_alternative_the_condition_supports():
    assert tlh.either(0.95 >= 0.9, "above", "below") == "above"
    assert tlh.either(0.85 >= 0.9, "above", "below") == "below"


class _Base:
    def __init__(self, weights, imagenet, offline):
        self.weights, self.imagenet, self.offline, self.name = weights, imagenet, offline, "EfficientNet-Lite0"


@pytest.mark.parametrize("weights, imagenet, offline, warning", [
    ("EfficientNet-Lite0, ImageNet weights — offline stand-in for vgg16", True, False, None),
    ("offline source model (Imagenette)", False, True, "Imagenette"),
    ("random init", False, False, "randomly initialised"),
])
def test_weights_note_names_the_weights_and_warns_unless_imagenet(weights, imagenet, offline, warning):
    note = tlh.weights_note(_Base(weights, imagenet, offline))
    assert f"**{weights}**" in note
    if warning is None:
        assert note.endswith("**.") and "care" not in note  # one sentence, no caveat
    else:
        assert warning in note


def test_glue_values_formats_each_kind_and_keys_with_hyphens():
    fe = _evaluation(958)
    texts = tlh.glue_values("t", fe=fe, share=0.5, big_n=1600, ratio=2.5, name="top_conv")
    assert texts == {"t-fe": fe.summary(), "t-share": "50.0%", "t-big-n": "1,600", "t-ratio": "2.5",
                     "t-name": "top_conv"}
    assert tlh.glue_markdown("t", note="**bold**") == {"t-note": "**bold**"}


def test_weights_note_names_the_architecture_of_plain_imagenet_weights():
    assert tlh.weights_note(_Base("imagenet", True, False)) == \
        "These numbers were measured with **EfficientNet-Lite0, ImageNet weights**."


def _without_myst_nb(monkeypatch):
    """Make `import myst_nb` fail, as it does on Colab (no book toolchain there)."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ModuleNotFoundError("No module named 'myst_nb'", name="myst_nb")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "myst_nb", raising=False)
    monkeypatch.delitem(sys.modules, "myst_nb.core.render", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_glue_helpers_work_without_myst_nb(monkeypatch):
    _without_myst_nb(monkeypatch)
    with pytest.raises(ModuleNotFoundError):
        import myst_nb  # noqa: F401
    texts = tlh.glue_values("t", share=0.25, n=1600)
    assert texts == {"t-share": "25.0%", "t-n": "1,600"}
    assert tlh.glue_markdown("t", note="**bold**") == {"t-note": "**bold**"}


def test_glued_values_show_as_a_table_of_what_each_role_stands_for():
    texts = tlh.glue_values("t", share=0.25, note="a | b\nc")
    table = texts.table()
    assert "| `t-share` | 25.0% |" in table
    assert "| `t-note` | a &#124; b c |" in table  # one row per value, no broken table
    assert table.startswith("**Numbers quoted in the text below**")


def test_glue_values_shows_the_table_in_a_kernel_without_myst_nb(monkeypatch):
    """What a Colab learner sees: the values, since the markdown's {glue:text} roles stay unrendered there."""
    _without_myst_nb(monkeypatch)
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    tlh.glue_values("cvd", fe=0.958)
    assert len(shown) == 1 and "| `cvd-fe` | 95.8% |" in shown[0].data


def test_difference_is_the_paired_test_and_glues_a_comparison():
    base = _evaluation(800)
    assert tlh.difference(_evaluation(820), base) == 1  # 20 one-way disagreements: p < 0.001
    assert tlh.difference(_evaluation(804), base) == 0  # 4: p = 0.125
    c = tlh.compare(_evaluation(820), base)
    assert tlh.glue_values("t", gain=c) == {"t-gain": c.summary()}
