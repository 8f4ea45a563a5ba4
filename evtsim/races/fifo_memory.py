"""The FIFO configuration's state: guest memory, Xen's private queue state, ghosts, invariants.

Guest memory (xen/include/public/event_channel.h): one event word per port (P, M, L, B and a
17-bit LINK), and per vCPU a control block's ``ready`` and ``head[16]`` plus vcpu_info's
``evtchn_upcall_pending``. Xen's private state (xen/common/event_fifo.c): each queue's
``tail`` and lock (``struct evtchn_fifo_queue``), and per port ``fifo_lastq``, ``priority``
and ``notify_vcpu_id`` (``struct evtchn``). Only the queues a configuration can use get
slots. Ghosts: ``owed[p]`` (an event on p was made pending and no dispatch followed it yet),
``inq[p]`` (the queue Xen last linked p onto) and the violation bits.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..abi import EVTCHN_FIFO_LINK_MASK
from ..fifo import B, L, M, P
from ..snapshot import DomainSnapshot, FrameSnapshot, PortSnapshot, QueueSnapshot, VcpuSnapshot
from ..testing import ARRAY_GFN, CONTROL_GFN
from .invariants import Violation, lost_ports, lost_text
from .machine import Layout, State

LINK = EVTCHN_FIFO_LINK_MASK
FLAGS = ((P, "P"), (M, "M"), (L, "L"), (B, "B"))
WORD_FIELDS = {"P": P, "M": M, "L": L, "B": B, "LINK": LINK}  # event_word_t, by what a step touches


def word_text(word: int) -> str:
    """``P.L.`` style flags and the LINK field: ``PL-- link 2``."""
    flags = "".join(name if word & bit else "-" for bit, name in FLAGS)
    return f"{flags} link {word & LINK}" if word & LINK else flags


class FifoMemory:
    """Slot numbers of one FIFO configuration, and the queue ids (a queue is a (vCPU, priority))."""

    def __init__(self, layout: Layout, ports: Sequence, vcpus: int, priorities: Sequence[int],
                 moves: Sequence[tuple[int, str, int]] = ()) -> None:
        self.ports = tuple(p.port for p in ports)
        self.vcpus = vcpus
        self.queues = tuple((v, prio) for v in range(vcpus) for prio in sorted(set(priorities)))
        self.qid = {q: i for i, q in enumerate(self.queues)}
        self.word = {p.port: layout.add(f"word[{p.port}]", p.word, WORD_FIELDS) for p in ports}
        self.ready = [layout.add(f"ready[vcpu{v}]") for v in range(vcpus)]
        self.head = [layout.add(f"head[vcpu{v} q{prio}]") for v, prio in self.queues]
        self.upcall = [layout.add(f"upcall_pending[vcpu{v}]") for v in range(vcpus)]
        self.tail = [layout.add(f"tail[vcpu{v} q{prio}]") for v, prio in self.queues]
        self.lock = [layout.add(f"lock[vcpu{v} q{prio}]") for v, prio in self.queues]
        self.lastq = {p.port: layout.add(f"lastq[{p.port}]", self.qid[(p.vcpu, p.priority)]) for p in ports}
        self.priority = {p.port: layout.add(f"priority[{p.port}]", p.priority) for p in ports}
        self.notify = {p.port: layout.add(f"notify_vcpu_id[{p.port}]", p.vcpu) for p in ports}
        self.owed = {p.port: layout.add(f"owed[{p.port}]") for p in ports}
        self.inq = {p.port: layout.add(f"inq[{p.port}]", self.qid[(p.vcpu, p.priority)]) for p in ports}
        self.viol = layout.add("violations")
        self.labels = {p.port: p.label for p in ports}
        self.reach = {p.port: self._reach(p, moves) for p in ports}
        # the frames the guest registered, at evtsim.testing's gfns: one event-array page, a
        # control block per vCPU (the explorer does not count Xen's writes into them)
        self.frames = (*(FrameSnapshot(CONTROL_GFN + v, f"linux: FIFO control block cpu{v}", "control_block", 0)
                         for v in range(vcpus)),
                       FrameSnapshot(ARRAY_GFN, "linux: FIFO event channels page 0", "event_array", 0))

    def _reach(self, spec, moves: Sequence[tuple[int, str, int]]) -> frozenset[int]:
        """The queue ids port ``spec`` can be linked on: its vCPUs x its priorities, as the
        configuration's set_priority (``"priority"``) and bind_vcpu (``"vcpu"``) calls allow."""
        vcpus = {spec.vcpu, *(value for port, what, value in moves if port == spec.port and what == "vcpu")}
        prios = {spec.priority, *(value for port, what, value in moves if port == spec.port and what == "priority")}
        return frozenset(self.qid[(v, prio)] for v in vcpus for prio in prios)

    def near(self, port: int) -> list[int]:
        """Ports that can share a queue with ``port`` (itself included): whose word can be its tail."""
        return [p for p in self.ports if self.reach[p] & self.reach[port]]

    def vcpus_of(self, port: int) -> list[int]:
        return sorted({self.queues[q][0] for q in self.reach[port]})

    def ports_on(self, vcpu: int) -> list[int]:
        """Ports that can be linked on ``vcpu``'s queues."""
        return [p for p in self.ports if any(self.queues[q][0] == vcpu for q in self.reach[p])]

    def queue_of(self, vcpu: int, priority: int) -> int:
        """The queue id of (vcpu, priority); a configuration lists every queue it can reach."""
        return self.qid[(vcpu, priority)]

    def queue_slots(self, vcpu: int | None = None) -> list[int]:
        """Queue ids (all, or one vCPU's)."""
        return [i for i, (v, _) in enumerate(self.queues) if vcpu is None or v == vcpu]

    def is_masked(self, s: State, port: int) -> bool:
        return bool(s[self.word[port]] & M)

    # --- invariants ------------------------------------------------------------------------

    def check_state(self, s: State) -> int:
        """Structural invariant at any state: LINK never leads round a cycle of LINKED words."""
        links = {}
        for port, slot in self.word.items():
            word = s[slot]
            if word & L and word & LINK:
                links[port] = word & LINK
        for start in links:  # at most as many steps as there are links, unless it goes round
            port = start
            for _ in range(len(links)):
                port = links.get(port, 0)
                if port == start:
                    return Violation.QUEUE_CYCLE.bit
                if not port:
                    break
        return 0

    def check_rest(self, s: State, waiting: bool) -> int:
        """Quiescent invariants: nothing owed and unmasked, no READY or LINKED left, nobody spinning."""
        bits = Violation.SPINS_FOREVER.bit if waiting else 0
        if lost_ports(self, s):
            bits |= Violation.EVENT_LOST.bit
        if any(s[slot] for slot in self.ready):
            bits |= Violation.STRANDED_READY.bit
        if any(s[self.word[p]] & L for p in self.ports):
            bits |= Violation.STRANDED_LINK.bit
        return bits

    def describe(self, s: State, bits: int) -> list[str]:
        """The facts behind ``bits`` at ``s``: which ports, which queues."""
        out = []
        if bits & Violation.EVENT_LOST.bit:
            out.append(lost_text(lost_ports(self, s)))
        if bits & Violation.STRANDED_LINK.bit:
            left = [p for p in self.ports if s[self.word[p]] & L]
            out.append("still LINKED at rest: " + ", ".join(f"port {p} ({word_text(s[self.word[p]])})" for p in left))
        if bits & Violation.STRANDED_READY.bit:
            out.append("READY bits left set: " + ", ".join(f"vcpu{v} {s[r]:#x}" for v, r in enumerate(self.ready) if s[r]))
        return out

    # --- pictures --------------------------------------------------------------------------

    def snapshot(self, s: State, upcalls: Sequence[int] = ()) -> DomainSnapshot:
        """The guest as evtsim's views draw it: ports with their words, queues, vCPUs."""
        ports = tuple(PortSnapshot(p, "interdomain", s[self.notify[p]], self.labels[p], "dom0",
                                   bool(s[self.word[p]] & P), bool(s[self.word[p]] & M), s[self.priority[p]],
                                   s[self.word[p]]) for p in self.ports)
        vcpus = tuple(VcpuSnapshot(s[self.upcall[v]], 0, 0, upcalls[v] if upcalls else 0) for v in range(self.vcpus))
        return DomainSnapshot("guest", "", "master", 1, "fifo", "fifo", None, ports, 64, (0,) * 64, (0,) * 64,
                              vcpus, self._queues(s), self.frames)

    def _queues(self, s: State) -> tuple[QueueSnapshot, ...]:
        out = []
        for i, (v, prio) in enumerate(self.queues):
            head, tail, ready = s[self.head[i]], s[self.tail[i]], bool(s[self.ready[v]] >> prio & 1)
            if head or tail or ready:
                out.append(QueueSnapshot(v, prio, head, tail, ready, self._walk(s, head), ""))
        return tuple(out)

    def _walk(self, s: State, head: int) -> tuple[int, ...]:
        ports, port = [], head
        while port in self.word and s[self.word[port]] & L and port not in ports:
            ports.append(port)
            port = s[self.word[port]] & LINK
        return tuple(ports)
