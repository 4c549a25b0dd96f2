"""Plots of chapter 2's measurements: how far each target domain is from the source."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import _axes


def plot_domain_similarity(table, *, axes=None):
    """Two bar charts of `domain_similarity`'s table: MMD² and proxy A-distance, with their intervals."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    names = list(table.index)
    y = np.arange(len(names))
    for ax, col, label in zip(axes, ("MMD²", "PAD"), ("MMD² (RBF kernel)", "proxy A-distance")):
        est = table[col].astype(float).to_numpy()
        low = est - table[f"{col} low"].astype(float).to_numpy()
        high = table[f"{col} high"].astype(float).to_numpy() - est
        ax.barh(y, est, xerr=[np.maximum(low, 0), np.maximum(high, 0)], color="#6fa8dc", capsize=4)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[1].set_xlim(0, 2.05)
    axes[1].set_yticklabels([])
    return axes


def plot_relative_similarity(tables: dict, *, reference: str, ax=None):
    """Horizontal bars: each dataset's MMD² in units of the reference pair's, one group of bars per depth.

    `tables` maps a depth's label to a table of `calibrate_similarity` (column "MMD² ÷ reference",
    with "÷ low" and "÷ high" for its interval). The x axis is linear up to 1 and logarithmic beyond
    (symlog), so that a control near 0 and targets many times the reference fit on one axis; a
    dashed line marks the reference.

    Example:
        >>> plot_relative_similarity({"middle": mid, "top": top}, reference="other Imagenette classes")
    """
    names = list(next(iter(tables.values())).index)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax = _axes(ax, figsize=(9.5, 1.0 + 0.45 * len(names) * len(tables)))
    largest = 1.0
    y = np.arange(len(names))
    height = 0.8 / len(tables)
    for k, (depth, table) in enumerate(tables.items()):
        est = table.loc[names, "MMD² ÷ reference"].astype(float).to_numpy()
        low = np.maximum(est - table.loc[names, "÷ low"].astype(float).to_numpy(), 0)
        high = np.maximum(table.loc[names, "÷ high"].astype(float).to_numpy() - est, 0)
        ax.barh(y + (k - (len(tables) - 1) / 2) * height, est, height=height * 0.95, xerr=[low, high], capsize=3,
                label=depth)
        largest = max(largest, float(np.max(est + high)))
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(1, color="k", ls="--", lw=1, label=f"{reference} = 1")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(-0.5, largest * 1.3)
    ax.xaxis.set_major_locator(FixedLocator([t for t in (0, 0.5, 1, 2, 5, 10, 20, 50, 100, 200) if t <= largest * 1.3]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("MMD² to the source sample, in units of the reference's (linear to 1, logarithmic beyond)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", title="features from", title_fontsize="small", loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_transferability(table, *, ax=None):
    """Linear-probe accuracy by depth (the table of `transferability`), layer names on the x axis."""
    ax = _axes(ax, figsize=(8, 3.8))
    ax.plot(table.index, table["probe accuracy"], "-o")
    best = table["probe accuracy"].idxmax()
    ax.plot([best], [table.loc[best, "probe accuracy"]], "o", ms=12, mfc="none", mew=2, color="firebrick",
            label="best depth")
    ax.set_xticks(table.index, table["layer"], rotation=60, ha="right", fontsize="small")
    ax.set_xlabel("features taken at the end of")
    ax.set_ylabel("linear-probe test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
