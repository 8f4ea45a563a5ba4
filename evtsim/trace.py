"""A scenario's run: one immutable record per step, and the outcome computed from them.

Printed, a trace is one predictable line per step (in the manner of the OSTEP homework
simulators); saved, it is versioned JSON that is validated on load; shown in a REPL or a
notebook, a trace, a record and an outcome are one line or a small table (``tables``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import tables
from .snapshot import DomainSnapshot


@dataclass(frozen=True)
class Call:
    """One hypercall made during a step: who, which sub-op, what Xen returned."""

    domain: str
    op: str
    rc: int


@dataclass(frozen=True)
class ChannelCount:
    """One channel's events during one step, counted where they were sent and handled."""

    guest: str  # the shown guest ("guest@B")
    host: str  # the host it runs on ("B")
    channel: str  # what the kernel bound it for ("xenstore", "timer0", "resched1", ...)
    sent: int  # events sent on the channel, a guest port bound to take them or not
    unbound: int  # of those, sent with no guest port bound to take them: Xen dropped them
    delivered: int  # events whose handler ran (at most the events sent on the channel so far)


@dataclass(frozen=True)
class Record:
    """One step: what was done, the hypercalls and their return codes, and the state after."""

    index: int
    step: str
    host: str
    calls: tuple[Call, ...]
    notes: tuple[str, ...]  # what Xen and the guest did, each naming the function it models
    sent: int  # events sent so far, bound port or not (cumulative, every host)
    delivered: int  # events the guest's handlers saw so far (cumulative, every host)
    stray_writes: int  # Xen writes into handed-over frames so far (cumulative)
    domains: tuple[DomainSnapshot, ...]
    channels: tuple[ChannelCount, ...] = ()  # this step's events, per channel that had any

    def domain(self, name: str) -> DomainSnapshot:
        """The snapshot of the domain called ``name`` at this step."""
        for d in self.domains:
            if d.name == name:
                return d
        raise KeyError(f"no domain {name!r} at step {self.index} ({self.step})")

    def __repr__(self) -> str:
        return tables.record_repr(self)

    def _repr_html_(self) -> str:
        return tables.record_html(self)


@dataclass(frozen=True)
class HostCount:
    """The events of one host's guests over the whole run."""

    host: str
    sent: int  # bound port or not
    unbound: int  # of those, sent with no guest port bound to take them
    delivered: int

    @property
    def lost(self) -> int:
        return self.sent - self.delivered


@dataclass(frozen=True)
class Outcome:
    """What happened, computed from the records (never declared by the scenario)."""

    verdict: str  # "works", "events lost", "memory corrupted", "guest crash"
    sent: int  # every host; an event sent with no guest port bound to take it counts as lost
    delivered: int
    lost: int
    first_loss_step: int | None
    stray_writes: int
    corrupted_frames: tuple[int, ...]
    first_corruption_step: int | None
    crash: str | None
    crash_step: int | None
    channels_closed: tuple[str, ...] = ()  # closed by a successful EVTCHNOP_reset, never bound again
    hosts: tuple[HostCount, ...] = ()  # per host, in the order the story visits them

    @property
    def summary(self) -> str:
        """One line for a banner or a table cell."""
        parts = [self.verdict, f"{self.delivered}/{self.sent} events delivered" + self._per_host()]
        if self.stray_writes:
            parts.append(f"{self.stray_writes} Xen writes into {len(self.corrupted_frames)} handed-over frames")
        if self.crash:
            parts.append(f"crash: {self.crash}")
        if self.channels_closed:
            parts.append(f"channels closed: {', '.join(self.channels_closed)}")
        return "; ".join(parts)

    def _per_host(self) -> str:
        """`` (host A 12/12, host B 0/12, 4 sent to no bound port)`` when that says more."""
        parts = [f"host {h.host} {h.delivered}/{h.sent}" for h in self.hosts] if len(self.hosts) > 1 else []
        unbound = sum(h.unbound for h in self.hosts)
        if unbound:
            parts.append(f"{unbound} sent to no bound port")
        return f" ({', '.join(parts)})" if parts else ""

    def __repr__(self) -> str:
        return tables.outcome_repr(self)

    def _repr_html_(self) -> str:
        return tables.outcome_html(self)


VERDICTS = ("works", "events lost", "memory corrupted", "guest crash")


def summarise_calls(calls: tuple[Call, ...], quiz: bool = False) -> str:
    """``guest:init_control=-ENOSYS bind_ipi=0 x4``: each (domain, op, rc) once, with a count."""
    from .abi import errno_name

    counts: dict[tuple[str, str, int], int] = {}
    for call in calls:
        key = (call.domain, call.op, call.rc)
        counts[key] = counts.get(key, 0) + 1
    parts = []
    for (domain, op, rc), n in counts.items():
        shown = "?" if quiz else errno_name(rc)
        parts.append(f"{domain}:{op}={shown}" + (f" x{n}" if n > 1 else ""))
    return " ".join(parts) or "-"


@dataclass(frozen=True)
class Trace:
    """A whole run: the scenario's name and parameters, its records and its outcome.

    ``ignored`` names the parameters given that this run did not use, each with the reason
    (a fix that chooses the new host's Xen itself, one that returns no errno). ``not_run``
    names the steps the story never reached: it ends at a guest's crash.
    """

    scenario: str
    params: tuple[tuple[str, str], ...]
    records: tuple[Record, ...]
    outcome: Outcome
    meta: tuple[tuple[str, str], ...] = field(default=())
    ignored: tuple[tuple[str, str], ...] = ()
    not_run: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def __repr__(self) -> str:
        return tables.trace_repr(self)

    def _repr_html_(self) -> str:
        return tables.trace_html(self)

    def lines(self, quiz: bool = False) -> list[str]:
        """One line per step; with ``quiz`` the return codes and outcome are hidden."""
        out = [f"scenario {self.scenario} " + " ".join(f"{k}={v}" for k, v in self.params)]
        for r in self.records:
            out.append(f"[{r.index:2d}] {r.host or '-':<2} {r.step:<40} {summarise_calls(r.calls, quiz)}")
        if quiz:
            out.append("outcome: ? (run again without --quiz to reveal)")
        else:
            out.append(f"outcome: {self.outcome.summary}")
        return out
