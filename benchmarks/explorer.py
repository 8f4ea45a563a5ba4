"""How fast and how well the interleaving explorer (evtsim.races) explores: one core, and a pool.

Every canonical configuration is explored exhaustively with Xen's and Linux's real protocol
(timed: the slowest is ``max_seconds``, target 5; any violation there counts in
``protocol_violations``, which must be 0), then once with each safeguard of its model removed
(``safeguards_with_counterexample`` counts the safeguards whose removal some configuration
turns into a counterexample). On the largest configuration the same search runs without
partial-order reduction, the baseline measured in this run: ``reduction`` is the states it
visits divided by the states the reduced search visits (the verdicts must agree; target 10),
and ``states_per_s`` is the reduced search's distinct states per second on one core. The text
output also times the largest configuration split over a process pool of ``--workers`` (2),
fresh (start-up included, as ``evtsim explore --jobs`` pays it) and once its workers are up.

The machine these run on may be shared: the times are wall-clock seconds, the best of
``--repeats``, and the CPU seconds are printed beside them.

Usage: ``python benchmarks/explorer.py [--json] [--quick] [--workers N] [--repeats N]``.
``--quick`` leaves out the largest configuration (bind-vcpu) and measures on set-priority.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from evtsim import races

LARGEST = "bind-vcpu"
QUICK_LARGEST = "set-priority"
TARGETS = {"reduction": 10, "max_seconds": 5.0, "safeguards": 6, "protocol_violations": 0}


def timed(repeats: int, work: Callable[[], races.Result]) -> tuple[races.Result, float, float]:
    """(the result, the best wall-clock seconds, the CPU seconds of that run) over ``repeats`` runs."""
    best = (None, float("inf"), 0.0)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if wall < best[1]:
            best = (result, wall, cpu)
    return best


def configurations(quick: bool) -> list[races.Config]:
    return [c for c in races.CONFIGS.values() if not (quick and c.name == LARGEST)]


def real_protocol(configs: list[races.Config], repeats: int) -> dict[str, tuple[races.Result, float, float]]:
    """Each configuration, exhaustively, nothing removed."""
    return {c.name: timed(repeats, lambda c=c: races.explore(c.model, c.name)) for c in configs}


def removals(configs: list[races.Config]) -> dict[str, list[str]]:
    """For each safeguard, the configurations where removing it yields a counterexample."""
    found: dict[str, list[str]] = {s: [] for s in races.SAFEGUARDS}
    for c in configs:
        for s in races.for_model(c.model):
            if races.explore(c.model, c.name, [s.name], counterexample=False).violations:
                found[s.name].append(c.name)
    return found


def reduction(name: str) -> tuple[races.Result, races.Result, float]:
    """The largest configuration without and with the reduction, and the reduced search's time."""
    model = races.CONFIGS[name].model
    full = races.explore(model, name, por=False)
    reduced, seconds, _ = timed(1, lambda: races.explore(model, name))
    if full.verdict != reduced.verdict or full.terminals != reduced.terminals:
        raise SystemExit(f"the reduction changed the answer on {name}: {full.summary()} vs {reduced.summary()}")
    return full, reduced, seconds


def pool(name: str, workers: int) -> tuple[races.Result, float, float]:
    """The same search split over a pool: (result, seconds on a fresh pool, its start-up included
    as ``evtsim explore --jobs`` pays it, seconds on the same pool once its workers are up)."""
    model = races.CONFIGS[name].model
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as executor:
        result = races.explore(model, name, executor=executor)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        races.explore(model, name, executor=executor)
        warm = time.perf_counter() - start
    return result, cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help=f"leave out {LARGEST}; measure on {QUICK_LARGEST}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    configs = configurations(args.quick)
    largest = QUICK_LARGEST if args.quick else LARGEST
    real = real_protocol(configs, args.repeats)
    found = removals(configs)
    full, reduced, seconds = reduction(largest)
    figures = {
        "states_per_s": round(reduced.states / seconds),
        "reduction": round(full.states / reduced.states, 2),
        "max_seconds": round(max(wall for _, wall, _ in real.values()), 3),
        "protocol_violations": sum(len(r.violations) for r, _, _ in real.values()),
        "safeguards": len(races.SAFEGUARDS),
        "safeguards_with_counterexample": sum(1 for configs_ in found.values() if configs_),
    }
    if args.json:
        print(json.dumps(figures))
        return
    split = pool(largest, args.workers)
    report(real, found, full, reduced, seconds, split, args.workers, figures)


def report(real, found, full, reduced, seconds, split, workers, figures) -> None:
    print("real protocol, exhaustive (wall s, best of repeats; CPU s):")
    for name, (result, wall, cpu) in real.items():
        print(f"  {name:<13} {wall:6.2f} s  {cpu:6.2f} s  {result.summary()}")
    print("safeguards removed: the configurations that then give a counterexample")
    for name, configs in found.items():
        print(f"  {name:<19} {', '.join(configs) or '(none: a finding, see docs/races.md)'}")
    print(f"largest configuration {reduced.config}: {full.states} states without reduction, {reduced.states} with "
          f"(x{full.states / reduced.states:.1f}); {reduced.states / seconds:,.0f} states/s on one core")
    result, cold, warm = split
    same = (result.states, result.terminals, result.verdict) == (reduced.states, reduced.terminals, reduced.verdict)
    print(f"on a pool of {workers}: {warm:.2f} s once its workers are up (speed-up x{seconds / warm:.2f}), "
          f"{cold:.2f} s on a fresh pool (x{seconds / cold:.2f}); {seconds:.2f} s on one core; same answer: {same}")
    for key, value in figures.items():
        target = TARGETS.get(key)
        print(f"  {key:<31} {value}" + (f"   (target {target})" if target is not None else ""))


if __name__ == "__main__":
    main()
