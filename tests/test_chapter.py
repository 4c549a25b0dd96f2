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
