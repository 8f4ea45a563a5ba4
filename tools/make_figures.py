"""Render one PNG of each view for the hibernation scenario into assets/.

Default parameters, at the step "traffic on the new host"; the alternatives matrix is the
full sweep of ``evtsim.sweep.alternatives_matrix()``. Run: ``.venv/bin/python tools/make_figures.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from evtsim import plots
from evtsim.scenarios import run_scenario
from evtsim.sweep import alternatives_matrix, sweep

ASSETS = Path(__file__).resolve().parents[1] / "assets"
STEP = "traffic on the new host"
DPI = 110


def main() -> list[Path]:
    """Write the five PNGs and return their paths."""
    trace = run_scenario("hibernation")
    record = next(r for r in trace.records if r.step == STEP)
    guest = record.domain("guest@B")
    views = {
        "hibernation-two-level.png": plots.two_level(guest),
        "hibernation-fifo-queues.png": plots.fifo_queues(guest),
        "hibernation-frame-map.png": plots.frame_map(guest),
        "hibernation-timeline.png": plots.timeline(trace, step=record.index),
        "hibernation-alternatives.png": plots.alternatives_matrix(sweep("hibernation", alternatives_matrix()),
                                                                  title="Hibernation: each alternative's outcome"),
    }
    ASSETS.mkdir(exist_ok=True)
    paths = []
    for name, ax in views.items():
        path = ASSETS / name
        ax.figure.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: stable bytes
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in main():
        sys.stdout.write(f"{p}\n")
