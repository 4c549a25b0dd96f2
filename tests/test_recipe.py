"""The recipe's pieces on tiny synthetic data: schedule shape, label smoothing, early stopping restoring the best
epoch, class weights, test-time augmentation's views, and mixed precision chosen by the hardware and restored."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlhelpers import precision
from tlhelpers.builders import small_convnet
from tlhelpers.evaluation import evaluate, predict
from tlhelpers.images import scan_folder
from tlhelpers.recipe import (
    SmoothedSparseCrossentropy,
    WarmupCosine,
    class_weights_if_imbalanced,
    early_stopping,
    warmup_cosine,
)
from tlhelpers.train import class_weights, fit, two_phase
from tlhelpers.tta import predict_tta, view


def tiny_dense(n_in: int = 4, n_classes: int = 2) -> keras.Model:
    inputs = keras.Input((n_in,))
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(inputs))


# -- warm-up + cosine schedule --------------------------------------------------------------------------------

def test_schedule_rises_then_falls_to_floor():
    lr = WarmupCosine(1e-2, warmup_steps=10, total_steps=110, floor=1e-4)
    values = np.array([float(lr(s)) for s in range(130)])
    assert np.all(np.diff(values[:10]) > 0) and values[9] == pytest.approx(1e-2)
    assert np.all(np.diff(values[10:110]) <= 1e-12)          # non-increasing after the warm-up
    assert values[60] == pytest.approx((1e-2 + 1e-4) / 2, rel=1e-3)   # half-way down the cosine
    assert values[110:] == pytest.approx(1e-4)


def test_schedule_serialises_and_drives_an_optimizer():
    lr = warmup_cosine(1e-3, steps_per_epoch=5, epochs=4)
    assert (lr.warmup_steps, lr.total_steps) == (2, 20)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(lr))
    assert isinstance(again, WarmupCosine) and again.get_config() == lr.get_config()
    opt = keras.optimizers.Adam(lr)
    assert float(opt.learning_rate) == pytest.approx(float(lr(0)))


def test_schedule_refuses_bad_arguments():
    with pytest.raises(ValueError, match="peak"):
        WarmupCosine(0, warmup_steps=0, total_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(1e-3, warmup_steps=11, total_steps=10)


def test_fit_with_warmup_cosine_uses_the_schedule():
    x, y = np.random.default_rng(0).normal(size=(40, 4)).astype("float32"), np.arange(40) % 2
    model = tiny_dense()
    fit(model, (x, y), epochs=2, batch_size=10, verbose=0, schedule="warmup_cosine")
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, WarmupCosine) and schedule.total_steps == 8
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(8)))
    with pytest.raises(ValueError, match="schedule"):
        fit(model, (x, y), epochs=1, verbose=0, schedule="cosine")


def test_a_model_trained_with_the_recipe_saves_and_loads(tmp_path):
    from tlhelpers.saving import load_model, save_model

    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 2
    model = tiny_dense()
    fit(model, (x, y), (x, y), epochs=2, verbose=0, schedule="warmup_cosine", label_smoothing=0.1, early_stopping=1)
    path = save_model(model, tmp_path / "m.keras", class_names=["a", "b"])
    again, meta = load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert isinstance(again.loss, SmoothedSparseCrossentropy)


def test_a_recipe_model_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    from tlhelpers.saving import save_model

    model = tiny_dense()
    fit(model, (np.ones((4, 4)), np.arange(4) % 2), epochs=1, verbose=0, schedule="warmup_cosine",
        label_smoothing=0.1)
    path = save_model(model, tmp_path / "m.keras", class_names=["a", "b"])
    code = f"from tlhelpers.saving import load_model; load_model({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]


# -- label smoothing ---------------------------------------------------------------------------------------------

def test_label_smoothing_equals_categorical_on_smoothed_targets():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=6).astype("float32")
    labels = np.array([0, 1, 2, 2, 1, 0])
    mine = float(SmoothedSparseCrossentropy(0.2)(labels, probs))
    target = np.eye(3)[labels] * 0.8 + 0.2 / 3
    by_hand = float(np.mean(-(target * np.log(probs)).sum(axis=1)))
    assert mine == pytest.approx(by_hand, rel=1e-4)
    plain = float(keras.losses.SparseCategoricalCrossentropy()(labels, probs))
    assert float(SmoothedSparseCrossentropy(0.0)(labels, probs)) == pytest.approx(plain, rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(SmoothedSparseCrossentropy(0.2)))
    assert again.smoothing == 0.2


def test_fit_compiles_the_smoothed_loss():
    x, y = np.ones((8, 4), "float32"), np.arange(8) % 2
    model = tiny_dense()
    fit(model, (x, y), epochs=1, verbose=0, label_smoothing=0.1)
    assert isinstance(model.loss, SmoothedSparseCrossentropy) and model.loss.smoothing == 0.1


# -- early stopping ----------------------------------------------------------------------------------------------

class WeightsPerEpoch(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights, self.val_loss = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])
        self.val_loss.append(logs["val_loss"])


def test_early_stopping_restores_the_best_epochs_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    # Validation labels are the opposite: the better the model learns, the worse validation gets, so the best
    # epoch is an early one, never the last.
    record = WeightsPerEpoch()
    model = tiny_dense()
    history = fit(model, (x, y), (x, 1 - y), epochs=30, learning_rate=0.05, optimizer_name="adam", verbose=0,
                  early_stopping=2, callbacks=[record])
    best = int(np.argmin(record.val_loss))
    assert len(history["loss"]) < 30 and best < len(record.val_loss) - 1
    for got, want in zip(model.get_weights(), record.weights[best]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_needs_validation_and_restores():
    cb = early_stopping(4)
    assert cb.restore_best_weights and cb.patience == 4 and cb.monitor == "val_loss"
    assert early_stopping(2, monitor="val_accuracy").mode == "max"
    with pytest.raises(ValueError, match="validation"):
        fit(tiny_dense(), (np.ones((4, 4)), np.zeros(4)), epochs=1, verbose=0, early_stopping=2)


def test_two_phase_passes_the_recipe_to_both_phases(tiny_base, image_folder):
    from tlhelpers.builders import build_classifier
    from tlhelpers.images import to_dataset

    images = scan_folder(image_folder(per_class=4, size=32), verbose=False)
    ds = to_dataset(images, image_size=32, batch_size=4)
    model = build_classifier(tiny_base, 2, pooling="avg", hidden=None)
    h = two_phase(model, tiny_base, ds, ds, epochs=(1, 1), top_blocks=1, verbose=0, schedule="warmup_cosine",
                  label_smoothing=0.1, early_stopping=1)
    assert h["phase_boundary"] == 1 and len(h["loss"]) == 2
    assert isinstance(model.loss, SmoothedSparseCrossentropy) and isinstance(model.optimizer._learning_rate,
                                                                              WarmupCosine)


# -- class weights -----------------------------------------------------------------------------------------------

def test_class_weights_only_when_imbalanced(image_folder):
    images = scan_folder(image_folder(per_class={"red": 8, "blue": 2}), verbose=False)
    weights = class_weights_if_imbalanced(images)
    red, blue = images.class_names.index("red"), images.class_names.index("blue")
    assert weights[red] == pytest.approx(10 / 16) and weights[blue] == pytest.approx(10 / 4)
    assert sum(weights[c] * n for c, n in ((red, 8), (blue, 2))) == pytest.approx(10)  # total weight unchanged
    assert weights == pytest.approx(class_weights(images))  # the same weights as tlhelpers.train.class_weights
    assert class_weights_if_imbalanced([0, 0, 0, 1, 1]) is None
    assert class_weights_if_imbalanced([0, 0, 0, 1, 1], ratio=1.2) is not None
    with pytest.raises(ValueError, match="every class"):
        class_weights_if_imbalanced([0, 0, 2])


# -- test-time augmentation --------------------------------------------------------------------------------------

class LeftBright:
    """A 'model' that is not flip-invariant: P(class 0) grows with the left half's brightness."""

    def __call__(self, x):
        left = x[:, :, : x.shape[2] // 2].mean(axis=(1, 2, 3)) / 255.0
        return np.stack([left, 1 - left], axis=1)


def test_tta_averages_the_views():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (5, 8, 8, 3)).astype("float32")
    model = LeftBright()
    np.testing.assert_allclose(predict_tta(model, x, views=("identity",)), model(x))
    expected = (model(x) + model(x[:, :, ::-1])) / 2
    np.testing.assert_allclose(predict_tta(model, x, views=("identity", "flip"), batch_size=2), expected, rtol=1e-6)
    four = predict_tta(model, x, views=("identity", "flip", "crop", "flip_crop"))
    manual = np.mean([model(view(x, v)) for v in ("identity", "flip", "crop", "flip_crop")], axis=0)
    np.testing.assert_allclose(four, manual, rtol=1e-6)


def test_views_are_what_they_say():
    x = np.arange(2 * 8 * 8 * 3, dtype="float32").reshape(2, 8, 8, 3)
    np.testing.assert_array_equal(view(x, "flip")[:, :, 0], x[:, :, -1])
    crop = view(x, "crop")
    assert crop.shape == x.shape and not np.array_equal(crop, x)
    with pytest.raises(ValueError, match="identity, flip"):
        predict_tta(LeftBright(), x, views=("rotate",))


def test_evaluate_with_tta_on_an_imageset(image_folder):
    images = scan_folder(image_folder(per_class=3, size=16), verbose=False)
    model = small_convnet(16, 2)
    plain = evaluate(model, images)
    tta = evaluate(model, images, tta=("identity", "flip"))
    assert tta.y_prob.shape == plain.y_prob.shape
    flipped = predict_tta(model, images, views=("flip",))
    np.testing.assert_allclose(tta.y_prob, (plain.y_prob + flipped) / 2, atol=1e-5)
    np.testing.assert_allclose(predict(model, images), plain.y_prob, atol=1e-6)   # default unchanged


# -- mixed precision -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,gpus,expected", [
    ({"avx512f", "avx512_bf16"}, [], "mixed_bfloat16"),
    ({"amx_bf16"}, [], "mixed_bfloat16"),
    ({"avx2", "avx512f"}, [], "float32"),
    (set(), [(7, 5)], "mixed_float16"),
    ({"amx_bf16"}, [(8, 0), (9, 0)], "mixed_float16"),
    ({"amx_bf16"}, [(6, 1)], "float32"),
])
def test_policy_follows_the_hardware(flags, gpus, expected):
    assert precision.hardware_policy(flags=flags, gpus=gpus) == expected


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_bf16\n\nprocessor\t: 1\n")
    assert {"avx512_bf16", "amx_bf16", "fpu"} <= precision.cpu_flags(info)
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_mixed_precision_is_restored_even_after_an_error(monkeypatch):
    monkeypatch.setattr(precision, "hardware_policy", lambda: "mixed_bfloat16")
    before = keras.config.dtype_policy().name
    with precision.mixed_precision() as name:
        assert name == "mixed_bfloat16" == keras.config.dtype_policy().name
        model = precision.float32_output(small_convnet(16, 2))
    assert keras.config.dtype_policy().name == before
    assert model.layers[1].compute_dtype == "bfloat16" and model.layers[-1].compute_dtype == "float32"
    assert model.predict(np.zeros((1, 16, 16, 3)), verbose=0).dtype == np.float32
    with pytest.raises(RuntimeError), precision.mixed_precision("mixed_float16"):
        raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == before
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        with precision.mixed_precision("bf16"):
            pass
