"""Scenarios: named steps run deterministically against one or more hosts, giving a Trace.

A ``World`` is what the steps act on: the hosts (each a ``Xen``), the guests and kernels
on them, and the counters the outcome is computed from. ``run`` executes the steps in
order and freezes the world after each one, so the trace can be stepped through backwards.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .abi import errno_name
from .guest.kernel import Kernel
from .memory import Frame
from .snapshot import snapshot_domain
from .toolstack import GuestHandle
from .trace import VERDICTS, Call, Outcome, Record, Trace
from .xen import Domain, Xen


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

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.hosts: dict[str, Xen] = {}
        self.shown: dict[str, Shown] = {}
        self.calls: list[Call] = []
        self.notes: list[str] = []
        self._sent: Counter[tuple[str, str]] = Counter()  # (shown name, channel) -> events sent
        self._received: Counter[tuple[str, str]] = Counter()  # ... -> handler runs
        self.handover: dict[int, tuple[Frame, int]] = {}  # id(frame) -> (frame, Xen writes then)
        self.channels_closed: list[str] = []
        self.data: dict[str, object] = {}  # what steps pass to later steps (an image, ...)

    def host(self, name: str, version: str) -> Xen:
        """A host running Xen ``version`` (created once, then reused)."""
        if name not in self.hosts:
            self.hosts[name] = Xen(version)
        return self.hosts[name]

    def show(self, name: str, host: str, guest: GuestHandle, kernel: Kernel | None = None) -> Shown:
        """Put a guest in the trace and record every hypercall its domain makes."""
        shown = self.shown[name] = Shown(name, host, guest, kernel)
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

    def count_sent(self, shown: str, channel: str) -> None:
        self._sent[(shown, channel)] += 1

    def count_received(self, shown: str, channel: str, count: int) -> None:
        self._received[(shown, channel)] += count

    @property
    def sent(self) -> int:
        """Events sent so far, on every channel of every shown guest."""
        return sum(self._sent.values())

    @property
    def delivered(self) -> int:
        """Sent events whose handler ran (a handler run nobody sent for is not a delivery)."""
        return sum(min(self._received[key], count) for key, count in self._sent.items())

    def lost_channels(self) -> list[str]:
        """Channels with fewer handler runs than events sent."""
        return sorted({f"{channel}" for (name, channel), count in self._sent.items()
                       if self._received[(name, channel)] < count})

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


def run(name: str, steps: list[Step], params: dict[str, object], seed: int = 0) -> Trace:
    """Run ``steps`` in order on a fresh world; freeze it after each step; compute the outcome."""
    world = World(seed)
    records = []
    for index, step in enumerate(steps):
        world.calls, world.notes = [], []
        marks = {id(s.kernel): len(s.kernel.log.lines) for s in world.shown.values() if s.kernel}
        step.action(world)
        for s in world.shown.values():  # what the kernels logged during the step
            if s.kernel:
                world.notes.extend(f"{s.kernel.name}: {line}" for line in s.kernel.log.lines[marks.get(id(s.kernel), 0):])
        records.append(Record(index, step.name, step.host, tuple(world.calls), tuple(world.notes),
                              world.sent, world.delivered, world.stray_writes(), world.snapshot()))
    outcome = compute_outcome(records, world)
    return Trace(name, tuple((k, str(v)) for k, v in params.items()), tuple(records), outcome)


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
                   tuple(world.channels_closed))


def describe_rc(rc: int) -> str:
    """``0`` or ``-ENOSYS`` style, for notes."""
    return errno_name(rc)
