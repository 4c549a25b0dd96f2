"""The built HTML book, opened page by page in headless Chromium.

    TL_BROWSER_HTML=_build/html pytest --confcutdir=tests/browser tests/browser     # what `make browser` runs

Without TL_BROWSER_HTML the module is skipped (`make unit` runs pytest on all of tests/); --confcutdir keeps the
unit tests' conftest, which imports Keras, out of this run.

_build/html is served on 127.0.0.1 (the search page needs http), every page is visited once, and the tests read
what each visit recorded: console errors and uncaught exceptions (a resource that could not be loaded, a CDN
among them, is one: the machine that runs this is offline), images that did not load, source text that was
not rendered (`\\(`, `{glue`, `{cite`, `{doc`), formulas that MathJax did not typeset, and the notebook pages'
Colab and Binder links, which must be built from _config.yml's repository, machine paths and download chatter in
any text or output (folded ones too), and code or output blocks wider than their container, measured with every fold
opened at 1280 px, where the page's table of contents is shown on the right. A full-page screenshot (JPEG) of every
page goes to _build/screens/ (TL_BROWSER_SCREENS moves it). The browser is the system's Chromium, driven by
Playwright (TL_CHROMIUM names another executable).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

if not os.environ.get("TL_BROWSER_HTML"):  # `make unit` (pytest tests) passes by; `make browser` sets it
    pytest.skip("the browser test of the built book runs with `make browser`", allow_module_level=True)

import yaml  # noqa: E402

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements/lock.txt)")

REPO = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("TL_BROWSER_HTML", REPO / "_build" / "html")).resolve()
SCREENS = Path(os.environ.get("TL_BROWSER_SCREENS", HTML.parent / "screens"))
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())
# Every page the book has, but the redirect at the top (tested on its own) and Sphinx's assets.
PAGES = sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
               if p.relative_to(HTML).parts[0] not in {"_static", "_sources", "_images"} and p.name != "index.html")
NOTEBOOK_PAGES = [p for p in PAGES if p.startswith("notebooks/")]
# Source text no reader should see: a role or math delimiter left as text, or a Python object's repr where its value
# belongs ({glue:text} on a value glued as Markdown).
RAW = ["\\(", "\\)", "{glue", "{cite", "{doc", "{ref", "{term", "<IPython.core.display"]
# Pages whose source has formulas: MathJax must have typeset them.
MATH_PAGES = ["notebooks/02_domains_and_tasks.html"]
# Text no reader should see: this machine's paths (outputs show paths inside the datasets folder) and Keras's
# download chatter (the course prints its own notice when weights are missing).
MACHINE_TEXT = ["/tmp/", "/root/", "/work/", "Downloading data from"]
VIEWPORT = {"width": 1280, "height": 1200}  # wide enough for the right-hand table of contents
SEARCH_TERM = "fine-tuning"


def chromium() -> str:
    """The browser executable: TL_CHROMIUM, or the system's Chromium (Debian), or Chrome (hosted CI runners)."""
    for candidate in [os.environ.get("TL_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser",
                      "google-chrome", "google-chrome-stable"]:
        if candidate and (found := shutil.which(candidate)):
            return found
    pytest.fail("no Chromium found: apt-get install chromium, or set TL_CHROMIUM to a Chrome or Chromium executable")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """Base URL of _build/html, served from a thread on a free port of 127.0.0.1."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` (or `make book-strict`) first")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


# Run in the page once it has loaded: wait for MathJax to finish, load every image (lazy ones too), then report.
INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images];
  await Promise.all(images.map(img => { img.loading = "eager"; return img.decode().catch(() => null); }));
  const main = document.querySelector("main") || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll("script, style, pre, code, .highlight").forEach(el => el.remove());
  return {
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    visible: main.innerText,
    text: copy.textContent,
    mjx: document.querySelectorAll("mjx-container").length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    uncaptioned: [...main.querySelectorAll(".cell_output img")]
      .filter(img => !(img.closest("figure") && img.closest("figure").querySelector("figcaption")))
      .map(img => img.currentSrc || img.src),
    captions: [...main.querySelectorAll("figure figcaption")].map(c => c.textContent.trim()),
  };
}"""

# Run after the screenshot: open every fold, then list the code and output blocks wider than their container.
OVERFLOW = """() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const main = document.querySelector("main") || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll("script, style").forEach(el => el.remove());
  const toc = document.querySelector(".bd-sidebar-secondary");
  const blocks = [...main.querySelectorAll("div.highlight pre, div.cell_output pre, div.cell_output > div.output")];
  return {
    everything: copy.textContent,
    toc: !!toc && getComputedStyle(toc).display !== "none" && toc.getBoundingClientRect().width > 0,
    blocks: blocks.filter(b => b.clientWidth > 0).length,
    wide: blocks.filter(b => b.clientWidth > 0 && b.scrollWidth > b.clientWidth + 1)
      .map(b => `${b.scrollWidth} > ${b.clientWidth} px: ${b.textContent.trim().split("\\n")[0].slice(0, 90)}`),
  };
}"""


def visit(page, url: str, screenshot: Path) -> dict:
    """Open `url` in `page` and return what it showed: console errors, images, text, formulas, links."""
    errors = []
    page.on("console", lambda msg: errors.append(f"console error: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} ({req.failure})"))
    page.goto(url, wait_until="load")
    found = page.evaluate(INSPECT)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True, type="jpeg", quality=75)  # PNG: twice as slow
    found.update(page.evaluate(OVERFLOW))
    found["errors"] = errors
    return found


@pytest.fixture(scope="module")
def visits(server, browser):
    """Every page visited once, in one browser context: {page: what visit() recorded}."""
    start = time.monotonic()
    context = browser.new_context(viewport=VIEWPORT)
    seen = {}
    for name in PAGES:
        page = context.new_page()
        seen[name] = visit(page, server + name, SCREENS / name.replace("/", "__").replace(".html", ".jpg"))
        page.close()
    context.close()
    print(f"\nbrowser: {len(seen)} pages, {sum(len(v['images']) for v in seen.values())} images, "
          f"{time.monotonic() - start:.1f} s; screenshots in {SCREENS}")
    return seen


def test_the_book_has_its_pages():
    assert "book/intro.html" in PAGES and "search.html" in PAGES
    assert len(NOTEBOOK_PAGES) >= 5, NOTEBOOK_PAGES


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_console_errors(visits, name):
    assert not visits[name]["errors"], "\n".join(visits[name]["errors"])


@pytest.mark.parametrize("name", PAGES)
def test_every_image_loads(visits, name):
    broken = [img["src"] for img in visits[name]["images"] if img["width"] <= 0]
    assert not broken, f"{len(broken)} of {len(visits[name]['images'])} images did not load: {broken}"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_every_figure_has_a_numbered_caption(visits, name):
    uncaptioned = visits[name]["uncaptioned"]
    assert not uncaptioned, f"{len(uncaptioned)} figures without a caption on {name}: {uncaptioned}"
    assert all(c.startswith("Fig.") for c in visits[name]["captions"]), visits[name]["captions"]


@pytest.mark.parametrize("name", PAGES)
def test_no_unrendered_source_text(visits, name):
    """No role or math delimiter left as text, in what is shown or in what is folded away (code aside)."""
    for where in ("visible", "text"):
        text = visits[name][where]
        left = {raw: text[max(0, text.find(raw) - 60):text.find(raw) + 60] for raw in RAW if raw in text}
        assert not left, f"{name} ({where} text) shows source text: {left}"


@pytest.mark.parametrize("name", PAGES)
def test_no_machine_paths_or_download_chatter(visits, name):
    """Outputs show dataset-relative paths, and Keras's download lines never reach the page, folded or not."""
    text = visits[name]["everything"]
    found = {s: text[max(0, text.find(s) - 80):text.find(s) + 80] for s in MACHINE_TEXT if s in text}
    assert not found, f"{name} shows {list(found)}: {found}"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_outputs_show_numbers_for_people(visits, name):
    """A probability reads 99.9%, not 9.999996e-01: no number in scientific notation outside the code."""
    shown = re.findall(r".{0,60}\b\d\.\d+e[-+]\d\d\b.{0,30}", visits[name]["everything"])
    assert not shown, f"{name} shows numbers in scientific notation: {shown[:5]}"


@pytest.mark.parametrize("name", PAGES)
def test_no_code_or_output_wider_than_its_column(visits, name):
    """88-column code and every output fit the column at 1280 px, with the table of contents on the right."""
    seen = visits[name]
    if name in NOTEBOOK_PAGES:
        assert seen["toc"], f"{name}: the right-hand table of contents is not shown at {VIEWPORT['width']} px"
        assert seen["blocks"] > 0, f"{name}: no code or output block measured"
    assert not seen["wide"], f"{len(seen['wide'])} blocks wider than the column on {name}:\n" + "\n".join(seen["wide"])


@pytest.mark.parametrize("name", [p for p in MATH_PAGES if p in PAGES])
def test_formulas_are_typeset(visits, name):
    assert visits[name]["mjx"] > 0, f"MathJax typeset no formula on {name}"


def launch_urls(notebook: str) -> tuple[str, str]:
    """The Colab and Binder URLs of `notebook` (a path in the repository), built from _config.yml."""
    repo = CONFIG["repository"]
    slug = repo["url"].removeprefix("https://github.com/").strip("/")
    branch = repo.get("branch", "main")
    path = (repo.get("path_to_book") or "").strip("/")
    path = f"{path}/{notebook}" if path else notebook
    launch = CONFIG["launch_buttons"]
    colab = f"{launch['colab_url'].rstrip('/')}/github/{slug}/blob/{branch}/{path}"
    assert launch["notebook_interface"] == "jupyterlab", "Binder opens the chapters in JupyterLab"
    binder = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{slug}/{branch}?urlpath=lab/tree/{path}"
    return colab, binder


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_notebook_pages_launch_on_colab_and_binder(visits, name):
    colab, binder = launch_urls(name.replace(".html", ".ipynb"))
    assert colab.startswith("https://colab.research.google.com/github/")
    assert binder.startswith("https://mybinder.org/v2/gh/")
    links = visits[name]["links"]
    assert colab in links, f"no Colab link {colab} on {name}: {[u for u in links if 'colab' in u]}"
    assert binder in links, f"no Binder link {binder} on {name}: {[u for u in links if 'binder' in u]}"


def test_index_redirects_to_the_introduction(server, browser):
    page = browser.new_page()
    page.goto(server + "index.html")
    page.wait_for_url("**/book/intro.html", timeout=10_000)
    page.close()


def test_search_finds_fine_tuning(server, browser):
    page = browser.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{server}search.html?q={SEARCH_TERM}")
    page.wait_for_selector("#search-results ul.search li", timeout=15_000)
    results = page.locator("#search-results ul.search li").count()
    page.screenshot(path=str(SCREENS / "search__fine-tuning.jpg"), full_page=True, type="jpeg", quality=75)
    page.close()
    print(f"\nbrowser: search for {SEARCH_TERM!r} found {results} pages")
    assert results >= 1
    assert not errors, errors
