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

import logging as _logging  # noqa: E402


class _NoRetracingChatter(_logging.Filter):
    """Drop TensorFlow's 'triggered tf.function retracing' warning, harmless when a chapter builds several models."""

    def filter(self, record):
        return "retracing" not in record.getMessage()


_logging.getLogger("tensorflow").addFilter(_NoRetracingChatter())

from .data import (  # noqa: E402
    REGISTRY, ImageSet, fetch, load_images, load_splits, scan_folder, stratified_split, to_dataset,
)
from .features import extract_features  # noqa: E402
from .models import (  # noqa: E402
    Base, WeightsUnavailableError, augmentation, blocks, build_classifier, build_head, freeze,
    load_base, load_model, save_model, set_trainable, small_convnet, stack, trainable_report,
    unfreeze_top_blocks,
)
from .profile import current_profile, settings  # noqa: E402
from .strategies import STRATEGIES, fit_strategy  # noqa: E402
from .train import Evaluation, evaluate, fit, predict, results_table, two_phase  # noqa: E402
from .viz import (  # noqa: E402
    plot_augmentations, plot_confusion, plot_examples, plot_history, plot_history_grid, plot_images,
    plot_misclassified,
)

__version__ = "0.1.0"
