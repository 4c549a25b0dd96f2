"""JupyterLab, which `make lab` opens and Binder launches, is in the course's environment and serves the chapters.

A real JupyterLab server is started on a free localhost port with the course's notebooks as its root; the test
reads the notebook list through its REST API (what the file browser shows) and loads the /lab page itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).with_name("jupyter")


def run_jupyter(*args: str) -> str:
    return subprocess.run([str(JUPYTER), *args], capture_output=True, text=True, check=True, timeout=120).stdout


def test_jupyter_lab_is_installed():
    assert run_jupyter("lab", "--version").strip().split(".")[0] == "4"


def test_the_widgets_extension_is_enabled():
    """tqdm's progress bars and tlh.explorer are ipywidgets: JupyterLab shows them through this extension."""
    listing = subprocess.run([str(JUPYTER), "labextension", "list"], capture_output=True, text=True, timeout=120)
    text = listing.stdout + listing.stderr
    line = next((ln for ln in text.splitlines() if "@jupyter-widgets/jupyterlab-manager" in ln), "")
    assert "enabled" in line and "OK" in line, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    port, token = free_port(), "tl-course-test"
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    server = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={ROOT}", "--ServerApp.open_browser=False", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                get(f"{base}/api/status", token)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not answer within 60 s")
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_jupyter_lab_lists_every_chapter(lab_server):
    base, token = lab_server
    status, body = get(f"{base}/api/contents/notebooks", token)
    listed = {item["name"] for item in json.loads(body)["content"] if item["type"] == "notebook"}
    assert status == 200
    assert listed == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}


def test_jupyter_lab_serves_its_page(lab_server):
    base, token = lab_server
    status, body = get(f"{base}/lab/tree/notebooks/03_cats_vs_dogs.ipynb", token)
    assert status == 200 and b"JupyterLab" in body
