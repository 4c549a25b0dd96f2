"""The course's four ways to train a classifier on a folder of images, as one call.

- scratch:   the base architecture, randomly initialised, all layers trained.
- features:  frozen base, features computed once (cached), a dense head trained on them.
- finetune:  head on the frozen base with augmentation, then the top block at a low
             learning rate (RMSprop 1e-5), as in Chollet (2021, ch. 8).
- two-phase: head on the frozen base (RMSprop), then the top two blocks with
             SGD(1e-4, momentum 0.9), as in the InceptionV3 recipe of chapter 4.

With the course's offline source model (ten Imagenette classes), the second phase of finetune
and two-phase unfreezes the whole base instead, with Adam at 1e-4: its top blocks are too
specific to its ten classes to be worth keeping frozen. On 300 cats and 300 dogs (8 epochs,
96 px) that scored 69% on held-out images, against 64% for the top two blocks with SGD at 1e-3
and 58% from scratch. `unfreeze` and `phase2` override either choice.

`epochs` is the total number of passes over the training images for every strategy, so that
strategies compare at equal cost: finetune and two-phase spend half on the head (the larger half
when odd) and the rest on fine-tuning, or take an explicit `(head, fine-tuning)` pair.

`distribute` trains under a `tf.distribute` strategy: a name ('auto', 'mirrored', 'none') or a
strategy; the base and the model are built and compiled inside its scope. `batch_size` is the
global batch: each of the N replicas gets batch_size / N images per step.

Example:
    >>> model, history, base = fit_strategy("finetune", train, val, arch="vgg16", image_size=180, epochs=10)
    >>> model, history, base = fit_strategy("two-phase", train, val, distribute="auto")  # all GPUs, if several
"""

from __future__ import annotations

from .bases import blocks, load_base
from .builders import augmentation, build_classifier, build_head, stack
from .choices import STRATEGIES, TWO_PHASE_STRATEGIES  # noqa: F401  (STRATEGIES re-exported: tlh.STRATEGIES)
from .features import extract_features
from .freezing import freeze, set_trainable
from .images import ImageSet, to_dataset
from .precision import float32_output, mixed_precision
from .recipe import class_weights_if_imbalanced
from .train import as_strategy, fit, two_phase

RECIPE_OPTIONS = frozenset({"schedule", "label_smoothing", "early_stopping", "callbacks"})  # passed on to `fit`


def fit_strategy(
    strategy: str, train: ImageSet, val: ImageSet, *, arch: str = "mobilenet_v2", weights="imagenet",
    image_size: int = 160, epochs: int | tuple[int, int] = 10, batch_size: int = 32, allow_fallback: bool | None = None,
    base_kwargs: dict | None = None, unfreeze: int | str | None = None, phase2: tuple | None = None,
    verbose: int = 2, distribute=None, augment: bool = True, class_weight: dict | str | None = None,
    precision: str = "float32", cached_head: bool = False, **recipe,
):
    """Train a classifier with one of STRATEGIES; return (model on raw images, history, base).

    `unfreeze` (a number of top blocks, or "all") and `phase2` ((optimizer, learning rate)) set
    the fine-tuning phase of finetune and two-phase; None picks the strategy's recipe.

    `distribute`: a `tf.distribute.Strategy`, or a name for `tlhelpers.train.distribution`
    ('auto', 'mirrored', 'none'); None is 'none'. It is named so because `strategy` is the
    course's strategy. Everything with weights is built inside its scope; `batch_size` is the
    global batch, split evenly across the `num_replicas_in_sync` replicas.

    The practitioner's recipe (`tlhelpers.recipe`; each off unless asked for):
    - `augment=False`: no random flips, rotations and zooms while training (never in features);
    - `class_weight`: a {class index: weight} dict, or "auto" for balanced weights when the largest
      class has over 1.5 times the images of the smallest (`class_weights_if_imbalanced`);
    - `precision`: "float32", "auto" (the hardware's mixed policy, `hardware_policy`) or a policy name;
      the model is built and trained under it and its softmax kept in float32;
    - `cached_head=True` (finetune, two-phase): phase 1 trains the head on the frozen base's features,
      computed once without augmentation, instead of pushing augmented images through the frozen
      base at every epoch; the head's weights then go into the full model for phase 2;
    - `**recipe`: `fit`'s `schedule`, `label_smoothing`, `early_stopping` and `callbacks`, used in
      every training phase.

    Example:
        >>> model, history, base = fit_strategy("features", train, val, epochs=5, distribute="mirrored")
        >>> model, history, base = fit_strategy("two-phase", train, val, epochs=12, schedule="warmup_cosine",
        ...                                     label_smoothing=0.1, early_stopping=3, class_weight="auto")
    """
    phases = _check_strategy_args(strategy, epochs, unfreeze)
    unknown = set(recipe) - RECIPE_OPTIONS
    if unknown:
        raise TypeError(f"fit_strategy: unexpected option(s) {', '.join(sorted(unknown))}; the recipe's are "
                        f"{', '.join(sorted(RECIPE_OPTIONS))}.")
    if isinstance(class_weight, str):
        if class_weight != "auto":
            raise ValueError(f"class_weight must be a dict, 'auto' or None, got {class_weight!r}.")
        class_weight = class_weights_if_imbalanced(train)
    with mixed_precision(precision):  # the model is built and trained under it
        dist = as_strategy(distribute)
        with dist.scope():
            base = load_base(arch, weights=None if strategy == "scratch" else weights, image_size=image_size,
                             allow_fallback=allow_fallback, verbose=verbose > 0, **(base_kwargs or {}))
        if strategy == "features":
            model, history = _fit_features(base, train, val, epochs=sum(phases), batch_size=batch_size, verbose=verbose,
                                           dist=dist, class_weight=class_weight, recipe=recipe)
            return model, history, base
        n = len(train.class_names)
        train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True)
        val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
        if strategy == "scratch":
            with dist.scope():
                model = float32_output(build_classifier(base, n, augment=augmentation() if augment else None,
                                                        pooling="avg", freeze_base=False))
            set_trainable(base, from_layer=0, train_batchnorm=True, verbose=verbose > 0)
            history = fit(model, train_ds, val_ds, epochs=sum(phases), optimizer_name="adam", verbose=verbose,
                          strategy=dist, class_weight=class_weight, **recipe)
            return model, history, base
        with dist.scope():
            model = float32_output(build_classifier(base, n, augment=augmentation() if augment else None, pooling="avg"))
        steps = finetune_recipe(base, strategy)
        top = unfreeze if unfreeze is not None else steps["top_blocks"]
        n_blocks = len(blocks(base))
        top = n_blocks if top == "all" else min(top, n_blocks)
        phase2 = phase2 or (steps["optimizer"], steps["learning_rate"])
        if cached_head:
            return model, _cached_head_then_fine_tune(
                model, base, train, val, train_ds, val_ds, phases=phases, top=top, phase2=phase2,
                batch_size=batch_size, verbose=verbose, dist=dist, class_weight=class_weight, recipe=recipe), base
        history = two_phase(model, base, train_ds, val_ds, epochs=phases, top_blocks=top, phase1=("rmsprop", 1e-3),
                            phase2=phase2, verbose=verbose, strategy=dist, class_weight=class_weight, **recipe)
        return model, history, base


def _check_strategy_args(strategy: str, epochs, unfreeze) -> tuple[int, int]:
    """Fail at once on arguments `fit_strategy` cannot use; return the (head, fine-tuning) epochs."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}.")
    if isinstance(epochs, (tuple, list)):
        phases = tuple(int(e) for e in epochs)
        if len(phases) != 2 or min(phases) < 1:
            raise ValueError(f"epochs must be a total or a (head, fine-tuning) pair of positive counts, got {epochs!r}.")
    else:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}.")
        phases = ((epochs + 1) // 2, epochs // 2)
    if unfreeze is not None and unfreeze != "all" and (not isinstance(unfreeze, int) or unfreeze < 1):
        raise ValueError(f"unfreeze must be a positive number of blocks or 'all', got {unfreeze!r}.")
    if strategy in TWO_PHASE_STRATEGIES and min(phases) < 1:
        raise ValueError(f"{strategy} trains in two phases: give it at least 2 epochs (one per phase), got {epochs}.")
    return phases


def _head_on_features(base, train: ImageSet, val: ImageSet, *, epochs: int, batch_size: int, verbose: int, dist,
                      class_weight=None, recipe=None):
    """A dense head trained (RMSprop 1e-3) on the frozen base's cached features; return (head, history)."""
    freeze(base, verbose=verbose > 0)
    xtr, ytr = extract_features(base, train, batch_size=batch_size, verbose=verbose > 0)
    xva, yva = extract_features(base, val, batch_size=batch_size, verbose=verbose > 0)
    with dist.scope():
        head = float32_output(build_head(xtr.shape[1:], len(train.class_names), pooling="avg"))
    history = fit(head, (xtr, ytr), (xva, yva), epochs=epochs, batch_size=batch_size, verbose=verbose, strategy=dist,
                  class_weight=class_weight, **(recipe or {}))
    return head, history


def _fit_features(base, train: ImageSet, val: ImageSet, *, epochs: int, batch_size: int, verbose: int, dist,
                  class_weight=None, recipe=None):
    """The features strategy: a dense head on the frozen base's features; return (model on raw images, history)."""
    head, history = _head_on_features(base, train, val, epochs=epochs, batch_size=batch_size, verbose=verbose,
                                      dist=dist, class_weight=class_weight, recipe=recipe)
    with dist.scope():
        model = stack(base, head)
    return model, history


def _cached_head_then_fine_tune(model, base, train, val, train_ds, val_ds, *, phases, top, phase2, batch_size,
                                verbose, dist, class_weight, recipe) -> dict:
    """Phase 1 on cached features (a head like `model`'s, its weights copied in), then phase 2 on images."""
    from .train import fine_tune, join_phases

    head, h1 = _head_on_features(base, train, val, epochs=phases[0], batch_size=batch_size, verbose=verbose,
                                 dist=dist, class_weight=class_weight, recipe=recipe)
    for layer in head.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    h2 = fine_tune(model, base, train_ds, val_ds, epochs=phases[1], top_blocks=top, optimizer_name=phase2[0],
                   learning_rate=phase2[1], class_weight=class_weight, verbose=verbose, strategy=dist, **recipe)
    return join_phases(h1, h2)


def finetune_recipe(base, strategy: str = "two-phase") -> dict:
    """Return the fine-tuning phase a strategy uses on `base`: top_blocks, optimizer, learning_rate.

    ImageNet bases follow the course's recipes (finetune: the top block with RMSprop 1e-5;
    two-phase: the top two blocks with SGD 1e-4, momentum 0.9). The offline source model gets
    its whole base fine-tuned with Adam 1e-4, because its top blocks are specific to its ten
    source classes (see the module docstring for the measurement).

    Example:
        >>> finetune_recipe(base, "two-phase")
        {'top_blocks': 2, 'optimizer': 'sgd', 'learning_rate': 0.0001}
    """
    if strategy not in TWO_PHASE_STRATEGIES:
        raise ValueError(f"only finetune and two-phase have a fine-tuning phase, got {strategy!r}.")
    if base.offline:
        return {"top_blocks": "all", "optimizer": "adam", "learning_rate": 1e-4}
    if strategy == "finetune":
        return {"top_blocks": 1, "optimizer": "rmsprop", "learning_rate": 1e-5}
    return {"top_blocks": 2, "optimizer": "sgd", "learning_rate": 1e-4}
