"""Plots for the chapters: each function draws on an axes (made if not given) and returns it.

Example:
    >>> ax = plot_history({"from scratch": h1, "features": h2})
    >>> plot_confusion(result.confusion, result.classes)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
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


def plot_images(images, titles=None, *, ncols: int = 4, size: float = 2.2, colors=None):
    """A grid of images (array N×H×W×3 in [0, 255]) with optional titles; returns the axes array."""
    images = np.asarray(images)
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False,
                             layout="constrained")
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
    from .data import load_images

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
    from .data import load_images

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
