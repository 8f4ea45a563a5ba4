"""The event-channel sub-ops: one handler per EVTCHNOP_* (reset aside, in ``reset``), each
returning 0 or Xen's negative errno for the running hypervisor's row.

Models the evtchn_* helpers of xen/common/event_channel.c that do_event_channel_op
(``hypercall``) calls, and the FIFO entry points of xen/common/event_fifo.c. Guest-supplied
fields are truncated to their C types first, so a huge or negative integer behaves as it
would in Xen.
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
from .versions import XenVersion

if TYPE_CHECKING:
    from .xen import Domain

NR_PIRQS = 256  # d->nr_pirqs for a typical x86 guest
# Plain ints: the port table stores states as bytes, and int == int is the fast compare.
INTERDOMAIN, IPI, UNBOUND = int(ECS.ECS_INTERDOMAIN), int(ECS.ECS_IPI), int(ECS.ECS_UNBOUND)


# --- port allocation and release ---------------------------------------------------------


def get_free_port(d: Domain) -> int:
    """get_free_port: the lowest free port, or -EINVAL (dying) / -ENOSPC / -ENOMEM."""
    if d.is_dying:
        return -Errno.EINVAL
    limit = d.max_evtchns()
    if d.max_evtchn_port is not None:  # None: no XEN_DOMCTL_set_max_evtchn (Xen <= 4.3, QEMU) or dom0's INT_MAX
        limit = min(limit, d.max_evtchn_port + 1)
    busy = d.port_ops.is_busy if d.xen.version.busy_port_skipped else _never_busy
    return d.ports.allocate(limit, busy, lambda: d.xen.faults.take(AllocSite.EVTCHN_BUCKET, d.domain_id))


def _never_busy(port: Port) -> bool:
    return False


def port_is_valid(d: Domain, port: int) -> bool:
    """port_is_valid: the port's bucket exists; before XSA-338 (e59ce972d1) also below
    max_evtchns(d). QEMU's valid_port instead: any port but 0 below the 2-level limit."""
    version = d.xen.version
    if version.fixed_port_table:
        return 0 < port < d.shared_info.layout.nr_channels
    if version.port_valid_below_limit and port >= d.max_evtchns():
        return False
    return d.ports.is_valid(port)


def _reaches_port_ops(d: Domain, port: Port) -> bool:
    """Whether a port op on ``port`` runs: on a usable port since XSA-343 (evtchn_usable,
    e045199c7c); on any valid port before it."""
    return not d.xen.version.usable_gate or d.ports.usable(port)


def free_evtchn(d: Domain, port: Port) -> None:
    """free_evtchn: clear the pending state (ABI-specific), then FREE on vCPU 0."""
    if _reaches_port_ops(d, port):
        d.port_ops.clear_pending(port)
    d.ports.release(port)


def evtchn_port_set_pending(d: Domain, vcpu_id: int, port: Port) -> None:
    """evtchn_port_set_pending: only usable ports reach the ABI engine (since XSA-343)."""
    if _reaches_port_ops(d, port):
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
    dom, remote, version = u16(arg.dom), u16(arg.remote_dom), caller.xen.version
    if version.foreign_dom_esrch and foreign_domain(caller, dom):
        return -Errno.ESRCH  # QEMU: no other domain to allocate in
    d = caller.xen.domain(dom, caller)
    if d is None:
        return -Errno.ESRCH
    if version.peers_qemu_or_self and foreign_domain(caller, remote, DOMID_QEMU):
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
    """evtchn_bind_interdomain: connect to ``remote_port``; Xen makes the new local port pending.

    QEMU (xen_evtchn_bind_interdomain_op) checks the peer and the remote port number before it
    allocates, and never marks the new port pending.
    """
    dom, rport, version = u16(arg.remote_dom), u32(arg.remote_port), ld.xen.version
    if version.peers_qemu_or_self and foreign_domain(ld, dom, DOMID_QEMU):
        return -Errno.ESRCH  # QEMU: peers are QEMU itself or loopback only
    rd = ld.xen.domain(dom, ld)
    if rd is None:
        return -Errno.ESRCH
    if version.fixed_port_table and not port_is_valid(rd, rport):
        return -Errno.EINVAL  # QEMU: valid_port(remote_port) comes before allocate_port
    lport = get_free_port(ld)
    if lport < 0:
        return lport
    rt = rd.ports
    if not port_is_valid(rd, rport) or rt.state[rport] != UNBOUND or rt.remote_domid[rport] != ld.domain_id:
        ld.ports.release(lport)
        return -Errno.EINVAL
    lt = ld.ports
    _bind(ld, lport, ECS.ECS_INTERDOMAIN)
    lt.remote_domid[lport], lt.remote_port[lport] = rd.domain_id, rport  # u.interdomain.remote_dom
    rt.state[rport], rt.remote_domid[rport], rt.remote_port[rport] = INTERDOMAIN, ld.domain_id, lport
    if version.interdomain_sets_pending:  # make up for notifications dropped while it was unbound
        evtchn_port_set_pending(ld, lt.notify_vcpu_id[lport], lport)
    arg.local_port = lport
    return 0


def foreign_domain(caller: Domain, domid: int, *also: int) -> bool:
    """A guest (not dom0, QEMU's stand-in) naming a domain other than itself (or ``also``)."""
    return not caller.privileged and domid not in (DOMID_SELF, caller.domain_id, *also)


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
    if is_global and d.xen.version.global_virq_owner and d.xen.global_virq_handlers.get(virq, d.xen.dom0) is not d:
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
        return -d.xen.version.pirq_bound_errno
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
        return -d.xen.version.close_free_errno
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


def close_op(d: Domain, arg: EvtchnClose) -> int:
    """EVTCHNOP_close from the guest."""
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
    dom = u16(arg.dom)
    if caller.xen.version.foreign_dom_esrch and foreign_domain(caller, dom):
        return -Errno.ESRCH  # QEMU (xen_evtchn_status_op): there is no other domain
    d = caller.xen.domain(dom, caller)
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
    """evtchn_bind_vcpu: future notifications go to ``vcpu``; pending ones stay where they are.

    QEMU (xen_evtchn_bind_vcpu_op) checks the port before the vCPU, and re-raises a pending,
    unmasked port on its new vCPU (unmask_port with do_unmask false).
    """
    port, vcpu, version = u32(arg.port), u32(arg.vcpu), d.xen.version
    if version.bind_vcpu_checks_port_first and not port_is_valid(d, port):
        return -Errno.EINVAL
    if vcpu >= len(d.vcpus):
        return -Errno.ENOENT
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    chn = d.ports.chn[port]
    if chn.xen_consumer:
        return -Errno.EINVAL
    movable = chn.state in (ECS.ECS_UNBOUND, ECS.ECS_INTERDOMAIN, ECS.ECS_PIRQ) or (
        chn.state == ECS.ECS_VIRQ and chn.virq not in PER_VCPU_VIRQS
    )
    if not movable:
        return -Errno.EINVAL  # IPIs, per-vCPU VIRQs, FREE and RESERVED ports stay put
    chn.notify_vcpu_id = vcpu
    if version.bind_vcpu_raises_pending:
        d.port_ops.raise_on(d.vcpus[vcpu], port)
    return 0


def evtchn_unmask(d: Domain, arg: EvtchnUnmask) -> int:
    """evtchn_unmask: ABI unmask; 0 even for a valid but free port (a no-op there since XSA-343;
    before it, the ABI unmask ran on any valid port). QEMU refuses a free port."""
    port = u32(arg.port)
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    refused = d.xen.version.unmask_free_errno
    if refused is not None and d.ports.state[port] == ECS.ECS_FREE:
        return -refused
    if _reaches_port_ops(d, port):
        d.port_ops.unmask(port)
    return 0


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
    """evtchn_set_priority: -EINVAL bad port, -ENOSYS in 2-level, -EACCES unusable port (since
    XSA-343, e045199c7c: before it any valid port took the priority)."""
    port = u32(arg.port)
    if not port_is_valid(d, port):
        return -Errno.EINVAL
    if d.port_ops.set_priority is None:
        return -Errno.ENOSYS
    if not _reaches_port_ops(d, port):
        return -Errno.EACCES
    return d.port_ops.set_priority(port, u32(arg.priority))
