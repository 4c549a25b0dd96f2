"""tlhelpers: the helper package of the open course on transfer learning for image classification.

Each chapter of the book calls these helpers instead of repeating code:

    >>> import tlhelpers as tlh
    >>> cfg = tlh.settings("cats_vs_dogs", verbose=True)
    >>> splits = tlh.load_splits("cats_and_dogs_filtered")
    >>> base = tlh.load_base("vgg16", image_size=cfg.image_size)
    >>> features = tlh.extract_features(base, splits["train"])
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the book

import importlib.util as _ilu  # noqa: E402

try:  # TensorFlow is not a dependency on purpose: Colab and GPU machines bring their own build
    _has_tf = _ilu.find_spec("tensorflow") is not None
except (ImportError, ValueError):
    _has_tf = False
if not _has_tf:
    raise ImportError(
        "tlhelpers needs TensorFlow for its data pipelines: pip install tensorflow "
        "(or tensorflow-cpu on a machine without a GPU), or create the course environment with `make book`."
    )

import logging as _logging


class _NoRetracingChatter(_logging.Filter):
    """Drop TensorFlow's 'triggered tf.function retracing' warning, harmless when a chapter builds several models."""

    def filter(self, record):
        return "retracing" not in record.getMessage()


_logging.getLogger("tensorflow").addFilter(_NoRetracingChatter())

_EXPORTS = {  # name -> the module that holds it; loaded on first use, so `import tlhelpers` stays light
    "data": (
        "REGISTRY", "fetch"
    ),
    "images": (
        "ImageSet", "example_photos", "load_images", "scan_folder", "to_dataset"
    ),
    "splits": (
        "load_splits", "stratified_split"
    ),
    "explain": (
        "activations", "conv_layers", "edge_alignment", "filter_pattern", "gradcam", "last_conv_layer",
        "randomization_check", "saliency", "smoothgrad", "sparsity_by_depth", "spearman"
    ),
    "autoencoder": (
        "conv_autoencoder", "encode", "fit_autoencoder", "reconstruct"
    ),
    "features": (
        "extract_features", "features_by_depth", "information_by_depth", "linear_probe", "probe_by_size",
        "evaluate_probe", "probe_predictions", "ridge_readout", "transferability"
    ),
    "formalism": (
        "bootstrap", "calibrate_similarity", "calibrate_threshold", "depth_probes", "domain_similarity", "mmd",
        "proxy_a_distance", "recommend_strategy", "source_bandwidth"
    ),
    "bases": (
        "Base", "block_layers", "block_outputs", "blocks", "load_base", "preprocess_fn", "truncate"
    ),
    "freezing": (
        "freeze", "set_batchnorm_momentum", "set_trainable", "trainable_report", "unfreeze_top_blocks"
    ),
    "builders": (
        "augmentation", "build_classifier", "build_head", "small_convnet", "stack"
    ),
    "errors": ("CourseError", "DatasetUnavailableError"),
    "export": ("export_model", "load_for_prediction"),
    "precision": ("float32_output", "hardware_policy", "mixed_precision"),
    "recipe": ("SmoothedSparseCrossentropy", "WarmupCosine", "class_weights_if_imbalanced", "early_stopping",
               "warmup_cosine"),
    "stats": ("compare", "format_p", "mcnemar"),
    "develop": ("memorise_noise", "reuse_then_tune", "split_top", "top_from", "train_top"),
    "tta": ("predict_tta",),
    "offline": (
        "WeightsUnavailableError", "imagenet_class_names", "imagenet_classifier", "imagenet_wnids",
        "offline_classifier", "offline_model_card", "source_classifier"
    ),
    "saving": (
        "load_model", "save_model"
    ),
    "chapter": ("setup_chapter",),
    "checks": ("check",),
    "profile": (
        "current_profile", "settings"
    ),
    "strategies": (
        "STRATEGIES", "finetune_recipe", "fit_strategy"
    ),
    "experiments": (
        "accuracy_by_size", "available_bases", "batchnorm_experiment", "compare_bases", "compare_batchnorm_momentum",
        "compare_strategies", "effect_tests", "transfer_effects", "ValidationRecorder"
    ),
    "train": (
        "class_weights", "distribution", "fine_tune", "fit", "join_phases", "two_phase"
    ),
    "evaluation": (
        "Evaluation", "accuracy_interval", "classify", "evaluate", "predict", "results_table"
    ),
    "verdicts": (
        "change", "difference", "either", "glue_markdown", "glue_values", "weights_note"
    ),
    "viz": (
        "diagram_domain_task", "diagram_freezing", "diagram_swap_head", "diagram_two_phase", "explorer",
        "plot_accuracy_by_size", "plot_activation_grid", "plot_augmentations", "plot_base_comparison", "plot_confusion",
        "plot_domain_similarity", "plot_examples", "plot_explanations", "plot_filter_patterns", "plot_heatmap",
        "plot_history", "plot_history_grid", "plot_images", "plot_misclassified", "plot_randomization",
        "plot_relative_similarity",
        "plot_scenarios", "plot_sparsity", "plot_transfer_effects", "plot_transferability"
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    """Import the module behind `tlh.name` on first use (PEP 562): TensorFlow loads only when a helper needs it."""
    import importlib

    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'tlhelpers' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF) | set(_SUBMODULES))


_SUBMODULES = ("autoencoder", "bases", "builders", "chapter", "checks", "choices", "cli", "cli_recipe", "data", "develop", "efficientnet_lite", "errors", "estimates", "evaluation", "exercises", "experiments", "explain", "export", "features", "formalism", "freezing", "images", "models", "offline", "precision", "profile", "recipe", "saving", "splits", "stats", "strategies", "train", "tta", "verdicts", "viz")
__all__ = sorted(_MODULE_OF)

__version__ = "0.2.0"  # pyproject.toml's; a release is tagged v{__version__}, which Colab installs
# The course's repository (as in _config.yml): Colab installs the release from it.
REPOSITORY = "https://github.com/tl-course/transfer-learning-course"
