"""How fast the hibernation dashboard answers in a real browser, and whether it fits one screen.

JupyterLab and Voila in Debian's Chromium, driven by playwright exactly as the browser tests do
(tests/browser_support.py; ecosystem.md section 3). A notebook made for the run holds a trivial
widget round trip (a button whose click sets a label) and the dashboard. Each latency is from
the input (a pointer press or a key press, timed by the page itself) to the last picture the
change updated being painted: the last ``<img>`` of the dashboard to finish loading, or the
timeline's step frame to move, then the next animation frame. Figures:

- ``toggle_ms_p50``: clicks on ``disable_fifo``, on and off (a re-run; every view follows);
- ``slider_ms_p50``: arrow keys on the step slider, through every step and back;
- ``roundtrip_ms_p50``: the trivial round trip, the floor any widget pays (the baseline);
- ``one_screen_1366``: at 1366 x 768, JupyterLab's file browser closed, the dashboard scrolled
  to the top: the controls, the banner, the step slider, the shown ABI view and the frame map
  are all inside the viewport and the notebook's visible area (their bounding boxes, measured);
- ``voila_kernels_after_close``: kernels still running after the ``make present`` page was
  opened and closed 5 times (a page's kernel should go when its page does).

The screen is a 1366 x 768 laptop's, one device pixel per CSS pixel, unless ``--pixel-ratio``
says otherwise (2: a high-DPI laptop); the dashboard draws its pictures at the ratio the browser
reports, as it does for a learner, and the run waits until it has.

Medians over ``--tries`` (at least 10) of each. Other programs on the machine slow every figure
down; the ratio to the round trip, measured in the same run, is the steadier number.

Usage: ``python benchmarks/browser.py [--json] [--quick] [--tries N] [--pixel-ratio R]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"toggle_ms_p50": 100.0, "slider_ms_p50": 60.0}
TRIES, QUICK_TRIES = 12, 3
VIEWPORT = {"width": 1366, "height": 768}
PRESENT_OPENS = 5
KERNEL_GONE_S = 30.0  # as tests/test_browser.py: a freed kernel exits within a second or two
QUIET_MS = 800  # no new picture for this long: the change is over
CELL_TIMEOUT_MS = 120_000


def _support():
    """tests/browser_support.py, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("browser_support", ROOT / "tests" / "browser_support.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


support = _support()

PING = """import ipywidgets as W
ping, pong = W.Button(description="ping"), W.HTML("0")
pong.add_class("evtsim-pong")
ping.on_click(lambda _: setattr(pong, "value", str(int(pong.value) + 1)))
W.HBox([ping, pong])"""


def bench_notebook(folder: Path) -> str:
    """A notebook with the round trip and the dashboard as notebook 05 makes it; its file name."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    dashboard = "from evtsim.widgets import hibernation_dashboard\nhibernation_dashboard()"
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ("%matplotlib inline", PING, dashboard)]
    nbformat.write(nb, folder / "bench.ipynb")
    return "bench.ipynb"


# The page times itself: inputs, pictures loaded, the step frame moved, the next frame painted.
WATCH = """() => {
  const events = window.__evtsim_events = [];
  const dash = document.querySelector('.evtsim-dashboard');
  const painted = () => requestAnimationFrame(() => events.push(['paint', performance.now()]));
  dash.querySelectorAll('img').forEach(img => img.addEventListener('load', () => {
    events.push(['picture', performance.now()]); painted(); }));
  new MutationObserver(() => { events.push(['picture', performance.now()]); painted(); })
    .observe(dash.querySelector('.evtsim-frame-layer'), {subtree: true, childList: true, attributes: true});
  new MutationObserver(() => events.push(['pong', performance.now()]))
    .observe(document.querySelector('.evtsim-pong'), {subtree: true, childList: true, characterData: true});
  for (const type of ['pointerdown', 'keydown'])
    document.addEventListener(type, () => events.push(['input', performance.now()]), true);
}"""


def latency(page, act, done: str) -> float:
    """Milliseconds from the input ``act`` makes to the last ``done`` event once things are quiet."""
    page.evaluate("() => window.__evtsim_events.length = 0")
    act()
    last, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        page.wait_for_timeout(QUIET_MS)
        events = page.evaluate("() => window.__evtsim_events")
        if events and events[-1][1] == last:
            break
        last = events[-1][1] if events else None
    start = next(t for kind, t in events if kind == "input")
    ends = [t for kind, t in events if kind == done]
    if not ends:
        raise RuntimeError(f"no {done} event after the input: {events}")
    return max(ends) - start


def open_lab_dashboard(page, lab, name: str) -> None:
    """Open the notebook, close the file browser, Run All, and wait for the dashboard."""
    support.open_notebook(page, lab, name)
    support.close_file_browser(page)
    support.run_all_cells(page)
    page.locator(".evtsim-dashboard img").first.wait_for(timeout=CELL_TIMEOUT_MS)
    support.wait_until_cells_ran(page)
    page.locator(".evtsim-pong").first.wait_for()
    page.wait_for_timeout(1000)


def slider_keys(page, tries: int) -> list[float]:
    """Arrow keys on the slider's handle: down through the steps, then up, and so on."""
    handle = page.locator(".evtsim-steps .noUi-handle").first
    last = int(page.locator(".evtsim-steps .widget-readout").first.inner_text())
    step, direction, times = last, -1, []
    for _ in range(tries):
        if not 0 <= step + direction <= last:
            direction = -direction
        step += direction
        handle.focus()
        times.append(latency(page, lambda d=direction: page.keyboard.press("ArrowLeft" if d < 0 else "ArrowRight"),
                             "paint"))
    return times


def measure_lab(browser, tries: int, pixel_ratio: float, home: Path) -> dict[str, object]:
    """The latencies and the one-screen check in JupyterLab."""
    served = home / "served"
    served.mkdir()
    name = bench_notebook(served)
    with support.jupyter_lab(served, home / "lab-home") as lab:
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=pixel_ratio)
        page = context.new_page()
        page.set_default_timeout(CELL_TIMEOUT_MS)
        open_lab_dashboard(page, lab, name)
        support.wait_for_screen_ratio(page, CELL_TIMEOUT_MS)  # the browser told the kernel, which redrew
        missing = support.off_screen(page)
        page.evaluate(WATCH)
        ping = page.locator("button:has-text('ping')").first
        toggle = page.locator(".evtsim-shortcuts .widget-toggle-button").first
        results = {"roundtrip": [latency(page, ping.click, "pong") for _ in range(tries)],
                   "toggle": [latency(page, toggle.click, "paint") for _ in range(tries)],
                   "slider": slider_keys(page, tries)}
        context.close()
    return {**results, "off_screen": missing}


def voila_kernels_after_close(browser, home: Path) -> int | None:
    """Kernels the ``make present`` server still runs after its page was opened and closed
    ``PRESENT_OPENS`` times (None if Voila is not installed)."""
    if support.missing_tools(("playwright", "voila")):
        return None
    served = support.copy_notebooks(ROOT / "notebooks", home / "present")
    contexts = []
    with support.make_present(ROOT, served / "present-hibernation.ipynb", home / "voila-home") as server:
        for _ in range(PRESENT_OPENS):
            contexts.append(browser.new_context(viewport=VIEWPORT))  # a page of its own, as a browser tab
            page = contexts[-1].new_page()
            page.goto(server.url("/"), wait_until="commit")
            page.locator(".evtsim-dashboard img").first.wait_for(timeout=CELL_TIMEOUT_MS)
            page.close(run_before_unload=True)  # as a tab closes: its beforeunload beacon runs
        deadline = time.monotonic() + KERNEL_GONE_S  # a freed kernel's process takes a moment to exit
        while server.kernels() and time.monotonic() < deadline:
            time.sleep(0.25)
        left = len(server.kernels())
    for context in contexts:
        context.close()
    return left


def summary(results: dict[str, object]) -> dict[str, object]:
    """The JSON figures the issue names."""
    median = {key: round(statistics.median(results[key]), 1) for key in ("toggle", "slider", "roundtrip")}
    return {"toggle_ms_p50": median["toggle"], "slider_ms_p50": median["slider"],
            "roundtrip_ms_p50": median["roundtrip"], "one_screen_1366": not results["off_screen"],
            "voila_kernels_after_close": results["voila_kernels"]}


def table(figures: dict[str, object], results: dict[str, object], pixel_ratio: float) -> str:
    floor = figures["roundtrip_ms_p50"]

    def line(label: str, key: str) -> str:
        target = TARGETS.get(key)
        verdict = "" if target is None else f"target <= {target:g} ms: {'ok' if figures[key] <= target else 'SLOW'}"
        spread = results[key.split("_")[0]]
        return (f"  {label:<30}{figures[key]:8.1f} ms  (min {min(spread):.0f}, max {max(spread):.0f})  "
                f"{figures[key] / floor:5.1f} x the round trip  {verdict}")

    return "\n".join([
        f"hibernation dashboard in JupyterLab, Chromium {VIEWPORT['width']}x{VIEWPORT['height']} at "
        f"{pixel_ratio:g}x, pictures at the screen's ratio; input to the last picture painted, "
        f"medians of {len(results['toggle'])}",
        line("disable_fifo toggle", "toggle_ms_p50"), line("step slider (arrow key)", "slider_ms_p50"),
        line("widget round trip (baseline)", "roundtrip_ms_p50"),
        f"  one screen at 1366x768: {figures['one_screen_1366']}"
        + (f" (off screen: {', '.join(results['off_screen'])})" if results["off_screen"] else ""),
        f"  Voila kernels left after {PRESENT_OPENS} opened and closed pages: {figures['voila_kernels_after_close']}",
    ])


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, drive the browser, print the figures (or one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIES} tries each (smoke test)")
    parser.add_argument("--tries", type=int, default=TRIES, help=f"tries per figure (default {TRIES})")
    parser.add_argument("--pixel-ratio", type=float, default=1.0,
                        help="the screen's device pixels per CSS pixel (default 1; 2 is a high-DPI screen)")
    args = parser.parse_args(argv)
    reason = support.missing_tools(("playwright",))
    if reason:
        parser.exit(2, f"browser.py: {reason}\n")
    tries = QUICK_TRIES if args.quick else max(args.tries, 1)
    with tempfile.TemporaryDirectory(prefix="evtsim-browser-") as tmp, support.chromium() as browser:
        results = measure_lab(browser, tries, args.pixel_ratio, Path(tmp))
        results["voila_kernels"] = voila_kernels_after_close(browser, Path(tmp))
    figures = summary(results)
    print(json.dumps(figures, indent=2) if args.json else table(figures, results, args.pixel_ratio))


if __name__ == "__main__":
    main()
