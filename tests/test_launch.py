"""The launch buttons' targets: Colab installs the course from _config.yml's repository, Binder builds environment.yml.

_config.yml's `repository.url` is the one place the repository's address is written for the book (its launch and
repository buttons are built from it); every chapter's Colab install cell must install from exactly that address.
environment.yml is what Binder (repo2docker) builds: a conda environment with Python 3.11 and a pip section whose
pins are the versions of requirements/lock.txt, which `make` installs and CI tests.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Notebooks that do not run on Colab, and why.
NOT_ON_COLAB: dict = {}


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


def release_source() -> str:
    """What a Colab learner installs: the configured repository at the tag of the package's version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return f"git+{CONFIG['repository']['url']}@v{version}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_install_cell_installs_the_release_from_the_configured_repository(path):
    cells = colab_cells(path)
    if path.stem in NOT_ON_COLAB:
        assert not cells, f"{path.name} is listed as not running on Colab ({NOT_ON_COLAB[path.stem]}) but has a Colab cell"
        return
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells mention google.colab, expected one install cell"
    cell = cells[0]
    assert 'if "google.colab" in sys.modules:' in cell, cell
    installs = re.findall(r"%pip install\b[^\n]*", cell)
    assert installs == ['%pip install -q {os.environ.get("TL_INSTALL_FROM", RELEASE)}'], installs
    urls = re.findall(r"https?://[^\s\"'@#]+", cell)
    assert urls == [CONFIG["repository"]["url"]], f"{path.name} installs from {urls}, not {CONFIG['repository']['url']}"
    assert f'RELEASE = "{release_source()}"' in cell, f"{path.name} does not install {release_source()}:\n{cell}"
    assert max(len(line) for line in cell.splitlines()) <= 88, "the install cell fits the book's code column"


def _run_install_cell(cell: str, environ: dict) -> list[str]:
    """The install cell as IPython runs it in Colab, each magic's line expanded the way IPython expands it."""
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.utils.text import DollarFormatter

    ran = []

    class Shell:  # the two calls the transformed cell makes
        def run_line_magic(self, name, line, _stack_depth=1):
            ran.append(f"%{name} " + DollarFormatter().vformat(line, args=[], kwargs=namespace))

    namespace = {"get_ipython": Shell}
    saved_env = dict(os.environ)
    colab = sys.modules.setdefault("google.colab", types.ModuleType("google.colab"))
    try:
        os.environ.pop("TL_INSTALL_FROM", None)
        os.environ.update(environ)
        exec(TransformerManager().transform_cell(cell), namespace)
    finally:
        if sys.modules.get("google.colab") is colab and not hasattr(colab, "__file__"):
            del sys.modules["google.colab"]
        os.environ.clear()
        os.environ.update(saved_env)
    return ran


@pytest.mark.parametrize("local", [None, "/checkout/dist/tlhelpers-0.2.0-py3-none-any.whl"])
def test_the_install_cell_installs_the_release_unless_told_to_install_a_local_build(local):
    cell = colab_cells(next(p for p in NOTEBOOKS if p.stem not in NOT_ON_COLAB))[0]
    ran = _run_install_cell(cell, {"TL_INSTALL_FROM": local} if local else {})
    assert ran == [f"%pip install -q {local or release_source()}"]


def test_the_package_names_the_configured_repository():
    import tlhelpers

    assert tlhelpers.REPOSITORY == CONFIG["repository"]["url"]


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
