"""Immutable pictures of the machine, taken after each scenario step.

The machine is mutable because shared memory is the lesson; what a trace keeps is frozen,
so stepping backwards through a scenario is indexing, not undoing. A snapshot holds only
ints, strings, booleans, None and tuples, so it turns into JSON and back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tables
from .abi import ECS, EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MAX_QUEUES
from .fifo import L
from .memory import ControlBlockView
from .xen import Domain


@dataclass(frozen=True)
class PortSnapshot:
    """One bound port: state, notify vCPU, what it is for, and its ABI bits."""

    port: int
    state: str  # "interdomain", "virq", "ipi", "unbound", "pirq"
    vcpu: int
    label: str  # what the guest kernel bound it for ("xenstore", "timer0", ...), or ""
    remote: str  # "dom0:5" for interdomain, "dom0" for unbound, "" otherwise
    pending: bool
    masked: bool
    priority: int
    word: int | None  # the FIFO event word, None in 2-level or without a page


@dataclass(frozen=True)
class QueueSnapshot:
    """One FIFO queue of one vCPU as the guest's memory shows it (TAIL is Xen's)."""

    vcpu: int
    priority: int
    head: int
    tail: int
    ready: bool
    ports: tuple[int, ...]  # walked from HEAD through LINK while words are LINKED
    note: str  # e.g. "HEAD is in frame 0x80, which now holds: hibernation image"


@dataclass(frozen=True)
class VcpuSnapshot:
    """One vCPU: its vcpu_info bytes, upcalls raised (``upcalls``) and taken, and run state."""

    upcall_pending: int
    upcall_mask: int
    pending_sel: int
    upcalls: int  # raised by Xen (Vcpu.upcalls)
    upcalls_delivered: int = 0  # taken by the running vCPU (Vcpu.upcalls_delivered)
    run_state: str = "running"  # RunState: running, blocked or polling


@dataclass(frozen=True)
class FrameSnapshot:
    """A frame the guest or Xen gave a role: who uses it for what, and Xen's writes."""

    gfn: int
    content: str
    xen_mapping: str | None
    xen_writes: int


@dataclass(frozen=True)
class DomainSnapshot:
    """Everything the views show about one domain at one step."""

    name: str
    host: str
    xen: str
    domid: int
    abi: str  # what Xen uses now
    kernel_abi: str | None  # what the guest kernel believes
    crashed: str | None
    ports: tuple[PortSnapshot, ...]
    bits_per_word: int
    evtchn_pending: tuple[int, ...]
    evtchn_mask: tuple[int, ...]
    vcpus: tuple[VcpuSnapshot, ...]
    queues: tuple[QueueSnapshot, ...]
    frames: tuple[FrameSnapshot, ...]

    @property
    def linked_ports(self) -> int:
        """How many event words are LINKED (queued) among the bound ports."""
        return sum(1 for p in self.ports if p.word is not None and p.word & L)

    def __repr__(self) -> str:  # one line: the bitmaps alone would fill a screen
        return tables.domain_repr(self)


def _state_name(state: ECS) -> str:
    return ECS(state).name.removeprefix("ECS_").lower()


def snapshot_domain(d: Domain, *, name: str, host: str, labels: dict[int, str],
                    kernel_abi: str | None = None, crashed: str | None = None) -> DomainSnapshot:
    """Freeze ``d``: its bound ports, bitmaps, vCPUs, FIFO queues and role-bearing frames."""
    shinfo = d.shared_info
    ops = d.port_ops
    ports = tuple(
        PortSnapshot(chn.port, _state_name(chn.state), chn.notify_vcpu_id, labels.get(chn.port, ""),
                     _remote(chn), ops.is_pending(chn.port), ops.is_masked(chn.port), chn.priority,
                     d.fifo.word(chn.port) if d.fifo is not None else None)
        for chn in d.ports.bound()
    )
    vcpus = tuple(VcpuSnapshot(v.vcpu_info.bytes[0], v.vcpu_info.bytes[1], v.vcpu_info.sel[0], v.upcalls,
                               v.upcalls_delivered, str(v.run_state)) for v in d.vcpus)
    frames = tuple(FrameSnapshot(f.gfn, f.content, f.xen_mapping.value if f.xen_mapping else None, f.xen_writes)
                   for gfn, f in sorted(d.memory.frames.items()) if f.content != "ram" or f.xen_writes)
    return DomainSnapshot(name, host, d.xen.version.name, d.domain_id, d.abi, kernel_abi, crashed, ports,
                          shinfo.layout.bits_per_word, tuple(shinfo.evtchn_pending), tuple(shinfo.evtchn_mask),
                          vcpus, _queues(d), frames)


def _remote(chn) -> str:
    if chn.state == ECS.ECS_INTERDOMAIN:
        return f"dom{chn.remote_dom.domain_id}:{chn.remote_port}"
    if chn.state == ECS.ECS_UNBOUND:
        return f"dom{chn.remote_domid}"
    return ""


def _queues(d: Domain) -> tuple[QueueSnapshot, ...]:
    """Every non-empty queue (or one with READY set) of every vCPU with a control block."""
    if d.fifo is None:
        return ()
    found = []
    for vcpu, fv in enumerate(d.fifo.vcpus):
        cb = fv.control_block
        if cb is None:
            continue
        ready = cb.words[ControlBlockView.READY]
        for q in range(EVTCHN_FIFO_MAX_QUEUES):
            head, tail = cb.head(q), fv.queues[q].tail
            if head or tail or ready >> q & 1:
                found.append(QueueSnapshot(vcpu, q, head, tail, bool(ready >> q & 1), _walk(d, head),
                                           _where(cb.frame)))
    return tuple(found)


def _walk(d: Domain, head: int) -> tuple[int, ...]:
    """Ports from HEAD along LINK, stopping at an unlinked word, a missing page or a cycle."""
    ports, seen, port = [], set(), head
    while port and port not in seen:
        word = d.fifo.word(port)
        if word is None or not word & L:
            break
        ports.append(port)
        seen.add(port)
        port = word & EVTCHN_FIFO_LINK_MASK
    return tuple(ports)


def _where(frame) -> str:
    """Empty while the control block's frame still holds one; else what it holds now."""
    if "control block" in frame.content:
        return ""
    return f"control block frame {frame.gfn:#x} now holds: {frame.content}"
