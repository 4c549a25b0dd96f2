"""Where the model helpers used to live, kept so that `tlhelpers.models.X` still works; new code imports from:

- `bases`: architectures, input scaling, `load_base`, blocks;
- `freezing`: which layers train, BatchNorm momentum;
- `offline`: the shipped and converted weights, their checks, the ImageNet classifiers and the fallback policy;
- `builders`: augmentation, heads, classifiers, the small convnet;
- `saving`: `save_model` and `load_model`.
"""

from .bases import (  # noqa: F401
    ARCHS,
    OFFLINE_ALPHA,
    OFFLINE_ARCH,
    OFFLINE_LABEL,
    SHORT_RUN_BN_MOMENTUM,
    STAND_IN_ARCH,
    STAND_IN_LABEL,
    ArchSpec,
    Base,
    ImagePreprocess,
    block_layers,
    block_outputs,
    blocks,
    construct,
    keras_models_dir,
    load_base,
    preprocess_fn,
    truncate,
)
from .builders import RandomShear, augmentation, build_classifier, build_head, small_convnet, stack  # noqa: F401
from .freezing import freeze, set_batchnorm_momentum, set_trainable, trainable_report, unfreeze_top_blocks  # noqa: F401,E501
from .offline import (  # noqa: F401
    IMAGENETTE_CLASSES,
    WeightsUnavailableError,
    imagenet_class_names,
    imagenet_classifier,
    imagenet_wnids,
    offline_classifier,
    offline_model_card,
    offline_weights_path,
    source_classifier,
)
from .saving import load_model, save_model  # noqa: F401
