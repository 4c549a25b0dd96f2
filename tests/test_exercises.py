"""Student versions keep the exercises and lose every solution."""

import json

import pytest

from tlhelpers.exercises import strip_solutions, write_student_versions


def _nb(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _cell(kind, source, tags=()):
    c = {"cell_type": kind, "source": source, "metadata": {"tags": list(tags)}}
    if kind == "code":
        c.update(outputs=[{"output_type": "stream", "name": "stdout", "text": "42"}], execution_count=3)
    return c


def test_solution_cells_are_removed_and_exercises_kept(tmp_path):
    nb = _nb([
        _cell("markdown", "```{exercise}\n:label: ex1\nDo it.\n```"),
        _cell("markdown", "```{solution-start} ex1\n```", tags=["solution"]),
        _cell("code", "answer = 42", tags=["solution"]),
        _cell("markdown", "```{solution-end}\n```", tags=["solution"]),
        _cell("code", "x = 1"),
    ])
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ch.ipynb").write_text(json.dumps(nb))
    [(path, removed)] = write_student_versions(tmp_path / "src", tmp_path / "dst")
    out = json.loads(path.read_text())
    assert removed == 3
    sources = [c["source"] for c in out["cells"]]
    assert sources == ["```{exercise}\n:label: ex1\nDo it.\n```", "x = 1"]
    assert out["cells"][1]["outputs"] == [] and out["cells"][1]["execution_count"] is None


def test_every_chapter_solution_is_tagged():
    """In the real chapters, no cell between solution-start and solution-end escapes the tag."""
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].joinpath("notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        inside = False
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if "{solution-start}" in src:
                inside = True
            if inside:
                assert "solution" in cell["metadata"].get("tags", []), f"{path.name}: untagged solution cell: {src[:60]}"
            if "{solution-end}" in src:
                inside = False
        stripped, _ = strip_solutions(nb)
        assert not any("{solution" in "".join(c["source"]) for c in stripped["cells"]), path.name


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        write_student_versions(tmp_path / "nothing", tmp_path / "out")


def test_student_build_of_the_real_chapters_drops_every_solution_and_keeps_every_exercise(tmp_path):
    """`make student` on notebooks/: no solution cell, marker or answer key survives; every exercise does."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "notebooks"
    written = write_student_versions(src, tmp_path)
    assert sorted(p.name for p, _ in written) == sorted(p.name for p in src.glob("*.ipynb"))

    def text(cell):
        return "".join(cell["source"])

    def exercises(nb):
        return sum(text(c).count("```{exercise}") for c in nb["cells"])

    for path, _ in written:
        source = json.loads((src / path.name).read_text())
        student = json.loads(path.read_text())
        for cell in student["cells"]:
            assert "solution" not in cell["metadata"].get("tags", []), f"{path.name}: a solution cell survived"
            assert "{solution-start}" not in text(cell) and "{solution-end}" not in text(cell), path.name
            assert "Answer key" not in text(cell), f"{path.name}: the answer key survived"
        assert exercises(student) == exercises(source), f"{path.name}: an exercise was dropped"
        if path.name[:2] in {"01", "02", "03", "04", "05"}:  # the chapters end with questions and their key
            assert any("## Questions" in text(c) for c in student["cells"]), path.name
            assert any("Answer key" in text(c) for c in source["cells"]), path.name


def test_student_notebook_runs_up_to_its_first_exercise_and_no_further(tmp_path):
    """The cells above the first exercise run in a real kernel; what follows it (the learner's part) does not."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from tlhelpers.exercises import execute_until_first_exercise

    def notebook(before_exercise: str):
        nb = _nb([
            _cell("code", "from pathlib import Path"),
            _cell("code", before_exercise),
            _cell("markdown", "```{exercise}\n:label: ex1\nWrite the file.\n```"),
            _cell("code", "raise RuntimeError('the learner has not answered yet')"),
        ])
        for i, cell in enumerate(nb["cells"]):
            cell["id"] = f"cell-{i}"  # nbformat 4.5 cells carry ids
        return nb

    ok = tmp_path / "ok.ipynb"
    ok.write_text(json.dumps(notebook("Path('ran.txt').write_text('yes')")))
    assert execute_until_first_exercise(ok) == 2
    assert (tmp_path / "ran.txt").read_text() == "yes"  # it really ran, in the notebook's folder
    nbformat.validate(nbformat.read(ok, as_version=4))

    broken = tmp_path / "broken.ipynb"
    broken.write_text(json.dumps(notebook("1 / 0")))
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute_until_first_exercise(broken)


def test_real_student_notebooks_keep_every_cell_above_the_first_exercise(tmp_path):
    """Above its first exercise a student notebook is the chapter itself, cell for cell, so the book build that
    executes every chapter (make test) also runs every student notebook up to its first exercise."""
    from pathlib import Path

    from tlhelpers.exercises import first_exercise

    src = Path(__file__).parents[1] / "notebooks"
    for path, _ in write_student_versions(src, tmp_path):
        source, student = json.loads((src / path.name).read_text()), json.loads(path.read_text())
        k = first_exercise(source)
        # Above the first exercise only markdown may go (the questionnaire's answer key): no code cell is lost.
        above = source["cells"][:k]
        removed = [c for c in above if "solution" in c.get("metadata", {}).get("tags", [])]
        assert all(c["cell_type"] == "markdown" for c in removed), path.name
        kept = [(c.get("id"), c["source"]) for c in above if c not in removed]
        assert first_exercise(student) == len(kept), path.name
        assert [(c.get("id"), c["source"]) for c in student["cells"][:len(kept)]] == kept, path.name
        if path.name[:2] in {"01", "02", "03", "04", "05"} or path.name.startswith("source"):
            assert k < len(source["cells"]), f"{path.name} has no exercise"
