"""setup_chapter: the one call at the top of every chapter."""

import numpy as np
import pandas as pd
import pytest

import tlhelpers as tlh


def test_setup_chapter_seeds_sets_tables_and_returns_the_profile_settings(monkeypatch, capsys):
    monkeypatch.setenv("TL_PROFILE", "quick")
    with pd.option_context("display.max_colwidth", 50):
        cfg = tlh.setup_chapter("trashnet")
        first = np.random.random(3)
        assert pd.get_option("display.max_colwidth") is None
    assert cfg == tlh.settings("trashnet", "quick")
    assert "Run profile: quick" in capsys.readouterr().out  # the page says which profile made its numbers
    tlh.setup_chapter("trashnet", verbose=False)
    assert np.array_equal(np.random.random(3), first) and capsys.readouterr().out == ""


def test_setup_chapter_refuses_an_unknown_chapter_before_changing_anything():
    with pd.option_context("display.max_colwidth", 50):
        with pytest.raises(ValueError, match="no settings for chapter 'cats'; chapters are: "):
            tlh.setup_chapter("cats")
        assert pd.get_option("display.max_colwidth") == 50


def test_setup_chapter_silences_the_ignored_shuffle_warning_of_fit_on_a_dataset(monkeypatch):
    import warnings

    import keras
    import tensorflow as tf

    monkeypatch.setenv("TL_PROFILE", "quick")
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), np.zeros(4, "int32"))).batch(2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, epochs=1, verbose=0)  # Keras's default shuffle=True on a dataset: the warning
        assert any("shuffle=True" in str(w.message) for w in caught)
        caught.clear()
        tlh.setup_chapter("trashnet", verbose=False)
        model.fit(data, epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle=True" in str(w.message)]


def test_setup_chapter_keeps_tensorflow_info_lines_off_the_page(monkeypatch):
    import logging

    monkeypatch.setenv("TL_PROFILE", "quick")
    logger = logging.getLogger("tensorflow")
    before = logger.level
    try:
        logger.setLevel(logging.INFO)
        tlh.setup_chapter("trashnet", verbose=False)
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    finally:
        logger.setLevel(before)
