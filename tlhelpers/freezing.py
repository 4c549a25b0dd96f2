"""Which layers of a base train: freezing, unfreezing its top blocks, BatchNorm momentum, the trainable report.

Example:
    >>> freeze(base)                                   # feature extraction: nothing in the base trains
    >>> unfreeze_top_blocks(base, 1)["from_layer"]     # fine-tuning: the top block trains, BatchNorm stays frozen
    'block5_conv1'
"""

from __future__ import annotations

import keras
import numpy as np

from .bases import Base, as_model, blocks


def set_trainable(model, *, from_layer: str | int | None, train_batchnorm: bool = False, verbose: bool = True) -> dict:
    """Freeze every layer below `from_layer` and make it and the layers above trainable.

    `from_layer` is a layer name or index; None freezes everything. BatchNormalization
    layers stay frozen unless `train_batchnorm`: a frozen BatchNormalization layer runs in
    inference mode, so its moving statistics never change. With `train_batchnorm=True` they
    do change during `fit`, because Keras 3 passes the outer `training=True` into nested
    models even where the base was called with `training=False`. Returns the trainable
    report and prints it.

    Example:
        >>> set_trainable(base, from_layer="block5_conv1")
    """
    m = as_model(model)
    if from_layer is None:
        start = len(m.layers)
    elif isinstance(from_layer, int):
        start = from_layer
    else:
        names = [layer.name for layer in m.layers]
        if from_layer not in names:
            conv = [n for n, layer in zip(names, m.layers) if isinstance(layer, keras.layers.Conv2D)]
            raise ValueError(f"layer {from_layer!r} is not in {m.name}; its convolutional layers are: {', '.join(conv)}.")
        start = names.index(from_layer)
    m.trainable = True
    for i, layer in enumerate(m.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= start and (train_batchnorm or not is_bn)
    if from_layer is None:
        m.trainable = False
    report = trainable_report(m)
    if verbose:
        print(f"{m.name}: {report['trainable_layers']} of {report['layers']} layers trainable (from index {start});\n"
              f"  {report['trainable_params']:,} trainable and {report['non_trainable_params']:,} frozen parameters.")
    return report


def freeze(model, *, verbose: bool = True) -> dict:
    """Freeze every layer of a base (or model); return the trainable report."""
    return set_trainable(model, from_layer=None, verbose=verbose)


def unfreeze_top_blocks(base: Base, n: int | str, *, train_batchnorm: bool = False, verbose: bool = True) -> dict:
    """Make the top `n` blocks of `base` trainable (n="all": every block) and keep the rest frozen.

    Example:
        >>> unfreeze_top_blocks(load_base("inception_v3", weights=None), 2)["from_index"]
        249
    """
    bl = blocks(base)
    if n == "all":
        n = len(bl)
    if not isinstance(n, int) or not 1 <= n <= len(bl):
        raise ValueError(f"{base.arch} has {len(bl)} blocks ({', '.join(b for b, _ in bl)}); choose n between 1 and {len(bl)}.")
    start = bl[-n][1]
    report = set_trainable(base, from_layer=start, train_batchnorm=train_batchnorm, verbose=verbose)
    report["from_index"] = start
    report["from_layer"] = base.model.layers[start].name
    return report


def set_batchnorm_momentum(model, momentum: float = 0.9) -> int:
    """Set the momentum of every BatchNormalization layer of a base or model; return how many.

    Keras builds MobileNetV2 with momentum 0.999 (InceptionV3, ResNet50 and EfficientNet-Lite0 use
    0.99), tuned for long ImageNet runs. Trained from scratch for a few dozen epochs, moving statistics that slow
    lag far behind the weights, and validation accuracy sits near chance while training accuracy
    climbs. 0.9 lets them keep up. Call it before the model is compiled and trained.

    Example:
        >>> set_batchnorm_momentum(load_base("mobilenet_v2", weights=None, alpha=0.5), 0.9)
        52
    """
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"BatchNormalization momentum must be between 0 and 1, got {momentum}.")
    n = 0
    for layer in as_model(model)._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            n += 1
    return n


def trainable_report(model) -> dict:
    """Counts of trainable and frozen layers and parameters."""
    m = as_model(model)
    leaf = [layer for layer in m.layers if layer.weights]
    return {
        "layers": len(leaf),
        "trainable_layers": sum(1 for layer in leaf if layer.trainable and layer.trainable_weights),
        "trainable_params": int(sum(np.prod(w.shape) for w in m.trainable_weights)),
        "non_trainable_params": int(sum(np.prod(w.shape) for w in m.non_trainable_weights)),
    }
