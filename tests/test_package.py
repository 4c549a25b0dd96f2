"""The package itself: a light import, every exported name resolves, every module says what it holds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tlhelpers as tlh

PACKAGE = Path(tlh.__file__).parent


def test_import_does_not_load_tensorflow_until_a_helper_needs_it():
    code = ("import sys, tlhelpers as tlh; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "tlh.settings('cats_vs_dogs', 'quick'); assert 'tensorflow' not in sys.modules; "
            "tlh.load_base; assert 'keras' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_exported_name_resolves_to_its_module():
    for name in tlh.__all__:
        value = getattr(tlh, name)
        assert getattr(value, "__module__", "tlhelpers").startswith("tlhelpers") or name.isupper(), name


def test_unknown_names_raise_attribute_error():
    try:
        _ = tlh.no_such_helper
    except AttributeError as err:
        assert "no_such_helper" in str(err)
    else:
        raise AssertionError("tlh.no_such_helper should not exist")


def test_each_module_opens_with_a_docstring_saying_what_it_holds():
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, path.name
