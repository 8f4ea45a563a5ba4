"""How long the hibernation alternatives matrix takes: one core, and a process pool.

The matrix (``evtsim.sweep.alternatives_matrix``) is every fix x errno x guest fallback x host
pair of the hibernation scenario, each a full scenario run with the default recording
(``Recording.COUNTS``): xl create on two hosts, two kernels booting, an image loaded over guest
memory, traffic. ``evtsim matrix`` prints it; a notebook may re-run it as a learner changes a
knob, so it should take under two seconds on one core. The pool figure includes starting the
worker processes, as ``evtsim matrix --jobs N`` does.

Usage: ``python benchmarks/scenarios.py [--json] [--quick] [--profile] [--workers N]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from evtsim.sweep import Params, alternatives_matrix, sweep

TARGET_SECONDS = 2.0  # the full matrix on one core
REPEATS = 3
QUICK_STRIDE = 13  # --quick: every 13th run of the matrix (24 runs across every fix)


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Seconds taken by the fastest of ``repeats`` calls of ``work``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def serial(runs: list[Params]) -> None:
    sweep("hibernation", runs)


def pooled(runs: list[Params], workers: int) -> None:
    """The same sweep on a fresh pool (its start-up is part of what a user waits for)."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        sweep("hibernation", runs, executor=pool)


def measure(runs: list[Params], repeats: int, workers: int) -> dict[str, float]:
    """The three required figures first, then the derived ones."""
    seconds = best_of(repeats, lambda: serial(runs))
    seconds_pool = best_of(repeats, lambda: pooled(runs, workers))
    return {
        "matrix_runs": len(runs),
        "matrix_seconds": seconds,
        "matrix_seconds_pool": seconds_pool,
        "pool_workers": workers,
        "ms_per_run": 1000 * seconds / len(runs),
        "pool_speedup": seconds / seconds_pool,
        "target_seconds": TARGET_SECONDS,
    }


def profile(runs: list[Params], top: int = 15) -> str:
    """cProfile of one single-threaded sweep: the ``top`` functions by own time, then by
    cumulative time (which shows the step that calls them)."""
    profiler = cProfile.Profile()
    profiler.runcall(serial, runs)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def table(r: dict[str, float]) -> str:
    """The readable form: one line per figure, the target beside the one-core time."""
    verdict = "ok" if r["matrix_seconds"] < TARGET_SECONDS else "SLOW"
    return "\n".join([
        f"hibernation alternatives matrix: {r['matrix_runs']} runs",
        f"  one core                   {r['matrix_seconds']:8.3f} s   (target < {TARGET_SECONDS:.0f} s: {verdict})",
        f"  per run                    {r['ms_per_run']:8.2f} ms",
        f"  pool of {r['pool_workers']} processes       {r['matrix_seconds_pool']:8.3f} s   "
        f"(x{r['pool_speedup']:.2f}, pool start-up included)",
    ])


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, time (or profile) the matrix and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a slice of the matrix, one pass (smoke test)")
    parser.add_argument("--profile", action="store_true", help="print cProfile hotspots instead")
    parser.add_argument("--workers", type=int, default=2, help="processes in the pool (default 2)")
    args = parser.parse_args(argv)
    runs = alternatives_matrix()
    runs = runs[::QUICK_STRIDE] if args.quick else runs
    if args.profile:
        print(profile(runs))
        return
    results = measure(runs, 1 if args.quick else REPEATS, args.workers)
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
