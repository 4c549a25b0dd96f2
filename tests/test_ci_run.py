""".ci/run: the README's test command, and `make test-colab` after it when TL_CI_COLAB=1; red when either fails.

The script runs in a copy of itself under tmp_path, with a `make` on PATH that records what it was asked to do and
fails on request (and a `chromium`, so that nothing is installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_MAKE = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$1" in
  test) exit "${TEST_RC:-0}" ;;
  test-colab) echo "colab says hello"; exit "${COLAB_RC:-0}" ;;
esac
"""


@pytest.fixture
def ci(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"make": FAKE_MAKE, "chromium": "#!/bin/sh\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.txt"

    def run(**env):
        environ = {k: v for k, v in os.environ.items() if k != "TL_CI_COLAB"}
        environ.update(PATH=f"{bin_dir}:{os.environ['PATH']}", CALLS=str(calls), **{k: str(v) for k, v in env.items()})
        result = subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True, env=environ,
                                timeout=60)
        result.calls = calls.read_text().splitlines() if calls.exists() else []
        return result

    run.repo = repo
    return run


def test_runs_the_readme_test_command_and_records_its_time(ci):
    result = ci()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.calls == ["test"]
    assert "make test" in (ROOT / "README.md").read_text()  # the README's test command
    record = json.loads((ci.repo / "benchmarks" / "results" / "make_test.json").read_text())
    assert record["benchmark"] == "make_test" and record["colab"] is False
    assert record["seconds"] >= record["make_test_seconds"] >= 0


def test_tl_ci_colab_1_adds_test_colab_after_make_test(ci):
    result = ci(TL_CI_COLAB=1)
    assert result.returncode == 0 and result.calls == ["test", "test-colab"]
    assert "colab says hello" in result.stdout
    assert json.loads((ci.repo / "benchmarks" / "results" / "make_test.json").read_text())["colab"] is True


@pytest.mark.parametrize("env, code", [({"TEST_RC": 2}, 2), ({"TL_CI_COLAB": 1, "COLAB_RC": 1}, 1)])
def test_a_failing_stage_makes_the_run_red(ci, env, code):
    result = ci(**env)
    assert result.returncode == code
    if "TEST_RC" in env:
        assert result.calls == ["test"]  # nothing runs after a failing make test
