"""The launch buttons' targets: Colab installs the course from _config.yml's repository, Binder builds environment.yml.

_config.yml's `repository.url` is the one place the repository's address is written for the book (its launch and
repository buttons are built from it); every chapter's Colab install cell must install from exactly that address.
environment.yml is what Binder (repo2docker) builds: a conda environment with Python 3.11 and a pip section whose
pins are the versions of requirements/lock.txt, which `make` installs and CI tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Notebooks that do not run on Colab, and why.
NOT_ON_COLAB = {"benchmarks": "reads the measurements committed in the repository's benchmarks/results/"}


def normalised(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_versions() -> dict:
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements/lock.txt: {line!r} is not pinned with =="
            pins[normalised(name)] = version
    return pins


def colab_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "google.colab" in "".join(c["source"])]


def test_the_repository_url_is_a_github_repository():
    url = CONFIG["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert CONFIG["repository"].get("branch", "main") == "main"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_install_cell_installs_from_the_configured_repository(path):
    cells = colab_cells(path)
    if path.stem in NOT_ON_COLAB:
        assert not cells, f"{path.name} is listed as not running on Colab ({NOT_ON_COLAB[path.stem]}) but has a Colab cell"
        return
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells mention google.colab, expected one install cell"
    cell = cells[0]
    assert 'if "google.colab" in sys.modules:' in cell, cell
    installs = re.findall(r"%pip install\b[^\n]*", cell)
    assert len(installs) == 1, f"{path.name}: expected one %pip install line in\n{cell}"
    urls = re.findall(r"https?://[^\s\"'@#]+", cell)
    assert urls == [CONFIG["repository"]["url"]], f"{path.name} installs from {urls}, not {CONFIG['repository']['url']}"
    assert f'"tlhelpers @ git+{CONFIG["repository"]["url"]}"' in installs[0], installs[0]


def test_notebooks_that_import_tlhelpers_install_it_on_colab():
    missing = [p.name for p in NOTEBOOKS if p.stem not in NOT_ON_COLAB
               and "import tlhelpers" in p.read_text() and not colab_cells(p)]
    assert not missing, f"no Colab install cell in {missing}"


def environment() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict), "environment.yml must be a mapping (repo2docker reads it as one)"
    return env


def test_environment_yml_is_a_conda_environment_for_repo2docker():
    env = environment()
    assert env.get("name") and "conda-forge" in env.get("channels", [])
    deps = env["dependencies"]
    assert "python=3.11" in deps, "repo2docker picks the Python version from a `python=X.Y` dependency"
    assert "pip" in deps, "conda needs pip itself for the pip section"
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1 and pip_sections[0], "one non-empty pip section"
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), "a binder/ folder would take precedence"


def test_environment_pins_are_the_locked_versions():
    pip = next(d["pip"] for d in environment()["dependencies"] if isinstance(d, dict) and "pip" in d)
    locked = lock_versions()
    local = [line for line in pip if line.startswith("-e ")]
    assert local == ["-e ."], f"the course itself is installed with `-e .`, once: {local}"
    pins = [line for line in pip if not line.startswith("-")]
    assert pins, "no pins in environment.yml's pip section"
    wrong = {}
    for line in pins:
        name, _, version = line.partition("==")
        assert version, f"environment.yml: {line!r} is not pinned with =="
        if locked.get(normalised(name)) != version:
            wrong[name] = (version, locked.get(normalised(name), "not in requirements/lock.txt"))
    assert not wrong, f"environment.yml pins that differ from requirements/lock.txt (pin, lock): {wrong}"
