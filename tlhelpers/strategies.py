"""The course's four ways to train a classifier on a folder of images, as one call.

- scratch:   the base architecture, randomly initialised, all layers trained.
- features:  frozen base, features computed once (cached), a dense head trained on them.
- finetune:  head on the frozen base with augmentation, then the top block at a low
             learning rate (RMSprop 1e-5), as in Chollet (2021, ch. 8).
- two-phase: head on the frozen base (RMSprop), then the top two blocks with
             SGD(1e-4, momentum 0.9), as in the InceptionV3 recipe of chapter 4.

Example:
    >>> model, history = fit_strategy("finetune", train, val, arch="vgg16", image_size=180, epochs=5)
"""

from __future__ import annotations

from .data import ImageSet, to_dataset
from .features import extract_features
from .models import (
    augmentation, build_classifier, build_head, freeze, load_base, set_trainable, stack,
)
from .train import fit, two_phase

STRATEGIES = ("scratch", "features", "finetune", "two-phase")


def fit_strategy(
    strategy: str, train: ImageSet, val: ImageSet, *, arch: str = "mobilenet_v2", weights="imagenet",
    image_size: int = 160, epochs: int = 5, batch_size: int = 32, allow_fallback: bool | None = None,
    base_kwargs: dict | None = None, verbose: int = 2,
):
    """Train a classifier with one of STRATEGIES; return (model on raw images, history, base)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}.")
    n = len(train.class_names)
    base_kwargs = base_kwargs or {}
    if strategy == "scratch":
        weights = None
    base = load_base(arch, weights=weights, image_size=image_size, allow_fallback=allow_fallback, **base_kwargs)
    if strategy == "features":
        freeze(base)
        xtr, ytr = extract_features(base, train, batch_size=batch_size)
        xva, yva = extract_features(base, val, batch_size=batch_size)
        head = build_head(xtr.shape[1:], n, pooling="avg")
        history = fit(head, (xtr, ytr), (xva, yva), epochs=epochs, batch_size=batch_size, verbose=verbose)
        return stack(base, head), history, base
    train_ds = to_dataset(train, image_size=image_size, batch_size=batch_size, shuffle=True)
    val_ds = to_dataset(val, image_size=image_size, batch_size=batch_size)
    aug = augmentation()
    if strategy == "scratch":
        model = build_classifier(base, n, augment=aug, pooling="avg", freeze_base=False)
        set_trainable(base, from_layer=0, train_batchnorm=True)
        return model, fit(model, train_ds, val_ds, epochs=epochs, optimizer_name="adam", verbose=verbose), base
    model = build_classifier(base, n, augment=aug, pooling="avg")
    if strategy == "finetune":
        history = two_phase(model, base, train_ds, val_ds, epochs=(epochs, epochs), top_blocks=1,
                            phase1=("rmsprop", 1e-3), phase2=("rmsprop", 1e-5), verbose=verbose)
    else:
        history = two_phase(model, base, train_ds, val_ds, epochs=(epochs, epochs), top_blocks=2,
                            phase1=("rmsprop", 1e-3), phase2=("sgd", 1e-4), verbose=verbose)
    return model, history, base
