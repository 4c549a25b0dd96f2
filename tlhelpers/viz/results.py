"""Plots of data and results: example images, augmentations, learning curves, confusion, comparisons."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import _axes, _grid


def plot_images(images, titles=None, *, ncols: int = 4, size: float = 2.2, colors=None):
    """A grid of images (array N×H×W×3 in [0, 255]) with optional titles; returns the axes array."""
    images = np.asarray(images)
    n = len(images)
    axes = _grid(n, ncols, size)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.clip(images[i], 0, 255).astype("uint8"))
            if titles is not None:
                ax.set_title(titles[i], fontsize="small", color=(colors[i] if colors else "black"))
    return axes


def plot_examples(images, *, n: int = 8, image_size: int = 160, ncols: int = 4, seed: int = 0):
    """A few random images of an ImageSet, titled with their class."""
    from ..images import load_images

    idx = np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False)
    pixels = load_images([images.paths[i] for i in idx], image_size=image_size)
    return plot_images(pixels, [images.class_names[images.labels[i]] for i in idx], ncols=ncols)


def plot_augmentations(augment, image, *, n: int = 8, ncols: int = 4):
    """`n` random augmentations of one image (H×W×3 in [0, 255]); the first panel is the original.

    The augmentations draw on Keras's global random state (seed it once, at the top of a notebook).
    """
    batch = np.repeat(np.asarray(image, dtype="float32")[None], n - 1, axis=0)
    out = np.asarray(augment(batch, training=True))
    return plot_images(np.concatenate([np.asarray(image)[None], out]), ["original"] + [f"augmented {i}" for i in range(1, n)], ncols=ncols)


def plot_misclassified(evaluation, images, *, n: int = 8, image_size: int = 160, ncols: int = 4):
    """The `n` most confident mistakes of an Evaluation, titled 'true → predicted (p)'."""
    from ..images import load_images

    idx = evaluation.misclassified()[:n]
    if len(idx) == 0:
        ax = _axes(None, figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return np.array([[ax]])
    pixels = load_images([images.paths[i] for i in idx], image_size=image_size)
    cls = evaluation.classes
    titles = [f"{cls[evaluation.y_true[i]]} → {cls[evaluation.y_pred[i]]} ({evaluation.y_prob[i].max():.2f})" for i in idx]
    return plot_images(pixels, titles, ncols=ncols, colors=["firebrick"] * len(idx))


def plot_confusion(matrix, classes, *, ax=None, normalize: bool = False):
    """A confusion matrix as an annotated heatmap (rows: true class, columns: predicted)."""
    m = np.asarray(matrix, dtype=float)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax = _axes(ax, figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    return ax


def plot_history(histories: dict, *, metric: str = "accuracy", ax=None):
    """Training (dashed) and validation (solid) curves of several runs on one axes.

    A history with `phase_boundary` gets a dotted vertical line where phase 2 starts.
    """
    ax = _axes(ax)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, h), color in zip(histories.items(), colors * 3):
        epochs = np.arange(1, len(h[metric]) + 1)
        ax.plot(epochs, h[metric], "--", color=color, alpha=0.7, label=f"{name} (train)")
        if f"val_{metric}" in h:
            ax.plot(epochs, h[f"val_{metric}"], "-o", color=color, ms=3, label=f"{name} (validation)")
        if "phase_boundary" in h:
            ax.axvline(h["phase_boundary"] + 0.5, color=color, ls=":", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return ax


def plot_history_grid(histories: dict, *, metric: str = "accuracy", ncols: int = 3, sharey: bool = True):
    """One small panel per run: training (dashed) and validation (solid) `metric` by epoch."""
    n = len(histories)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), sharey=sharey, squeeze=False,
                             layout="constrained")
    for ax, (name, h) in zip(axes.flat, histories.items()):
        plot_history({name: h}, metric=metric, ax=ax)
        ax.set_title(name)
        ax.legend().remove()
    for ax in axes.flat[n:]:
        ax.axis("off")
    handles, _ = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, ["training", "validation"], loc="outside lower center", ncols=2)
    return axes


def plot_transfer_effects(histories: dict, effects, *, metric: str = "val_accuracy", ax=None):
    """Validation curves of several runs with each run's start, initial slope and asymptote marked.

    `effects` is the table of `transfer_effects(histories)`.
    """
    ax = _axes(ax, figsize=(7, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, h), color in zip(histories.items(), colors * 3):
        v = np.asarray(h[metric], dtype=float)
        epochs = np.arange(1, len(v) + 1)
        ax.plot(epochs, v, "-o", color=color, ms=3, label=name)
        start, slope, asym = effects.loc[name, ["start", "slope", "asymptote"]]
        half = max(2, (len(v) + 1) // 2)
        ax.plot([1], [start], "s", color=color, ms=9, mfc="none", mew=2)
        ax.plot([1, half], [start, start + slope * (half - 1)], ":", color=color, lw=2)
        ax.hlines(asym, len(v) - 1, len(v), color=color, lw=4, alpha=0.5)
    ax.plot([], [], "ks", mfc="none", mew=2, label="start")
    ax.plot([], [], "k:", lw=2, label="initial slope")
    ax.plot([], [], "k-", lw=4, alpha=0.5, label="asymptote")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("val_", "validation ").replace("_", " "))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small", ncols=2)
    return ax


def plot_accuracy_by_size(tables: dict, *, sharey: bool = True):
    """One panel per target: test accuracy against training images per class, one line per strategy.

    `tables` maps a target's name to the DataFrame of `accuracy_by_size` (or `probe_by_size`); where a
    table has "ci low" and "ci high" columns, each line gets its 95% interval as a band.
    """
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.6), sharey=sharey, squeeze=False,
                             layout="constrained")
    for ax, (target, frame) in zip(axes.flat, tables.items()):
        for strategy, part in frame.groupby("strategy", sort=False):
            part = part.sort_values("images per class")
            line, = ax.plot(part["images per class"], part["test accuracy"].astype(float), "-o", label=strategy)
            if {"ci low", "ci high"} <= set(part.columns):  # a 95% interval per point, where the table has one
                ax.fill_between(part["images per class"], part["ci low"].astype(float), part["ci high"].astype(float),
                                color=line.get_color(), alpha=0.2, lw=0)
                if len(part) == 1:
                    ax.errorbar(part["images per class"], part["test accuracy"].astype(float),
                                yerr=[part["test accuracy"] - part["ci low"], part["ci high"] - part["test accuracy"]],
                                color=line.get_color(), capsize=4)
        ax.set_xscale("log")
        sizes = sorted(frame["images per class"].unique())
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_title(target)
        ax.set_xlabel("training images per class")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("test accuracy")
    axes.flat[0].legend(fontsize="small")
    return axes


def plot_base_comparison(table, *, ax=None):
    """Accuracy (with its 95% interval) against images per second, marker area by parameters, one point per base.

    `table` is `compare_bases`'s. The x axis is logarithmic; each point is labelled with its base
    and its size in millions of parameters (labels of points that sit close together are stacked).

    Example:
        >>> plot_base_comparison(compare_bases(bases, train, test))
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax = _axes(ax, figsize=(7.5, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    biggest = float(table["parameters"].max())
    span = max(float(table["ci high"].max() - table["ci low"].min()), 0.05)
    placed = []  # (speed, accuracy) of the points labelled so far
    order = table.assign(_color=(colors * (len(table) // len(colors) + 1))[:len(table)])
    for label, row in order.sort_values("test accuracy", ascending=False).iterrows():
        acc, speed, color = float(row["test accuracy"]), float(row["images/s"]), row["_color"]
        ax.errorbar(speed, acc, yerr=[[acc - row["ci low"]], [row["ci high"] - acc]], fmt="none", ecolor=color,
                    capsize=4)
        ax.scatter(speed, acc, s=60 + 540 * row["parameters"] / biggest, color=color, alpha=0.7, edgecolor="k",
                   zorder=3)
        crowd = sum(1 for s, a in placed if abs(np.log(s / speed)) < 0.4 and abs(a - acc) < 0.12 * span)
        ax.annotate(f"{label}\n{row['parameters'] / 1e6:.1f} M parameters", (speed, acc), textcoords="offset points",
                    xytext=(16, -4 - 26 * crowd), fontsize="small", va="top")
        placed.append((speed, acc))
    ax.set_xscale("log")
    ax.set_xlim(table["images/s"].min() / 1.4, table["images/s"].max() * 3.2)  # room for the labels on the right
    ax.set_ylim(table["ci low"].min() - 0.25 * span, table["ci high"].max() + 0.08 * span)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("images per second (forward pass of the base, this machine)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    return ax


def plot_scenarios(*, ax=None):
    """The four scenarios of dataset size x similarity as a 2 x 2 chart, with each one's strategy.

    The advice is `recommend_strategy`'s, so the figure and the function never disagree.
    """
    import textwrap

    from ..formalism import recommend_strategy

    ax = _axes(ax, figsize=(8, 5.5))
    cells = {(0, 1): (100, "similar"), (1, 1): (5000, "similar"), (0, 0): (100, "different"), (1, 0): (5000, "different")}
    colors = {(0, 1): "#d9ead3", (1, 1): "#b6d7a8", (0, 0): "#f4cccc", (1, 0): "#fce5cd"}
    for (col, row), (n, sim) in cells.items():
        rec = recommend_strategy(n, sim)
        ax.add_patch(plt.Rectangle((col, row), 1, 1, facecolor=colors[(col, row)], edgecolor="white", lw=3))
        ax.text(col + 0.5, row + 0.86, rec.scenario, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(col + 0.5, row + 0.45, textwrap.fill(rec.advice, 34), ha="center", va="center", fontsize=8.5)
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.set_xticks([0.5, 1.5], ["small target dataset", "large target dataset"])
    ax.set_yticks([0.5, 1.5], ["different\nfrom source", "similar\nto source"])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return ax
