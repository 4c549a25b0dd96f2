"""tf.distribute: `distribution` by name, training under MirroredStrategy, `tlh fit --distribute`, the profiles.

The distributed runs need two devices. TensorFlow splits the CPU into logical devices only before its
runtime starts, and the suite runs in one process that has started it long before, so they run in a
subprocess that splits the CPU in two first and prints its measurements as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

from tlhelpers import cli
from tlhelpers.profile import CHAPTERS, settings
from tlhelpers.train import DISTRIBUTIONS, distribution

from conftest import one_error_line, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 32
VAL_IMAGES = 128
# The same seeded run with and without MirroredStrategy: each replica's loss is scaled by the GLOBAL batch
# and the gradients are summed across replicas, so the step equals the single-device step up to the order
# of float additions. Measured on 8 runs (seeds 0-6, global batch 32 and 64, 1-5 epochs): validation
# accuracy identical every time, final loss within 3e-7. The tolerance is one validation example in
# accuracy (a float round-off can flip one borderline example) and 1e-5 relative in loss.
ACCURACY_TOLERANCE = 1 / VAL_IMAGES
LOSS_RTOL = 1e-5

SCRIPT = textwrap.dedent(f"""
    import json, sys, time
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np

    from tlhelpers.images import scan_folder
    from tlhelpers.strategies import fit_strategy
    from tlhelpers.train import distribution, fit

    seen = []  # the batch each replica sees, at every step

    class RecordBatch(keras.layers.Layer):
        # identity; the py_function runs at every step on the replica's own slice of the batch
        def call(self, x):
            n = tf.py_function(lambda n: seen.append(int(n)) or n, [tf.shape(x)[0]], tf.int32)
            with tf.control_dependencies([n]):
                return tf.identity(x)

    rng = np.random.default_rng(0)  # three Gaussian classes in 16 dimensions, 384 to train on, {VAL_IMAGES} held out
    y = rng.integers(0, 3, 384 + {VAL_IMAGES})
    x = (rng.normal(0, 1, (3, 16))[y] + rng.normal(0, 1.5, (len(y), 16))).astype("float32")
    train, val = (x[:384], y[:384]), (x[384:], y[384:])

    def run(kind):
        strategy = distribution(kind)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            inputs = keras.Input((16,))
            h = keras.layers.Dense(16, activation="relu")(RecordBatch()(inputs))
            model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
        seen.clear()
        history = fit(model, train, val, epochs=2, batch_size={GLOBAL_BATCH}, optimizer_name="adam",
                      learning_rate=1e-2, verbose=0, strategy=strategy)
        return {{"replicas": strategy.num_replicas_in_sync, "accuracy": history["val_accuracy"][-1],
                 "loss": history["loss"][-1], "replica_batches": sorted(set(seen)), "steps": len(seen)}}

    start = time.perf_counter()
    out = {{kind: run(kind) for kind in ("none", "mirrored")}}
    out["seconds"] = {{"fit": round(time.perf_counter() - start, 1)}}

    out["same_object"] = distribution("mirrored") is distribution("mirrored")
    other = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3, activation="softmax")])  # default strategy
    try:
        fit(other, train, epochs=1, verbose=0, strategy=distribution("mirrored"))
        out["mismatch"] = None
    except ValueError as err:
        out["mismatch"] = str(err)

    start = time.perf_counter()
    images = scan_folder(sys.argv[1], verbose=False)
    model, history, base = fit_strategy("features", images, images, weights=None, image_size=32, epochs=1,
                                        batch_size=4, base_kwargs={{"alpha": 0.35}}, verbose=0,
                                        distribute="mirrored")
    out["fit_strategy"] = {{"replicas": model.distribute_strategy.num_replicas_in_sync, "epochs": len(history["loss"]),
                            "predictions": int(model.predict(np.zeros((3, 32, 32, 3), "float32"), verbose=0).shape[0])}}
    out["seconds"]["fit_strategy"] = round(time.perf_counter() - start, 1)
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def two_cpus(tmp_path_factory):
    """Run SCRIPT on a CPU split into two logical devices; return its JSON."""
    folder = write_image_folder(tmp_path_factory.mktemp("distribute") / "images", per_class=4, size=32)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_mirrored_splits_the_global_batch(two_cpus):
    single, mirrored = two_cpus["none"], two_cpus["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert single["replica_batches"] == [GLOBAL_BATCH]  # 384 and 128 examples: every batch is full
    assert mirrored["replica_batches"] == [GLOBAL_BATCH // 2]
    assert mirrored["steps"] == 2 * single["steps"]  # every step runs on both replicas


def test_mirrored_reaches_the_same_accuracy(two_cpus):
    single, mirrored = two_cpus["none"], two_cpus["mirrored"]
    assert single["accuracy"] > 0.6  # it learned something (chance: 1/3)
    assert abs(mirrored["accuracy"] - single["accuracy"]) <= ACCURACY_TOLERANCE
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)


def test_model_built_under_another_strategy_is_refused(two_cpus):
    assert two_cpus["same_object"]  # so a model built under distribution("mirrored") trains under a later call
    message = two_cpus["mismatch"]
    assert message is not None and "strategy.scope()" in message and "\n" not in message


def test_fit_strategy_builds_in_the_scope(two_cpus):
    # features: the base, the head and the stacked model all built in the scope (the cheapest strategy: about 15 s)
    assert two_cpus["fit_strategy"] == {"replicas": 2, "epochs": 1, "predictions": 3}


# --------------------------------------------------------------------------- by name, in process
def test_unknown_distribution_names_the_choices():
    with pytest.raises(ValueError) as err:
        distribution("tpu")
    message = str(err.value)
    assert "'tpu'" in message and all(name in message for name in DISTRIBUTIONS) and "\n" not in message


def test_auto_and_none_are_the_default_strategy_on_one_device():
    assert not tf.config.list_logical_devices("GPU")  # this machine is CPU only
    assert distribution("auto") is tf.distribute.get_strategy()
    assert distribution("none") is tf.distribute.get_strategy()


def test_fit_wants_a_strategy_object():
    import keras

    from tlhelpers.train import fit

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(TypeError, match="distribution"):
        fit(model, (tf.zeros((4, 2)), tf.zeros((4,))), epochs=1, verbose=0, strategy="mirrored")


def test_profiles():
    for chapter in CHAPTERS:
        assert settings(chapter, "full").distribute == "auto"
        assert settings(chapter, "quick").distribute == "none"
    assert "distribute auto" in settings(CHAPTERS[0], "full").describe()
    assert "distribute" not in settings(CHAPTERS[0], "quick").describe()  # quick notebooks print what they did


# --------------------------------------------------------------------------- tlh fit --distribute
def test_cli_flag_parses():
    args = ["fit", "data", "--out", "m.keras"]
    assert cli._parser().parse_args(args).distribute == "auto"
    assert cli._parser().parse_args([*args, "--distribute", "mirrored"]).distribute == "mirrored"


def test_cli_refuses_an_unknown_distribution(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit", str(tmp_path), "--out", str(tmp_path / "m.keras"), "--distribute", "tpu"])
    assert exit_.value.code == 2
    line = one_error_line(capsys)
    assert "--distribute" in line and "mirrored" in line


def test_cli_passes_the_flag_to_fit_strategy(image_folder, tmp_path, monkeypatch, capsys):
    import tlhelpers.strategies

    got = {}

    def fake_fit_strategy(*args, **kwargs):
        got.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(tlhelpers.strategies, "fit_strategy", fake_fit_strategy)
    data = image_folder(per_class=5, size=32)
    assert cli.main(["fit", str(data), "--weights", "none", "--out", str(tmp_path / "m.keras"),
                     "--distribute", "none"]) == 2
    assert "stop here" in one_error_line(capsys)
    assert got["distribute"] == "none"
