"""Shared plumbing of the plots: an axes made when none is given, and a grid of panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


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
