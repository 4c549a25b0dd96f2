"""The names a user can pass: bases (with their display names), training strategies, distribution strategies.

Plain strings only, so that `tlh --help` and argument checks need no TensorFlow.

Example:
    >>> ", ".join(BASE_NAMES)
    'vgg16, resnet50, mobilenet_v2, xception, inception_v3, efficientnet_lite0'
"""

BASE_NAMES = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "xception": "Xception",
              "inception_v3": "InceptionV3", "efficientnet_lite0": "EfficientNet-Lite0"}
STRATEGIES = ("scratch", "features", "finetune", "two-phase")
TWO_PHASE_STRATEGIES = ("finetune", "two-phase")  # a head first, then fine-tuning
OPTIMIZERS = ("adam", "sgd", "rmsprop")  # tlhelpers.train.optimizer's names
DISTRIBUTIONS = ("auto", "mirrored", "none")
SCHEDULES = ("constant", "warmup-cosine")
PRECISIONS = ("float32", "auto", "mixed_bfloat16", "mixed_float16")  # tlhelpers.precision.POLICIES, float32 first
