"""How long a chapter's training takes on a GPU, on paper: the model's FLOPs × images × epochs ÷ a sustained rate.

No GPU is needed: the FLOPs are counted on the real Keras architectures (built with random weights, which cost the
same arithmetic as ImageNet's), layer by layer, and each chapter's dominant runs are listed from its profile's sizes.
A training step costs a forward pass over every image plus about twice the forward cost of the layers that train
(gradients for their inputs and for their weights); a validation or feature-extraction pass costs one forward.

Example:
    >>> runs = chapter_runs("cats_vs_dogs", "full")
    >>> round(sum(r.flops for r in runs) / T4.sustained_flops / 60)   # minutes on a T4
"""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class Gpu:
    """A GPU's float32 peak (from its datasheet) and the share of it that convnet training sustains (an assumption)."""

    name: str
    peak_flops: float
    utilisation: float

    @property
    def sustained_flops(self) -> float:
        return self.peak_flops * self.utilisation


# NVIDIA T4 datasheet: 8.1 TFLOPS single precision (65 TFLOPS only in mixed float16 on its tensor cores, which the
# chapters do not use). Convnet training in float32 at batch 32 sustains roughly half of peak; we assume 50%.
T4 = Gpu("NVIDIA T4 (Colab's free GPU)", 8.1e12, 0.5)

# The input pipeline runs on the CPU beside the GPU: decoding each JPEG and resizing it, at every epoch. Measured on
# the course's 2-core development machine (tf.data, AUTOTUNE, 1,000 cats-vs-dogs photos at 180 px): about 970 images/s;
# Colab's free runtime also has 2 CPU cores. A run takes the longer of its GPU time and its pipeline time.
PIPELINE_IMAGES_PER_S = 970.0
# What the estimate leaves out (building models, evaluation, plots, Grad-CAM): the budget keeps 3 minutes for it.
BUDGET_S, ALLOWANCE_S = 15 * 60, 3 * 60

# Images in each dataset's official release, split as the chapters split them (70/15/15 for TrashNet's 2,527).
SIZES = {"cats_vs_dogs": (1600, 400, 1000), "trashnet": (1769, 379, 379), "imagenette": (9469, 0, 3925)}


def layer_flops(layer) -> int:
    """Multiply-adds × 2 of one Conv2D, DepthwiseConv2D, SeparableConv2D or Dense layer for one image (0 for others)."""
    import keras

    out = layer.output.shape
    positions = 1
    for d in out[1:-1]:
        positions *= int(d)
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        return 2 * positions * (kh * kw * cin * mult + cin * mult * int(out[-1]))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = layer.kernel.shape
        return 2 * positions * kh * kw * cin * mult
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        kernel = layer.kernel.shape
        macs_per_output = 1
        for d in kernel[:-1]:
            macs_per_output *= int(d)
        return 2 * positions * macs_per_output * int(kernel[-1])
    return 0


def forward_flops(model, from_layer: int = 0) -> int:
    """FLOPs of one image's forward pass through `model.layers[from_layer:]` (nested models counted whole)."""
    total = 0
    for layer in model.layers[from_layer:]:
        total += forward_flops(layer) if hasattr(layer, "layers") else layer_flops(layer)
    return total


@functools.lru_cache(maxsize=None)
def base_flops(arch: str, image_size: int, top_blocks: int = 0, **kwargs) -> tuple[int, int]:
    """(forward FLOPs of the base, forward FLOPs of its top `top_blocks` blocks) at `image_size`, random weights."""
    from .bases import blocks, load_base

    if arch == "small_convnet":  # chapter 3's from-scratch baseline: every layer trains, no blocks to pick
        from .builders import small_convnet

        return forward_flops(small_convnet(image_size, 2)), 0
    base = load_base(arch, weights=None, image_size=image_size, verbose=False, **kwargs)
    top = forward_flops(base.model, blocks(base)[-top_blocks][1]) if top_blocks else 0
    return forward_flops(base.model), top


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run (or one extraction pass when epochs is 0) and its FLOPs."""

    label: str
    arch: str
    image_size: int
    train: int
    val: int
    epochs: int
    trains: str  # "none" (frozen base, head only), "top" (the top blocks too) or "all"
    top_blocks: int = 1
    kwargs: tuple = ()

    @property
    def flops(self) -> float:
        forward, top = base_flops(self.arch, self.image_size, self.top_blocks if self.trains == "top" else 0,
                                  **dict(self.kwargs))
        if self.epochs == 0:  # one forward pass over every image: feature extraction
            return float(forward * (self.train + self.val))
        backward = {"none": 0, "top": 2 * top, "all": 2 * forward}[self.trains]
        return float(self.epochs * (self.train * (forward + backward) + self.val * forward))

    @property
    def images(self) -> int:
        """Images through the input pipeline: every training and validation image at every epoch."""
        return (self.train + self.val) * max(self.epochs, 1)

    def seconds(self, gpu: Gpu = T4) -> float:
        """The longer of the GPU's time for the FLOPs and the CPU pipeline's for the images."""
        return max(self.flops / gpu.sustained_flops, self.images / PIPELINE_IMAGES_PER_S)


def estimate_table(profile: str = "gpu", gpu: Gpu = T4):
    """One row per run of every chapter: FLOPs, GPU seconds, pipeline seconds, estimate (a pandas DataFrame)."""
    import pandas as pd

    from .profile import CHAPTERS

    rows = []
    for chapter in CHAPTERS:
        for run in chapter_runs(chapter, profile):
            rows.append({"chapter": chapter, "run": run.label, "model": f"{run.arch} at {run.image_size} px",
                         "images × epochs": f"{run.train + run.val:,} × {max(run.epochs, 1)}",
                         "TFLOPs": run.flops / 1e12, "GPU s": run.flops / gpu.sustained_flops,
                         "pipeline s": run.images / PIPELINE_IMAGES_PER_S, "estimate s": run.seconds(gpu)})
    return pd.DataFrame(rows)


def chapter_runs(chapter: str, profile: str = "full") -> list[Run]:
    """The runs that dominate `chapter`'s time under `profile`, sized from its RunSettings (see the module doc)."""
    from .profile import settings

    cfg = settings(chapter, profile)
    s, e = cfg.image_size, cfg.epochs
    if chapter == "cats_vs_dogs":
        tr, va, te = SIZES["cats_vs_dogs"]
        return [Run("small convnet from scratch", "small_convnet", s, tr, va, e["scratch"], "all"),
                Run("small convnet + augmentation", "small_convnet", s, tr, va, e["scratch_augmented"], "all"),
                Run("VGG16 features, one pass", "vgg16", s, tr + va + te, 0, 0, "none"),
                Run("VGG16 frozen + augmentation", "vgg16", s, tr, va, e["features_augmented"], "none"),
                Run("VGG16 fine-tuning block5", "vgg16", s, tr, va, e["finetune"], "top")]
    if chapter == "trashnet":
        tr, va, te = SIZES["trashnet"]
        return [Run("InceptionV3 phase 1 (head)", "inception_v3", s, tr, va, e["head"], "none"),
                Run("InceptionV3 control (head, phase 2's epochs)", "inception_v3", s, tr, va, e["finetune"], "none"),
                Run("InceptionV3 phase 2 (top two blocks)", "inception_v3", s, tr, va, e["finetune"], "top", 2),
                Run("BatchNorm experiment (two runs, whole base)", "inception_v3", s, 2 * tr, 2 * va,
                    e["batchnorm_demo"], "all")]
    if chapter == "recipe":
        tr, va, te = SIZES["trashnet"]
        top = cfg.options["top_blocks"]
        return [Run("Lite0 features at the native size, one pass", "efficientnet_lite0", s, tr + va + te, 0, 0, "none"),
                Run("Lite0 features at the start size, one pass", "efficientnet_lite0", cfg.options["start_size"],
                    tr + va + te, 0, 0, "none"),
                Run(f"Lite0 phase 2 (top {top} blocks)", "efficientnet_lite0", s, tr, va, e["finetune"], "top", top)]
    if chapter == "explain":
        tr, va = cfg.train_per_class, cfg.val_per_class
        tr = SIZES["cats_vs_dogs"][0] if tr is None else 2 * tr
        return [Run("VGG16 fine-tuned on cats vs. dogs", "vgg16", s, tr, 2 * va, e["finetune"], "top")]
    if chapter == "concepts":
        tr, va, te = SIZES["cats_vs_dogs"]
        return [Run("curve: small convnet without transfer", "small_convnet", cfg.options["scratch_image_size"], tr,
                    va, e["curves"], "all"),
                Run("Lite0 features for the curves and probes, one pass", "efficientnet_lite0", s, tr + va + te, 0,
                    0, "none"),
                Run("random-weights Lite0 features, one pass", "efficientnet_lite0", s, tr + te, 0, 0, "none")]
    if chapter == "batchnorm_momentum":
        tr, va = 10 * cfg.train_per_class, 10 * cfg.val_per_class
        return [Run("MobileNetV2 (alpha 0.5) from scratch, two momenta", "mobilenet_v2", s, 2 * tr, 2 * va,
                    e["scratch"], "all", kwargs=(("alpha", 0.5),))]
    if chapter == "source_model":
        tr, va, te = SIZES["cats_vs_dogs"]
        px = cfg.options["convnet_image_size"]
        return [Run("probe features of three bases, one pass", "efficientnet_lite0", s, 3 * (tr + va + te), 0, 0,
                    "none"),
                Run("small convnet memorising shuffled labels", "small_convnet", px,
                    10 * cfg.options["noise_per_class"], 0, e["memorise"], "all"),
                Run("small convnet on cats vs. dogs, two starts", "small_convnet", px, 2 * tr, 2 * va, e["target"],
                    "all")]
    if chapter == "formalism":
        return [Run("features of four datasets, two depths", "efficientnet_lite0", s, 4 * 2 * cfg.train_per_class, 0,
                    0, "none")]
    raise ValueError(f"no runs listed for chapter {chapter!r}")
