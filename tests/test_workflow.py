"""The CI workflow: tests on every push and pull request, Colab's package set after them, and the book published to
GitHub Pages from main once the tests pass. GitHub runs it; here its structure is checked."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TRIGGERS = WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps(job: str) -> list[dict]:
    return WORKFLOW["jobs"][job]["steps"]


def test_the_workflow_runs_on_pushes_to_main_and_pull_requests():
    assert TRIGGERS["push"]["branches"] == ["main"] and "pull_request" in TRIGGERS


def test_the_cpu_job_runs_make_test_then_make_test_colab_on_python_3_13():
    runs = [s.get("run", "") for s in steps("cpu")]
    test = next(i for i, r in enumerate(runs) if r.startswith("make test "))
    colab = next(i for i, r in enumerate(runs) if r.startswith("make test-colab"))
    assert test < colab
    pythons = [s["with"]["python-version"] for s in steps("cpu") if s.get("uses", "").startswith("actions/setup-python")]
    assert "3.13" in pythons and "3.11" in pythons
    assert "steps.colab-python.outputs.python-path" in runs[colab]


def test_the_book_is_published_from_main_after_the_tests():
    upload = next(s for s in steps("cpu") if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"  # the strict build of make test
    assert "refs/heads/main" in upload["if"] and "push" in upload["if"]
    names = [s.get("name", "") for s in steps("cpu")]
    assert names.index(upload["name"]) > names.index("make test-colab"), "publish only what passed every test"
    pages = WORKFLOW["jobs"]["pages"]
    assert pages["needs"] == "cpu" and "refs/heads/main" in pages["if"]
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert [s["uses"].split("@")[0] for s in pages["steps"]] == ["actions/deploy-pages"]


def test_the_pages_url_is_the_books_base_url():
    owner, name = CONFIG["repository"]["url"].removeprefix("https://github.com/").split("/")
    assert CONFIG["html"]["baseurl"] == f"https://{owner}.github.io/{name}/"
    assert CONFIG["html"]["baseurl"] in (ROOT / "README.md").read_text()
