"""The concept diagrams draw what their captions say: the boxes' texts and colours are checked on the axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import tlhelpers as tlh  # noqa: E402
from tlhelpers.viz import diagrams  # noqa: E402


def texts(ax):
    return [t.get_text() for t in ax.texts]


def box_colours(ax):
    return [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches if hasattr(p, "get_boxstyle")]


def test_swap_head_keeps_the_base_and_replaces_the_classifier():
    ax = tlh.diagram_swap_head(n_blocks=5, n_classes=6)
    shown = texts(ax)
    assert [t for t in shown if t.startswith("block")] == [f"block\n{i}" for i in range(1, 6)]
    assert "ImageNet classifier\n1000 classes" in shown and "new head\n6 classes" in shown
    assert len(ax.lines) == 2  # the cross over the ImageNet classifier
    plt.close("all")


@pytest.mark.parametrize("n_blocks", [3, 5])
def test_freezing_shows_which_blocks_train_in_each_way(n_blocks):
    ax = tlh.diagram_freezing(n_blocks=n_blocks)
    colours = box_colours(ax)
    rows = [colours[r * (n_blocks + 1):r * (n_blocks + 1) + n_blocks] for r in range(3)]
    trains = [sum(c == diagrams.TRAINS for c in row) for row in rows]
    assert trains == [0, 1, n_blocks]  # feature extraction, fine-tuning the top block, from scratch
    assert {"feature extraction", "fine-tuning the top block", "from scratch"} <= set(texts(ax))
    plt.close("all")


def test_two_phase_timeline_is_proportional_to_the_epochs():
    ax = tlh.diagram_two_phase(head_epochs=10, finetune_epochs=20)
    phase1, phase2 = [p for p in ax.patches if hasattr(p, "get_boxstyle")][:2]
    assert phase2.get_width() == pytest.approx(2 * phase1.get_width())
    assert {"0", "10", "30"} <= set(texts(ax)) and "recompile" in texts(ax)
    with pytest.raises(ValueError, match="at least one epoch"):
        tlh.diagram_two_phase(head_epochs=0, finetune_epochs=3)
    plt.close("all")


def test_domain_task_names_both_pairs_for_source_and_target():
    ax = tlh.diagram_domain_task(source="ImageNet", target="TrashNet")
    shown = "\n".join(texts(ax))
    assert "source: ImageNet" in shown and "target: TrashNet" in shown
    for s in "ST":
        assert f"\\mathcal{{D}}_{s}" in shown and f"\\mathcal{{T}}_{s}" in shown
    plt.close("all")
