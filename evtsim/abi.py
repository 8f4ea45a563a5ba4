"""Names and numbers from Xen's public headers, spelled as Xen spells them.

Sources: ``xen/include/public/event_channel.h``, ``xen/include/public/xen.h``,
``xen/include/public/errno.h``, ``xen/include/xen/sched.h`` (the ECS_* states),
``xen/include/public/domctl.h``, ``xen/include/public/sched.h`` and ``vcpu.h`` (the
scheduler and vCPU timer ops) and the 2020 patch series (see ``versions``).
Nothing here has behaviour; it is the vocabulary the rest of evtsim speaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum

Port = int
Gfn = int
DomId = int
VcpuId = int

PAGE_SIZE = 4096
DOMID_SELF: DomId = 0x7FF0
#: QEMU's Xen emulation plays dom0's part for interdomain channels (include/sysemu/kvm_xen.h).
DOMID_QEMU: DomId = 0


def u16(value: int) -> int:
    """Truncate a guest-supplied integer to a C ``uint16_t``/``domid_t`` as copy_from_guest would."""
    return value & 0xFFFF


def u32(value: int) -> int:
    """Truncate a guest-supplied integer to a C ``uint32_t`` (ports, vCPUs, priorities)."""
    return value & 0xFFFF_FFFF


def u64(value: int) -> int:
    """Truncate a guest-supplied integer to a C ``uint64_t`` (gfns)."""
    return value & 0xFFFF_FFFF_FFFF_FFFF


class Errno(IntEnum):
    """Xen's errno values (``xen/include/public/errno.h``); hypercalls return their negation."""

    EPERM = 1
    ENOENT = 2
    ESRCH = 3
    EAGAIN = 11
    ENOMEM = 12
    EACCES = 13
    EFAULT = 14
    EBUSY = 16
    EEXIST = 17
    EINVAL = 22
    ENOSPC = 28
    ENOSYS = 38
    ETIME = 62
    ERESTART = 85
    EOPNOTSUPP = 95


def errno_name(rc: int) -> str:
    """``-38`` -> ``"-ENOSYS"``; ``0`` -> ``"0"``; other values as numbers."""
    if rc < 0 and -rc in Errno._value2member_map_:
        return f"-{Errno(-rc).name}"
    return str(rc)


class EvtchnOp(IntEnum):
    """Sub-op numbers of ``HYPERVISOR_event_channel_op`` (hypercall 32)."""

    EVTCHNOP_bind_interdomain = 0
    EVTCHNOP_bind_virq = 1
    EVTCHNOP_bind_pirq = 2
    EVTCHNOP_close = 3
    EVTCHNOP_send = 4
    EVTCHNOP_status = 5
    EVTCHNOP_alloc_unbound = 6
    EVTCHNOP_bind_ipi = 7
    EVTCHNOP_bind_vcpu = 8
    EVTCHNOP_unmask = 9
    EVTCHNOP_reset = 10
    EVTCHNOP_init_control = 11
    EVTCHNOP_expand_array = 12
    EVTCHNOP_set_priority = 13
    EVTCHNOP_reset_cont = 14  # only under __XEN__: the continuation of a preempted reset


# The header's names, usable bare: ``evtchn_op(EVTCHNOP_send, EvtchnSend(port))``.
EVTCHNOP_bind_interdomain = EvtchnOp.EVTCHNOP_bind_interdomain
EVTCHNOP_bind_virq = EvtchnOp.EVTCHNOP_bind_virq
EVTCHNOP_bind_pirq = EvtchnOp.EVTCHNOP_bind_pirq
EVTCHNOP_close = EvtchnOp.EVTCHNOP_close
EVTCHNOP_send = EvtchnOp.EVTCHNOP_send
EVTCHNOP_status = EvtchnOp.EVTCHNOP_status
EVTCHNOP_alloc_unbound = EvtchnOp.EVTCHNOP_alloc_unbound
EVTCHNOP_bind_ipi = EvtchnOp.EVTCHNOP_bind_ipi
EVTCHNOP_bind_vcpu = EvtchnOp.EVTCHNOP_bind_vcpu
EVTCHNOP_unmask = EvtchnOp.EVTCHNOP_unmask
EVTCHNOP_reset = EvtchnOp.EVTCHNOP_reset
EVTCHNOP_init_control = EvtchnOp.EVTCHNOP_init_control
EVTCHNOP_expand_array = EvtchnOp.EVTCHNOP_expand_array
EVTCHNOP_set_priority = EvtchnOp.EVTCHNOP_set_priority
EVTCHNOP_reset_cont = EvtchnOp.EVTCHNOP_reset_cont

__HYPERVISOR_event_channel_op = 32
FIFO_OPS = frozenset(
    {EvtchnOp.EVTCHNOP_init_control, EvtchnOp.EVTCHNOP_expand_array, EvtchnOp.EVTCHNOP_set_priority}
)


class EvtchnStat(IntEnum):
    """What ``EVTCHNOP_status`` reports."""

    EVTCHNSTAT_closed = 0
    EVTCHNSTAT_unbound = 1
    EVTCHNSTAT_interdomain = 2
    EVTCHNSTAT_pirq = 3
    EVTCHNSTAT_virq = 4
    EVTCHNSTAT_ipi = 5


class Abi(StrEnum):
    """Which event-channel ABI a domain (Xen's ``evtchn_port_ops``) or a kernel uses.

    A ``str``, so traces and snapshots hold the plain names "2-level" and "fifo".
    """

    TWO_LEVEL = "2-level"  # evtchn_port_ops_2l (xen/common/event_2l.c), events_2l.c in Linux
    FIFO = "fifo"  # evtchn_port_ops_fifo (xen/common/event_fifo.c), events_fifo.c in Linux

    def __repr__(self) -> str:  # a notebook shows ('fifo', '2-level'), not <Abi.FIFO: 'fifo'>
        return repr(self.value)


class ECS(IntEnum):
    """Xen's internal port states (``struct evtchn`` in xen/include/xen/sched.h)."""

    ECS_FREE = 0
    ECS_RESERVED = 1
    ECS_UNBOUND = 2
    ECS_INTERDOMAIN = 3
    ECS_PIRQ = 4
    ECS_VIRQ = 5
    ECS_IPI = 6


ECS_FREE = ECS.ECS_FREE
ECS_RESERVED = ECS.ECS_RESERVED
ECS_UNBOUND = ECS.ECS_UNBOUND
ECS_INTERDOMAIN = ECS.ECS_INTERDOMAIN
ECS_PIRQ = ECS.ECS_PIRQ
ECS_VIRQ = ECS.ECS_VIRQ
ECS_IPI = ECS.ECS_IPI
EVTCHNSTAT_closed = EvtchnStat.EVTCHNSTAT_closed
EVTCHNSTAT_unbound = EvtchnStat.EVTCHNSTAT_unbound
EVTCHNSTAT_interdomain = EvtchnStat.EVTCHNSTAT_interdomain
EVTCHNSTAT_pirq = EvtchnStat.EVTCHNSTAT_pirq
EVTCHNSTAT_virq = EvtchnStat.EVTCHNSTAT_virq
EVTCHNSTAT_ipi = EvtchnStat.EVTCHNSTAT_ipi


class Virq(IntEnum):
    """VIRQ numbers from xen/include/public/xen.h."""

    VIRQ_TIMER = 0
    VIRQ_DEBUG = 1
    VIRQ_CONSOLE = 2
    VIRQ_DOM_EXC = 3
    VIRQ_TBUF = 4
    VIRQ_DEBUGGER = 6
    VIRQ_XENOPROF = 7
    VIRQ_CON_RING = 8
    VIRQ_PCPU_STATE = 9
    VIRQ_MEM_EVENT = 10
    VIRQ_ARGO = 11
    VIRQ_ENOMEM = 12
    VIRQ_XENPMU = 13


VIRQ_TIMER = Virq.VIRQ_TIMER
VIRQ_DEBUG = Virq.VIRQ_DEBUG
VIRQ_CONSOLE = Virq.VIRQ_CONSOLE
VIRQ_DOM_EXC = Virq.VIRQ_DOM_EXC
VIRQ_TBUF = Virq.VIRQ_TBUF
VIRQ_DEBUGGER = Virq.VIRQ_DEBUGGER
VIRQ_XENOPROF = Virq.VIRQ_XENOPROF
VIRQ_CON_RING = Virq.VIRQ_CON_RING
VIRQ_PCPU_STATE = Virq.VIRQ_PCPU_STATE
VIRQ_MEM_EVENT = Virq.VIRQ_MEM_EVENT
VIRQ_ARGO = Virq.VIRQ_ARGO
VIRQ_ENOMEM = Virq.VIRQ_ENOMEM
VIRQ_XENPMU = Virq.VIRQ_XENPMU
NR_VIRQS = 24
#: VIRQs bound per vCPU (get_virq_type -> VIRQ_VCPU in xen/common/event_channel.c).
PER_VCPU_VIRQS = frozenset({Virq.VIRQ_TIMER, Virq.VIRQ_DEBUG, Virq.VIRQ_XENOPROF, Virq.VIRQ_XENPMU})
#: VIRQs any domain may bind for itself (get_virq_type -> VIRQ_DOMAIN).
PER_DOMAIN_VIRQS = frozenset({Virq.VIRQ_ARGO})
BIND_PIRQ__WILL_SHARE = 1

# 2-level ABI (xen/include/public/xen.h): sizeof(xen_ulong_t)^2 * 64 channels.
EVTCHN_2L_NR_CHANNELS = 4096
COMPAT_EVTCHN_2L_NR_CHANNELS = 1024
XEN_LEGACY_MAX_VCPUS = 32

# FIFO ABI (xen/include/public/event_channel.h).
EVTCHN_FIFO_PRIORITY_MAX = 0
EVTCHN_FIFO_PRIORITY_DEFAULT = 7
EVTCHN_FIFO_PRIORITY_MIN = 15
EVTCHN_FIFO_MAX_QUEUES = EVTCHN_FIFO_PRIORITY_MIN + 1
EVTCHN_FIFO_PENDING = 31
EVTCHN_FIFO_MASKED = 30
EVTCHN_FIFO_LINKED = 29
EVTCHN_FIFO_BUSY = 28
EVTCHN_FIFO_LINK_BITS = 17
EVTCHN_FIFO_LINK_MASK = (1 << EVTCHN_FIFO_LINK_BITS) - 1
EVTCHN_FIFO_NR_CHANNELS = 1 << EVTCHN_FIFO_LINK_BITS
EVTCHN_FIFO_EVENT_WORDS_PER_PAGE = PAGE_SIZE // 4
#: Private to xen/common/event_fifo.c: at most 128 event-array pages.
EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES = EVTCHN_FIFO_NR_CHANNELS // EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
EVTCHN_FIFO_CONTROL_BLOCK_SIZE = 72  # ready, _rsvd, head[16]

#: Xen's struct evtchn buckets (xen/include/xen/sched.h): valid ports grow 64 at a time.
EVTCHNS_PER_BUCKET = 64

# Domain create flags (xen/include/public/domctl.h). Bit 7 means different things in
# different trees, which is itself a lesson: the 2020 series used it for its FIFO knob,
# and when the series stalled upstream later gave it to vPMU (dbb948110a, Xen 4.16).
XEN_DOMCTL_CDF_hvm = 1 << 0
XEN_DOMCTL_CDF_hap = 1 << 1
XEN_DOMCTL_CDF_s3_integrity = 1 << 2
XEN_DOMCTL_CDF_oos_off = 1 << 3
XEN_DOMCTL_CDF_xs_domain = 1 << 4
XEN_DOMCTL_CDF_iommu = 1 << 5
XEN_DOMCTL_CDF_nested_virt = 1 << 6
XEN_DOMCTL_CDF_disable_fifo = 1 << 7  # [PATCH v4 1/3]: FIFO ops return -ENOSYS when set
XEN_DOMCTL_CDF_evtchn_fifo = 1 << 7  # [PATCH v5 1/4]: FIFO ops return -ENOSYS when clear
XEN_DOMCTL_CDF_vpmu = 1 << 7  # upstream since 4.16
XEN_DOMCTL_CDF_BASE = (1 << 7) - 1  # bits 0-6, common to every tree modelled

# Hypercall argument structs: Xen's names for the fields. IN fields are read (and
# truncated to their C width) by Xen; OUT fields are written back on success.


class HypercallArg:
    """Base of the argument structs: every field holds a plain integer, checked on assignment.

    A guest can put any bit pattern in a field (Xen truncates it to the C type), but a Python
    value that is not an integer is a bug in the caller, so it raises TypeError at once.
    Subclasses are slotted dataclasses: one small object per struct, no instance dict.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: int) -> None:
        if type(value) is not int:
            _check_field(type(self), name, value)
        object.__setattr__(self, name, value)


def _check_field(cls: type, name: str, value: object) -> None:
    """A field is a plain int or an IntEnum member; a bool, a float, a string, or an int subclass
    of the caller's (its ``&`` or ``>>`` would stand in for Xen's C arithmetic) is misuse."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{cls.__name__}.{name}: hypercall fields are integers, got {value!r}")
    if not isinstance(value, Enum):
        raise TypeError(f"{cls.__name__}.{name}: hypercall fields are plain integers, got "
                        f"{value!r} of type {type(value).__name__}, an int subclass; pass int(value)")


@dataclass(slots=True)
class EvtchnAllocUnbound(HypercallArg):
    """struct evtchn_alloc_unbound: IN dom, remote_dom; OUT port."""

    dom: DomId = DOMID_SELF
    remote_dom: DomId = DOMID_SELF
    port: Port = 0


@dataclass(slots=True)
class EvtchnBindInterdomain(HypercallArg):
    """struct evtchn_bind_interdomain: IN remote_dom, remote_port; OUT local_port."""

    remote_dom: DomId = DOMID_SELF
    remote_port: Port = 0
    local_port: Port = 0


@dataclass(slots=True)
class EvtchnBindVirq(HypercallArg):
    """struct evtchn_bind_virq: IN virq, vcpu; OUT port."""

    virq: int = 0
    vcpu: VcpuId = 0
    port: Port = 0


@dataclass(slots=True)
class EvtchnBindPirq(HypercallArg):
    """struct evtchn_bind_pirq: IN pirq, flags; OUT port."""

    pirq: int = 0
    flags: int = 0
    port: Port = 0


@dataclass(slots=True)
class EvtchnClose(HypercallArg):
    """struct evtchn_close: IN port."""

    port: Port = 0


@dataclass(slots=True)
class EvtchnSend(HypercallArg):
    """struct evtchn_send: IN port."""

    port: Port = 0


@dataclass(slots=True)
class EvtchnStatus(HypercallArg):
    """struct evtchn_status: IN dom, port; OUT status, vcpu and the union ``u``.

    The union is flattened: ``dom`` for unbound/interdomain (``u.unbound.dom``,
    ``u.interdomain.dom``), ``remote_port`` for ``u.interdomain.port``, ``pirq``, ``virq``.
    """

    dom: DomId = DOMID_SELF
    port: Port = 0
    status: int = 0
    vcpu: VcpuId = 0
    u_dom: DomId = 0
    u_port: Port = 0
    u_pirq: int = 0
    u_virq: int = 0


@dataclass(slots=True)
class EvtchnBindIpi(HypercallArg):
    """struct evtchn_bind_ipi: IN vcpu; OUT port."""

    vcpu: VcpuId = 0
    port: Port = 0


@dataclass(slots=True)
class EvtchnBindVcpu(HypercallArg):
    """struct evtchn_bind_vcpu: IN port, vcpu."""

    port: Port = 0
    vcpu: VcpuId = 0


@dataclass(slots=True)
class EvtchnUnmask(HypercallArg):
    """struct evtchn_unmask: IN port."""

    port: Port = 0


@dataclass(slots=True)
class EvtchnReset(HypercallArg):
    """struct evtchn_reset: IN dom (also the argument of EVTCHNOP_reset_cont)."""

    dom: DomId = DOMID_SELF


@dataclass(slots=True)
class EvtchnInitControl(HypercallArg):
    """struct evtchn_init_control: IN control_gfn, offset, vcpu; OUT link_bits."""

    control_gfn: Gfn = 0
    offset: int = 0
    vcpu: VcpuId = 0
    link_bits: int = 0


@dataclass(slots=True)
class EvtchnExpandArray(HypercallArg):
    """struct evtchn_expand_array: IN array_gfn."""

    array_gfn: Gfn = 0


@dataclass(slots=True)
class EvtchnSetPriority(HypercallArg):
    """struct evtchn_set_priority: IN port, priority."""

    port: Port = 0
    priority: int = 0


#: The argument struct each sub-op takes.
ARG_TYPES: dict[EvtchnOp, type] = {
    EvtchnOp.EVTCHNOP_bind_interdomain: EvtchnBindInterdomain,
    EvtchnOp.EVTCHNOP_bind_virq: EvtchnBindVirq,
    EvtchnOp.EVTCHNOP_bind_pirq: EvtchnBindPirq,
    EvtchnOp.EVTCHNOP_close: EvtchnClose,
    EvtchnOp.EVTCHNOP_send: EvtchnSend,
    EvtchnOp.EVTCHNOP_status: EvtchnStatus,
    EvtchnOp.EVTCHNOP_alloc_unbound: EvtchnAllocUnbound,
    EvtchnOp.EVTCHNOP_bind_ipi: EvtchnBindIpi,
    EvtchnOp.EVTCHNOP_bind_vcpu: EvtchnBindVcpu,
    EvtchnOp.EVTCHNOP_unmask: EvtchnUnmask,
    EvtchnOp.EVTCHNOP_reset: EvtchnReset,
    EvtchnOp.EVTCHNOP_init_control: EvtchnInitControl,
    EvtchnOp.EVTCHNOP_expand_array: EvtchnExpandArray,
    EvtchnOp.EVTCHNOP_set_priority: EvtchnSetPriority,
    EvtchnOp.EVTCHNOP_reset_cont: EvtchnReset,
}

# Scheduler and vCPU ops (xen/include/public/sched.h, vcpu.h, xen.h): blocking, polling and
# the one-shot timer that drives VIRQ_TIMER.

__HYPERVISOR_set_timer_op = 15
__HYPERVISOR_vcpu_op = 24
__HYPERVISOR_sched_op = 29

#: Xen's own limit on the ports one SCHEDOP_poll may name (do_poll: "fairly arbitrary").
SCHED_POLL_MAX_PORTS = 128


class SchedOp(IntEnum):
    """Sub-op numbers of ``HYPERVISOR_sched_op`` (``xen/include/public/sched.h``)."""

    SCHEDOP_yield = 0
    SCHEDOP_block = 1
    SCHEDOP_shutdown = 2
    SCHEDOP_poll = 3
    SCHEDOP_remote_shutdown = 4
    SCHEDOP_shutdown_code = 5
    SCHEDOP_watchdog = 6
    SCHEDOP_pin_override = 7


SCHEDOP_yield = SchedOp.SCHEDOP_yield
SCHEDOP_block = SchedOp.SCHEDOP_block
SCHEDOP_poll = SchedOp.SCHEDOP_poll


class VcpuOp(IntEnum):
    """Sub-op numbers of ``HYPERVISOR_vcpu_op`` (``xen/include/public/vcpu.h``)."""

    VCPUOP_initialise = 0
    VCPUOP_up = 1
    VCPUOP_down = 2
    VCPUOP_is_up = 3
    VCPUOP_get_runstate_info = 4
    VCPUOP_register_runstate_memory_area = 5
    VCPUOP_set_periodic_timer = 6
    VCPUOP_stop_periodic_timer = 7
    VCPUOP_set_singleshot_timer = 8
    VCPUOP_stop_singleshot_timer = 9
    VCPUOP_register_vcpu_info = 10
    VCPUOP_send_nmi = 11
    VCPUOP_get_physid = 12
    VCPUOP_register_vcpu_time_memory_area = 13
    VCPUOP_register_runstate_phys_area = 14
    VCPUOP_register_vcpu_time_phys_area = 15


VCPUOP_set_singleshot_timer = VcpuOp.VCPUOP_set_singleshot_timer
VCPUOP_stop_singleshot_timer = VcpuOp.VCPUOP_stop_singleshot_timer
#: vcpu_set_singleshot_timer.flags: fail with -ETIME if the deadline has passed (ignored since 4.18).
VCPU_SSHOTTMR_future = 1 << 0

#: vcpu_time_info.flags (xen.h): the TSC is stable across CPUs; the guest was stopped.
XEN_PVCLOCK_TSC_STABLE_BIT = 1 << 0
XEN_PVCLOCK_GUEST_STOPPED = 1 << 1


class RunState(StrEnum):
    """What a vCPU is doing, as evtsim shows it.

    Xen keeps ``_VPF_blocked`` in ``pause_flags`` and a per-domain ``poll_mask``; its
    ``vcpu_runstate_info`` (vcpu.h) reports both BLOCKED and POLLING as ``RUNSTATE_blocked``.
    evtsim has no physical CPUs to wait for, so a runnable vCPU is running.
    """

    RUNNING = "running"  # RUNSTATE_running: not blocked
    BLOCKED = "blocked"  # SCHEDOP_block: waits for any event upcall
    POLLING = "polling"  # SCHEDOP_poll: waits for one of its ports, a timeout, or an upcall


@dataclass(slots=True)
class SchedPoll(HypercallArg):
    """struct sched_poll: IN ports (a guest array of ``evtchn_port_t``), nr_ports, timeout.

    ``ports`` stands for the guest memory the handle points at: Xen reads ``nr_ports`` entries
    from it, and reading past its end is -EFAULT (as a copy from an unmapped page would be).
    ``timeout`` is an absolute system time in ns; 0 means none.
    """

    ports: tuple[int, ...] = ()
    nr_ports: int = 0
    timeout: int = 0

    def __setattr__(self, name: str, value: object) -> None:
        if name == "ports":
            if not isinstance(value, (tuple, list)) or not all(
                    isinstance(p, int) and not isinstance(p, bool) for p in value):
                raise TypeError(f"SchedPoll.ports: a sequence of port numbers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
            return
        HypercallArg.__setattr__(self, name, value)


@dataclass(slots=True)
class VcpuSetSingleshotTimer(HypercallArg):
    """struct vcpu_set_singleshot_timer: IN timeout_abs_ns (u64 system time), flags (u32)."""

    timeout_abs_ns: int = 0
    flags: int = 0


__all__ = [
    # vocabulary and C truncation
    "Port", "Gfn", "DomId", "VcpuId", "PAGE_SIZE", "DOMID_SELF", "DOMID_QEMU", "u16", "u32", "u64",
    "Errno", "errno_name",
    # event-channel sub-ops, states and VIRQs
    "EvtchnOp", "EVTCHNOP_bind_interdomain", "EVTCHNOP_bind_virq", "EVTCHNOP_bind_pirq", "EVTCHNOP_close",
    "EVTCHNOP_send", "EVTCHNOP_status", "EVTCHNOP_alloc_unbound", "EVTCHNOP_bind_ipi", "EVTCHNOP_bind_vcpu",
    "EVTCHNOP_unmask", "EVTCHNOP_reset", "EVTCHNOP_init_control", "EVTCHNOP_expand_array",
    "EVTCHNOP_set_priority", "EVTCHNOP_reset_cont", "FIFO_OPS",
    "EvtchnStat", "EVTCHNSTAT_closed", "EVTCHNSTAT_unbound", "EVTCHNSTAT_interdomain", "EVTCHNSTAT_pirq",
    "EVTCHNSTAT_virq", "EVTCHNSTAT_ipi", "Abi",
    "ECS", "ECS_FREE", "ECS_RESERVED", "ECS_UNBOUND", "ECS_INTERDOMAIN", "ECS_PIRQ", "ECS_VIRQ", "ECS_IPI",
    "Virq", "VIRQ_TIMER", "VIRQ_DEBUG", "VIRQ_CONSOLE", "VIRQ_DOM_EXC", "VIRQ_TBUF", "VIRQ_DEBUGGER",
    "VIRQ_XENOPROF", "VIRQ_CON_RING", "VIRQ_PCPU_STATE", "VIRQ_MEM_EVENT", "VIRQ_ARGO", "VIRQ_ENOMEM",
    "VIRQ_XENPMU", "NR_VIRQS", "PER_VCPU_VIRQS", "PER_DOMAIN_VIRQS", "BIND_PIRQ__WILL_SHARE",
    # ABI limits and layouts
    "EVTCHN_2L_NR_CHANNELS", "COMPAT_EVTCHN_2L_NR_CHANNELS", "XEN_LEGACY_MAX_VCPUS",
    "EVTCHN_FIFO_PRIORITY_MAX", "EVTCHN_FIFO_PRIORITY_DEFAULT", "EVTCHN_FIFO_PRIORITY_MIN",
    "EVTCHN_FIFO_MAX_QUEUES", "EVTCHN_FIFO_PENDING", "EVTCHN_FIFO_MASKED", "EVTCHN_FIFO_LINKED",
    "EVTCHN_FIFO_BUSY", "EVTCHN_FIFO_LINK_BITS", "EVTCHN_FIFO_LINK_MASK", "EVTCHN_FIFO_NR_CHANNELS",
    "EVTCHN_FIFO_EVENT_WORDS_PER_PAGE", "EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES", "EVTCHN_FIFO_CONTROL_BLOCK_SIZE",
    "EVTCHNS_PER_BUCKET",
    # domain create flags
    "XEN_DOMCTL_CDF_hvm", "XEN_DOMCTL_CDF_hap", "XEN_DOMCTL_CDF_s3_integrity", "XEN_DOMCTL_CDF_oos_off",
    "XEN_DOMCTL_CDF_xs_domain", "XEN_DOMCTL_CDF_iommu", "XEN_DOMCTL_CDF_nested_virt",
    "XEN_DOMCTL_CDF_disable_fifo", "XEN_DOMCTL_CDF_evtchn_fifo", "XEN_DOMCTL_CDF_vpmu", "XEN_DOMCTL_CDF_BASE",
    # event-channel argument structs
    "HypercallArg", "EvtchnAllocUnbound", "EvtchnBindInterdomain", "EvtchnBindVirq", "EvtchnBindPirq",
    "EvtchnClose", "EvtchnSend", "EvtchnStatus", "EvtchnBindIpi", "EvtchnBindVcpu", "EvtchnUnmask",
    "EvtchnReset", "EvtchnInitControl", "EvtchnExpandArray", "EvtchnSetPriority", "ARG_TYPES",
    # scheduler and vCPU ops
    "SCHED_POLL_MAX_PORTS", "SchedOp", "SCHEDOP_yield", "SCHEDOP_block", "SCHEDOP_poll", "VcpuOp",
    "VCPUOP_set_singleshot_timer", "VCPUOP_stop_singleshot_timer", "VCPU_SSHOTTMR_future",
    "XEN_PVCLOCK_TSC_STABLE_BIT", "XEN_PVCLOCK_GUEST_STOPPED", "RunState", "SchedPoll", "VcpuSetSingleshotTimer",
]
