"""Smoke test of the benchmark scripts: they run and report their figures (never their speed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_KEYS = ("two_level_events_per_s", "fifo_events_per_s", "two_level_ratio", "fifo_ratio",
               "bytes_per_port")


def test_engines_quick_json_reports_the_five_readme_figures_as_positive_numbers():
    """benchmarks/engines.py drives EVTCHNOP_send (evtchn_send, xen/common/event_channel.c)
    into evtchn_2l_set_pending / evtchn_fifo_set_pending and the Linux-like consumers; its
    --quick --json run must print the README's five figures, each a positive finite number."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engines.py"), "--quick", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    for key in README_KEYS:
        value = figures[key]
        assert type(value) in (int, float) and math.isfinite(value) and value > 0, (key, value)


def test_scenarios_quick_json_reports_the_matrix_runs_and_both_timings():
    """benchmarks/scenarios.py times the hibernation alternatives matrix (evtsim.sweep) on one
    core and on a process pool; its --quick --json run must report a run count and two
    positive finite durations."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scenarios.py"), "--quick", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert type(figures["matrix_runs"]) is int and figures["matrix_runs"] > 0
    for key in ("matrix_seconds", "matrix_seconds_pool"):
        assert type(figures[key]) is float and math.isfinite(figures[key]) and figures[key] > 0, key


def test_interaction_quick_json_reports_the_four_dashboard_timings_as_positive_numbers():
    """benchmarks/interaction.py drives the hibernation dashboard (evtsim.widgets) as a learner
    would: slider moves, disable_fifo toggles, a step-through and a rebuild-everything baseline;
    its --quick --json run must print exactly those four figures, each a positive finite number."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "interaction.py"), "--quick", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures) == {"slider_ms", "parameter_ms", "step_through_s", "rebuild_ms"}
    for key, value in figures.items():
        assert type(value) is float and math.isfinite(value) and value > 0, (key, value)


def test_browser_quick_json_reports_the_five_figures_the_issue_names():
    """benchmarks/browser.py drives JupyterLab and Voila in Chromium (the browser tests' recipe):
    its --quick --json run must print the latencies as positive numbers, the one-screen check as
    a boolean and the kernels left by make present as a count. It needs Chromium and playwright
    (skipped without them outside CI, as the browser tests are)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import require_tools

    require_tools(("playwright", "voila"))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "browser.py"), "--quick", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures) == {"toggle_ms_p50", "slider_ms_p50", "roundtrip_ms_p50", "one_screen_1366",
                            "voila_kernels_after_close"}
    for key in ("toggle_ms_p50", "slider_ms_p50", "roundtrip_ms_p50"):
        assert type(figures[key]) is float and math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["one_screen_1366"] is True and figures["voila_kernels_after_close"] == 0
