"""Plots for the chapters: each function draws on an axes (made if not given) and returns it.

The one exception is `explorer`, an ipywidgets panel for live notebooks that redraws Grad-CAM
and a channel's activations as you pick an image, a layer, a channel and a class.

Example:
    >>> ax = plot_history({"from scratch": h1, "features": h2})
    >>> plot_confusion(result.confusion, result.classes)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:  # for annotations only: drawing needs no Keras
    import keras


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _grid(n: int, ncols: int, size: float):
    """An array of enough square-ish axes for `n` panels, `ncols` per row."""
    nrows = max(1, int(np.ceil(n / ncols)))
    _, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False,
                           layout="constrained")
    return axes


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


def plot_misclassified(evaluation, images, *, n: int = 8, image_size: int = 160, ncols: int = 4):
    """The `n` most confident mistakes of an Evaluation, titled 'true → predicted (p)'."""
    from .images import load_images

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


def plot_examples(images, *, n: int = 8, image_size: int = 160, ncols: int = 4, seed: int = 0):
    """A few random images of an ImageSet, titled with their class."""
    from .images import load_images

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


# --------------------------------------------------------------------------- chapter 5: what convnets learn
def _tile(acts: np.ndarray, channels, ncols: int) -> np.ndarray:
    """One mosaic of feature maps, each scaled to [0, 1] on its own, separated by NaN (drawn blank)."""
    h, w = acts.shape[:2]
    nrows = int(np.ceil(len(channels) / ncols))
    mosaic = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for i, c in enumerate(channels):
        a = acts[..., c].astype(float)
        span = a.max() - a.min()
        r, k = divmod(i, ncols)
        mosaic[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = (a - a.min()) / span if span > 0 else 0.0
    return mosaic


def plot_activation_grid(acts, *, n: int = 16, channels=None, ncols: int | None = None, ax=None,
                         cmap: str = "viridis"):
    """The first `n` channels (or the given `channels`) of a feature map (H, W, C) as one mosaic.

    Each channel is scaled on its own, so a dead channel shows as a flat dark tile.

    Example:
        >>> ax = plot_activation_grid(activations(base, image, "block_1_expand_relu"), n=16)
    """
    acts = np.asarray(acts)
    if acts.ndim != 3:
        raise ValueError(f"expected one feature map of shape (H, W, C), got shape {acts.shape}.")
    channels = list(range(min(n, acts.shape[-1]))) if channels is None else list(channels)
    ncols = ncols or int(np.ceil(np.sqrt(len(channels))))
    ax = _axes(ax, figsize=(5, 5))
    ax.imshow(np.ma.masked_invalid(_tile(acts, channels, ncols)), cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    return ax


def plot_sparsity(df, *, ax=None):
    """Share of dead channels and of zero activations by depth (a `sparsity_by_depth` table).

    Example:
        >>> ax = plot_sparsity(sparsity_by_depth(base, images))
    """
    ax = _axes(ax, figsize=(8, 3.5))
    x = np.arange(len(df))
    ax.plot(x, df["sparsity"], "-o", ms=3, label="zero activations (sparsity)")
    ax.plot(x, df["dead_fraction"], "-s", ms=3, label="dead channels (zero on every image)")
    step = max(1, len(df) // 12)
    ax.set_xticks(x[::step], df["layer"].iloc[::step], rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("convolutional layer (bottom → top)")
    ax.set_ylabel("fraction")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    return ax


def _stretch(image: np.ndarray) -> np.ndarray:
    """Spread the 1st to 99th percentile of an image over [0, 255] (for display only)."""
    lo, hi = np.percentile(image, [1, 99])
    return np.clip((image - lo) / (hi - lo) * 255, 0, 255) if hi > lo else image


def plot_filter_patterns(patterns, titles=None, *, ncols: int = 8, size: float = 1.6, stretch: bool = True):
    """A grid of filter patterns (from `filter_pattern`); returns the axes array.

    `stretch` spreads each pattern's contrast over the full range for display (Chollet's
    deprocessing); the patterns themselves are not changed.

    Example:
        >>> plot_filter_patterns([filter_pattern(base, "block_3_expand", i) for i in range(8)])
    """
    patterns = np.asarray(patterns, dtype="float32")
    shown = np.stack([_stretch(p) for p in patterns]) if stretch else patterns
    return plot_images(shown, titles, ncols=min(ncols, max(1, len(patterns))), size=size)


def plot_heatmap(image, heatmap, *, ax=None, alpha: float = 0.4, cmap: str = "jet"):
    """An image (H×W×3 in [0, 255]) with a heatmap in [0, 1] laid over it, stretched to fit.

    Example:
        >>> heatmap, k = gradcam(model, image)
        >>> ax = plot_heatmap(image, heatmap)
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
    ax = _axes(ax, figsize=(4, 4))
    ax.imshow(np.clip(image, 0, 255).astype("uint8"), cmap="gray" if image.ndim == 2 else None)
    ax.imshow(np.asarray(heatmap), cmap=cmap, alpha=alpha, vmin=0, vmax=1, interpolation="bilinear",
              extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_axis_off()
    return ax


def plot_randomization(df, *, ax=None, label: str | None = None):
    """Rank correlation with the trained model's maps as layers are randomised from the top down.

    Draws the mean over images with its min-max band; several methods go on one axes
    through repeated calls with `ax` (and `label`).

    Example:
        >>> ax = plot_randomization(randomization_check(model, images, "gradcam"))
        >>> plot_randomization(randomization_check(model, images, "saliency"), ax=ax)
    """
    ax = _axes(ax, figsize=(7, 3.5))
    x = np.arange(len(df))
    label = label or str(df.attrs.get("method", "map"))
    (line,) = ax.plot(x, df["spearman"], "-o", ms=4, label=label)
    if {"spearman_min", "spearman_max"} <= set(df.columns):
        ax.fill_between(x, df["spearman_min"], df["spearman_max"], color=line.get_color(), alpha=0.15)
    if "threshold" in df.attrs:
        ax.axhline(df.attrs["threshold"], color="grey", ls=":", lw=1)
    ax.set_xticks(x, df["randomized_to"], rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("randomised from the top down to layer")
    ax.set_ylabel("Spearman rank correlation")
    low = min([-0.2, float(np.nanmin(df["spearman_min" if "spearman_min" in df else "spearman"])) - 0.05,
               *(line.get_ydata().min() - 0.05 for line in ax.lines if len(line.get_ydata()) > 2)])
    ax.set_ylim(max(low, -1.05), 1.05)
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------- chapters 1 and 2
def plot_scenarios(*, ax=None):
    """The four scenarios of dataset size x similarity as a 2 x 2 chart, with each one's strategy.

    The advice is `recommend_strategy`'s, so the figure and the function never disagree.
    """
    import textwrap

    from .formalism import recommend_strategy

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


# --------------------------------------------------------------------------- chapter 5: grids of maps
def plot_explanations(images, maps, titles=None, *, ncols: int = 4, size: float = 2.6, alpha: float = 0.45,
                      cmap: str = "jet"):
    """A grid of images, each with its heatmap (Grad-CAM, saliency, ...) laid over it; returns the axes.

    Example:
        >>> plot_explanations(images, [gradcam(model, x)[0] for x in images], titles)
    """
    images = np.asarray(images)
    n = len(images)
    if len(maps) != n:
        raise ValueError(f"got {n} images but {len(maps)} maps; pass one map per image.")
    axes = _grid(n, ncols, size)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            plot_heatmap(images[i], maps[i], ax=ax, alpha=alpha, cmap=cmap)
            ax.axis("off")
            if titles is not None:
                ax.set_title(titles[i], fontsize="small")
    return axes


# --------------------------------------------------------------------------- live notebooks
def explorer(model: keras.Model, images, *, class_names: Sequence[str] | None = None):
    """Return an ipywidgets panel: pick an image, layer, channel and class; see Grad-CAM and the channel.

    For live notebooks only (the book shows static figures); needs ipywidgets.

    Example:
        >>> explorer(model, images[:8], class_names=["cat", "dog"])
    """
    try:
        import ipywidgets as w
    except ImportError:
        raise ImportError("explorer needs ipywidgets: pip install ipywidgets") from None

    from .explain import activations, gradcam, last_conv_layer
    from .explain._graph import _CONV, _batch, _graph, _is_feature_map, _n_classes

    batch = _batch(images, model)
    g = _graph(model)
    first = next((i for i, (lay, _, _) in enumerate(g.order) if isinstance(lay, _CONV)), 0)
    names = list(dict.fromkeys(lay.name for lay, _, out in g.order[first:] if _is_feature_map(lay, out)))
    names = names or [last_conv_layer(model)]
    classes = list(class_names or [str(i) for i in range(_n_classes(model))])
    pick_image = w.Dropdown(options=[(f"image {i}", i) for i in range(len(batch))], description="image")
    pick_layer = w.Dropdown(options=names, value=last_conv_layer(model), description="layer")
    pick_channel = w.IntSlider(0, min=0, max=int(g.tensor(pick_layer.value).shape[-1]) - 1, description="channel")
    pick_class = w.Dropdown(options=[("predicted", -1)] + [(c, i) for i, c in enumerate(classes)], description="class")
    pick_layer.observe(lambda ch: setattr(pick_channel, "max", int(g.tensor(ch["new"]).shape[-1]) - 1), names="value")

    def draw(i, layer, channel, k):
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
        heat, cls = gradcam(model, batch[i], layer=layer, class_index=None if k < 0 else k)
        plot_heatmap(batch[i], heat, ax=a)
        a.set_title(f"Grad-CAM for {classes[cls]} at {layer}", fontsize="small")
        b.imshow(activations(model, batch[i], layer)[..., channel], cmap="viridis")
        b.set_title(f"{layer}, channel {channel}", fontsize="small")
        b.axis("off")
        plt.show()

    out = w.interactive_output(draw, {"i": pick_image, "layer": pick_layer, "channel": pick_channel, "k": pick_class})
    return w.VBox([w.HBox([pick_image, pick_layer]), w.HBox([pick_channel, pick_class]), out])
