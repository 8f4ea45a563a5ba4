"""The documentation site: it builds with warnings as errors, and its pages work offline.

The site is built once per run (Sphinx + myst-nb, every notebook executed) into a temporary
directory, served on 127.0.0.1, and opened in headless Chromium with every request to another
host aborted and recorded. Outside CI, a missing Sphinx, Chromium or Playwright skips these tests
with the reason; under CI=true it fails them, because CI is where the site must be proven.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from evtsim import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HIBERNATION_PAGE = "notebooks/05-hibernation-bug.html"
WIDGET = ".widget-toggle-button, .jupyter-widgets"  # what the embedder draws from the widget state
IN_CI = os.environ.get("CI") == "true"
CHROMIUM = Path("/usr/bin/chromium")
# ecosystem.md section 3: flags under which Debian's Chromium runs headless here, reliably.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PUBLIC_MODULES = (
    "abi", "memory", "ports", "two_level", "fifo", "event_channel", "xen", "versions", "faults",
    "guest.kernel", "guest.config", "guest.irq_info", "guest.evtchn_ops", "guest.events_2l", "guest.events_fifo", "guest.consumers",
    "toolstack", "scenario", "scenarios", "snapshot", "trace", "tracefile", "sweep", "plots", "widgets", "cli",
    "cli_explore", "races", "races.machine", "races.search", "races.exploring", "races.tracing",
)


def unavailable(reason: str) -> None:
    """Skip for want of ``reason``; under CI=true fail instead, since CI must run these tests."""
    if IN_CI:
        pytest.fail(f"{reason}, and CI=true: CI must build and browse the docs")
    pytest.skip(reason)


@dataclass(frozen=True)
class Build:
    """One sphinx-build run: its exit status, its output and where the HTML went."""

    returncode: int
    output: str
    html: Path


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Build the site exactly as `make docs` does, but into a temporary directory."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (pip install -e '.[docs]')")
    vendor_widget_js()
    out = tmp_path_factory.mktemp("docs")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # kernels inherit it (no figures)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return Build(done.returncode, done.stdout + done.stderr, out / "html")


def vendor_widget_js() -> None:
    """Run docs/vendor_widgets_js.sh unless its output is there (it needs npm and the registry)."""
    if (DOCS / "_static/vendor/VERSIONS").is_file():
        return
    if shutil.which("npm") is None:
        unavailable("npm is missing, so the widget JavaScript cannot be vendored")
    subprocess.run(["bash", str(DOCS / "vendor_widgets_js.sh")], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def html(build: Build) -> Path:
    """The built site; a failed build fails every test that needs it, with Sphinx's output."""
    if build.returncode != 0:
        pytest.fail(f"sphinx-build failed:\n{build.output[-4000:]}")
    return build.html


def test_the_site_builds_with_warnings_as_errors(build: Build):
    assert build.returncode == 0, build.output[-4000:]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_page_with_the_outputs_of_its_execution(html: Path, notebook: Path):
    page = html / "notebooks" / f"{notebook.stem}.html"
    assert page.is_file(), f"no page for {notebook.name}"
    assert "cell_output" in page.read_text(), f"{notebook.name} was not executed (its outputs are stripped)"


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_the_api_reference_has_a_page_for_each_public_module(html: Path, module: str):
    page = html / "api" / f"evtsim.{module}.html"
    assert page.is_file(), f"docs/api.rst does not list evtsim.{module}"
    assert f'id="module-evtsim.{module}"' in page.read_text(), f"evtsim.{module} has no automodule"


# -- The quoted command lines still give the quoted outcomes ---------------------------------


def quoted_runs() -> list:
    """Every ``$ evtsim ...`` line in a ```console block of docs/*.md that quotes lines under it."""
    runs = []
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), flags=re.S):
            for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
                command, *quoted = chunk.rstrip("\n").split("\n")
                if quoted:
                    runs.append(pytest.param(page.name, command, quoted, id=f"{page.stem}: {command}"))
    return runs


@pytest.mark.parametrize("page, command, quoted", quoted_runs())
def test_each_quoted_evtsim_run_still_prints_what_the_page_says(page, command, quoted, capsys):
    argv = shlex.split(command, comments=True)
    assert argv[0] == "evtsim"
    assert cli.main(argv[1:]) == 0
    printed = capsys.readouterr().out.splitlines()
    missing = [line for line in quoted if line not in printed]
    assert not missing, f"{page}: `{command}` no longer prints {missing}"


# -- The hibernation page, in a browser that may reach only 127.0.0.1 ------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    """A static file handler that keeps the test output clean."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (base class name)
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port, in a thread; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Visit:
    """What the browser saw on one page: the page itself and what went wrong around it."""

    page: object
    left_localhost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def hibernation_page(html: Path) -> Iterator[Visit]:
    """The hibernation notebook's page in headless Chromium, widgets rendered, network fenced in."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    if not (html / HIBERNATION_PAGE).is_file():
        pytest.fail(f"the site has no {HIBERNATION_PAGE}")
    from playwright.sync_api import sync_playwright

    with serve(html) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield visit(browser, f"{base}/{HIBERNATION_PAGE}")
        finally:
            browser.close()


def visit(browser, url: str) -> Visit:
    """Open ``url`` with every non-127.0.0.1 request aborted and recorded; wait for widgets."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = Visit(page)

    def fence(route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.left_localhost.append(route.request.url)
            route.abort()

    page.route("**/*", fence)
    page.on("response", lambda r: r.status >= 400 and seen.failed.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda e: seen.js_errors.append(str(e)))
    page.goto(url, wait_until="load")
    settle(page)
    return seen


def settle(page) -> None:
    """Give the widgets and images time to appear; a timeout is left for the tests to report."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.locator(WIDGET).first.wait_for(state="visible", timeout=20_000)
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=20_000)
        page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=20_000)


def test_hibernation_page_shows_its_figures(hibernation_page: Visit):
    images = hibernation_page.page.evaluate(
        "() => [...document.querySelectorAll('article img')].map(img => [img.currentSrc.slice(0, 80), img.naturalWidth])")
    assert images, "the hibernation page has no figures"
    assert [src for src, width in images if width == 0] == []


def test_hibernation_page_renders_its_widget_snapshot(hibernation_page: Visit):
    widget = hibernation_page.page.locator(WIDGET).first
    assert widget.is_visible(), "no widget rendered from the embedded widget state"
    assert hibernation_page.page.locator("text=ToggleButton(").count() == 0, "widgets fell back to text"


def test_hibernation_page_requests_nothing_beyond_127_0_0_1(hibernation_page: Visit):
    assert hibernation_page.left_localhost == []


def test_hibernation_page_finds_every_file_it_asks_for(hibernation_page: Visit):
    assert hibernation_page.failed == []


def test_hibernation_page_runs_without_javascript_errors(hibernation_page: Visit):
    assert hibernation_page.js_errors == []
