"""How big a run is: the `quick`, `gpu` and `full` profiles.

Every chapter asks this module for its sizes instead of branching on the profile
itself. `TL_PROFILE` chooses (`quick`, `gpu` or `full`); without it, a machine with a GPU
runs `gpu` and one without runs `quick`. `full` is the book-scale run of the source material;
`gpu` is `full` with the epochs cut where a chapter would take more than 15 minutes on a free
Colab T4 (estimated on paper by `tlhelpers.estimates`, shown on the instructors' page).

`distribute` names the `tf.distribute` strategy to train under (see `tlhelpers.train.distribution`):
`full` uses "auto", a MirroredStrategy over the GPUs when more than one is visible; `quick` uses
"none", one device.

Example:
    >>> cfg = settings("cats_vs_dogs")
    >>> cfg.image_size, cfg.epochs["features"]
    >>> fit_strategy("features", train, val, distribute=cfg.distribute)
"""

from __future__ import annotations

import dataclasses
import os
from types import MappingProxyType

PROFILES = ("quick", "gpu", "full")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Sizes for one chapter under one profile (None means "all images")."""

    chapter: str
    profile: str
    image_size: int
    batch_size: int
    train_per_class: int | None
    val_per_class: int | None
    test_per_class: int | None
    epochs: MappingProxyType
    weights: str = "imagenet"
    distribute: str = "none"  # a name for tlhelpers.train.distribution: "auto" in full, "none" in quick
    options: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))  # chapter-specific sizes (bootstrap replicates, ...)

    def describe(self) -> str:
        def n(v):
            return "all" if v is None else str(v)

        epochs = ", ".join(f"{k} {v}" for k, v in self.epochs.items())
        text = (
            f"{self.chapter}: {self.image_size} px, batch {self.batch_size}, images per class "
            f"train/val/test {n(self.train_per_class)}/{n(self.val_per_class)}/{n(self.test_per_class)}"
        )
        if self.distribute != "none":
            text += f", distribute {self.distribute}"
        if epochs:
            text += f"\n  epochs: {epochs}"
        if self.options:
            text += "\n  " + ", ".join(f"{k} {v}" for k, v in self.options.items())
        return text


def _s(chapter, profile, **kw):
    kw["epochs"] = MappingProxyType(dict(kw["epochs"]))
    kw["options"] = MappingProxyType(dict(kw.get("options", {})))
    kw.setdefault("distribute", "none" if profile == "quick" else "auto")  # gpu, full: every GPU when there are several
    return RunSettings(chapter=chapter, profile=profile, **kw)


# Full sizes follow the source material (Chollet 2021, ch. 8 for cats vs. dogs).
# Quick sizes keep each notebook under 4 minutes on 2 CPU cores.
_TABLE = {
    ("cats_vs_dogs", "full"): _s(
        "cats_vs_dogs", "full", image_size=180, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"scratch": 30, "scratch_augmented": 100, "features": 20,
                "features_augmented": 50, "finetune": 30},
        options={"scratch_image_size": 180, "scratch_batch_size": 32},
    ),
    # Quick: every image for the cached features (train 1600 and validation 400, split from the official 2000 training
    # images; test: the official 1000 validation images). The convnets from scratch train on every image too, but at
    # 64 px (scratch_image_size), decoded once into memory and under mixed bfloat16 where the CPU has it: about 2 s an
    # epoch on 2 cores in batches of 64 (3 s with augmentation and dropout; batches of 32 took 2.5 and 3.6 s), so 15
    # and 22 epochs show overfitting, and augmentation holding it back. The runs that push images through the
    # pretrained base at every epoch (with augmentation: as many epochs as the head on cached features, so that the
    # two compare at equal budgets; fine-tuning: two) train on a stratified subset, to stay within 4 minutes on 2 cores.
    ("cats_vs_dogs", "quick"): _s(
        "cats_vs_dogs", "quick", image_size=128, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"scratch": 15, "scratch_augmented": 22, "features": 3,
                "features_augmented": 3, "finetune": 2},
        options={"scratch_image_size": 64, "scratch_batch_size": 64, "end_to_end_train_per_class": 200,
                 "end_to_end_val_per_class": 100},
    ),
    # Chapter 4: InceptionV3 on TrashNet, 70/15/15 split of all images in both profiles. Full is the original
    # project's recipe: 224 px (its target_size), phase 1 (head) 1 epoch, phase 2 (top two blocks) 10 epochs; the
    # control arm trains the head alone for phase 2's epochs. The BatchNormalization experiment unfreezes the whole
    # base and trains in batches of batchnorm_demo_batch with that momentum (running averages follow the batches).
    ("trashnet", "full"): _s(
        "trashnet", "full", image_size=224, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"head": 1, "finetune": 10, "batchnorm_demo": 2},
        options={"batchnorm_demo_batch": 4, "batchnorm_demo_momentum": 0.9},
    ),
    # Quick: the stand-in at 128 px (at 160 px the chapter took 320 s alone, past its 4 minutes), phase 2 (and so the
    # control) 3 epochs; the BatchNormalization experiment on a
    # subset of the training split (all of it in full).
    ("trashnet", "quick"): _s(
        "trashnet", "quick", image_size=128, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"head": 1, "finetune": 3, "batchnorm_demo": 1},
        options={"batchnorm_demo_images": 300, "batchnorm_demo_batch": 4, "batchnorm_demo_momentum": 0.9},
    ),
    # The source-model page. probe_*: the cats-vs-dogs sample on which its features are compared with
    # EfficientNet-Lite0's (None: all). tune_*: the cats-vs-dogs sample on which the source model is tuned (its top
    # blocks only, on the frozen blocks' output computed once); noise_per_class: the Imagenette images whose shuffled
    # labels are memorised: by chapter 3's first convnet from scratch (64 px, bfloat16) for epochs["memorise"], before
    # it trains on cats vs. dogs for epochs["target"] (as chapter 3's quick run: 15), and by the top blocks in an
    # exercise. The two convnet runs take about 35 and 2 x 30 s on 2 cores. Equal in both profiles; image_size is the
    # probes'.
    ("source_model", "full"): _s(
        "source_model", "full", image_size=96, batch_size=16,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"memorise": 30, "target": 15},
        options={"probe_train_per_class": None, "probe_test_per_class": None, "tune_train_per_class": None,
                 "tune_test_per_class": None, "noise_per_class": 100, "convnet_image_size": 64},
    ),
    ("source_model", "quick"): _s(
        "source_model", "quick", image_size=96, batch_size=16,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"memorise": 30, "target": 15},
        options={"probe_train_per_class": None, "probe_test_per_class": None, "tune_train_per_class": None,
                 "tune_test_per_class": None, "noise_per_class": 100, "convnet_image_size": 64},
    ),
    # The recipe page (Getting the most from a pretrained base): EfficientNet-Lite0 on TrashNet, every split whole.
    # image_size: the base's native 224 px; start_size: 160, tlh fit's former default. The frozen blocks' output is
    # computed once, so a head's 20 epochs on cached features take seconds and phase 2 (the top 6 blocks, Lite0's last
    # two stages and its top convolution) trains on them without pushing images through the blocks below: 4 epochs,
    # 15-25 s each on 2 cores (tlh fit runs 6 on the images). About 3.3 minutes in all, cold. Equal in both profiles.
    ("recipe", "full"): _s(
        "recipe", "full", image_size=224, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None, epochs={"head": 20, "finetune": 4},
        options={"start_size": 160, "top_blocks": 6, "patience": 3, "smoothing": 0.1, "warmup_fraction": 0.1},
    ),
    ("recipe", "quick"): _s(
        "recipe", "quick", image_size=224, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None, epochs={"head": 20, "finetune": 4},
        options={"start_size": 160, "top_blocks": 6, "patience": 3, "smoothing": 0.1, "warmup_fraction": 0.1},
    ),
    # The BatchNormalization-momentum page: MobileNetV2 (alpha 0.5) from random weights, once per momentum, on a slice
    # of Imagenette (train/val per class). Each run's first epoch, tracing included, costs about 20 s on 2 cores
    # whatever the size, so quick trains at 64 px for 4 epochs on 100 images a class (two runs: ~100-120 s).
    ("batchnorm_momentum", "full"): _s(
        "batchnorm_momentum", "full", image_size=96, batch_size=16,
        train_per_class=300, val_per_class=100, test_per_class=None, epochs={"scratch": 8},
    ),
    ("batchnorm_momentum", "quick"): _s(
        "batchnorm_momentum", "quick", image_size=64, batch_size=16,
        train_per_class=100, val_per_class=30, test_per_class=None, epochs={"scratch": 4},
    ),
    # Chapter 2: domain similarity on pooled EfficientNet-Lite0 features at two depths; train_per_class is the sample
    # of each dataset, in total (at most 195: the training split of ants vs. bees). Feature extraction is cheap; the
    # bootstrap of the proxy A-distance (one logistic regression per new split, `bootstrap_fits` of them shared by the
    # `bootstrap` replicates) is most of the cost. With 1,000 replicates on 100 splits the 2.5th and 97.5th percentiles
    # have a standard deviation over five bootstrap seeds of at most 0.026 (PAD: the reference and cats vs. dogs at
    # both depths) and 4.4% of the interval's width (MMD²: every pair), quick profile; with 100 replicates on 100
    # splits, up to 0.066 and 7.4%. probe_train/probe_test: the images (in total) of each target's training and test
    # splits on which linear probes at the two depths calibrate the recommender (None: all).
    ("formalism", "full"): _s(
        "formalism", "full", image_size=160, batch_size=32,
        train_per_class=190, val_per_class=None, test_per_class=None,
        epochs={}, options={"bootstrap": 2000, "bootstrap_fits": 200, "probe_train": None, "probe_test": None},
    ),
    ("formalism", "quick"): _s(
        "formalism", "quick", image_size=128, batch_size=32,
        train_per_class=150, val_per_class=None, test_per_class=None,
        epochs={}, options={"bootstrap": 1000, "bootstrap_fits": 100, "probe_train": 400, "probe_test": 500},
    ),
    # Chapter 1: learning curves on a fixed sample of cats vs. dogs (train/val/test_per_class; None: all 1000 test
    # images), linear probes by training-set size (sizes, each drawn `draws` times) on cats vs. dogs and
    # ants vs. bees, the choosing-a-base comparison (same sample) and the layer-wise probe (ants vs. bees). Only the
    # from-scratch and fine-tuning curves push images through a network at every epoch; they are the cost.
    # Chapter 1: every cats-vs-dogs photo; the network without transfer (the small convnet) trains at
    # scratch_image_size, the transfer run on Lite0's features at image_size, both for epochs["curves"].
    ("concepts", "full"): _s(
        "concepts", "full", image_size=160, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"curves": 30},
        options={"scratch_image_size": 128, "sizes": (5, 10, 25, 50, 100, None), "draws": 20, "speed_images": 256},
    ),
    ("concepts", "quick"): _s(
        "concepts", "quick", image_size=128, batch_size=32,
        train_per_class=None, val_per_class=None, test_per_class=None,
        epochs={"curves": 20},
        options={"scratch_image_size": 64, "sizes": (5, 10, 25, 50, 100, None), "draws": 5, "speed_images": 128},
    ),
    # Chapter 5: a transfer model to explain, and the sample sizes of the measurements.
    # image_size is the cats-vs-dogs model's; the ImageNet classifier is always 224 px. sparsity_images come from the
    # 134 Imagenette photos of ImageNet's validation set; randomization_images from the chapter's ten images.
    ("explain", "full"): _s(
        "explain", "full", image_size=224, batch_size=32,
        train_per_class=None, val_per_class=100, test_per_class=250,
        epochs={"finetune": 10},
        options={"sparsity_images": 134, "randomization_images": 10, "smoothgrad_n": 50, "pattern_size": 128},
    ),
    ("explain", "quick"): _s(
        "explain", "quick", image_size=160, batch_size=32,
        train_per_class=150, val_per_class=25, test_per_class=250,
        epochs={"finetune": 3},
        options={"sparsity_images": 32, "randomization_images": 8, "smoothgrad_n": 16, "pattern_size": 96},
    ),
}

# The gpu profile: full, with fewer epochs where a chapter's estimate on a T4 exceeds its budget (cats vs. dogs: the
# augmented runs push every image through VGG16 at every epoch; 100 + 50 + 30 epochs take about 18 minutes there).
_GPU_EPOCHS = {"cats_vs_dogs": {"scratch_augmented": 50, "features_augmented": 20, "finetune": 20}}
for (_chapter, _profile), _cfg in list(_TABLE.items()):
    if _profile == "full":
        _TABLE[(_chapter, "gpu")] = dataclasses.replace(
            _cfg, profile="gpu", epochs=MappingProxyType({**_cfg.epochs, **_GPU_EPOCHS.get(_chapter, {})}))

CHAPTERS = tuple(sorted({c for c, _ in _TABLE}))


def has_gpu() -> bool:
    """True when the active Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return torch.cuda.is_available()
    except Exception:  # a broken GPU stack means: run as if there were none
        return False
    return False


def current_profile() -> str:
    """Return 'quick', 'gpu' or 'full' from TL_PROFILE; by default 'gpu' with a GPU, 'quick' without.

    Example:
        >>> os.environ["TL_PROFILE"] = "quick"; current_profile()
        'quick'
    """
    value = os.environ.get("TL_PROFILE", "").strip().lower()
    if value:
        if value not in PROFILES:
            raise ValueError(
                f"TL_PROFILE={value!r} is not a profile; set TL_PROFILE to 'quick', 'gpu' or 'full'."
            )
        return value
    return "gpu" if has_gpu() else "quick"


def _reason() -> str:
    if os.environ.get("TL_PROFILE", "").strip():
        return "set by TL_PROFILE"
    return "default: a GPU was found" if has_gpu() else "default: no GPU found"


def settings(chapter: str, profile: str | None = None, *, verbose: bool = False) -> RunSettings:
    """Return the RunSettings of `chapter` under `profile` (default: the current profile).

    Example:
        >>> cfg = settings("cats_vs_dogs", "quick")
        >>> cfg.image_size
        96
    """
    profile = profile or current_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}.")
    if (chapter, profile) not in _TABLE:
        raise ValueError(f"no settings for chapter {chapter!r}; chapters are: {', '.join(CHAPTERS)}.")
    cfg = _TABLE[(chapter, profile)]
    if verbose:
        print(f"Run profile: {profile} ({_reason()})\n  {cfg.describe()}")
    return cfg
