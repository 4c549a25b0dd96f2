#!/usr/bin/env python
"""Feature-extraction speed: tlhelpers.extract_features against two baselines.

    make bench          # or: python benchmarks/run.py --arch mobilenet_v2 vgg16 --n 512

For each architecture, the same images go through the same frozen base three ways:
- tlhelpers:   extract_features (tf.data parallel decode + prefetch, one compiled inference function), cache off;
- naive loop:  for each batch, decode the files one by one with PIL, then call model.predict on the batch;
- raw predict: model.predict on one in-memory tensor of already decoded images (decoding not timed).
Each is warmed up, then timed `--repeats` times; the best run is reported (all times are kept). Results go to
benchmarks/results/feature_extraction.json with the targets of the course:
tlhelpers >= 1.3x the naive loop (mobilenet_v2) and >= 0.9x raw predict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def bench(arch: str, images, *, image_size: int, batch_size: int, repeats: int) -> dict:
    import tlhelpers as tlh

    kwargs = {"alpha": 1.0} if arch == "mobilenet_v2" else {}
    base = tlh.load_base(arch, weights=None, image_size=image_size, **kwargs)
    n = len(images)
    in_memory = base.preprocess(tlh.load_images(images.paths, image_size=image_size))
    t_tlh, all_tlh = _time(lambda: tlh.extract_features(base, images, batch_size=batch_size, cache=False, verbose=False), repeats)
    t_naive, all_naive = _time(lambda: _naive(base, images, batch_size), repeats)
    t_raw, all_raw = _time(lambda: base.model.predict(in_memory, batch_size=batch_size, verbose=0), repeats)
    ips = {"tlhelpers": n / t_tlh, "naive_loop": n / t_naive, "raw_predict": n / t_raw}
    result = {
        "arch": arch, "image_size": image_size, "batch_size": batch_size, "n_images": n,
        "images_per_second": {k: round(v, 1) for k, v in ips.items()},
        "seconds_per_run": {"tlhelpers": all_tlh, "naive_loop": all_naive, "raw_predict": all_raw},
        "speedup_vs_naive_loop": round(ips["tlhelpers"] / ips["naive_loop"], 3),
        "ratio_vs_raw_predict": round(ips["tlhelpers"] / ips["raw_predict"], 3),
        "targets": {"vs_raw_predict_min": 0.9},
    }
    result["targets"]["vs_raw_predict_met"] = result["ratio_vs_raw_predict"] >= 0.9
    if arch == "mobilenet_v2":
        result["targets"]["vs_naive_loop_min"] = 1.3
        result["targets"]["vs_naive_loop_met"] = result["speedup_vs_naive_loop"] >= 1.3
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["mobilenet_v2", "vgg16"])
    p.add_argument("--n", type=int, default=512, help="number of images")
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results" / "feature_extraction.json")
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    images, source = _images(args.n)
    runs = []
    for arch in args.arch:
        n = args.n if arch == "mobilenet_v2" else min(args.n, 64)  # VGG16 is ~20x slower on CPU
        r = bench(arch, images.sample(n // 2, seed=0), image_size=args.image_size, batch_size=args.batch_size,
                  repeats=args.repeats)
        print(json.dumps(r))
        runs.append(r)
    report = {
        "benchmark": "feature_extraction", "images": source,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "tensorflow": tf.__version__, "keras": keras.__version__,
                    "gpu": bool(tf.config.list_physical_devices("GPU"))},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
        "all_targets_met": all(v for r in runs for k, v in r["targets"].items() if k.endswith("_met")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}; all targets met: {report['all_targets_met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
