"""Pictures of what a convnet learned: activation grids, filter patterns, heatmaps, sanity checks, explorer.

The arrays come from `tlhelpers.explain`; these functions only draw them. `explorer` is an
ipywidgets panel for live notebooks that redraws Grad-CAM and a channel's activations as you pick
an image, a layer, a channel and a class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._common import _axes, _grid
from .results import plot_images

if TYPE_CHECKING:  # for annotations only: drawing needs no Keras
    import keras


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

    from ..explain import activations, gradcam, last_conv_layer
    from ..explain._graph import _CONV, _batch, _graph, _is_feature_map, _n_classes

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
