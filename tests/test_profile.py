"""Run profiles: TL_PROFILE chooses quick, gpu or full, and every chapter's sizes come from one table."""

import dataclasses

import pytest

from tlhelpers import profile
from tlhelpers.profile import CHAPTERS, PROFILES, current_profile, settings


@pytest.mark.parametrize("value", ["quick", "gpu", "full", " Full ", "QUICK"])
def test_tl_profile_is_honoured(monkeypatch, value):
    monkeypatch.setenv("TL_PROFILE", value)
    assert current_profile() == value.strip().lower()
    assert settings(CHAPTERS[0]).profile == value.strip().lower()


def test_invalid_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("TL_PROFILE", "fast")
    with pytest.raises(ValueError) as err:
        current_profile()
    message = str(err.value)
    assert "'quick'" in message and "'gpu'" in message and "'full'" in message and "fast" in message
    assert "\n" not in message


def test_default_without_gpu_is_quick(monkeypatch):
    assert profile.has_gpu() is False  # this machine is CPU only
    assert current_profile() == "quick"
    monkeypatch.setattr(profile, "has_gpu", lambda: True)
    assert current_profile() == "gpu"  # full is asked for by name: it takes longer than a free T4 session likes


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_gpu_is_full_with_at_most_its_epochs(chapter):
    gpu, full = settings(chapter, "gpu"), settings(chapter, "full")
    assert dataclasses.replace(gpu, profile="full", epochs=full.epochs) == full
    assert set(gpu.epochs) == set(full.epochs) and all(gpu.epochs[k] <= full.epochs[k] for k in full.epochs)
    assert gpu.distribute == "auto"


QUICK_SCRATCH = {("cats_vs_dogs", "scratch"), ("cats_vs_dogs", "scratch_augmented"),
                 ("concepts", "curves"),  # chapter 1's curves: the small convnet beside a head on features
                 ("batchnorm_momentum", "scratch"),  # four short epochs: each run's first one is mostly tracing
                 # the source-model page's negative transfer: chapter 3's convnet (64 px, in memory) memorises
                 # shuffled labels, then trains on cats vs. dogs as chapter 3's quick run does
                 ("source_model", "memorise"), ("source_model", "target"),
                 # the recipe page: a head on cached features (seconds an epoch), phase 2 on the frozen blocks' output
                 ("recipe", "head"), ("recipe", "finetune")}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quick_sizes_never_exceed_full(chapter):
    quick, full = settings(chapter, "quick"), settings(chapter, "full")

    def at_most(q, f):  # None means "all images"
        return f is None or (q is not None and q <= f)

    assert quick.image_size <= full.image_size
    assert quick.batch_size <= full.batch_size
    for field in ("train_per_class", "val_per_class", "test_per_class"):
        assert at_most(getattr(quick, field), getattr(full, field)), field
    assert set(quick.epochs) == set(full.epochs)
    for name, n in quick.epochs.items():
        # quick: a few epochs per end-to-end phase; chapter 1's curves (a head on cached features, the small convnet
        # on 64-px photos in memory) and chapter 3's convnets from scratch (64 px, in memory, about 2 s an epoch) run
        # long enough to show start, slope and asymptote, and to overfit. The 4-minute chapter budget is the limit.
        limit = 30 if (chapter, name) in QUICK_SCRATCH or name == "curves" else 3
        assert 1 <= n <= limit, name
        assert n <= full.epochs[name], name


def test_concepts_compares_transfer_with_a_convnet_trained_on_every_photo():
    """Chapter 1's network without transfer: the small convnet on every cats-vs-dogs photo, 64 px in quick."""
    quick, full = settings("concepts", "quick"), settings("concepts", "full")
    assert quick.options["scratch_image_size"] == 64 <= full.options["scratch_image_size"]
    for cfg in (quick, full):
        assert cfg.train_per_class is None and cfg.val_per_class is None and cfg.test_per_class is None
        assert cfg.epochs["curves"] >= 20, cfg.epochs


def test_cats_vs_dogs_scratch_runs_small_photos_in_quick_and_the_books_in_full():
    """Chapter 3's convnets from scratch: 64 px on every photo in quick (so they can train to overfitting on 2 cores),
    the book's 180 px in full; more epochs with augmentation than without, as in the book."""
    quick, full = settings("cats_vs_dogs", "quick"), settings("cats_vs_dogs", "full")
    assert quick.options["scratch_image_size"] == 64 and full.options["scratch_image_size"] == full.image_size == 180
    assert quick.train_per_class is None and quick.val_per_class is None  # every photo
    for cfg in (quick, full):
        assert cfg.epochs["scratch_augmented"] > cfg.epochs["scratch"] >= 15, cfg.epochs


def test_settings_are_read_only():
    cfg = settings(CHAPTERS[0], "quick")
    with pytest.raises(TypeError):
        cfg.epochs["features"] = 100
    assert settings(CHAPTERS[0], "quick").epochs == cfg.epochs


def test_unknown_chapter_lists_the_chapters():
    with pytest.raises(ValueError) as err:
        settings("no_such_chapter", "quick")
    message = str(err.value)
    assert "no_such_chapter" in message
    for chapter in CHAPTERS:
        assert chapter in message


def test_unknown_profile_argument_lists_profiles():
    with pytest.raises(ValueError) as err:
        settings(CHAPTERS[0], "medium")
    assert all(p in str(err.value) for p in PROFILES)


def test_verbose_settings_say_profile_and_reason(monkeypatch, capsys):
    monkeypatch.setenv("TL_PROFILE", "full")
    settings("cats_vs_dogs", verbose=True)
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Run profile: full (set by TL_PROFILE)")
    assert "180 px" in out and "finetune 30" in out  # the full sizes, not the quick ones


def test_missing_tensorflow_is_a_one_line_fix(tmp_path):
    """Without TensorFlow, importing tlhelpers says what to install instead of failing deep inside Keras."""
    import subprocess
    import sys

    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import importlib.abc, sys\n"
        "class _Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tensorflow' or name.startswith('tensorflow.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", "import tlhelpers"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "pip install tensorflow" in proc.stderr.splitlines()[-1]


def test_every_chapter_has_both_profiles():
    from tlhelpers.profile import _TABLE

    for chapter in CHAPTERS:
        assert {p for c, p in _TABLE if c == chapter} == set(PROFILES), chapter
    assert {"cats_vs_dogs", "trashnet", "source_model"} <= set(CHAPTERS)


def test_trashnet_full_is_the_original_recipe():
    """Chapter 4's full profile is the original project's recipe (224 px, 1 + 10 epochs), as its page says."""
    full, quick = settings("trashnet", "full"), settings("trashnet", "quick")
    assert full.image_size == 224 and full.epochs["head"] == 1 and full.epochs["finetune"] == 10
    assert quick.epochs["head"] == full.epochs["head"]  # quick keeps phase 1's single epoch
    for key in ("batchnorm_demo_batch", "batchnorm_demo_momentum"):  # the same small batches and momentum
        assert full.options[key] == quick.options[key], key
    assert "batchnorm_demo_images" not in full.options and quick.options["batchnorm_demo_images"] > 0
