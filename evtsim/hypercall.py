"""HYPERVISOR_event_channel_op: the dispatcher and the table of sub-ops a hypervisor has.

Models do_event_channel_op (xen/common/event_channel.c): it takes the sub-op number and the
argument struct, returns 0 or Xen's negative errno, and an unknown number falls to the
default case's -ENOSYS. Which numbers a hypervisor knows is a property of its row: ops 11-13
only with FIFO code (4.4), 14 only with the reset continuation (XSA-344, 4.15).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from .abi import ARG_TYPES, FIFO_OPS, Errno, EvtchnOp
from .event_channel import (
    close_op,
    evtchn_alloc_unbound,
    evtchn_bind_interdomain,
    evtchn_bind_ipi,
    evtchn_bind_pirq,
    evtchn_bind_vcpu,
    evtchn_bind_virq,
    evtchn_expand_array,
    evtchn_init_control,
    evtchn_send,
    evtchn_set_priority,
    evtchn_status,
    evtchn_unmask,
)
from .reset import evtchn_reset_cont_op, evtchn_reset_op
from .versions import XenVersion

if TYPE_CHECKING:
    from .xen import Domain

Handler = Callable[["Domain", object], int]


def do_event_channel_op(d: Domain, cmd: int, arg: object) -> int:
    """do_event_channel_op: dispatch ``cmd`` from ``d``; unknown sub-ops get -ENOSYS.

    A reset that Xen preempted returns -ERESTART: re-issue it as EVTCHNOP_reset_cont
    (evtsim.reset explains the continuation).
    """
    if type(cmd) is not int and type(cmd) is not EvtchnOp:
        _check_cmd(cmd)
    xen = d.xen
    xen.log.clock += 1
    try:
        op, arg_type, handler, fifo_op = xen.hypercall_table[cmd]
    except KeyError:
        return -Errno.ENOSYS  # the default case
    if type(arg) is not arg_type:
        raise TypeError(f"{op.name} takes {arg_type.__name__}, got {type(arg).__name__}")
    if fifo_op:
        refused = d.fifo_refusal()  # [PATCH v4 1/3]: checked first, before anything else
        if refused:
            return refused
    if xen.xsm.denials:  # a hypothetical XSM hook at entry (the review's question)
        denied = xen.xsm.check(op, d.domain_id)
        if denied:
            return denied
    return handler(d, arg)


def _check_cmd(cmd: object) -> None:
    """Simulator misuse: ``cmd`` must be an integer (an EVTCHNOP_* number), a plain int or an
    IntEnum member, not an int subclass whose ``==`` or ``hash`` could pick another handler."""
    if not isinstance(cmd, int) or isinstance(cmd, bool) or not isinstance(cmd, Enum):
        subclass = isinstance(cmd, int) and not isinstance(cmd, bool)
        raise TypeError(f"cmd must be an EVTCHNOP_* number, got {cmd!r}"
                        + (f" of type {type(cmd).__name__}, an int subclass" if subclass else ""))


def hypercall_table(version: XenVersion) -> dict[int, tuple[EvtchnOp, type, Handler, bool]]:
    """The sub-ops a Xen implements: 11-13 only with FIFO code, 14 only since XSA-344."""
    table = {}
    for op, handler in HANDLERS.items():
        if op in FIFO_OPS and not version.fifo:
            continue
        if op is EvtchnOp.EVTCHNOP_reset_cont and not version.reset_continuation:
            continue
        table[int(op)] = (op, ARG_TYPES[op], handler, op in FIFO_OPS)
    return table


HANDLERS: dict[EvtchnOp, Handler] = {
    EvtchnOp.EVTCHNOP_bind_interdomain: evtchn_bind_interdomain,
    EvtchnOp.EVTCHNOP_bind_virq: evtchn_bind_virq,
    EvtchnOp.EVTCHNOP_bind_pirq: evtchn_bind_pirq,
    EvtchnOp.EVTCHNOP_close: close_op,
    EvtchnOp.EVTCHNOP_send: evtchn_send,
    EvtchnOp.EVTCHNOP_status: evtchn_status,
    EvtchnOp.EVTCHNOP_alloc_unbound: evtchn_alloc_unbound,
    EvtchnOp.EVTCHNOP_bind_ipi: evtchn_bind_ipi,
    EvtchnOp.EVTCHNOP_bind_vcpu: evtchn_bind_vcpu,
    EvtchnOp.EVTCHNOP_unmask: evtchn_unmask,
    EvtchnOp.EVTCHNOP_reset: evtchn_reset_op,
    EvtchnOp.EVTCHNOP_init_control: evtchn_init_control,
    EvtchnOp.EVTCHNOP_expand_array: evtchn_expand_array,
    EvtchnOp.EVTCHNOP_set_priority: evtchn_set_priority,
    EvtchnOp.EVTCHNOP_reset_cont: evtchn_reset_cont_op,
}
