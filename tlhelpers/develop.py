"""The develop-model approach's last steps on one base: reuse it frozen, tune its top blocks, and weigh a start.

- `split_top`: a base cut below its top blocks, and those blocks as a model of their own;
- `reuse_then_tune`: a new head on the frozen base (reuse), then the top blocks unfrozen at a low
  learning rate (tune), both scored on the same test images;
- `top_from`: a base whose top blocks start from another base's weights (random ones, say);
- `memorise_noise`: train a base's top blocks on shuffled labels, a source that taught them nothing;

Example:
    >>> runs = reuse_then_tune(base, train, test, top_blocks=2, epochs=(6, 6))
    >>> compare(runs["tuned"], runs["frozen"]).summary()
"""

from __future__ import annotations

import keras
import numpy as np

from .bases import Base, blocks, truncate
from .evaluation import Evaluation
from .features import extract_features
from .freezing import set_batchnorm_momentum
from .imageset import ImageSet


def split_top(base: Base, top_blocks: int) -> tuple[Base, keras.Model]:
    """Return (lower, upper): `base` below its top `top_blocks` blocks, and those blocks on the lower's output.

    The upper model shares its layers (and weights) with `base`; the lower is a `Base`, so
    `extract_features` computes (and caches) its output once.

    Example:
        >>> lower, upper = split_top(load_base("mobilenet_v2", weights="offline", image_size=96), 2)
        >>> lower.model.output_shape, upper.count_params()
        ((None, 3, 3, 80), 333920)
    """
    bl = blocks(base)
    if not isinstance(top_blocks, int) or not 1 <= top_blocks < len(bl):
        raise ValueError(f"{base.arch} has {len(bl)} blocks; choose top_blocks between 1 and {len(bl) - 1}.")
    cut = base.model.layers[bl[-top_blocks][1] - 1].name
    upper = keras.Model(base.model.get_layer(cut).output, base.model.output, name=f"top_{top_blocks}_blocks")
    return truncate(base, cut), upper


def top_from(base: Base, donor: Base, top_blocks: int) -> Base:
    """Copy the weights of the top `top_blocks` blocks of `donor` (same architecture and size) into `base`; return it.

    Example:
        >>> random_top = top_from(load_base("mobilenet_v2", weights="offline", image_size=96),
        ...                       load_base("mobilenet_v2", weights=None, alpha=0.5, image_size=96), 2)
    """
    _, upper = split_top(base, top_blocks)
    _, source = split_top(donor, top_blocks)
    upper.set_weights(source.get_weights())
    return base


def _head_model(upper: keras.Model, n_classes: int, *, training_upper: bool) -> keras.Model:
    inputs = keras.Input(upper.input_shape[1:], name="features_below")
    x = upper(inputs, training=None if training_upper else False)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def _fit(model, x, y, *, epochs: int, learning_rate: float, batch_size: int) -> dict:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return {k: [float(v) for v in vals] for k, vals in h.history.items()}


def reuse_then_tune(base: Base, train: ImageSet, test: ImageSet, *, top_blocks: int = 2, epochs=(6, 6),
                    learning_rates=(1e-3, 1e-4), batch_size: int = 32, seed: int = 0) -> dict:
    """Reuse `base` frozen under a new head, then tune its top blocks; return both scored on `test`.

    Phase 1 trains a head (average pooling, softmax) on the frozen base: that model is scored as
    "frozen". Phase 2 makes the top `top_blocks` blocks trainable (BatchNormalization stays frozen,
    in inference mode) and trains them with the head at the lower learning rate: "tuned". No
    augmentation, so the frozen layers below compute the same output every epoch; it is computed
    once (`extract_features`, cached) and both phases train the top blocks and the head alone, the
    same as training the whole model with the lower layers frozen. The base's top blocks are changed.

    Returns {"frozen": Evaluation, "tuned": Evaluation, "history": {"head": ..., "tune": ...},
    "tuned_params": parameters phase 2 trains}.

    Example:
        >>> runs = reuse_then_tune(base, train, test, top_blocks=2, epochs=(6, 6))
        >>> runs["tuned"].accuracy - runs["frozen"].accuracy
    """
    lower, upper = split_top(base, top_blocks)
    x_train, y_train = extract_features(lower, train, verbose=False)
    x_test, y_test = extract_features(lower, test, verbose=False)
    classes = list(train.class_names)
    keras.utils.set_random_seed(seed)
    upper.trainable = False
    model = _head_model(upper, len(classes), training_upper=False)
    head = _fit(model, x_train, y_train, epochs=epochs[0], learning_rate=learning_rates[0], batch_size=batch_size)
    frozen = Evaluation(classes, np.asarray(y_test), model.predict(x_test, batch_size=128, verbose=0))
    upper.trainable = True
    for layer in upper.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    tuned_params = int(sum(np.prod(w.shape) for w in upper.trainable_weights))
    keras.utils.set_random_seed(seed)
    tune = _fit(model, x_train, y_train, epochs=epochs[1], learning_rate=learning_rates[1], batch_size=batch_size)
    tuned = Evaluation(classes, np.asarray(y_test), model.predict(x_test, batch_size=128, verbose=0))
    return {"frozen": frozen, "tuned": tuned, "history": {"head": head, "tune": tune}, "tuned_params": tuned_params}


def memorise_noise(base: Base, images: ImageSet, *, top_blocks: int = 2, epochs: int = 30,
                   learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0) -> dict:
    """Train the top `top_blocks` blocks of `base` (and a head) on `images` with their labels shuffled; return the history.

    The blocks below stay frozen and their output is computed once; the top blocks train with their
    BatchNormalization layers (momentum 0.9). Shuffled labels carry nothing about the images, so any
    rise in training accuracy is memorisation. The base's top blocks keep the weights they end with.

    Example:
        >>> h = memorise_noise(base, imagenette_sample, epochs=30); h["accuracy"][-1]
    """
    lower, upper = split_top(base, top_blocks)
    x, y = extract_features(lower, images, verbose=False)
    shuffled = np.random.default_rng(seed).permutation(np.asarray(y))
    set_batchnorm_momentum(upper, 0.9)
    upper.trainable = True
    keras.utils.set_random_seed(seed)
    model = _head_model(upper, len(images.class_names), training_upper=True)
    history = _fit(model, x, shuffled, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size)
    history["agreement_with_true_labels"] = float((shuffled == np.asarray(y)).mean())
    return history


def train_top(base: Base, train: ImageSet, test: ImageSet, *, top_blocks: int = 2, epochs: int = 10,
              learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0) -> dict:
    """Train the top `top_blocks` blocks of `base` and a new head together, from whatever weights they hold.

    One recipe for every start (random weights: training those blocks from scratch): the blocks below
    stay frozen (their output computed once), the top blocks train with BatchNormalization in training
    mode (momentum 0.9). Returns {"evaluation": Evaluation on `test`, "history": ...}.

    Example:
        >>> train_top(top_from(base, random_base, 2), train, test)["evaluation"].accuracy
    """
    lower, upper = split_top(base, top_blocks)
    x_train, y_train = extract_features(lower, train, verbose=False)
    x_test, y_test = extract_features(lower, test, verbose=False)
    set_batchnorm_momentum(upper, 0.9)
    upper.trainable = True
    keras.utils.set_random_seed(seed)
    model = _head_model(upper, len(train.class_names), training_upper=True)
    history = _fit(model, x_train, y_train, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size)
    evaluation = Evaluation(list(train.class_names), np.asarray(y_test),
                            model.predict(x_test, batch_size=128, verbose=0))
    return {"evaluation": evaluation, "history": history}
