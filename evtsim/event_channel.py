"""The event-channel hypercall: one handler per EVTCHNOP_* sub-op, each returning 0 or
Xen's negative errno for the running version.

Models xen/common/event_channel.c (do_event_channel_op and the evtchn_* helpers it calls)
and the FIFO entry points of xen/common/event_fifo.c. Guest-supplied fields are truncated
to their C types first, so a huge or negative integer behaves as it would in Xen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .abi import (
    ARG_TYPES,
    DOMID_QEMU,
    DOMID_SELF,
    ECS,
    EVTCHN_FIFO_CONTROL_BLOCK_SIZE,
    EVTCHN_FIFO_LINK_BITS,
    EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES,
    FIFO_OPS,
    NR_VIRQS,
    PAGE_SIZE,
    PER_DOMAIN_VIRQS,
    PER_VCPU_VIRQS,
    Errno,
    EvtchnAllocUnbound,
    EvtchnBindInterdomain,
    EvtchnBindIpi,
    EvtchnBindPirq,
    EvtchnBindVcpu,
    EvtchnBindVirq,
    EvtchnClose,
    EvtchnExpandArray,
    EvtchnInitControl,
    EvtchnOp,
    EvtchnReset,
    EvtchnSend,
    EvtchnSetPriority,
    EvtchnStat,
    EvtchnStatus,
    EvtchnUnmask,
    Port,
    u16,
    u32,
    u64,
)
from .faults import AllocSite
from .fifo import Fifo
from .two_level import TwoLevel
from .versions import ResetRevert, XenVersion

if TYPE_CHECKING:
    from .xen import Domain

NR_PIRQS = 256  # d->nr_pirqs for a typical x86 guest
# Plain ints: the port table stores states as bytes, and int == int is the fast compare.
INTERDOMAIN, IPI, UNBOUND = int(ECS.ECS_INTERDOMAIN), int(ECS.ECS_IPI), int(ECS.ECS_UNBOUND)
PREEMPT_EVERY = 64  # evtchn_reset checks for preemption every 64 ports


def do_event_channel_op(d: Domain, cmd: int, arg: object) -> int:
    """do_event_channel_op: dispatch ``cmd`` from ``d``; unknown sub-ops get -ENOSYS."""
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
    """Simulator misuse: ``cmd`` must be an integer (an EVTCHNOP_* number)."""
    if not isinstance(cmd, int) or isinstance(cmd, bool):
        raise TypeError(f"cmd must be an EVTCHNOP_* number, got {cmd!r}")


def hypercall_table(version: XenVersion) -> dict[int, tuple[EvtchnOp, type, Callable, bool]]:
    """The sub-ops a Xen implements: 11-13 only with FIFO code, 14 only since XSA-344."""
    table = {}
    for op, handler in HANDLERS.items():
        if op in FIFO_OPS and not version.fifo:
            continue
        if op is EvtchnOp.EVTCHNOP_reset_cont and not version.reset_continuation:
            continue
        table[int(op)] = (op, ARG_TYPES[op], handler, op in FIFO_OPS)
    return table


# --- port allocation and release ---------------------------------------------------------


def get_free_port(d: Domain) -> int:
    """get_free_port: the lowest free port, or -EINVAL (dying) / -ENOSPC / -ENOMEM."""
    if d.is_dying:
        return -Errno.EINVAL
    limit = min(d.max_evtchn_port + 1, d.max_evtchns())
    busy = d.port_ops.is_busy if d.xen.version.busy_port_skipped else _never_busy
    return d.ports.allocate(limit, busy, lambda: d.xen.faults.take(AllocSite.EVTCHN_BUCKET, d.domain_id))


def _never_busy(port: Port) -> bool:
    return False


def port_is_valid(d: Domain, port: int) -> bool:
    """port_is_valid; QEMU's valid_port instead: any port but 0 below the 2-level limit."""
    if d.xen.version.qemu:
        return 0 < port < d.shared_info.layout.nr_channels
    return d.ports.is_valid(port)


def free_evtchn(d: Domain, port: Port) -> None:
    """free_evtchn: clear the pending state (ABI-specific), then FREE on vCPU 0."""
    if d.ports.usable(port):
        d.port_ops.clear_pending(port)
    d.ports.release(port)


def evtchn_port_set_pending(d: Domain, vcpu_id: int, port: Port) -> None:
    """evtchn_port_set_pending: only usable ports reach the ABI engine."""
    if d.ports.usable(port):
        d.port_ops.set_pending(d.vcpus[vcpu_id], port)


def _bind(d: Domain, port: Port, state: ECS, vcpu: int = 0) -> None:
    """A freshly allocated port takes its state and vCPU (evtchn_port_init for the ABI)."""
    t = d.ports
    t.state[port] = state
    t.notify_vcpu_id[port] = vcpu
    d.port_ops.init(port)  # evtchn_port_init: FIFO sets the default priority


# --- sub-ops 0-9 -------------------------------------------------------------------------


def evtchn_alloc_unbound(caller: Domain, arg: EvtchnAllocUnbound) -> int:
    """evtchn_alloc_unbound: a port in ``dom`` that ``remote_dom`` may bind to."""
    d = caller.xen.domain(u16(arg.dom), caller)
    if d is None:
        return -Errno.ESRCH
    remote = u16(arg.remote_dom)
    if caller.xen.version.qemu and not caller.privileged and remote not in (DOMID_SELF, caller.domain_id, DOMID_QEMU):
        return -Errno.EPERM  # QEMU: a guest's peer is QEMU itself (dom0 here) or the guest
    port = get_free_port(d)
    if port < 0:
        return port
    if d is not caller and not caller.privileged:  # xsm_evtchn_unbound(XSM_TARGET)
        d.ports.release(port)
        return -Errno.EPERM
    _bind(d, port, ECS.ECS_UNBOUND)
    d.ports.remote_domid[port] = caller.domain_id if remote == DOMID_SELF else remote
    arg.port = port
    return 0


def evtchn_bind_interdomain(ld: Domain, arg: EvtchnBindInterdomain) -> int:
    """evtchn_bind_interdomain: connect to ``remote_port``; the new local port is made pending."""
    rd = ld.xen.domain(u16(arg.remote_dom), ld)
    if rd is None:
        return -Errno.ESRCH
    if ld.xen.version.qemu and not ld.privileged and rd.domain_id not in (ld.domain_id, DOMID_QEMU):
        return -Errno.ESRCH  # QEMU: peers are QEMU itself or loopback only
    lport = get_free_port(ld)
    if lport < 0:
        return lport
    rport, lt, rt = u32(arg.remote_port), ld.ports, rd.ports
    if not rt.is_valid(rport) or rt.state[rport] != UNBOUND or rt.remote_domid[rport] != ld.domain_id:
        lt.release(lport)
        return -Errno.EINVAL
    _bind(ld, lport, ECS.ECS_INTERDOMAIN)
    lt.remote_domid[lport], lt.remote_port[lport] = rd.domain_id, rport  # u.interdomain.remote_dom
    rt.state[rport], rt.remote_domid[rport], rt.remote_port[rport] = INTERDOMAIN, ld.domain_id, lport
    # Notifications sent while the remote port was unbound were dropped: make up for them.
    evtchn_port_set_pending(ld, lt.notify_vcpu_id[lport], lport)
    arg.local_port = lport
    return 0


def evtchn_bind_virq(d: Domain, arg: EvtchnBindVirq) -> int:
    """evtchn_bind_virq: per-vCPU VIRQs once per vCPU; global ones on vCPU 0 by their owner."""
    virq, vcpu = u32(arg.virq), u32(arg.vcpu)
    if virq >= NR_VIRQS:
        return -Errno.EINVAL
    if virq not in PER_VCPU_VIRQS and vcpu != 0:
        return -Errno.EINVAL
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    is_global = virq not in PER_VCPU_VIRQS and virq not in PER_DOMAIN_VIRQS
    if is_global and d.xen.global_virq_handlers.get(virq, d.xen.dom0) is not d:
        return -Errno.EBUSY
    v = d.vcpus[vcpu]
    if v.virq_to_evtchn[virq]:
        return -Errno.EEXIST
    port = get_free_port(d)
    if port < 0:
        return port
    _bind(d, port, ECS.ECS_VIRQ, vcpu)
    d.ports.virq[port] = virq
    v.virq_to_evtchn[virq] = arg.port = port
    return 0


def evtchn_bind_ipi(d: Domain, arg: EvtchnBindIpi) -> int:
    """evtchn_bind_ipi: a port on ``vcpu`` that the domain can send to itself."""
    vcpu = u32(arg.vcpu)
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    port = get_free_port(d)
    if port < 0:
        return port
    _bind(d, port, ECS.ECS_IPI, vcpu)
    arg.port = port
    return 0


def evtchn_bind_pirq(d: Domain, arg: EvtchnBindPirq) -> int:
    """evtchn_bind_pirq: a physical IRQ; PV guests need access, each PIRQ binds once."""
    pirq = u32(arg.pirq)
    if pirq >= NR_PIRQS:
        return -Errno.EINVAL
    if not d.is_hvm and not d.privileged:  # pirq_access_permitted
        return -Errno.EPERM
    if d.pirq_to_evtchn.get(pirq):
        return -Errno.EBUSY if d.xen.version.qemu else -Errno.EEXIST
    port = get_free_port(d)
    if port < 0:
        return port
    _bind(d, port, ECS.ECS_PIRQ)
    d.ports.pirq[port] = pirq
    d.pirq_to_evtchn[pirq] = arg.port = port
    return 0


def evtchn_close(d: Domain, port: int, guest: bool = True) -> int:
    """evtchn_close: free a port; an interdomain peer goes back to UNBOUND."""
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    t = d.ports
    xen_consumer, state = t.xen_consumer[port], t.state[port]
    if xen_consumer and guest:
        return -Errno.EINVAL  # a guest cannot close a Xen-attached port
    if state in (ECS.ECS_FREE, ECS.ECS_RESERVED):
        return -Errno.ENOENT if d.xen.version.qemu else -Errno.EINVAL
    if state == ECS.ECS_PIRQ:
        d.pirq_to_evtchn.pop(t.pirq[port], None)
    elif state == ECS.ECS_VIRQ:
        virq = t.virq[port]
        for v in d.vcpus:
            if v.virq_to_evtchn[virq] == port:
                v.virq_to_evtchn[virq] = 0
    elif state == ECS.ECS_INTERDOMAIN:
        rt, rport = t.remote_dom(port).ports, t.remote_port[port]
        rt.state[rport], rt.remote_domid[rport] = UNBOUND, d.domain_id
    free_evtchn(d, port)
    if xen_consumer:
        t.xen_consumer[port] = 0
        d.xen.xen_consumers.pop((d.domain_id, port), None)
    return 0


def _close(d: Domain, arg: EvtchnClose) -> int:
    return evtchn_close(d, u32(arg.port))


def evtchn_send(ld: Domain, arg: EvtchnSend) -> int:
    """evtchn_send: notify the peer (interdomain) or self (IPI); UNBOUND drops it silently.

    The hot path of every event: it reads the port table's arrays directly.
    """
    lport = arg.port & 0xFFFF_FFFF  # u32, inlined
    lt = ld.ports
    if lport >= lt.valid_evtchns:
        return -Errno.EINVAL
    if lt.xen_consumer[lport]:
        return -Errno.EINVAL
    state = lt.state[lport]
    if state == INTERDOMAIN:
        rd = lt.domains[lt.remote_domid[lport]]  # u.interdomain.remote_dom
        rport = lt.remote_port[lport]
        rt = rd.ports
        if rt.xen_consumer[rport]:
            ld.xen.xen_consumers[(rd.domain_id, rport)](rd.vcpus[rt.notify_vcpu_id[rport]], rport)
        else:  # the peer of an interdomain port is interdomain too: usable
            rd.port_ops.set_pending(rd.vcpus[rt.notify_vcpu_id[rport]], rport)
        return 0
    if state == IPI:
        ld.port_ops.set_pending(ld.vcpus[lt.notify_vcpu_id[lport]], lport)
        return 0
    if state == UNBOUND:
        return 0  # silently drop the notification
    return -Errno.EINVAL


_STATUS = {
    ECS.ECS_FREE: EvtchnStat.EVTCHNSTAT_closed,
    ECS.ECS_RESERVED: EvtchnStat.EVTCHNSTAT_closed,
    ECS.ECS_UNBOUND: EvtchnStat.EVTCHNSTAT_unbound,
    ECS.ECS_INTERDOMAIN: EvtchnStat.EVTCHNSTAT_interdomain,
    ECS.ECS_PIRQ: EvtchnStat.EVTCHNSTAT_pirq,
    ECS.ECS_VIRQ: EvtchnStat.EVTCHNSTAT_virq,
    ECS.ECS_IPI: EvtchnStat.EVTCHNSTAT_ipi,
}


def evtchn_status(caller: Domain, arg: EvtchnStatus) -> int:
    """evtchn_status: what a port of ``dom`` is bound to; FREE and RESERVED read as closed."""
    d = caller.xen.domain(u16(arg.dom), caller)
    if d is None:
        return -Errno.ESRCH
    port = u32(arg.port)
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    if d is not caller and not caller.privileged:  # xsm_evtchn_status(XSM_TARGET)
        return -Errno.EPERM
    chn = d.ports.chn[port]  # not hot: the readable view
    arg.status = _STATUS[chn.state]
    arg.vcpu = chn.notify_vcpu_id
    if chn.state == ECS.ECS_UNBOUND:
        arg.u_dom = chn.remote_domid
    elif chn.state == ECS.ECS_INTERDOMAIN:
        arg.u_dom, arg.u_port = chn.remote_dom.domain_id, chn.remote_port
    elif chn.state == ECS.ECS_PIRQ:
        arg.u_pirq = chn.pirq
    elif chn.state == ECS.ECS_VIRQ:
        arg.u_virq = chn.virq
    return 0


def evtchn_bind_vcpu(d: Domain, arg: EvtchnBindVcpu) -> int:
    """evtchn_bind_vcpu: future notifications go to ``vcpu``; pending ones stay where they are."""
    port, vcpu = u32(arg.port), u32(arg.vcpu)
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    if not d.ports.is_valid(port):
        return -Errno.EINVAL
    chn = d.ports.chn[port]  # not hot: the readable view
    if chn.xen_consumer:
        return -Errno.EINVAL
    movable = chn.state in (ECS.ECS_UNBOUND, ECS.ECS_INTERDOMAIN, ECS.ECS_PIRQ) or (
        chn.state == ECS.ECS_VIRQ and chn.virq not in PER_VCPU_VIRQS
    )
    if not movable:
        return -Errno.EINVAL  # IPIs, per-vCPU VIRQs, FREE and RESERVED ports stay put
    chn.notify_vcpu_id = vcpu
    return 0


def evtchn_unmask(d: Domain, arg: EvtchnUnmask) -> int:
    """evtchn_unmask: ABI unmask; 0 even for a valid but free port (a no-op there)."""
    port = u32(arg.port)
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    t = d.ports
    if d.xen.version.qemu and t.state[port] == ECS.ECS_FREE:
        return -Errno.EINVAL
    if t.usable(port):
        d.port_ops.unmask(port)
    return 0


# --- reset (10, 14) ----------------------------------------------------------------------


def evtchn_reset(caller: Domain, arg: EvtchnReset, resuming: bool = False) -> int:
    """EVTCHNOP_reset / reset_cont: close every port; which versions revert FIFO varies."""
    dom = u16(arg.dom)
    d = caller.xen.domain(dom, caller)
    if d is None or (caller.xen.version.qemu and d is not caller):
        return -Errno.ESRCH
    if d is not caller and not caller.privileged:  # xsm_evtchn_reset(XSM_TARGET)
        return -Errno.EPERM
    revert = {
        ResetRevert.NEVER: False,
        ResetRevert.SELF: dom == DOMID_SELF,  # 400b3bd642 tested the literal DOMID_SELF
        ResetRevert.ALWAYS: True,
    }[caller.xen.version.reset_revert]
    if caller.xen.version.reset_revert is ResetRevert.ALWAYS:
        if d is not caller and not d.controller_paused:
            return -Errno.EINVAL
    return evtchn_reset_loop(d, resuming, revert)


def evtchn_reset_loop(d: Domain, resuming: bool, revert: bool) -> int:
    """evtchn_reset: close ports (with -EBUSY/continuations where XSA-344 applies), revert."""
    xen = d.xen
    if xen.version.reset_continuation:
        start = d.next_evtchn if resuming else int(not d.next_evtchn)
        if not start:
            return -Errno.EBUSY  # a reset is already running, or reset_cont without one
        d.next_evtchn = max(d.next_evtchn, start)
    else:
        start = 1
    port = start
    xen_ports = _xen_ports(d)  # Xen-consumer ports refuse a guest close and survive
    while d.ports.is_valid(port) and d.ports.active > xen_ports:
        evtchn_close(d, port)
        port += 1
        if xen.preempt_reset and xen.version.reset_continuation and port % PREEMPT_EVERY == 0:
            d.next_evtchn = port
            xen.continuations += 1  # -ERESTART: re-entered as EVTCHNOP_reset_cont
    d.next_evtchn = 0
    if revert and d.fifo is not None:
        d.fifo.destroy()
        d.fifo = None
        d.port_ops = TwoLevel(d)  # evtchn_2l_init
    return 0


def _xen_ports(d: Domain) -> int:
    """How many ports Xen itself consumes (they survive a reset)."""
    t = d.ports
    return sum(1 for port, xen in enumerate(t.xen_consumer) if xen and t.state[port] != ECS.ECS_FREE)


def _reset(d: Domain, arg: EvtchnReset) -> int:
    return evtchn_reset(d, arg)


def _reset_cont(d: Domain, arg: EvtchnReset) -> int:
    return evtchn_reset(d, arg, resuming=True)


# --- FIFO sub-ops 11-13 ------------------------------------------------------------------


def evtchn_init_control(d: Domain, arg: EvtchnInitControl) -> int:
    """evtchn_fifo_init_control: map a vCPU's control block; the first call switches ABI."""
    if not d.xen.version.fifo_compiled_in:
        return -Errno.EOPNOTSUPP
    gfn, offset, vcpu = u64(arg.control_gfn), u32(arg.offset), u32(arg.vcpu)
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    if offset > PAGE_SIZE - EVTCHN_FIFO_CONTROL_BLOCK_SIZE or offset & 7:
        return -Errno.EINVAL
    if d.fifo is None:
        rc = _switch_to_fifo(d, gfn, offset, vcpu)
    else:
        rc = d.fifo.map_control_block(vcpu, d.memory.frame(gfn), offset) if d.is_writable_gfn(gfn) else -Errno.EINVAL
    if rc == 0:
        arg.link_bits = EVTCHN_FIFO_LINK_BITS
    return rc


def _switch_to_fifo(d: Domain, gfn: int, offset: int, vcpu: int) -> int:
    """The first init_control: FIFO structures for all vCPUs, then the port-ops switch."""
    if d.xen.faults.armed and d.xen.faults.take(AllocSite.FIFO_INIT, d.domain_id):
        return -Errno.ENOMEM
    if not d.is_writable_gfn(gfn):
        return -Errno.EINVAL  # evtchn_fifo_destroy undoes it all: the domain stays 2-level
    prev_evtchns = d.max_evtchns()
    two_level = d.port_ops
    fifo = Fifo(d)
    fifo.map_control_block(vcpu, d.memory.frame(gfn), offset)
    d.fifo = fifo
    d.port_ops = fifo
    fifo.setup_ports(prev_evtchns, two_level.is_pending)
    return 0


def evtchn_expand_array(d: Domain, arg: EvtchnExpandArray) -> int:
    """evtchn_fifo_expand_array: append the next event-array page (at most 128)."""
    if not d.xen.version.fifo_compiled_in:
        return -Errno.EOPNOTSUPP
    if d.fifo is None:
        return -d.xen.version.expand_not_fifo
    if len(d.fifo.pages) >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES:
        return -Errno.ENOSPC
    gfn = u64(arg.array_gfn)
    if not d.is_writable_gfn(gfn):
        return -Errno.EINVAL
    if d.xen.faults.armed and d.xen.faults.take(AllocSite.EVENT_ARRAY_PAGE, d.domain_id):
        return -Errno.ENOMEM
    return d.fifo.add_page(d.memory.frame(gfn))


def evtchn_set_priority(d: Domain, arg: EvtchnSetPriority) -> int:
    """evtchn_set_priority: -EINVAL bad port, -ENOSYS in 2-level, -EACCES unusable port."""
    port = u32(arg.port)
    if not d.ports.is_valid(port):
        return -Errno.EINVAL
    if d.port_ops.set_priority is None:
        return -Errno.ENOSYS
    if not d.ports.usable(port):
        return -Errno.EACCES
    return d.port_ops.set_priority(port, u32(arg.priority))


HANDLERS: dict[EvtchnOp, Callable[[Domain, object], int]] = {
    EvtchnOp.EVTCHNOP_bind_interdomain: evtchn_bind_interdomain,
    EvtchnOp.EVTCHNOP_bind_virq: evtchn_bind_virq,
    EvtchnOp.EVTCHNOP_bind_pirq: evtchn_bind_pirq,
    EvtchnOp.EVTCHNOP_close: _close,
    EvtchnOp.EVTCHNOP_send: evtchn_send,
    EvtchnOp.EVTCHNOP_status: evtchn_status,
    EvtchnOp.EVTCHNOP_alloc_unbound: evtchn_alloc_unbound,
    EvtchnOp.EVTCHNOP_bind_ipi: evtchn_bind_ipi,
    EvtchnOp.EVTCHNOP_bind_vcpu: evtchn_bind_vcpu,
    EvtchnOp.EVTCHNOP_unmask: evtchn_unmask,
    EvtchnOp.EVTCHNOP_reset: _reset,
    EvtchnOp.EVTCHNOP_init_control: evtchn_init_control,
    EvtchnOp.EVTCHNOP_expand_array: evtchn_expand_array,
    EvtchnOp.EVTCHNOP_set_priority: evtchn_set_priority,
    EvtchnOp.EVTCHNOP_reset_cont: _reset_cont,
}
