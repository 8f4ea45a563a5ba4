"""How long the hibernation dashboard takes to answer a learner, and what rebuilding would cost.

Each figure is wall-clock time from setting a widget's ``.value`` until its observer returns
(observers run at once, as in a kernel), by which time every pane the change touched has been
redrawn on Agg *and* encoded as the PNG its Image widget shows:

- ``slider_ms``: median over slider moves, cycling over the steps; the scenario is not re-run;
- ``parameter_ms``: median over ``disable_fifo`` toggles; the scenario re-runs, the panes follow;
- ``step_through_s``: every slider position of the trace in turn;
- ``rebuild_ms``: the baseline, measured in the same run: for one change, a fresh figure with
  every view drawn from scratch by plain Agg (constrained layout, as a naive dashboard would),
  then encoded by the same PNG encoder.

The table also times the PNG encoder on the largest pane (the timeline at 2x): ISA-L's deflate,
which the dashboards use, beside zlib's at the same level in the same run.

The first three come after one step-through, which lays out each text shape and renders each
text once (``first_step_through_s``, reported beside them); they are for a learner who has
seen the trace once. A browser adds the widget round trip and the decoding and painting of
each picture, not counted here: benchmarks/browser.py measures input to paint in Chromium.

Usage: ``python benchmarks/interaction.py [--json] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from collections.abc import Callable

import matplotlib
import numpy as np

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from evtsim import plots  # noqa: E402
from evtsim.trace import Trace  # noqa: E402
from evtsim.widgets import hibernation_dashboard  # noqa: E402
from evtsim.widgets.canvas import encode_png  # noqa: E402

TARGETS = {"slider_ms": 30.0, "parameter_ms": 100.0, "step_through_s": 1.0}
REPEATS, QUICK_REPEATS = 15, 2


def seconds(change: Callable[[], None]) -> float:
    """Wall-clock seconds from a change to the end of its observer: panes redrawn and encoded."""
    start = time.perf_counter()
    change()
    return time.perf_counter() - start


def slider_ms(dash, repeats: int) -> float:
    """Median ms per slider move, cycling over every step."""
    positions = [i % len(dash.trace) for i in range(repeats + 1)]
    times = [seconds(lambda k=k: setattr(dash.slider, "value", k)) for k in positions]
    return 1000 * statistics.median(times[1:])


def parameter_ms(dash, repeats: int) -> float:
    """Median ms per disable_fifo toggle: a re-run of the scenario, then the panes."""
    toggle = dash.controls["disable_fifo"]
    return 1000 * statistics.median(seconds(lambda: setattr(toggle, "value", not toggle.value))
                                    for _ in range(repeats))


def step_through_s(dash) -> float:
    """Seconds to show every step of the trace, first to last."""
    start = time.perf_counter()
    for k in range(len(dash.trace)):
        dash.slider.value = k
    return time.perf_counter() - start


def rebuild(trace: Trace, step: int, size: tuple[float, float]) -> Figure:
    """The baseline: a new figure, every view drawn from scratch for ``step``, rendered, encoded."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=(5.5, 7.5, 4.5))  # the dashboard's, 2 vCPUs
    plots.draw_timeline(trace, top.add_subplot(), step)
    if trace[step].domains:
        snapshot = trace[step].domains[-1]
        draw = plots.draw_fifo_queues if snapshot.abi == "fifo" else plots.draw_two_level
        draw(snapshot, middle.add_subplot())
        plots.draw_frame_map(snapshot, bottom.add_subplot())
    fig.canvas.draw()
    encode_png(np.asarray(fig.canvas.buffer_rgba()))
    return fig


def rebuild_ms(trace: Trace, size: tuple[float, float], repeats: int) -> float:
    """Median ms to rebuild the whole figure for a step, over the trace's steps."""
    times = []
    for k in (i % len(trace) for i in range(repeats)):
        start = time.perf_counter()
        rebuild(trace, k, size)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def encode_ms(dash, repeats: int) -> dict[str, float]:
    """Milliseconds to encode the timeline pane's picture: the dashboards' encoder, and zlib's
    level 1 writing the same unfiltered rows (the baseline)."""
    pixels = dash.panes["timeline"].pixels().copy()
    height, width = pixels.shape[:2]

    def median_ms(encode: Callable[[], bytes]) -> float:
        return 1000 * statistics.median(seconds(encode) for _ in range(max(repeats, 3)))

    return {"isal": median_ms(lambda: encode_png(pixels)), "zlib": median_ms(lambda: encode_png(pixels, zlib.compress)),
            "pixels": f"{width} x {height}"}


def measure(repeats: int, warm_up: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """The four figures on one dashboard at the default scenario size, and the context: the
    trace's length and the first step-through (which lays out each text shape once)."""
    dash = hibernation_dashboard()
    size = (plots.WIDTH, 5.5 + 7.5 + 4.5)  # the panes' heights, one figure
    first = step_through_s(dash) if warm_up else float("nan")
    results = {"slider_ms": slider_ms(dash, repeats), "parameter_ms": parameter_ms(dash, repeats),
               "step_through_s": step_through_s(dash), "rebuild_ms": rebuild_ms(dash.trace, size, repeats)}
    draws = {name: (pane.full_draws, pane.quick_draws) for name, pane in dash.panes.items()}
    return results, {"steps": len(dash.trace), "first_step_through_s": first, "draws": draws,
                     "encode": encode_ms(dash, repeats)}


def table(r: dict[str, float], context: dict[str, float]) -> str:
    """One line per figure with its target and its ratio to the rebuild baseline."""
    base, steps = r["rebuild_ms"], int(context["steps"])

    def line(label: str, key: str, unit: str, base_value: float) -> str:
        target = TARGETS[key]
        verdict = "ok" if r[key] <= target else "SLOW"
        return (f"  {label:<36}{r[key]:8.1f} {unit:<3} target <= {target:g} {unit}: {verdict:<4}  "
                f"baseline / this = {base_value / r[key]:.1f}")

    return "\n".join([
        f"hibernation dashboard, default scenario ({steps} steps); Agg drawing and PNG encoding included",
        line("slider move (index, redraw)", "slider_ms", "ms", base),
        line("parameter change (re-run, redraw)", "parameter_ms", "ms", base),
        line(f"full step-through ({steps} positions)", "step_through_s", "s", base * steps / 1000),
        f"  {'rebuild everything (baseline)':<36}{base:8.1f} ms  a fresh figure, every view drawn, per change",
        f"  {'first step-through (cold)':<36}{context['first_step_through_s']:8.1f} s   "
        "each text shape laid out and each text rendered once, then reused",
        f"  {'PNG of the timeline (' + context['encode']['pixels'] + ')':<36}{context['encode']['isal']:8.1f} ms  "
        f"ISA-L; zlib at the same level {context['encode']['zlib']:.1f} ms "
        f"({context['encode']['zlib'] / context['encode']['isal']:.1f} x)",
        "  panes drawn whole / from their background: "
        + ", ".join(f"{name} {full}/{quick}" for name, (full, quick) in context["draws"].items()),
    ])


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, measure, print the table (or one JSON object with the four figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEATS} repeats, no warm-up (smoke test)")
    args = parser.parse_args(argv)
    results, context = measure(QUICK_REPEATS if args.quick else REPEATS, warm_up=not args.quick)
    print(json.dumps(results, indent=2) if args.json else table(results, context))


if __name__ == "__main__":
    main()
