"""What a chapter prints is for people: dataset paths, not this machine's; percentages, not 9.999998e-01; no
third-party download chatter before the course's own notice."""

import keras
import pytest

import tlhelpers as tlh
from tlhelpers import offline
from tlhelpers.evaluation import shown_path


def _model(size=16, n=3):
    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(n, activation="softmax")(pooled))


def test_classify_shows_the_path_inside_the_datasets_folder_and_percentages(image_folder, tmp_path, monkeypatch):
    folder = image_folder(per_class=1, size=16)
    monkeypatch.setenv("TL_DATA_DIR", str(folder.parent))
    photo = sorted(folder.rglob("*.png")) or sorted(folder.rglob("*.jpg"))
    table = tlh.classify(_model(), photo[0], ["a", "b", "c"])
    image = table.index.get_level_values("image")[0]
    assert image == photo[0].relative_to(folder.parent).as_posix() and str(tmp_path) not in image
    assert table["probability"].dtype.kind == "f"  # still numbers to compute with
    shown = repr(table) + table._repr_html_()
    assert "%" in shown and "e-0" not in shown and str(tmp_path) not in shown
    assert table[["class"]].shape == (3, 1)  # a column taken out still shows


def test_a_file_outside_the_datasets_folder_is_shown_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "datasets"))
    assert shown_path("my_bottle.jpg") == "my_bottle.jpg"


def test_a_failed_download_prints_no_keras_chatter(monkeypatch, capsys):
    def failing_download(*args, **kwargs):
        print("Downloading data from https://storage.googleapis.com/tensorflow/keras-applications/x.h5")
        raise OSError("URL fetch failure on https://storage.googleapis.com -- [Errno -2] Name or service not known")

    monkeypatch.setattr(offline.keras.applications, "MobileNetV2", failing_download)
    with pytest.raises(offline.WeightsUnavailableError):
        offline.source_classifier(allow_fallback=False)
    assert "Downloading data from" not in capsys.readouterr().out
