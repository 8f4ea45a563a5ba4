"""Outcome matrices: one scenario run per parameter set, on any ``concurrent.futures`` executor.

``sweep`` turns a list of parameter dicts into one ``Row`` per run (the parameters and the
outcome's figures), in input order. The work is ``run_one``, a module-level function of plain
values, so a ``ProcessPoolExecutor`` (or Dask's or Ray's executors) can ship it to workers.
``alternatives_matrix`` is the review's question as data: every fix of the hibernation
scenario against every guest fallback policy and host pair (fact sheet 3.2, 4.6, 8.10).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass

from .scenarios import ERRNOS, FIXES, SCENARIOS, make_params

Params = dict[str, object]
Progress = Callable[[int, int], None]

#: The fixes whose behaviour depends on the errno chosen (the v4 flag's and an XSM denial's).
ERRNO_FIXES = ("disable-fifo", "xsm")
FALLBACKS = ("any", "enosys-only", "never")
NEW_HOSTS = ("4.4", "4.7", "master")
OLD_HOSTS = ("4.3", "4.4")  # 4.3: the 2020 bug (2-level image); 4.4: FIFO image -> FIFO host
PROGRESS_MIN_RUNS = 50  # shorter sweeps finish before a bar would be worth reading
BAR_WIDTH = 30


@dataclass(frozen=True)
class Row:
    """One run of a sweep: which scenario, with what, and what came of it."""

    scenario: str
    params: tuple[tuple[str, object], ...]
    seed: int
    verdict: str
    sent: int
    delivered: int
    lost: int
    stray_writes: int
    corrupted_frames: int  # how many handed-over frames Xen wrote into
    crash: str | None
    first_loss_step: int | None
    first_corruption_step: int | None
    channels_closed: tuple[str, ...]

    def __getitem__(self, name: str) -> object:
        """A parameter or outcome field by name: ``row["fix"]``, ``row["verdict"]``."""
        return self.as_dict()[name]

    def as_dict(self) -> dict[str, object]:
        """Flat: scenario, the parameters, seed, then the outcome fields."""
        out: dict[str, object] = {"scenario": self.scenario, **dict(self.params), "seed": self.seed}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)[3:]})
        return out


def grid(**axes: object) -> list[Params]:
    """The cartesian product of ``axes``, last axis fastest; a str or scalar is one value."""
    values = [_as_values(v) for v in axes.values()]
    return [dict(zip(axes, combo)) for combo in itertools.product(*values)]


def _as_values(value: object) -> Sequence[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def run_one(scenario: str, params: Mapping[str, object], seed: int = 0) -> Row:
    """Run ``scenario`` once and reduce its trace to a Row (the executors' work function)."""
    trace = SCENARIOS[scenario].run(make_params(scenario, **params), seed)
    o = trace.outcome
    return Row(scenario, tuple(params.items()), seed, o.verdict, o.sent, o.delivered, o.lost,
               o.stray_writes, len(o.corrupted_frames), o.crash, o.first_loss_step,
               o.first_corruption_step, tuple(o.channels_closed))


def sweep(scenario: str, runs: Iterable[Mapping[str, object]], *, seed: int = 0,
          executor: Executor | None = None, progress: bool | Progress | None = None) -> list[Row]:
    """One Row per parameter set, in input order; bad parameters raise ValueError up front."""
    runs = [dict(p) for p in runs]
    for p in runs:
        make_params(scenario, **p)  # fail before any work is shipped to an executor
    report = _progress(progress, len(runs))
    if executor is None:
        rows = []
        for p in runs:
            rows.append(run_one(scenario, p, seed))
            report(len(rows))
        return rows
    return _gather(executor, scenario, runs, seed, report)


def _gather(executor: Executor, scenario: str, runs: list[Params], seed: int,
            report: Callable[[int], None]) -> list[Row]:
    """Submit every run, collect them as they finish, return them in submission order."""
    futures = {executor.submit(run_one, scenario, p, seed): i for i, p in enumerate(runs)}
    rows: list[Row | None] = [None] * len(runs)
    for done, future in enumerate(as_completed(futures), 1):
        rows[futures[future]] = future.result()
        report(done)
    return rows  # type: ignore[return-value]  # every slot is filled


def _progress(progress: bool | Progress | None, total: int) -> Callable[[int], None]:
    """``done -> None``: nothing, the caller's callable, or a bar on stderr for long sweeps."""
    if callable(progress):
        return lambda done: progress(done, total)
    if progress is True and total > PROGRESS_MIN_RUNS:
        return lambda done: _bar(done, total)
    return lambda done: None


def _bar(done: int, total: int) -> None:
    """``\\r[#####.....] 120/240`` on stderr; a newline once the last run is in."""
    filled = BAR_WIDTH * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def to_dataframe(rows: Iterable[Row]):
    """A pandas DataFrame, one row per run, flat columns (pandas is optional)."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from e
    return pandas.DataFrame([row.as_dict() for row in rows])


def alternatives_matrix() -> list[Params]:
    """Every hibernation alternative: the 2-level -> 2-level controls first, then
    fix x errno (where it matters) x guest fallback x old host x new host.

    A guest that never falls back cannot boot on a 4.3 host at all (init_control is
    -ENOSYS there), so it never has a 2-level image to resume: those runs are left out.
    """
    default_errno = make_params("hibernation").errno
    possible = [f for f in FALLBACKS if f != "never"]
    controls = grid(old_xen="4.3", xen="4.3", fix="none", errno=default_errno, guest_fallback=possible)
    fixes = [(fix, errno) for fix in FIXES for errno in (ERRNOS if fix in ERRNO_FIXES else (default_errno,))]
    return controls + [{"old_xen": old, "xen": new, "fix": fix, "errno": errno, "guest_fallback": fallback}
                       for (fix, errno), fallback, old, new
                       in itertools.product(fixes, FALLBACKS, OLD_HOSTS, NEW_HOSTS)
                       if not (fallback == "never" and old == "4.3")]