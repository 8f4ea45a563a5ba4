"""Start JupyterLab or Voila on a temporary copy of the notebooks and drive it with Chromium.

The recipe is the one verified in ecosystem.md section 3: Debian's /usr/bin/chromium driven by
Python playwright (never `playwright install`, whose browser download cannot work here), a
server on a free port of 127.0.0.1 with its own temporary JUPYTER_* directories, and a copy of
notebooks/ so that checkpoints and autosaves never touch the repository.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT = 90.0  # seconds; it takes about 2 s, but a cold CI disk is slow
# "Would you like to get notified about official Jupyter news?" ignores --LabApp.news_url=None.
NEWS_SETTINGS = ("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                 '{"fetchNews": "false", "checkForUpdates": false}')


def missing_tools(modules: tuple[str, ...] = ("playwright",)) -> str | None:
    """Say what the browser tests lack (Chromium, or a Python module), or None if nothing."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)"
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"{', '.join(absent)} not installed; run: make test (it installs the test extra)"
    return None


def require_tools(modules: tuple[str, ...] = ("playwright",)) -> None:
    """Skip when a tool is missing on a developer's machine, but fail in CI, where a skip would hide it."""
    reason = missing_tools(modules)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_home(root: Path) -> dict[str, str]:
    """The environment for a server whose config, runtime, settings and workspaces live under root."""
    dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces"}
    env = {**os.environ, **{var: str(root / sub) for var, sub in dirs.items()}}
    env.pop("MPLBACKEND", None)  # kernels inherit it, and Agg makes inline figures vanish
    env.pop("JUPYTER_TOKEN", None)  # the servers print a fresh token, which the tests read
    news = root / "settings" / NEWS_SETTINGS[0]
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(NEWS_SETTINGS[1])
    return env


def copy_notebooks(source: Path, dest: Path) -> Path:
    """Copy the .ipynb files of source into dest (the server's root), and return dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for notebook in source.glob("*.ipynb"):
        shutil.copy2(notebook, dest / notebook.name)
    return dest


#: The URL a server prints for its user to open, token included (JupyterLab's and Voila's log line).
PRINTED_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/\S*?[?&]token=(\w+)")


@dataclass
class Server:
    """A JupyterLab or Voila server: port, token, log, how to tell it is up, and its process."""

    port: int
    token: str
    log: Path
    probe: str = "/api/status"  # answers 200 once the server is up
    url_in_log: bool = False  # Voila: up once it prints its URL, which gives the port and token
    proc: subprocess.Popen | None = None  # set by serve()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The address of path on this server, with the token if it has one."""
        if not self.token:
            return f"{self.base}{path}"
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, to explain a failure."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def answers(self) -> bool:
        """Whether the server is up: its probe answers 200, or it printed the URL to open."""
        if self.url_in_log:
            printed = PRINTED_URL.search(self.log_text())
            if printed:
                self.port, self.token = int(printed[1]), printed[2]
            return printed is not None
        return status(self, self.probe) == 200

    def kernels(self) -> list[int]:
        """The process ids of the kernels this server runs now (its ipykernel descendants)."""
        return [pid for pid in descendants(self.proc.pid) if b"ipykernel" in cmdline(pid)]


def status(server: Server, path: str, method: str = "GET", token: bool = True) -> int | None:
    """The HTTP status of one request to the server (with its token unless told not to), or None."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, server.url(path)[len(server.base):] if token else path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, directly or not (Linux /proc; kernels have their own session)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it exited meanwhile
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_until_ready(server: Server, timeout: float = SERVER_START_TIMEOUT) -> None:
    """Poll the server until it answers; fail with its log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        if server.answers():
            return
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{server.log_tail()}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and all it started: SIGTERM to its process group, then SIGKILL what remains."""
    try:  # the group is the server's own session (start_new_session), so only ours are hit
        os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        proc.wait(15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(5)


@contextmanager
def serve(command: list[str], home: Path, cwd: Path, server: Server) -> Iterator[Server]:
    """Run command in cwd with the temporary home; yield server once it answers; always stop it."""
    env = jupyter_home(home)
    with open(server.log, "wb") as out:
        server.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(server.proc)


@contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[Server]:
    """JupyterLab serving root on a free port of 127.0.0.1, with a fresh random token."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:  # jupyter refuses to run as root without it; learners are not root
        command.append("--allow-root")
    with serve(command, home, root, Server(port, token, home / "lab.log")) as server:
        yield server


@contextmanager
def make_present(repo: Path, notebook: Path, home: Path, **variables: object) -> Iterator[Server]:
    """`make present`, the workshop's Voila, serving notebook on 127.0.0.1 with the token it prints.

    The recipe runs as it is, with this interpreter's environment as VENV and its install step
    skipped (-o): the tests run after `make test`, which installed Voila. ``variables`` are more
    make variables (PRESENT_CULL_IDLE=2). The server is up once it prints its URL; port and token
    are read from that line, as a presenter reads them.
    """
    port, venv = free_port(), Path(sys.prefix)
    settings = {"VENV": venv, "PRESENT_DIR": notebook.parent, "PRESENT_NOTEBOOK": notebook.name,
                "PRESENT_PORT": port, **variables}
    command = ["make", "-s", "-C", str(repo), "-o", f"{venv}/.installed-notebooks,present", "present",
               *(f"{name}={value}" for name, value in settings.items())]
    server = Server(port, "", home / "voila.log", url_in_log=True)
    with serve(command, home, repo, server) as server:
        yield server


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium, driven by playwright, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


# --- JupyterLab: the steps a learner takes (ecosystem.md section 3, pitfalls 4 and 5) ---

def open_notebook(page, server: Server, name: str) -> None:
    """Open name in a fresh workspace and wait until its kernel is Idle, so Run All is not lost."""
    page.goto(server.url(f"/lab/tree/{name}?reset"))
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-StatusBar-Widget >> text=Idle")


def close_file_browser(page) -> None:
    """View > File Browser off (Ctrl+B), as the issue's 1366 x 768 layout has it."""
    if page.locator(".jp-FileBrowser").is_visible():
        page.keyboard.press("Control+b")
        page.locator(".jp-FileBrowser").wait_for(state="hidden")


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menus as a learner would."""
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


def wait_until_cells_ran(page) -> None:
    """Wait until no cell is queued or running ([*]) and the kernel is Idle again."""
    page.wait_for_function("() => ![...document.querySelectorAll('.jp-InputPrompt')]"
                           ".some(p => p.textContent.includes('*'))")
    page.wait_for_selector(".jp-StatusBar-Widget >> text=Idle")


# Every shown picture of a dashboard has as many pixels as the screen has where it is shown.
AT_SCREEN_RATIO = """() => [...document.querySelectorAll('.evtsim-dashboard img')].every(img =>
  !img.getAttribute('width') || img.naturalWidth === Math.round(img.getAttribute('width') * devicePixelRatio))"""


def wait_for_screen_ratio(page, timeout_ms: int) -> None:
    """Wait until the dashboard's pictures are drawn at the screen's pixel ratio: the browser
    reported it (evtsim/widgets/screen.py) and the kernel drew them again."""
    page.wait_for_function(AT_SCREEN_RATIO, timeout=timeout_ms)


def settle(page) -> None:
    """Move the mouse away and drop focus, so hover and focus styles stay out of screenshots."""
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(300)


def wait_for_new_pixels(read: Callable[[], str], before: str, timeout_ms: int) -> str:
    """Call read() until it differs from before; return its last answer.

    A pane's <img> gets a new blob URL for each picture (and an ipympl canvas redraws in
    place), so a read may catch the old picture or one still loading: that attempt is simply
    retried.
    """
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout_ms / 1000
    pixels = before
    while pixels == before and time.monotonic() < deadline:
        try:
            pixels = read()
        except Error:
            pass
        if pixels == before:
            time.sleep(0.25)
    return pixels


#: What a learner must see together on one screen (issue 13): the controls, the outcome banner,
#: the step slider, the ABI view shown and the frame map, by the classes the dashboard gives them.
ONE_SCREEN = {"controls": ".evtsim-controls", "shortcuts": ".evtsim-shortcuts", "banner": ".evtsim-banner",
              "step slider": ".evtsim-steps", "ABI view": ".evtsim-abi img", "frame map": ".evtsim-frames img"}

BOXES = """selectors => {
  const dash = document.querySelector('.evtsim-dashboard');
  dash.scrollIntoView({block: 'start'});
  // what of the page shows: the viewport, cut down by every ancestor that clips (Lab's notebook panel)
  let view = [0, 0, innerWidth, innerHeight];
  for (let a = dash.parentElement; a && a !== document.body; a = a.parentElement) {
    const style = getComputedStyle(a);
    if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
    const r = a.getBoundingClientRect();
    view = [Math.max(view[0], r.left), Math.max(view[1], r.top), Math.min(view[2], r.right), Math.min(view[3], r.bottom)];
  }
  const out = {__view: view};
  for (const [name, selector] of Object.entries(selectors)) {
    const shown = [...document.querySelectorAll(selector)].filter(e => e.offsetParent !== null);
    out[name] = shown.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
  }
  return out;
}"""


def off_screen(page) -> list[str]:
    """The dashboard's one-screen elements (``ONE_SCREEN``) not wholly inside the viewport and
    the notebook's visible area once the dashboard is scrolled to the top (an empty list means
    they fit together, without scrolling); from their bounding boxes in the page."""
    boxes = page.evaluate(BOXES, ONE_SCREEN)
    page.wait_for_timeout(300)
    boxes = page.evaluate(BOXES, ONE_SCREEN)  # again, once the scroll has settled
    left, top, right, bottom = boxes.pop("__view")
    missing = []
    for name, found in boxes.items():
        inside = [b for b in found if b[0] >= left - 1 and b[1] >= top - 1 and b[2] <= right + 1 and b[3] <= bottom + 1]
        if not found or len(inside) < len(found):
            missing.append(name)
    return missing
