"""How long each notebook takes to run headless, top to bottom, as a learner's "Run All" or CI does.

Each figure is wall-clock seconds for one nbclient run of one notebook: starting a fresh python3
kernel in notebooks/, executing every cell, shutting the kernel down ("immediate"). The run is
``run_headless`` from tests/test_notebooks.py, so it is exactly what the tests time: ``MPLBACKEND``
removed (figures render inline, as for a learner) and the kernel channels polled in slices (a
missed wake-up would otherwise stall a run until the 120 s cell timeout now and then).
The baseline, measured in the same run, is an empty notebook: a kernel started and stopped, which
every notebook pays too. The target is 10 s per notebook.

Usage: ``python benchmarks/notebooks.py [--json] [NOTEBOOK ...]`` (default: every notebook).
With ``--json`` it prints one JSON object mapping each notebook's file name to its seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
TARGET_SECONDS = 10.0


def _test_module():
    """tests/test_notebooks.py, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("test_notebooks", ROOT / "tests" / "test_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_headless = _test_module().run_headless


def run(nb: nbformat.NotebookNode) -> float:
    """Seconds to execute ``nb`` in a fresh kernel, start and shutdown included."""
    start = time.perf_counter()
    run_headless(nb)
    return time.perf_counter() - start


def measure(paths: list[Path]) -> dict[str, float]:
    """Seconds per notebook, in the order given."""
    return {path.name: run(nbformat.read(path, as_version=4)) for path in paths}


def baseline() -> float:
    """An empty notebook: what starting and stopping a kernel costs."""
    empty = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})
    return run(empty)


def table(seconds: dict[str, float], empty: float) -> str:
    """One line per notebook: seconds, multiple of an empty kernel's, and the target check."""
    lines = [f"{'empty notebook (kernel start + stop)':40s} {empty:6.2f} s  baseline"]
    for name, s in seconds.items():
        verdict = "ok" if s <= TARGET_SECONDS else "SLOW"
        lines.append(f"{name:40s} {s:6.2f} s  {s / empty:5.1f}x empty  (target <= {TARGET_SECONDS:g} s: {verdict})")
    lines.append(f"{'total':40s} {sum(seconds.values()):6.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seconds to run each notebook headless.")
    parser.add_argument("--json", action="store_true", help="print {notebook file name: seconds}")
    parser.add_argument("notebooks", nargs="*", help="file names in notebooks/ (default: all)")
    args = parser.parse_args(argv)
    paths = [NOTEBOOK_DIR / name for name in args.notebooks] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    seconds = measure(paths)
    if args.json:
        sys.stdout.write(json.dumps(seconds) + "\n")
    else:
        sys.stdout.write(table(seconds, baseline()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
