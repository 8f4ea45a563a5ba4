"""Explore a configuration exhaustively, on one core or over any ``concurrent.futures`` executor.

``explore("fifo", "two-senders", without=["cmpxchg"])`` runs the search and, when an invariant
breaks, a shortest-first search for the counterexample: the shortest schedule (in the reduced
state graph) that ends in that violation, the same whatever executor ran the exhaustive part.
With an executor, the search is split by schedule prefixes, as ``evtsim.sweep`` splits a sweep:
the first levels are explored here breadth first until there are enough frontier states, the
frontier is dealt into ``tasks`` parts, and each part is searched in a worker (which rebuilds
the model from its name: models hold functions, not data). The union of what the parts saw is
the serial result: the same states, the same quiescent states, the same violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache

from .configs import build_model, find_config, rest_violations
from .invariants import Violation, violations
from .machine import Model, State
from .search import DEFAULT_MAX_STEPS, Progress, Search, Stats

MAX_STEPS_LIMIT = 100_000  # a bound above this is a typo, not a bigger search
ALL = sum(v.bit for v in Violation)


@dataclass(frozen=True)
class Result:
    """What exploring one configuration found."""

    model: str
    config: str
    without: tuple[str, ...]
    por: bool
    states: int  # distinct states visited
    terminals: int  # distinct quiescent states
    transitions: int
    max_depth: int
    bound_hit: bool
    violations: tuple[str, ...]  # titles of the invariants that broke, in declaration order
    violation: str | None = None  # the one the counterexample shows
    schedule: tuple[int, ...] | None = None  # the counterexample: which actor ran each step

    @property
    def verdict(self) -> str:
        """``holds``, ``violated`` or ``incomplete`` (the step bound cut the search short)."""
        if self.violations:
            return "violated"
        return "incomplete" if self.bound_hit else "holds"

    def summary(self) -> str:
        """One line: configuration, what was removed, the verdict and the figures."""
        removed = f" without {', '.join(self.without)}" if self.without else ""
        found = f": {', '.join(self.violations)}" if self.violations else ""
        return (f"{self.model}/{self.config}{removed}: {self.verdict}{found} "
                f"({self.states} states, {self.terminals} quiescent, longest run {self.max_depth} steps)")


def check_bound(max_steps: int) -> int:
    """``max_steps`` if it is a sensible bound, else ValueError."""
    if type(max_steps) is not int or not 1 <= max_steps <= MAX_STEPS_LIMIT:
        raise ValueError(f"the step bound must be an integer from 1 to {MAX_STEPS_LIMIT}, not {max_steps!r}")
    return max_steps


def explore(model: str, config: str | None = None, without: Iterable[str] = (), *, por: bool = True,
            strategy: str = "dfs", max_steps: int = DEFAULT_MAX_STEPS, executor: Executor | None = None,
            tasks: int | None = None, progress: Progress | None = None, counterexample: bool = True,
            first: bool = False) -> Result:
    """Explore ``config`` of ``model`` with the safeguards in ``without`` removed.

    ``strategy`` is ``dfs`` (depth first, with sleep sets) or ``bfs`` (shortest first).
    ``executor`` (any ``concurrent.futures.Executor``) splits the search into ``tasks`` parts
    (default: one per worker it reports, else 2). ``first`` searches shortest first and stops at
    the first violation (the figures are then those of a partial search). Bad names or bounds
    raise ValueError.
    """
    spec = _spec(model, config, without)
    check_bound(max_steps)
    if strategy not in ("dfs", "bfs"):
        raise ValueError(f"strategy must be dfs or bfs, not {strategy!r}")
    m = _model(spec)
    if first:
        stats = Search(m, por=por, max_steps=max_steps, progress=progress).bfs(m.initial, stop=ALL)
        return _result(spec, m, stats, por, max_steps, False, found=stats.found)
    if executor is not None:
        stats = _parallel(spec, m, por, max_steps, executor, tasks or _default_tasks(executor), progress)
    elif strategy == "bfs":
        stats = Search(m, por=por, max_steps=max_steps, progress=progress).bfs(m.initial)
    else:
        stats = Search(m, por=por, max_steps=max_steps, progress=progress).dfs([(m.initial, ())])
    return _result(spec, m, stats, por, max_steps, counterexample)


def _spec(model: str, config: str | None, without: Iterable[str]) -> tuple[str, str, tuple[str, ...]]:
    """Validated names: (model, configuration, removed safeguards in registry order)."""
    cfg = find_config(model, config)
    removed = build_model(cfg, without).without  # checks the names
    from .safeguards import for_model
    return model, cfg.name, tuple(s.name for s in for_model(model) if s.name in removed)


@lru_cache(maxsize=64)
def _model(spec: tuple[str, str, tuple[str, ...]]) -> Model:
    """The compiled model of ``spec`` (cached: workers build each one once)."""
    model, config, without = spec
    return build_model(find_config(model, config), without)


def _result(spec: tuple[str, str, tuple[str, ...]], m: Model, stats: Stats, por: bool, max_steps: int,
            counterexample: bool, found: dict[int, tuple[int, ...]] | None = None) -> Result:
    broken = violations(stats.violations)
    violation = schedule = None
    if broken and found:  # a shortest-first search that stopped at its first violation
        violation = broken[0]
        schedule = found[violation.bit]
    elif broken and counterexample:
        violation = broken[0]
        schedule = shortest(m, violation, por=por, max_steps=max_steps)
    return Result(spec[0], spec[1], spec[2], por, len(stats.states), len(stats.terminals), stats.transitions,
                  stats.max_depth, stats.bound_hit, tuple(v.title for v in broken),
                  violation.title if violation else None, schedule)


def shortest(m: Model, violation: Violation, *, por: bool = True, max_steps: int = DEFAULT_MAX_STEPS,
             ) -> tuple[int, ...] | None:
    """The first schedule, breadth first, that breaks ``violation`` (None if none does)."""
    stats = Search(m, por=por, max_steps=max_steps).bfs(m.initial, stop=violation.bit)
    return stats.found.get(violation.bit)


# --- splitting over an executor -------------------------------------------------------------------

def _default_tasks(executor: Executor) -> int:
    """One part per worker: parts re-explore what they share, so more parts cost more work
    (on bind-vcpu, 4 parts on 2 workers take a quarter more transitions than 2)."""
    workers = getattr(executor, "_max_workers", None)
    return workers if isinstance(workers, int) and workers > 0 else 2


def _parallel(spec: tuple[str, str, tuple[str, ...]], m: Model, por: bool, max_steps: int, executor: Executor,
              tasks: int, progress: Progress | None) -> Stats:
    """Explore the first levels here, deal the frontier into ``tasks`` parts, merge the parts."""
    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, not {tasks}")
    stats, frontier = _frontier(Search(m, por=por, max_steps=max_steps), tasks)
    parts = [frontier[i::tasks] for i in range(tasks) if frontier[i::tasks]]
    futures = [executor.submit(explore_part, spec, part, por, max_steps) for part in parts]
    for future in futures:
        stats.merge(future.result())
        if progress:
            progress(len(stats.states), stats.transitions)
    return stats


Root = tuple[State, tuple[int, ...], int]  # a state, the schedule that reached it, its sleep set


def _frontier(search: Search, want: int) -> tuple[Stats, list[Root]]:
    """The depth-first tree (with sleep sets, without caching) cut at the first depth with at
    least ``want`` distinct states below it: (what the tree above the cut saw, the cut).

    A state met twice at the cut keeps the intersection of its sleep sets, as the serial search
    would wake up on its second visit whatever the first left asleep."""
    depth = 0
    while True:
        depth += 1
        search.stats = Stats()
        cut: dict[State, Root] = {}
        checked: set[State] = set()
        _walk(search, search.model.initial, (), 0, depth, cut, checked)
        if len(cut) >= want or not cut or depth >= search.max_steps:
            search.stats.states = {hash(s) for s in checked}
            return search.stats, list(cut.values())


def _walk(search: Search, s: State, path: tuple[int, ...], sleep: int, depth: int, cut: dict[State, Root],
          checked: set[State]) -> None:
    if len(path) == depth:
        seen = cut.get(s)
        cut[s] = (s, path, sleep if seen is None else seen[2] & sleep)
        return
    first = s not in checked
    checked.add(s)
    chosen, fps = _expand(search, s, path, first)
    for t in chosen:
        if sleep >> t & 1:
            continue
        child = search.child_sleep(sleep, t, fps) if search.sleep else 0
        _walk(search, search.successor(s, t), (*path, t), child, depth, cut, checked)
        sleep |= 1 << t


def _expand(search: Search, s: State, path: tuple[int, ...], first: bool) -> tuple[list[int], dict]:
    """What to explore from ``s`` after its checks (a violating or quiescent state: nothing)."""
    stats, m = search.stats, search.model
    stats.max_depth = max(stats.max_depth, len(path))
    bad = s[m.viol] | m.check_state(s)
    if bad:
        if first:
            search.note(s, bad, list(path))
        return [], {}
    chosen, enabled, fps = search.choose(s)
    if not enabled:
        if first:
            stats.terminals.add(hash(s))
            rest = rest_violations(m, s)
            if rest:
                search.note(s, rest, list(path))
        return [], {}
    if len(path) >= search.max_steps:
        stats.bound_hit = True
        return [], {}
    stats.transitions += len(chosen)
    return chosen, fps


def explore_part(spec: tuple[str, str, tuple[str, ...]], part: Sequence[Root], por: bool, max_steps: int) -> Stats:
    """A worker's share: depth-first search from each frontier state of ``part``."""
    return Search(_model(spec), por=por, max_steps=max_steps).dfs(part)
