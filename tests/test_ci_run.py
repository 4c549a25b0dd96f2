""".ci/run: the README's test command, with `make test-colab` beside it, and a red run when either fails.

The script runs in a copy of itself under tmp_path, with a `make` on PATH that records what it was asked to do and
fails on request (and a `chromium`, so that nothing is installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_MAKE = """#!/usr/bin/env bash
echo "$* nice=$(nice)" >> "$CALLS"
case "$1" in
  test) sleep "${TEST_SECONDS:-0}"; exit "${TEST_RC:-0}" ;;
  test-colab) echo "colab says hello"; sleep "${COLAB_SECONDS:-0}"; touch "$CALLS.colab-done"; exit "${COLAB_RC:-0}" ;;
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
        start = time.monotonic()
        result = subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True, env=environ,
                                timeout=60)
        result.seconds = time.monotonic() - start
        result.calls = calls.read_text().splitlines() if calls.exists() else []
        return result

    run.repo, run.calls = repo, calls
    return run


def test_runs_make_test_and_make_test_colab_beside_it_at_lower_priority(ci):
    result = ci(TEST_SECONDS=1, COLAB_SECONDS=1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(c.split()[0] for c in result.calls) == ["test", "test-colab"]
    nice = {c.split()[0]: int(c.split("nice=")[1]) for c in result.calls}
    assert nice["test-colab"] > nice["test"]
    colab = next(c for c in result.calls if c.startswith("test-colab"))
    assert "COLAB_CELL_TIMEOUT=2400" in colab  # a low-priority cell may wait; the Makefile's own limit is 900 s
    assert result.seconds < 1.9  # side by side, not one after the other
    assert "colab says hello" in result.stdout and "CI finished in" in result.stdout
    record = json.loads((ci.repo / "benchmarks" / "results" / "make_test.json").read_text())
    assert record["benchmark"] == "make_test" and record["colab"] is True


def test_a_failing_test_colab_makes_the_run_red(ci):
    result = ci(COLAB_RC=1)
    assert result.returncode == 1 and "make test-colab failed" in result.stdout


def test_a_failing_make_test_stops_test_colab_at_once(ci):
    result = ci(TEST_RC=2, COLAB_SECONDS=20)
    assert result.returncode == 2 and result.seconds < 15
    time.sleep(0.5)
    assert not Path(str(ci.calls) + ".colab-done").exists()  # killed, not left running
    assert subprocess.run(["pgrep", "-f", "sleep 20"], capture_output=True).returncode == 1


def test_tl_ci_colab_0_leaves_test_colab_out(ci):
    result = ci(TL_CI_COLAB=0)
    assert result.returncode == 0 and [c.split()[0] for c in result.calls] == ["test"]
