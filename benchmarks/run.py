#!/usr/bin/env python
"""Speed benchmarks: feature extraction against two baselines, Grad-CAM on one image, each chapter's run time.

    make bench          # or: python benchmarks/run.py --arch mobilenet_v2 vgg16 --n 512
    python benchmarks/run.py --only gradcam
    python benchmarks/run.py --only chapters   # every notebook once (about 15 of make bench's ~20 minutes)

For each architecture, the same images go through the same frozen base three ways:
- tlhelpers:   extract_features (tf.data parallel decode + prefetch, one compiled inference function), cache off;
- naive loop:  for each batch, decode the files one by one with PIL, then call model.predict on the batch;
- raw predict: model.predict on one in-memory tensor of already decoded images (decoding not timed).
Each is warmed up, then timed `--repeats` times; the best run is reported (all times are kept). Results go to
benchmarks/results/feature_extraction.json with the targets of the course:
tlhelpers >= 1.8x the naive loop (the light bases: mobilenet_v2, efficientnet_lite0) and >= 0.95x raw predict.
`speedup_ceiling` (naive loop time / raw predict time) is the most any input pipeline can gain over the naive loop
on the machine: where it is below 1.8, the first target cannot be met there, however the images are decoded.
EfficientNet-Lite0 runs with its ImageNet weights (they install offline); the others with random weights, since
speed does not depend on the weights' values.

Grad-CAM: tlhelpers.gradcam on one 224-px image through a build_classifier model (augmentation,
preprocessing, a nested MobileNetV2 base, a dense head), after one warm-up call that traces and
compiles the gradient function; the median of `--gradcam-repeats` calls goes to
benchmarks/results/gradcam.json with the course's target: under 1 s on a CPU.

Chapters: each notebook of `_toc.yml` executed once in a fresh kernel (nbclient, the profile from
TL_PROFILE), its wall time and the kernel's peak resident memory, against the course's targets (under
240 s a chapter in the quick profile on 2 cores, under 4 GiB); written to benchmarks/results/chapters.json.
With --online-path, the chapters run as they would with internet access: a first cell (not part of the chapter) makes
every Keras-applications base that asks for ImageNet weights (VGG16, InceptionV3, MobileNetV2) get its real
architecture with random weights instead of the offline stand-in: the same arithmetic, so the same time. Cells whose
hidden asserts expect what ImageNet weights learned fail there; the run goes on (their count is recorded) and only
the time is kept, in benchmarks/results/chapters_online.json.
`.ci/run` writes the time of `make test` to benchmarks/results/make_test.json.
The book's appendix ("Benchmarks") reads these files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _images(n: int):
    import tlhelpers as tlh

    try:
        train = tlh.load_splits("cats_and_dogs_filtered", verbose=False)["train"]
        source = "cats_and_dogs_filtered (real JPEGs)"
    except RuntimeError:
        return _synthetic(n), "synthetic JPEGs (cats_and_dogs_filtered not available)"
    return train.sample(n // 2, seed=0), source


def _synthetic(n):
    import tempfile

    from PIL import Image

    import tlhelpers as tlh

    root = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(n // 2):
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype="uint8")).save(root / c / f"{i}.jpg")
    return tlh.scan_folder(root, verbose=False)


def _naive(base, images, batch_size):
    from PIL import Image

    s = base.image_size
    for i in range(0, len(images), batch_size):
        batch = np.stack([
            np.asarray(Image.open(p).convert("RGB").resize((s, s), Image.BILINEAR), dtype="float32")
            for p in images.paths[i:i + batch_size]
        ])
        base.model.predict(base.preprocess(batch), verbose=0)


def _time(fn, repeats):
    """Best of `repeats` timed runs after one warm-up (the usual way to cut scheduler noise), and all times."""
    fn()  # warm-up: graph tracing, file cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), [round(t, 3) for t in times]


LIGHT_BASES = ("mobilenet_v2", "efficientnet_lite0")  # fast enough per image that decoding is the bottleneck
NAIVE_TARGET, RAW_TARGET = 1.8, 0.95  # the course's targets: x the naive loop (light bases), x raw predict


def bench(arch: str, images, *, image_size: int, batch_size: int, repeats: int) -> dict:
    import tlhelpers as tlh

    kwargs = {"alpha": 1.0} if arch == "mobilenet_v2" else {}
    weights = "imagenet" if arch == "efficientnet_lite0" else None
    base = tlh.load_base(arch, weights=weights, image_size=image_size, allow_fallback=False, **kwargs)
    n = len(images)
    in_memory = base.preprocess(tlh.load_images(images.paths, image_size=image_size))
    t_tlh, all_tlh = _time(lambda: tlh.extract_features(base, images, batch_size=batch_size, cache=False, verbose=False), repeats)
    t_naive, all_naive = _time(lambda: _naive(base, images, batch_size), repeats)
    t_raw, all_raw = _time(lambda: base.model.predict(in_memory, batch_size=batch_size, verbose=0), repeats)
    ips = {"tlhelpers": n / t_tlh, "naive_loop": n / t_naive, "raw_predict": n / t_raw}
    result = {
        "arch": arch, "weights": base.weights, "image_size": image_size, "batch_size": batch_size, "n_images": n,
        "images_per_second": {k: round(v, 1) for k, v in ips.items()},
        "seconds_per_run": {"tlhelpers": all_tlh, "naive_loop": all_naive, "raw_predict": all_raw},
        "speedup_vs_naive_loop": round(ips["tlhelpers"] / ips["naive_loop"], 3),
        # No pipeline outruns the network itself: with decoding hidden completely behind inference, the most it can
        # gain over the naive loop (decode, then predict) is the naive loop's time over raw predict's.
        "speedup_ceiling": round(t_naive / t_raw, 3),
        "ratio_vs_raw_predict": round(ips["tlhelpers"] / ips["raw_predict"], 3),
        "targets": {"vs_raw_predict_min": RAW_TARGET},
    }
    result["targets"]["vs_raw_predict_met"] = result["ratio_vs_raw_predict"] >= RAW_TARGET
    if arch in LIGHT_BASES:
        result["targets"]["vs_naive_loop_min"] = NAIVE_TARGET
        result["targets"]["vs_naive_loop_met"] = result["speedup_vs_naive_loop"] >= NAIVE_TARGET
    return result


def run_feature_extraction(args) -> bool:
    images, source = _images(args.n)
    runs = []
    for arch in args.arch:
        n = args.n if arch in LIGHT_BASES else min(args.n, 64)  # VGG16 is ~20x slower on CPU
        r = bench(arch, images.sample(n // 2, seed=0), image_size=args.image_size, batch_size=args.batch_size,
                  repeats=args.repeats)
        print(json.dumps(r))
        runs.append(r)
    report = {
        "benchmark": "feature_extraction", "images": source,
        "machine": _machine(),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
        "all_targets_met": all(v for r in runs for k, v in r["targets"].items() if k.endswith("_met")),
    }
    _write(args.out, report)
    print(f"wrote {args.out}; all targets met: {report['all_targets_met']}")
    return report["all_targets_met"]



GRADCAM_TARGET_S = 1.0


def bench_gradcam(*, image_size: int = 224, repeats: int = 10) -> dict:
    """Seconds per Grad-CAM (and, for comparison, Grad-CAM++ and saliency) on one image, after warm-up."""
    import tlhelpers as tlh

    base = tlh.load_base("mobilenet_v2", weights=None, image_size=image_size)  # alpha 1.0; speed does not depend on weights
    model = tlh.build_classifier(base, 10, augment=tlh.augmentation(seed=0), pooling="avg")
    image = np.random.default_rng(0).uniform(0, 255, (image_size, image_size, 3)).astype("float32")
    t = time.perf_counter()
    heatmap, _ = tlh.gradcam(model, image)
    cold = time.perf_counter() - t
    if heatmap.shape != (image_size, image_size) or not np.isfinite(heatmap).all():
        raise RuntimeError(f"gradcam returned a broken heatmap of shape {heatmap.shape}")

    def timed(fn):
        fn()  # warm-up of this variant
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return times

    runs = {
        "gradcam": timed(lambda: tlh.gradcam(model, image)),
        "gradcam_plus": timed(lambda: tlh.gradcam(model, image, plus=True)),
        "saliency": timed(lambda: tlh.saliency(model, image)),
    }
    median = statistics.median(runs["gradcam"])
    return {
        "model": f"build_classifier(MobileNetV2 alpha 1.0, {image_size} px, 10 classes, augmentation, avg pooling)",
        "weights": "None (random init): the time does not depend on the weights' values",
        "layer": tlh.last_conv_layer(model), "image_size": image_size, "repeats": repeats,
        "first_call_s": round(cold, 3),
        "median_s": {k: round(statistics.median(v), 4) for k, v in runs.items()},
        "seconds_per_call": {k: [round(t, 4) for t in v] for k, v in runs.items()},
        "target": {"gradcam_median_max_s": GRADCAM_TARGET_S, "met": median < GRADCAM_TARGET_S},
    }


def _machine() -> dict:
    import keras
    import tensorflow as tf

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpu": bool(tf.config.list_physical_devices("GPU"))}


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)


def run_gradcam(args) -> bool:
    r = bench_gradcam(image_size=args.gradcam_image_size, repeats=args.gradcam_repeats)
    report = {"benchmark": "gradcam", "machine": _machine(), **r,
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    _write(args.gradcam_out, report)
    print(json.dumps({k: report[k] for k in ("first_call_s", "median_s", "target")}))
    print(f"wrote {args.gradcam_out}; Grad-CAM median {r['median_s']['gradcam']:.3f} s, "
          f"target < {GRADCAM_TARGET_S} s met: {r['target']['met']}")
    return r["target"]["met"]


CHAPTER_TARGET_S, CHAPTER_RSS_TARGET_MIB = 240, 4096


def _chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((HERE.parent / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [HERE.parent / f"{f}.ipynb" for f in files if (HERE.parent / f"{f}.ipynb").exists()]


def _peak_child_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


ONLINE_PATH_CELL = """\
import tlhelpers.bases as _bases
_construct = _bases.construct
def _online_arithmetic(arch, weights, image_size, **kwargs):  # the real architecture, random weights
    return _construct(arch, None if weights == "imagenet" and arch != "efficientnet_lite0" else weights,
                      image_size, **kwargs)
_bases.construct = _online_arithmetic
"""


def bench_chapter(path: Path, *, online_path: bool = False) -> dict:
    """Execute one notebook in a fresh kernel; its wall time, and the largest kernel's peak RSS so far."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if online_path:
        nb.cells.insert(0, nbformat.v4.new_code_cell(ONLINE_PATH_CELL))
    t = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=online_path,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    report = {"chapter": path.stem, "seconds": round(time.perf_counter() - t, 1)}
    if online_path:
        report["cells_failed"] = sum(1 for c in nb.cells if c.cell_type == "code"
                                     and any(o.get("output_type") == "error" for o in c.get("outputs", [])))
    return report


def _feature_cache(cold: bool) -> str:
    """'cold' (an empty TL_CACHE_DIR made for this run) or 'warm (N files ...)': cached features make chapters faster."""
    import tempfile

    if cold:
        os.environ["TL_CACHE_DIR"] = tempfile.mkdtemp(prefix="tl-bench-cache-")
        return "cold"
    from tlhelpers.data import cache_home

    n = sum(1 for p in cache_home().rglob("*") if p.is_file()) if cache_home().exists() else 0
    return f"warm ({n} files already in {cache_home()})" if n else "cold"


def run_chapters(args) -> bool:
    from tqdm.auto import tqdm

    cache_state = _feature_cache(args.cold)
    runs, before = [], _peak_child_rss_mib()
    chapters = [p for p in _chapters() if not args.chapter or p.stem in args.chapter]
    for path in tqdm(chapters, desc="chapters", unit="notebook"):
        r = bench_chapter(path, online_path=args.online_path)
        peak = _peak_child_rss_mib()  # RUSAGE_CHILDREN keeps the maximum: exact for the first, a bound after
        r["peak_rss_mib_so_far"] = round(max(peak, before), 1)
        r["under_target"] = r["seconds"] < CHAPTER_TARGET_S
        print(json.dumps(r))
        runs.append(r)
    report = {"benchmark": "chapters_online_path" if args.online_path else "chapters",
              "profile": os.environ.get("TL_PROFILE", "(default)"), "machine": _machine(),
              "feature_cache": cache_state,
              "targets": {"seconds_max": CHAPTER_TARGET_S, "peak_rss_mib_max": CHAPTER_RSS_TARGET_MIB},
              "total_seconds": round(sum(r["seconds"] for r in runs), 1),
              "peak_rss_mib": round(_peak_child_rss_mib(), 1), "runs": runs}
    report["all_targets_met"] = (all(r["under_target"] for r in runs)
                                 and report["peak_rss_mib"] <= CHAPTER_RSS_TARGET_MIB)
    _write(args.chapters_out, report)
    print(f"wrote {args.chapters_out}; {report['total_seconds']:.0f} s in all, peak RSS {report['peak_rss_mib']:.0f} MiB; "
          f"all targets met: {report['all_targets_met']}")
    return report["all_targets_met"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("feature_extraction", "gradcam", "chapters"),
                   help="run one benchmark (default: all three)")
    p.add_argument("--arch", nargs="+", default=["efficientnet_lite0", "mobilenet_v2", "vgg16"])
    p.add_argument("--n", type=int, default=512, help="number of images")
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results" / "feature_extraction.json")
    p.add_argument("--gradcam-repeats", type=int, default=10)
    p.add_argument("--gradcam-image-size", type=int, default=224)
    p.add_argument("--gradcam-out", type=Path, default=HERE / "results" / "gradcam.json")
    p.add_argument("--chapters-out", type=Path, default=HERE / "results" / "chapters.json")
    p.add_argument("--cold", action="store_true", help="time the chapters with an empty feature cache of their own")
    p.add_argument("--chapter", nargs="+", help="only these notebooks (file stems), e.g. 03_cats_vs_dogs")
    p.add_argument("--online-path", action="store_true",
                   help="time the path with internet access: real VGG16/InceptionV3/MobileNetV2, random weights")
    args = p.parse_args(argv)
    if args.online_path and args.chapters_out == p.get_default("chapters_out"):
        args.chapters_out = HERE / "results" / "chapters_online.json"
    if args.only in (None, "feature_extraction"):
        run_feature_extraction(args)
    if args.only in (None, "gradcam"):
        run_gradcam(args)
    if args.only in (None, "chapters"):
        run_chapters(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
