"""Outcome matrices: one scenario run per parameter set, on any ``concurrent.futures`` executor.

``sweep`` turns a list of parameter dicts into one ``Row`` per run (the parameters and the
outcome's figures), in input order. The work is ``run_chunk`` (``run_one`` over a few parameter
sets), a module-level function of plain values, so a ``ProcessPoolExecutor`` (or Dask's or Ray's
executors) can ship it to workers.
``progress=True`` draws a ``tqdm.auto`` bar (a widget in a notebook, text on a terminal's
stderr); tqdm is imported only then, so the core still needs nothing beyond the standard library.
``alternatives_matrix`` is the review's question as data: every fix of the hibernation
scenario against every guest fallback policy and host pair (fact sheet 3.2, 4.6, 8.10).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass

from .scenarios import ERRNO_FIXES, ERRNOS, FIXES, SCENARIOS, make_params

Params = dict[str, object]
Progress = Callable[[int, int], None]

FALLBACKS = ("any", "enosys-only", "never")
NEW_HOSTS = ("4.4", "4.7", "master")
OLD_HOSTS = ("4.3", "4.4")  # 4.3: the 2020 bug (2-level image); 4.4: FIFO image -> FIFO host
CHUNKS_PER_WORKER = 4  # tasks per worker of an executor (see sweep)


@dataclass(frozen=True)
class Row:
    """One run of a sweep: which scenario, with what, and what came of it."""

    scenario: str
    params: tuple[tuple[str, object], ...]
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
        """Flat: scenario, the parameters, then the outcome fields."""
        out: dict[str, object] = {"scenario": self.scenario, **dict(self.params)}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)[2:]})
        return out


def grid(**axes: object) -> list[Params]:
    """The cartesian product of ``axes``, last axis fastest; a str or scalar is one value."""
    values = [_as_values(v) for v in axes.values()]
    return [dict(zip(axes, combo)) for combo in itertools.product(*values)]


def _as_values(value: object) -> Sequence[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def run_one(scenario: str, params: Mapping[str, object]) -> Row:
    """Run ``scenario`` once and reduce its trace to a Row (the executors' work function)."""
    trace = SCENARIOS[scenario].run(make_params(scenario, **params))
    o = trace.outcome
    return Row(scenario, tuple(params.items()), o.verdict, o.sent, o.delivered, o.lost,
               o.stray_writes, len(o.corrupted_frames), o.crash, o.first_loss_step,
               o.first_corruption_step, tuple(o.channels_closed))


def run_chunk(scenario: str, runs: Sequence[Mapping[str, object]]) -> list[Row]:
    """``run_one`` for each parameter set of ``runs``, in order: what one worker gets at a time."""
    return [run_one(scenario, params) for params in runs]


def sweep(scenario: str, runs: Iterable[Mapping[str, object]], *,
          executor: Executor | None = None, progress: bool | Progress | None = None,
          chunk_size: int | None = None) -> list[Row]:
    """One Row per parameter set, in input order; bad parameters raise ValueError up front.

    ``progress`` is called as ``progress(done, total)`` as runs come in; ``True`` draws a
    ``tqdm.auto`` bar instead (ImportError, saying how to install it, without tqdm).
    On an ``executor`` the runs travel in chunks of ``chunk_size`` (by default about
    ``CHUNKS_PER_WORKER`` chunks per worker): one run takes a few milliseconds, about what
    shipping it to a process and its row back costs, so one task per run made a pool slower
    than one core.
    """
    runs = [dict(p) for p in runs]
    for p in runs:
        make_params(scenario, **p)  # fail before any work is shipped to an executor
    if executor is not None:
        size = _chunk_size(len(runs), _workers(executor)) if chunk_size is None else chunk_size
        if size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {size}")
    with _reporting(progress, len(runs)) as report:
        if executor is None:
            rows = []
            for p in runs:
                rows.append(run_one(scenario, p))
                report(len(rows))
            return rows
        return _gather(executor, scenario, runs, size, report)


def _workers(executor: Executor) -> int:
    """How many runs ``executor`` works on at once: its ``_max_workers`` (the standard pools keep
    it there), else the CPU count."""
    workers = getattr(executor, "_max_workers", None)
    return workers if isinstance(workers, int) and workers > 0 else os.cpu_count() or 1


def _chunk_size(runs: int, workers: int) -> int:
    """Runs per task: ``CHUNKS_PER_WORKER`` tasks per worker, so one slow chunk cannot leave the
    others idle for long."""
    return max(1, -(-runs // (workers * CHUNKS_PER_WORKER)))


def _gather(executor: Executor, scenario: str, runs: list[Params], size: int,
            report: Callable[[int], None]) -> list[Row]:
    """Submit the runs in chunks, collect them as they finish, return them in submission order."""
    futures = {executor.submit(run_chunk, scenario, runs[start:start + size]): start
               for start in range(0, len(runs), size)}
    rows: list[Row | None] = [None] * len(runs)
    done = 0
    for future in as_completed(futures):
        chunk = future.result()
        start = futures[future]
        rows[start:start + len(chunk)] = chunk
        done += len(chunk)
        report(done)
    return rows  # type: ignore[return-value]  # every slot is filled


@contextmanager
def _reporting(progress: bool | Progress | None, total: int) -> Iterator[Callable[[int], None]]:
    """``done -> None`` for the sweep to call: nothing, the caller's callable, or a tqdm bar
    (closed however the sweep ends)."""
    if callable(progress):
        yield lambda done: progress(done, total)
    elif not progress:
        yield lambda done: None
    else:
        with progress_bar(total) as bar:
            yield lambda done: bar.update(done - bar.n)


def progress_bar(total: int):
    """A ``tqdm.auto`` bar counting runs: a widget in a notebook, text on stderr in a terminal."""
    try:
        from tqdm.auto import tqdm
    except ImportError as e:
        raise ImportError("progress=True draws a tqdm bar: pip install tqdm (it comes with evtsim[notebooks])") from e
    return tqdm(total=total, unit="run", desc="sweep")


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