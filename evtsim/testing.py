"""Hand-wired guests for tests and benchmarks: what a guest kernel does, in a few lines each.

``evtsim.guest.Kernel`` chooses its ABI, allocates frames and routes ports the way Linux does.
A test that states one behaviour of Xen, or a benchmark that times one loop, wants less: put a
domain in FIFO mode at fixed frames, then read its events with a consumer over those frames.
These helpers are that, in one place, so the test suite and ``benchmarks/`` wire domains alike.
A set-up step that Xen refuses raises ``SetupError``: it is the scaffolding that is wrong.
"""

from __future__ import annotations

from .abi import ARG_TYPES, PAGE_SIZE, EvtchnOp
from .fifo import M
from .guest import Consumer, FifoConsumer, TwoLevelConsumer
from .xen import SHARED_INFO_GFN, Domain

CONTROL_GFN = 0x100  # + vCPU: where the control blocks go
ARRAY_GFN = 0x200  # + page index: where the event-array pages go


class SetupError(RuntimeError):
    """Xen refused a hypercall that setting up a test or benchmark needed."""


def op(d: Domain, cmd: EvtchnOp, **fields: int) -> tuple[int, object]:
    """Issue ``cmd`` from ``d`` with an argument struct built from ``fields``: (rc, arg)."""
    arg = ARG_TYPES[cmd](**fields)
    return d.evtchn_op(cmd, arg), arg


def setup_op(d: Domain, cmd: EvtchnOp, **fields: int) -> object:
    """``op`` for a set-up step that must succeed: its argument struct (OUT fields filled in)."""
    rc, arg = op(d, cmd, **fields)
    if rc:
        raise SetupError(f"{cmd.name} from dom{d.domain_id} returned {rc}")
    return arg


def to_fifo(d: Domain, pages: int = 1, masked: bool = False) -> None:
    """init_control on every vCPU, then ``pages`` event-array pages (all MASKED if ``masked``,
    as Linux's init_array_page leaves them; zeroed otherwise)."""
    for v in d.vcpus:
        setup_op(d, EvtchnOp.EVTCHNOP_init_control, control_gfn=CONTROL_GFN + v.vcpu_id, offset=0, vcpu=v.vcpu_id)
    for i in range(pages):
        if masked:
            d.memory.frame(ARRAY_GFN + i).data[:] = M.to_bytes(4, "little") * (PAGE_SIZE // 4)
        setup_op(d, EvtchnOp.EVTCHNOP_expand_array, array_gfn=ARRAY_GFN + i)


def two_level_consumer(d: Domain) -> TwoLevelConsumer:
    """The guest's 2-level consumer with every bound port routed to its notify vCPU."""
    c = TwoLevelConsumer(d.memory, SHARED_INFO_GFN, d.shared_info.layout, len(d.vcpus))
    for chn in d.ports.bound():
        c.bind_to_cpu(chn.port, chn.notify_vcpu_id)
    return c


def fifo_consumer(d: Domain) -> FifoConsumer:
    """The guest's FIFO consumer over the control blocks and pages ``to_fifo`` registered."""
    c = FifoConsumer(d.memory, SHARED_INFO_GFN, d.shared_info.layout, len(d.vcpus))
    for v in d.vcpus:
        c.attach_control_block(v.vcpu_id, d.memory.frame(CONTROL_GFN + v.vcpu_id), 0)
    for i in range(len(d.fifo.pages)):
        c.add_array_page(d.memory.frame(ARRAY_GFN + i))
    return c


def consumer_for(d: Domain) -> Consumer:
    """The consumer for the ABI Xen runs ``d`` in."""
    return two_level_consumer(d) if d.fifo is None else fifo_consumer(d)


__all__ = ["ARRAY_GFN", "CONTROL_GFN", "SetupError", "consumer_for", "fifo_consumer", "op", "setup_op", "to_fifo",
           "two_level_consumer"]
