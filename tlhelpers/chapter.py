"""The start of every chapter: one seed for Keras, NumPy and Python, readable tables, the run profile's settings.

Example:
    >>> cfg = setup_chapter("cats_vs_dogs")
    Run profile: quick (set by TL_PROFILE)
      cats_vs_dogs: 128 px, batch 32, ...
"""

from __future__ import annotations

import logging
import warnings

from .profile import RunSettings, settings

SEED = 42  # every chapter's seed: the same run gives the same numbers


def setup_chapter(chapter: str, *, seed: int = SEED, verbose: bool = True) -> RunSettings:
    """Seed Keras, NumPy and Python with `seed`, show whole cells in pandas tables, return `chapter`'s settings.

    The settings are those of the current profile (`TL_PROFILE`, see `settings`); with `verbose`
    they are printed, so that every page says which profile produced its numbers.

    Example:
        >>> cfg = setup_chapter("trashnet")
        >>> cfg.image_size
        160
    """
    import keras
    import pandas as pd

    cfg = settings(chapter, verbose=verbose)  # first: an unknown chapter fails before anything changes
    pd.set_option("display.max_colwidth", None)
    # model.fit(dataset) warns that its default shuffle=True is ignored: the course's datasets shuffle themselves
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored", category=UserWarning)
    # TensorFlow's INFO lines (such as "Assets written to: <folder>" after model.export) stay off the page
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    keras.utils.set_random_seed(seed)
    return cfg
