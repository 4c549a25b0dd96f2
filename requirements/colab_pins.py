"""Refresh requirements/colab.txt from Colab's published package list.

Colab publishes its runtime's packages as `pip-freeze.txt` in github.com/googlecolab/backend-info. This script keeps
the package names already in requirements/colab.txt (what the course imports, and what those need from Colab's set)
and rewrites their versions from a given copy of that file, with the commit it came from in the header.

Example:
    python requirements/colab_pins.py ~/Downloads/pip-freeze.txt --commit a724079 --python 3.13
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

COLAB_TXT = Path(__file__).with_name("colab.txt")
HEADER = """\
# Colab's runtime as Google publishes it: github.com/googlecolab/backend-info, pip-freeze.txt at commit {commit}
# ({note}). Python {python}. Only the packages the course imports, and what they need from
# Colab's set, at Colab's versions. `make test-colab` installs this file into a Python {python} venv and runs every
# notebook under nbval; refresh it with `python requirements/colab_pins.py PIP_FREEZE_TXT --commit SHA`.
"""


def normalised(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, tuple[str, str]]:
    """{normalised name: (name as written, version)} of every `name==version` line; comments and URLs are skipped."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
        if match:
            pins[normalised(match[1])] = (match[1], match[2])
    return pins


def refresh(colab_txt: str, freeze: str, *, commit: str, python: str, note: str) -> str:
    """The new colab.txt: the names of `colab_txt`, the versions of `freeze`. Raises if Colab lacks one of them."""
    wanted = read_pins(colab_txt)
    published = read_pins(freeze)
    missing = sorted(name for key, (name, _) in wanted.items() if key not in published)
    if missing:
        raise SystemExit(f"colab_pins: {', '.join(missing)} not pinned in the given pip-freeze.txt; "
                         "remove them from requirements/colab.txt if Colab no longer ships them.")
    lines = [f"{name}=={published[key][1]}" for key, (name, _) in sorted(wanted.items())]
    return HEADER.format(commit=commit, python=python, note=note) + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="colab_pins.py", description=__doc__.splitlines()[0])
    parser.add_argument("freeze", type=Path, help="a copy of Colab's pip-freeze.txt")
    parser.add_argument("--commit", required=True, help="the backend-info commit the file comes from")
    parser.add_argument("--python", default="3.13", help="Colab's Python version (default: 3.13)")
    parser.add_argument("--note", default="see the commit's message", help="what the commit was, for the header")
    args = parser.parse_args(argv)
    if not args.freeze.is_file():
        parser.error(f"{args.freeze} is not a file: pass a downloaded copy of Colab's pip-freeze.txt")
    text = refresh(COLAB_TXT.read_text(), args.freeze.read_text(), commit=args.commit, python=args.python,
                   note=args.note)
    tmp = COLAB_TXT.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(COLAB_TXT)
    print(f"wrote {COLAB_TXT} ({len(read_pins(text))} pins from {args.freeze})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
