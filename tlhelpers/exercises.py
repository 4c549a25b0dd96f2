"""Student versions of the chapters: the same notebooks without their solutions.

Every cell tagged `solution` (the solution's code, its explanation and the
`{solution-start}`/`{solution-end}` markers) is removed; exercises stay.

    python -m tlhelpers.exercises notebooks student     # what `make student` runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._atomic import atomic_path

TAG = "solution"


def strip_solutions(notebook: dict) -> tuple[dict, int]:
    """Return (a copy of `notebook` without cells tagged 'solution' and without outputs, cells removed)."""
    cells = [c for c in notebook["cells"] if TAG not in c.get("metadata", {}).get("tags", [])]
    for c in cells:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    out = {**notebook, "cells": cells}
    return out, len(notebook["cells"]) - len(cells)


def write_student_versions(src: str | Path, dst: str | Path) -> list[tuple[Path, int]]:
    """Write a solution-free copy of every notebook under `src` into `dst`; return (path, cells removed)."""
    src, dst = Path(src), Path(dst)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {src}; pass the folder that holds the chapters.")
    done = []
    for nb_path in notebooks:
        notebook, removed = strip_solutions(json.loads(nb_path.read_text()))
        target = dst / nb_path.name
        with atomic_path(target) as tmp:
            Path(tmp).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        done.append((target, removed))
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write student versions of the notebooks (solutions removed).")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    args = p.parse_args(argv)
    try:
        for path, removed in write_student_versions(args.src, args.dst):
            print(f"{path}: {removed} solution cells removed")
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
