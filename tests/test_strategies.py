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


def test_validation_recorder_keeps_each_epochs_right_answers():
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    record = tlh.ValidationRecorder(x, y, batch_size=16)
    history = model.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), callbacks=[record], verbose=0)
    assert record.correct.shape == (3, 40) and record.correct.dtype == bool
    assert record.correct.mean(1) == pytest.approx(history.history["val_accuracy"])
    with pytest.raises(ValueError, match="one label per validation input"):
        tlh.ValidationRecorder(x, y[:5])


def test_effect_tests_by_hand():
    import numpy as np

    scratch = np.zeros((4, 10), dtype=bool)
    scratch[1:, :3], scratch[2:, :5] = True, True  # 0, 3, 5, 5 right of 10
    transfer = np.ones((4, 10), dtype=bool)
    transfer[0, 8:] = False  # 8 right after the first epoch, then 10
    table = tlh.effect_tests({"scratch": scratch, "transfer": transfer}, baseline="scratch", draws=500)
    row = table.loc["transfer"]
    assert row["start gap"] == pytest.approx(80) and row["start p"] == pytest.approx(2 * 0.5**8)  # 8 vs 0 disagreements
    effects = tlh.transfer_effects({"s": {"val_accuracy": scratch.mean(1)}, "t": {"val_accuracy": transfer.mean(1)}})
    assert row["slope gap"] == pytest.approx(100 * (effects.loc["t", "slope"] - effects.loc["s", "slope"]))
    assert row["slope low"] <= row["slope gap"] <= row["slope high"]
    with pytest.raises(ValueError, match="baseline 'none'"):
        tlh.effect_tests({"scratch": scratch}, baseline="none")
    with pytest.raises(ValueError, match="same \\(epochs, images\\)"):
        tlh.effect_tests({"scratch": scratch, "transfer": transfer[:, :5]}, baseline="scratch")
