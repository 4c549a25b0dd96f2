"""Student versions of the chapters: the same notebooks without their solutions.

Every cell tagged `solution` (the solution's code, its explanation and the
`{solution-start}`/`{solution-end}` markers) is removed; exercises stay.

    python -m tlhelpers.exercises notebooks _build/student            # what `make student` runs
    python -m tlhelpers.exercises notebooks _build/student --execute  # and run each up to its first exercise
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


def first_exercise(notebook: dict) -> int:
    """Index of the first cell that opens an exercise (`{exercise}`), or the number of cells when there is none."""
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown" and "{exercise" in "".join(cell["source"]):
            return i
    return len(notebook["cells"])


def execute_until_first_exercise(path: str | Path, *, cwd: str | Path | None = None, timeout: int = 900) -> int:
    """Run a (student) notebook's cells above its first exercise in a fresh kernel; return how many code cells ran.

    What a learner gets must run as it stands: a cell that fails raises `nbclient`'s CellExecutionError
    with the cell's traceback. `cwd` is the folder the kernel starts in (the notebook's own by default).

    Example:
        >>> execute_until_first_exercise("_build/student/03_cats_vs_dogs.ipynb", cwd="notebooks")
        31
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells = nb.cells[:first_exercise(nb)]
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    client.execute()
    return sum(c.cell_type == "code" for c in nb.cells)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write student versions of the notebooks (solutions removed).")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--execute", action="store_true", help="then run each one up to its first exercise")
    args = p.parse_args(argv)
    try:
        written = write_student_versions(args.src, args.dst)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path, removed in written:
        print(f"{path}: {removed} solution cells removed")
    if args.execute:
        for path, _ in written:
            # the chapters read their data relative to notebooks/, as in the book
            print(f"{path}: {execute_until_first_exercise(path, cwd=args.src)} code cells ran up to the first exercise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
