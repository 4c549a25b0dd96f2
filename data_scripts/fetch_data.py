#!/usr/bin/env python
"""Download and prepare the course's datasets.

    python data_scripts/fetch_data.py cats_and_dogs_filtered trashnet
    python data_scripts/fetch_data.py --all
    python data_scripts/fetch_data.py --list

Each dataset is downloaded once (checksum-verified where a checksum is published, with a
progress bar), extracted atomically, checked file by file (unreadable files are counted and
skipped), and split into seeded, stratified train/validation/test sets in which no file
content appears twice. The split manifest is written under the cache folder. Datasets that
already sit under TL_DATA_DIR in their official layout are used as they are.
"""

from __future__ import annotations

import argparse
import sys

from tlhelpers.data import REGISTRY, cache_home
from tlhelpers.splits import load_splits


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"datasets: {', '.join(REGISTRY)}")
    p.add_argument("--all", action="store_true", help="every dataset of the course")
    p.add_argument("--list", action="store_true", help="list the datasets and exit")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.list:
        for info in REGISTRY.values():
            checksum = info.known_hash or "no published checksum"
            print(f"{info.name:24s} {info.description}\n{'':24s} {info.url} ({checksum}; license: {info.license})")
        return 0
    names = list(REGISTRY) if args.all else args.names
    if not names:
        p.error("name at least one dataset, or pass --all")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"fetch_data: error: unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(REGISTRY)}.",
              file=sys.stderr)
        return 2
    for name in names:
        try:
            splits = load_splits(name, seed=args.seed)
        except (RuntimeError, ValueError, FileNotFoundError) as err:
            print(f"fetch_data: error: {err}", file=sys.stderr)
            return 2
        for part, images in splits.items():
            counts = ", ".join(f"{c} {n}" for c, n in images.counts().items())
            print(f"  {part:10s} {len(images):5d}  ({counts})")
    print(f"split manifests: {cache_home() / 'splits'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
