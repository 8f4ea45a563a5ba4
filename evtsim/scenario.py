"""Scenarios: named steps run deterministically against one or more hosts, giving a Trace.

A ``World`` is what the steps act on: the hosts (each a ``Xen``), the guests and kernels
on them, and the counters the outcome is computed from. ``run`` executes the steps in
order and freezes the world after each one, so the trace can be stepped through backwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .abi import errno_name
from .guest.kernel import Kernel
from .memory import Frame
from .snapshot import snapshot_domain
from .toolstack import GuestHandle
from .trace import VERDICTS, Call, ChannelCount, HostCount, Outcome, Record, Trace
from .xen import Domain, Xen


Channel = tuple[str, str]  # (shown guest, channel name): what events are counted by


@dataclass(frozen=True)
class Step:
    """One named step; ``action`` changes the world and may add notes."""

    name: str
    action: Callable[[World], None]
    host: str = ""


@dataclass
class Shown:
    """A domain the trace shows, under a stable name, with the kernel running in it."""

    name: str
    host: str
    guest: GuestHandle
    kernel: Kernel | None = None


class World:
    """Mutable state of a scenario run. Steps call its helpers; ``run`` reads it."""

    def __init__(self) -> None:
        self.hosts: dict[str, Xen] = {}
        self.shown: dict[str, Shown] = {}
        self.calls: list[Call] = []
        self.notes: list[str] = []
        self._sent: Counter[Channel] = Counter()  # events sent, whether a guest port took them or not
        self._unbound: Counter[Channel] = Counter()  # ... of which no guest port was bound to take
        self._received: Counter[Channel] = Counter()  # handler runs
        self._host_of: dict[str, str] = {}  # shown name -> host, kept after the guest is gone
        self.handover: dict[int, tuple[Frame, int]] = {}  # id(frame) -> (frame, Xen writes then)
        self.data: dict[str, object] = {}  # what steps pass to later steps (an image, ...)

    def host(self, name: str, version: str) -> Xen:
        """A host running Xen ``version`` (created once, then reused)."""
        if name not in self.hosts:
            self.hosts[name] = Xen(version)
        return self.hosts[name]

    def show(self, name: str, host: str, guest: GuestHandle, kernel: Kernel | None = None) -> Shown:
        """Put a guest in the trace and record every hypercall its domain makes."""
        shown = self.shown[name] = Shown(name, host, guest, kernel)
        self._host_of[name] = host
        self.watch(guest.domain, name)
        self.watch(self.hosts[host].dom0, f"dom0@{host}")
        return shown

    def watch(self, domain: Domain, label: str) -> None:
        """Wrap ``domain.evtchn_op`` so each call lands in this step's record."""
        if "evtchn_op" in vars(domain):
            return
        real = type(domain).evtchn_op

        def evtchn_op(cmd: int, arg: object) -> int:
            rc = real(domain, cmd, arg)
            name = getattr(cmd, "name", str(cmd)).removeprefix("EVTCHNOP_")
            self.calls.append(Call(label, name, rc))
            return rc

        domain.evtchn_op = evtchn_op

    def note(self, text: str) -> None:
        self.notes.append(text)

    def count_sent(self, shown: str, channel: str, bound: bool = True) -> None:
        """One event sent on ``channel``; ``bound``: a port of the guest was there to take it."""
        self._sent[(shown, channel)] += 1
        if not bound:
            self._unbound[(shown, channel)] += 1

    def count_received(self, shown: str, channel: str, count: int) -> None:
        self._received[(shown, channel)] += count

    @property
    def sent(self) -> int:
        """Events sent so far, on every channel of every shown guest."""
        return sum(self._sent.values())

    @property
    def delivered(self) -> int:
        """Sent events whose handler ran (a handler run nobody sent for is not a delivery)."""
        return sum(self._delivered(key) for key in self._sent)

    def _delivered(self, key: Channel) -> int:
        return min(self._received[key], self._sent[key])

    def channel_totals(self) -> dict[Channel, tuple[int, int, int]]:
        """(sent, unbound, delivered) so far for each channel anything was sent on."""
        return {key: (sent, self._unbound[key], self._delivered(key)) for key, sent in self._sent.items()}

    def host_of(self, shown: str) -> str:
        return self._host_of[shown]

    def crashed(self) -> tuple[str, str] | None:
        """(kernel, what it died of) for the first shown guest whose kernel crashed, else None."""
        for s in self.shown.values():
            if s.kernel is not None and s.kernel.crashed:
                return s.kernel.name, s.kernel.crashed
        return None

    def hand_over(self, frames: list[Frame]) -> None:
        """From now on these frames belong to someone else: Xen should not write them."""
        for frame in frames:
            self.handover[id(frame)] = (frame, frame.xen_writes)

    def stray_frames(self) -> list[Frame]:
        """Handed-over frames Xen has written since."""
        return [f for f, then in self.handover.values() if f.xen_writes > then]

    def stray_writes(self) -> int:
        return sum(f.xen_writes - then for f, then in self.handover.values())

    def snapshot(self):
        out = []
        for s in self.shown.values():
            d = s.guest.domain
            labels = {c.port: c.name for c in s.kernel.channels.values()} if s.kernel else {}
            out.append(snapshot_domain(d, name=s.name, host=s.host, labels=labels,
                                       kernel_abi=s.kernel.abi if s.kernel else None,
                                       crashed=s.kernel.crashed if s.kernel else None))
        return tuple(out)


def run(name: str, steps: list[Step], params: dict[str, object],
        ignored: dict[str, str] | None = None) -> Trace:
    """Run ``steps`` in order on a fresh world; freeze it after each step; compute the outcome.

    The story ends at the step where a guest's kernel crashes: a dead guest runs no traffic
    and resumes nothing, so the steps after it are named in ``Trace.not_run``, not played.
    """
    world = World()
    records: list[Record] = []
    totals: dict[Channel, tuple[int, int, int]] = {}
    for index, step in enumerate(steps):
        record, totals = _run_step(world, index, step, totals, [s.name for s in steps[index + 1:]])
        records.append(record)
        if world.crashed():
            break
    outcome = compute_outcome(records, world)
    return Trace(name, tuple((k, str(v)) for k, v in params.items()), tuple(records), outcome,
                 ignored=tuple((ignored or {}).items()), not_run=tuple(s.name for s in steps[len(records):]))


def _run_step(world: World, index: int, step: Step, before: dict[Channel, tuple[int, int, int]],
              later: list[str]) -> tuple[Record, dict[Channel, tuple[int, int, int]]]:
    """Play one step and freeze the world: its calls, notes, this step's events, the snapshot."""
    world.calls, world.notes = [], []
    marks = {id(s.kernel): len(s.kernel.log.lines) for s in world.shown.values() if s.kernel}
    step.action(world)
    for s in world.shown.values():  # what the kernels logged during the step
        if s.kernel:
            world.notes.extend(f"{s.kernel.name}: {line}" for line in s.kernel.log.lines[marks.get(id(s.kernel), 0):])
    crashed = world.crashed()
    if crashed and later:
        world.note(f"the story ends here: the {crashed[0]} crashed ({crashed[1]}); not run: {', '.join(later)}")
    totals = world.channel_totals()
    record = Record(index, step.name, step.host, tuple(world.calls), tuple(world.notes), world.sent,
                    world.delivered, world.stray_writes(), world.snapshot(), _step_counts(world, before, totals))
    return record, totals


def _step_counts(world: World, before: dict[Channel, tuple[int, int, int]],
                 after: dict[Channel, tuple[int, int, int]]) -> tuple[ChannelCount, ...]:
    """What changed on each channel during the step, in the order the channels first saw events."""
    counts = []
    for (shown, channel), now in after.items():
        sent, unbound, delivered = (n - b for n, b in zip(now, before.get((shown, channel), (0, 0, 0))))
        if sent or unbound or delivered:
            counts.append(ChannelCount(shown, world.host_of(shown), channel, sent, unbound, delivered))
    return tuple(counts)


def compute_outcome(records: list[Record], world: World) -> Outcome:
    """The verdict from what the records show: crash > corruption > lost events > works."""
    last = records[-1]
    crash_step = next((r.index for r in records if any(d.crashed for d in r.domains)), None)
    crash = next((d.crashed for d in records[crash_step].domains if d.crashed), None) if crash_step is not None else None
    # The step from which events stay undelivered to the end (a send consumed in a later
    # step is not a loss).
    loss_step = None
    for r in reversed(records):
        if r.sent <= r.delivered:
            break
        loss_step = r.index
    corruption_step = next((r.index for r in records if r.stray_writes), None)
    lost = last.sent - last.delivered
    if crash is not None:
        verdict = "guest crash"
    elif corruption_step is not None:
        verdict = "memory corrupted"
    elif lost:
        verdict = "events lost"
    else:
        verdict = "works"
    assert verdict in VERDICTS
    return Outcome(verdict, last.sent, last.delivered, lost, loss_step, last.stray_writes,
                   tuple(sorted(f.gfn for f in world.stray_frames())), corruption_step, crash, crash_step,
                   channels_closed(records), host_counts(records))


def host_counts(records: list[Record]) -> tuple[HostCount, ...]:
    """Each host's events over the run, summed from the records' per-channel counts."""
    totals: dict[str, list[int]] = {}
    for r in records:
        for c in r.channels:
            total = totals.setdefault(c.host, [0, 0, 0])
            total[0] += c.sent
            total[1] += c.unbound
            total[2] += c.delivered
    return tuple(HostCount(host, *total) for host, total in totals.items())


BOUND_STATES = ("interdomain", "virq", "ipi", "pirq")


def channels_closed(records: list[Record]) -> tuple[str, ...]:
    """The channels a successful EVTCHNOP_reset closed that no kernel bound again by the end.

    Read from the records: a guest's labelled, bound ports just before the step whose calls
    include its ``reset`` returning 0, against those after that step and at the last record.
    """
    resets = [(before, after, call.domain) for before, after in zip(records, records[1:])
              for call in after.calls if call.op == "reset" and call.rc == 0]
    closed: list[str] = []
    for before, after, guest in resets:
        still = _bound_labels(after, guest)
        closed += [label for label in _bound_labels(before, guest) if label not in still and label not in closed]
    at_end = _bound_labels(records[-1], *{guest for _, _, guest in resets})
    return tuple(label for label in closed if label not in at_end)


def _bound_labels(record: Record, *guests: str) -> list[str]:
    """The labels of the bound ports of ``guests`` at ``record``, in port order."""
    return [p.label for d in record.domains if d.name in guests for p in d.ports
            if p.label and p.state in BOUND_STATES]


def describe_rc(rc: int) -> str:
    """``0`` or ``-ENOSYS`` style, for notes."""
    return errno_name(rc)
