"""Plots for the chapters: each function draws on an axes (made if not given) and returns it.

`diagrams` draws the concept pictures, `results` holds plots of data and results, `domains` chapter 2's distances, `explain` the pictures of
what a convnet learned (and `explorer`, an ipywidgets panel, the one function that returns no axes).

Example:
    >>> ax = plot_history({"from scratch": h1, "features": h2})
    >>> plot_confusion(result.confusion, result.classes)
"""

from .diagrams import (  # noqa: F401
    diagram_domain_task,
    diagram_freezing,
    diagram_swap_head,
    diagram_two_phase,
)
from .domains import (  # noqa: F401
    plot_domain_similarity,
    plot_relative_similarity,
    plot_transferability,
)
from .explain import (  # noqa: F401
    explorer,
    plot_activation_grid,
    plot_explanations,
    plot_filter_patterns,
    plot_heatmap,
    plot_randomization,
    plot_sparsity,
)
from .results import (  # noqa: F401
    plot_accuracy_by_size,
    plot_augmentations,
    plot_base_comparison,
    plot_confusion,
    plot_examples,
    plot_history,
    plot_history_grid,
    plot_images,
    plot_misclassified,
    plot_scenarios,
    plot_transfer_effects,
)
