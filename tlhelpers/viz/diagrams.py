"""Concept diagrams drawn with matplotlib: the pictures a chapter explains before it measures anything.

Each function draws boxes and arrows on an axes (made if not given) and returns it, like the other plots.

Example:
    >>> ax = diagram_swap_head()
    >>> ax = diagram_freezing()
    >>> ax = diagram_two_phase(head_epochs=10, finetune_epochs=20)
    >>> ax = diagram_domain_task()
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

FROZEN, TRAINS, NEW, MUTED = "#c9d6e8", "#f4a259", "#8cc084", "#dddddd"


def _axes(ax, size):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    ax.set_axis_off()
    return ax


def _box(ax, x, y, w, h, text, color, *, fontsize=9, hatch=None):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.05", fc=color, ec="#333333",
                                lw=1, hatch=hatch))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, *, color="#333333"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=color, lw=1.2))


def diagram_swap_head(n_blocks: int = 5, n_classes: int = 2, *, ax=None):
    """A pretrained network's convolutional base kept, its ImageNet classifier swapped for a new head.

    Example:
        >>> diagram_swap_head(n_classes=6)
    """
    ax = _axes(ax, (9, 3.2))
    _box(ax, 0.0, 1.2, 0.9, 0.8, "image", "white")
    for i in range(n_blocks):
        _box(ax, 1.2 + i * 0.75, 1.2, 0.6, 0.8, f"block\n{i + 1}", FROZEN)
    end = 1.2 + n_blocks * 0.75
    ax.text((1.2 + end - 0.15) / 2, 2.25, "convolutional base: kept (learned on ImageNet)", ha="center", fontsize=9)
    _box(ax, end + 0.3, 2.05, 1.5, 0.75, "ImageNet classifier\n1000 classes", MUTED, hatch="//")
    ax.plot([end + 0.3, end + 1.8], [2.05, 2.8], color="firebrick", lw=2)
    ax.plot([end + 0.3, end + 1.8], [2.8, 2.05], color="firebrick", lw=2)
    _box(ax, end + 0.3, 0.4, 1.5, 0.75, f"new head\n{n_classes} classes", NEW)
    _arrow(ax, (0.9, 1.6), (1.2, 1.6))
    _arrow(ax, (end - 0.15, 1.75), (end + 0.3, 2.4), color="#999999")
    _arrow(ax, (end - 0.15, 1.45), (end + 0.3, 0.8))
    ax.text(end + 1.05, 0.1, "trained on the target images", ha="center", fontsize=9)
    ax.set_xlim(-0.1, end + 2.0)
    ax.set_ylim(0, 3.0)
    return ax


def diagram_freezing(n_blocks: int = 5, *, ax=None):
    """Which blocks train in each way of reusing a base: frozen features, fine-tuning the top, from scratch.

    Example:
        >>> diagram_freezing(n_blocks=5)
    """
    ax = _axes(ax, (9, 3.4))
    rows = [("feature extraction", 0), ("fine-tuning the top block", 1), ("from scratch", n_blocks)]
    for r, (label, trains) in enumerate(rows):
        y = 2.4 - r * 1.0
        ax.text(0.0, y + 0.3, label, ha="left", va="center", fontsize=9)
        for i in range(n_blocks):
            color = TRAINS if i >= n_blocks - trains else FROZEN
            _box(ax, 2.4 + i * 0.75, y, 0.6, 0.6, f"block\n{i + 1}", color, fontsize=8)
        _box(ax, 2.4 + n_blocks * 0.75 + 0.1, y, 0.8, 0.6, "head", NEW, fontsize=8)
    x = 2.4 + n_blocks * 0.75 + 1.2
    for k, (color, text) in enumerate([(FROZEN, "frozen: pretrained, not updated"), (TRAINS, "trains"),
                                       (NEW, "new layers, train")]):
        _box(ax, x, 2.5 - k * 0.5, 0.3, 0.3, "", color)
        ax.text(x + 0.45, 2.65 - k * 0.5, text, va="center", fontsize=8)
    ax.set_xlim(-0.1, x + 3.3)
    ax.set_ylim(0.2, 3.2)
    return ax


def diagram_two_phase(head_epochs: int, finetune_epochs: int, *, head_lr: str = "10⁻³ (RMSprop)",
                      finetune_lr: str = "10⁻⁴ (SGD, momentum 0.9)", ax=None):
    """The two-phase schedule on a timeline of epochs: the head alone, then the top blocks with it.

    Example:
        >>> diagram_two_phase(head_epochs=10, finetune_epochs=20)
    """
    if head_epochs < 1 or finetune_epochs < 1:
        raise ValueError(f"diagram_two_phase: expected at least one epoch per phase; received {head_epochs} and "
                         f"{finetune_epochs}.")
    ax = _axes(ax, (9, 2.6))
    total = head_epochs + finetune_epochs
    w = 8.0 / total
    _box(ax, 0.5, 1.0, head_epochs * w, 0.7, f"phase 1: head only, base frozen\nlearning rate {head_lr}", NEW)
    _box(ax, 0.5 + head_epochs * w, 1.0, finetune_epochs * w, 0.7,
         f"phase 2: top blocks + head, BatchNorm frozen\nlearning rate {finetune_lr}", TRAINS)
    for e in (0, head_epochs, total):
        ax.plot([0.5 + e * w] * 2, [0.8, 0.95], color="#333333", lw=1)
        ax.text(0.5 + e * w, 0.55, str(e), ha="center", fontsize=9)
    ax.text(0.5 + 4.0, 0.15, "epochs", ha="center", fontsize=9)
    ax.text(0.5 + head_epochs * w, 2.0, "recompile", ha="center", fontsize=9, color="firebrick")
    _arrow(ax, (0.5 + head_epochs * w, 1.95), (0.5 + head_epochs * w, 1.75), color="firebrick")
    ax.set_xlim(0, 9)
    ax.set_ylim(0, 2.4)
    return ax


def diagram_domain_task(*, source: str = "ImageNet photos", target: str = "your photos", ax=None):
    """Pan & Yang's picture: a source and a target, each a domain {X, P(X)} and a task {Y, f}.

    Example:
        >>> diagram_domain_task(source="ImageNet", target="TrashNet")
    """
    ax = _axes(ax, (9, 3.6))
    for col, (name, color) in enumerate([(f"source: {source}", FROZEN), (f"target: {target}", NEW)]):
        x = 0.3 + col * 4.6
        ax.text(x + 1.9, 3.3, name, ha="center", fontsize=10, weight="bold")
        s = "S" if col == 0 else "T"
        _box(ax, x, 1.8, 3.8, 1.1, f"domain $\\mathcal{{D}}_{s} = \\{{\\mathcal{{X}}_{s}, P(X_{s})\\}}$\n"
                                  "inputs and how often each occurs", color)
        _box(ax, x, 0.3, 3.8, 1.1, f"task $\\mathcal{{T}}_{s} = \\{{\\mathcal{{Y}}_{s}, f_{s}\\}}$\n"
                                  "labels and the function to learn", color)
    _arrow(ax, (4.15, 1.5), (4.85, 1.5))
    ax.text(4.5, 1.75, "transfer", ha="center", fontsize=9)
    ax.set_xlim(0, 9)
    ax.set_ylim(0, 3.6)
    return ax
