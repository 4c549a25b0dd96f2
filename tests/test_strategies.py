"""fit_strategy: every strategy spends the same total number of epochs.

The budgets do not depend on the architecture, so these fits use a random-weight VGG16 at 32 px: its
19 layers trace in a fraction of the time of MobileNetV2's 155.
"""

from __future__ import annotations

import pytest

import tlhelpers as tlh
from tlhelpers.images import scan_folder


@pytest.fixture
def images(image_folder):
    return scan_folder(image_folder(per_class=4, size=32), verbose=False)


def test_two_phase_splits_the_epoch_budget(images):
    model, history, base = tlh.fit_strategy("two-phase", images, images, weights=None, image_size=32, epochs=3,
                                            batch_size=4, arch="vgg16", verbose=0)
    assert history["phase_boundary"] == 2 and len(history["loss"]) == 3
    model, history, base = tlh.fit_strategy("finetune", images, images, weights=None, image_size=32, epochs=(1, 2),
                                            batch_size=4, arch="vgg16", verbose=0)
    assert history["phase_boundary"] == 1 and len(history["loss"]) == 3


def test_scratch_gets_the_same_budget(images):
    model, history, base = tlh.fit_strategy("scratch", images, images, weights="offline", image_size=32, epochs=3,
                                            batch_size=4, arch="vgg16", verbose=0)
    assert len(history["loss"]) == 3 and base.weights == "random init"  # scratch never loads weights
    assert all(layer.trainable for layer in base.model.layers if layer.weights)


@pytest.mark.parametrize("strategy, epochs, message", [
    ("two-phase", 1, "at least 2 epochs"),
    ("finetune", (2, 0), "pair of positive counts"),
    ("scratch", 0, "at least 1"),
    ("transfer", 2, "choose one of: scratch, features, finetune, two-phase"),
])
def test_bad_budgets_are_refused_before_any_work(images, strategy, epochs, message):
    with pytest.raises(ValueError, match=message):
        tlh.fit_strategy(strategy, images, images, weights=None, epochs=epochs)


def test_transfer_effects_by_hand():
    h = {"scratch": {"val_accuracy": [0.5, 0.6, 0.7, 0.75]}, "transfer": {"val_accuracy": [0.8, 0.9, 0.9, 0.95]}}
    table = tlh.transfer_effects(h)
    assert table.loc["scratch", "start"] == 0.5 and table.loc["transfer", "start"] == 0.8
    assert table.loc["scratch", "slope"] == pytest.approx(0.1)  # first half: epochs 1 -> 2
    assert table.loc["transfer", "asymptote"] == pytest.approx(0.925)
    with pytest.raises(ValueError, match="at least 2"):
        tlh.transfer_effects({"short": {"val_accuracy": [0.5]}})


def test_compare_strategies_and_accuracy_by_size(images):
    histories, table = tlh.compare_strategies(images, images, images, strategies=("scratch", "features"),
                                              weights=None, image_size=32, epochs=2, batch_size=4,
                                              arch="vgg16")
    assert list(histories) == ["scratch", "features"] and all(len(h["loss"]) == 2 for h in histories.values())
    assert list(table.index) == ["scratch", "features"] and set(table["weights"]) == {"random init"}
    assert table["test accuracy"].between(0, 1).all()
    by_size = tlh.accuracy_by_size(images, images, images, sizes=(2, None), strategies=("features",),
                                   weights=None, image_size=32, epochs=2, batch_size=4, arch="vgg16")
    assert list(by_size["images per class"]) == [2, 4] and list(by_size["strategy"]) == ["features", "features"]
