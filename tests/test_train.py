"""Training and evaluation: metrics computed by hand, histories as the chapters plot them."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

import tlhelpers as tlh
from tlhelpers.builders import build_classifier, build_head
from tlhelpers.evaluation import Evaluation, evaluate, predict
from tlhelpers.images import scan_folder, to_dataset
from tlhelpers.train import fit, optimizer, two_phase
from tlhelpers.viz import plot_history

CLASSES = ["a", "b", "c", "d"]  # "d" has no images and is never predicted
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 1, 1, 2, 0])
CONFIDENCE = np.array([0.9, 0.8, 0.5, 0.9, 0.6, 0.7, 0.8, 0.7])


@pytest.fixture
def evaluation():
    prob = np.full((8, 4), 0.0)
    for i, (p, c) in enumerate(zip(Y_PRED, CONFIDENCE)):
        prob[i] = (1 - c) / 3
        prob[i, p] = c
    return Evaluation(CLASSES, Y_TRUE, prob)


def test_accuracy_and_confusion(evaluation):
    assert evaluation.accuracy == pytest.approx(5 / 8)
    np.testing.assert_array_equal(evaluation.y_pred, Y_PRED)
    np.testing.assert_array_equal(evaluation.confusion, [
        [2, 2, 0, 0],
        [0, 2, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 0, 0],
    ])


def test_precision_recall_f1_by_hand(evaluation):
    per = evaluation.per_class()
    assert list(per) == CLASSES
    expected = {  # precision = tp / predicted, recall = tp / actual, f1 = harmonic mean
        "a": (2 / 3, 2 / 4, 4 / 7, 4),
        "b": (2 / 4, 2 / 2, 2 / 3, 2),
        "c": (1 / 1, 1 / 2, 2 / 3, 2),
        "d": (0.0, 0.0, 0.0, 0),
    }
    for name, (p, r, f, n) in expected.items():
        assert per[name]["precision"] == pytest.approx(p), name
        assert per[name]["recall"] == pytest.approx(r), name
        assert per[name]["f1"] == pytest.approx(f), name
        assert per[name]["support"] == n, name
    table = evaluation.table()
    assert list(table.index) == CLASSES and table.loc["a", "f1"] == pytest.approx(4 / 7)


def test_misclassified_most_confident_first(evaluation):
    # wrong: 2 (a->b, 0.5), 3 (a->b, 0.9), 7 (c->a, 0.7)
    np.testing.assert_array_equal(evaluation.misclassified(), [3, 7, 2])
    right = Evaluation(["x", "y"], np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert right.misclassified().size == 0 and right.accuracy == 1.0


def test_to_dict_is_json_ready(evaluation):
    import json

    d = json.loads(json.dumps(evaluation.to_dict()))
    assert d["accuracy"] == pytest.approx(5 / 8) and d["n_images"] == 8 and d["classes"] == CLASSES
    assert d["confusion_matrix"][0] == [2, 2, 0, 0] and d["per_class"]["c"]["precision"] == 1.0


def test_optimizer_by_name():
    assert isinstance(optimizer("Adam", 1e-3), keras.optimizers.Adam)
    sgd = optimizer("sgd", 1e-4, momentum=0.8)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.8)
    with pytest.raises(ValueError, match="'rmsprop', 'adam' or 'sgd'"):
        optimizer("lion", 1e-3)


def features_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, 2, 2, 4)).astype("float32") + y[:, None, None, None] * 2.0
    return x, y


def test_fit_on_arrays_returns_the_history(capsys):
    head = build_head((2, 2, 4), 2, hidden=8)
    x, y = features_data()
    history = fit(head, (x, y), (x, y), epochs=2, batch_size=8)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]  # one line per epoch
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 and all(isinstance(e, float) for e in v) for v in history.values())
    assert set(fit(head, (x, y), epochs=1, verbose=0)) == {"loss", "accuracy"}
    with pytest.raises(ValueError, match="at least 1"):
        fit(head, (x, y), epochs=0)


def test_evaluate_and_predict_on_arrays_and_images(image_folder):
    images = scan_folder(image_folder(per_class=3, size=16), verbose=False)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs)))
    probs = predict(model, images)
    assert probs.shape == (6, 2)
    np.testing.assert_allclose(probs, predict(model, to_dataset(images, image_size=16)), rtol=1e-5)
    result = evaluate(model, images)
    assert result.classes == images.class_names
    np.testing.assert_array_equal(result.y_true, images.labels)
    np.testing.assert_allclose(result.y_prob, probs, rtol=1e-5)
    with pytest.raises(ValueError, match="classes="):
        evaluate(model, (np.zeros((2, 16, 16, 3)), np.array([0, 1])))


def test_two_phase_marks_the_boundary_and_unfreezes(image_folder):
    images = scan_folder(image_folder(per_class=3, size=32), verbose=False)
    ds = to_dataset(images, image_size=32, batch_size=6, shuffle=True)
    base = tlh.load_base("vgg16", weights=None, image_size=32)
    model = build_classifier(base, 2, pooling="avg", hidden=8)
    history = two_phase(model, base, ds, ds, epochs=(1, 1), top_blocks=1, verbose=0)
    assert history["phase_boundary"] == 1
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history[key]) == 2, key
    trainable = [layer.name for layer in base.model.layers if layer.trainable_weights]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3"]
    ax = plot_history({"run": history})
    assert ax.get_lines()[-1].get_xdata()[0] == pytest.approx(1.5)  # the phase boundary, between epochs 1 and 2
    plt.close(ax.figure)


# --------------------------------------------------------------------------- chapter 4 helpers
def test_class_weights_balance_the_classes(image_folder):
    images = scan_folder(image_folder(per_class={"red": 6, "blue": 2}, size=16), verbose=False)
    weights = tlh.class_weights(images)
    counts = np.bincount(images.labels)
    assert weights[images.class_names.index("blue")] == pytest.approx(8 / (2 * 2))
    assert weights[images.class_names.index("red")] == pytest.approx(8 / (2 * 6))
    totals = [counts[i] * w for i, w in weights.items()]
    assert totals[0] == pytest.approx(totals[1])  # each class weighs the same in the loss
    empty = tlh.ImageSet(images.paths[:2], [0, 0], ["x", "y"], images.digests[:2])
    with pytest.raises(ValueError, match="y have no images"):
        tlh.class_weights(empty)


def test_join_phases_and_fine_tune_only_touch_the_top_block(image_folder, capsys):
    images = scan_folder(image_folder(per_class=3, size=32), verbose=False)
    ds = to_dataset(images, image_size=32, batch_size=6)
    base = tlh.load_base("vgg16", weights=None, image_size=32)
    model = build_classifier(base, 2, pooling="avg", hidden=8)
    first = fit(model, ds, ds, epochs=2, verbose=0)
    second = tlh.fine_tune(model, base, ds, ds, epochs=1, top_blocks=1, verbose=0)
    assert capsys.readouterr().out == ""  # verbose=0 is silent, trainable report included
    assert [layer.name for layer in base.model.layers if layer.trainable_weights][0] == "block5_conv1"
    joined = tlh.join_phases(first, second)
    assert joined["phase_boundary"] == 2 and len(joined["val_accuracy"]) == 3
    assert joined["loss"] == first["loss"] + second["loss"]


def _head_trained_one_epoch(image_folder, tiny_base):
    """Eight tiny images, their dataset, and a classifier on `tiny_base` whose head trained one epoch (and its weights)."""
    images = scan_folder(image_folder(per_class=4, size=32), verbose=False)
    ds = to_dataset(images, image_size=32, batch_size=4)
    model = build_classifier(tiny_base, 2, pooling="avg", hidden=8)
    fit(model, ds, epochs=1, verbose=0)
    return images, ds, model, model.get_weights()


def test_batchnorm_experiment_compares_modes_and_leaves_no_trace(image_folder, tiny_base):
    images, ds, model, start = _head_trained_one_epoch(image_folder, tiny_base)
    model.get_layer("predictions").set_weights([w * 0 for w in model.get_layer("predictions").get_weights()])
    current = model.get_weights()
    table = tlh.batchnorm_experiment(model, tiny_base, ds, ds, start_weights=start, epochs=2, top_blocks=2)
    assert list(table.index) == ["BatchNorm frozen (inference mode)", "BatchNorm training mode"]
    assert list(table.columns) == ["val. accuracy, epoch 1", "val. accuracy, epoch 2", "moving-mean change"]
    assert table.iloc[0]["moving-mean change"] == 0.0 < table.iloc[1]["moving-mean change"]
    for a, b in zip(current, model.get_weights()):  # the model gets its weights back
        np.testing.assert_array_equal(a, b)
    assert not tiny_base.model.trainable_weights  # and the base is frozen again


def test_batchnorm_experiment_scores_each_mode_for_the_paired_test(image_folder, tiny_base):
    images, ds, model, start = _head_trained_one_epoch(image_folder, tiny_base)
    table = tlh.batchnorm_experiment(model, tiny_base, ds, None, start_weights=start, epochs=1, top_blocks="all",
                                     evaluate_on=images)
    # no validation: no per-epoch columns
    assert list(table.columns) == ["moving-mean change", "training accuracy", "accuracy"]
    evaluations = table.attrs["evaluations"]
    assert list(evaluations) == list(table.index)
    for row, ev in evaluations.items():
        assert ev.accuracy == table.loc[row, "accuracy"] and len(ev.y_true) == len(images)
    frozen, training = evaluations.values()
    assert tlh.compare(frozen, training).n == len(images)
    for a, b in zip(start, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # compiled as before, its optimizer built for the head that trains now, not for the whole base
    assert model.get_compile_config()["optimizer"]["class_name"] == "RMSprop"
    assert [v.path for v in model.optimizer._trainable_variables] == [v.path for v in model.trainable_variables]


def test_classify_returns_the_top_classes(image_folder, tmp_path):
    images = scan_folder(image_folder(per_class=2, size=16), verbose=False)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs)))
    table = tlh.classify(model, images.paths[0], ["a", "b", "c"], top=2)
    assert len(table) == 2 and list(table.columns) == ["class", "probability"]
    assert table["probability"].is_monotonic_decreasing and table["probability"].sum() <= 1.0
    with pytest.raises(ValueError, match="predicts 3 classes but 2 class names"):
        tlh.classify(model, images.paths[:2], ["a", "b"])
