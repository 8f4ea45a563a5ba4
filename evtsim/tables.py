"""Short reprs and compact HTML tables for a run: ``Trace``, ``Record`` and ``Outcome``.

A trace holds a snapshot of every domain at every step, so the dataclass repr of a displayed
``run_scenario(...)`` ran to some 89,000 characters. These stand in for it: one line each in a
REPL, and in a notebook (which calls ``_repr_html_``) a table of a few rows with the outcome
under it. Only strings are made here: nothing is printed or displayed, so this stays core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only: trace.py imports this module
    from .snapshot import DomainSnapshot
    from .trace import Outcome, Record, Trace

#: A longer trace shows its first and last steps around one "…" row.
MAX_STEP_ROWS = 16
MAX_NOTES = 12
TABLE = '<table style="font-size:90%">'
CELL = "text-align:left;vertical-align:top"  # Jupyter right-aligns table cells by default


def params_text(params: Iterable[tuple[str, object]]) -> str:
    """``old_xen=4.3 xen=4.4 fix=none``: a run's parameters as the trace's first line writes them."""
    return " ".join(f"{k}={v}" for k, v in params)


def trace_repr(trace: Trace) -> str:
    """``<Trace hibernation (old_xen=4.3 ...): 9 steps; memory corrupted; 12/24 events delivered; ...>``."""
    return f"<Trace {trace.scenario} ({params_text(trace.params)}): {len(trace)} steps; {trace.outcome.summary}>"


def record_repr(record: Record) -> str:
    """``<Record [5] B boot kernel starts: 14 hypercalls, 2 notes, domains guest@A, guest@B>``."""
    domains = ", ".join(d.name for d in record.domains) or "none"
    return (f"<Record [{record.index}] {record.host or '-'} {record.step}: {len(record.calls)} hypercalls, "
            f"{len(record.notes)} notes, domains {domains}>")


def outcome_repr(outcome: Outcome) -> str:
    """``<Outcome memory corrupted; 12/24 events delivered; 25 Xen writes into 3 handed-over frames>``."""
    return f"<Outcome {outcome.summary}>"


def domain_repr(snapshot: DomainSnapshot) -> str:
    """``<DomainSnapshot guest@B on B (Xen 4.4): fifo, kernel 2-level, 9 ports, 2 vCPUs>``."""
    kernel = f", kernel {snapshot.kernel_abi}" if snapshot.kernel_abi not in (None, snapshot.abi) else ""
    crashed = f", crashed: {snapshot.crashed}" if snapshot.crashed else ""
    return (f"<DomainSnapshot {snapshot.name} on {snapshot.host} (Xen {snapshot.xen}): {snapshot.abi}{kernel}, "
            f"{len(snapshot.ports)} ports, {len(snapshot.vcpus)} vCPUs{crashed}>")


# -- HTML ----------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]], header: Sequence[str] = ()) -> str:
    """A small HTML table of already escaped cells, left aligned, the header in bold."""
    head = "".join(f'<th style="{CELL}">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in row) + "</tr>\n" for row in rows)
    return TABLE + (f"<thead><tr>{head}</tr></thead>\n" if head else "\n") + f"<tbody>\n{body}</tbody></table>"


def trace_html(trace: Trace) -> str:
    """The scenario and its parameters, one row per step (its hypercalls), the outcome under it."""
    from .trace import summarise_calls

    rows = [(str(r.index), escape(r.host or "-"), escape(r.step), f"<code>{escape(summarise_calls(r.calls))}</code>")
            for r in trace.records]
    if len(rows) > MAX_STEP_ROWS:
        keep = MAX_STEP_ROWS // 2
        rows = [*rows[:keep], ("…", "", f"{len(rows) - 2 * keep + 1} more steps: trace[i] shows one", ""),
                *rows[-keep + 1:]]
    title = f"<b>{escape(trace.scenario)}</b> <code>{escape(params_text(trace.params))}</code>"
    return (f"<div>{title}{table(rows, ('#', 'host', 'step', 'hypercalls = return code'))}"
            f"<b>outcome:</b> {escape(trace.outcome.summary)}</div>")


def record_html(record: Record) -> str:
    """One step: its hypercalls, what Xen and the kernels did, the running counts, the domains."""
    from .trace import summarise_calls

    notes = list(record.notes[:MAX_NOTES]) + ([f"… {len(record.notes) - MAX_NOTES} more in .notes"]
                                               if len(record.notes) > MAX_NOTES else [])
    rows = [("hypercalls", f"<code>{escape(summarise_calls(record.calls))}</code>"),
            ("what happened", "<br>".join(map(escape, notes)) or "-"),
            ("so far", f"{record.delivered}/{record.sent} events delivered, "
                       f"{record.stray_writes} Xen writes into handed-over frames"),
            ("domains", escape(", ".join(f"{d.name} ({_abi_text(d)})" for d in record.domains)) or "none")]
    title = f"<b>[{record.index}] {escape(record.host or '-')} {escape(record.step)}</b>"
    return f"<div>{title}{table([(f'<i>{k}</i>', v) for k, v in rows])}</div>"


def outcome_html(outcome: Outcome) -> str:
    """The verdict, then only the figures that say something (no empty crash or closed channels)."""
    rows = [("verdict", f"<b>{escape(outcome.verdict)}</b>"),
            ("delivered", f"{outcome.delivered}/{outcome.sent} events" + _at(outcome.first_loss_step, "first lost"))]
    if len(outcome.hosts) > 1 or any(h.unbound for h in outcome.hosts):
        rows.append(("per host", escape(", ".join(_host_text(h) for h in outcome.hosts))))
    if outcome.stray_writes:
        frames = ", ".join(hex(gfn) for gfn in outcome.corrupted_frames)
        rows.append(("Xen writes into handed-over frames",
                     f"{outcome.stray_writes} into {frames}" + _at(outcome.first_corruption_step, "first")))
    if outcome.crash:
        rows.append(("crash", escape(outcome.crash) + _at(outcome.crash_step, "")))
    if outcome.channels_closed:
        rows.append(("channels closed", escape(", ".join(outcome.channels_closed))))
    return table([(f"<i>{escape(k)}</i>", v) for k, v in rows])


def _host_text(host) -> str:
    """``B 0/12 (4 sent to no bound port)``: one host's events."""
    unbound = f" ({host.unbound} sent to no bound port)" if host.unbound else ""
    return f"{host.host} {host.delivered}/{host.sent}{unbound}"


def _at(step: int | None, what: str) -> str:
    """`` (first lost at step 8)``, or nothing when there is no such step."""
    if step is None:
        return ""
    return f" ({what} at step {step})" if what else f" (at step {step})"


def _abi_text(snapshot: DomainSnapshot) -> str:
    """``fifo``, or ``fifo, kernel 2-level`` where Xen and the kernel disagree."""
    if snapshot.kernel_abi in (None, snapshot.abi):
        return snapshot.abi
    return f"{snapshot.abi}, kernel {snapshot.kernel_abi}"
