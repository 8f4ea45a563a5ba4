"""The hypervisor: a ``Xen`` owns every domain, their frames, the record of its writes and
its clock.

A ``Domain`` carries what Xen keeps per guest (``struct domain``: vCPUs, port table,
ABI engine, create flags); a ``Vcpu`` (``evtsim.vcpu``) its ``vcpu_info``, VIRQ bindings,
run state and timers. Guests talk to Xen through hypercalls that return 0 or ``-errno``:
``Domain.evtchn_op(cmd, arg)`` and, for what a vCPU asks for itself, ``Vcpu.sched_op``,
``Vcpu.set_timer_op`` and ``Vcpu.vcpu_op``. Xen's own side (raising VIRQs, advancing
time) is ``Xen``'s methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import guest_state, virq
from .abi import (
    DOMID_SELF,
    ECS,
    EVTCHN_FIFO_NR_CHANNELS,
    XEN_DOMCTL_CDF_BASE,
    XEN_DOMCTL_CDF_hvm,
    XEN_LEGACY_MAX_VCPUS,
    Abi,
    DomId,
    Errno,
    Gfn,
)
from .event_channel import evtchn_close, get_free_port
from .hypercall import do_event_channel_op, hypercall_table
from .faults import Faults, Xsm
from .memory import LAYOUT_32, LAYOUT_64, GuestMemory, Recording, SharedInfoView, Structure, WriteLog
from .ports import EvtchnPortOps, PortTable
from .timekeeping import (
    DEFAULT_BOOT_WALLCLOCK,
    EPOCH,
    Timekeeping,
    rdtsc,
    update_domain_wallclock_time,
    update_vcpu_system_time,
)
from .timer import SystemTime, Timer
from .two_level import TwoLevel
from .reset import evtchn_reset
from .vcpu import Vcpu
from .versions import Bit7, XenVersion, xen_version

#: Where the guest maps shared_info (XENMAPSPACE_shared_info); outside ordinary RAM.
SHARED_INFO_GFN: Gfn = 0xFEFFF
#: xl's default ``max_event_channels`` is 1023 ports (since 4.4).
XL_MAX_EVTCHN_PORT = 1023


class DomctlError(ValueError):
    """A toolstack request Xen refused (e.g. an unknown create flag): not a guest error."""

    def __init__(self, errno: Errno, message: str) -> None:
        super().__init__(f"-{errno.name}: {message}")
        self.errno = errno


class Domain:
    """What Xen keeps for one guest. Create domains with ``Xen.domain_create``."""

    def __init__(self, xen: Xen, domid: DomId, *, vcpus: int, max_evtchn_port: int | None, flags: int,
                 compat: bool, privileged: bool, nr_frames: int) -> None:
        self.xen = xen
        self.domain_id = domid
        self.flags = flags
        self.compat = compat  # has_32bit_shinfo: a 32-bit x86 guest
        self.privileged = privileged
        self.max_evtchn_port = max_evtchn_port  # None: no limit below the ABI's (Xen's INT_MAX)
        self.nr_frames = nr_frames  # guest RAM: gfns 0 .. nr_frames-1 are writable pages
        self.is_dying = False
        self.controller_paused = False
        self.next_evtchn = 0  # a reset in progress resumes here (XSA-344)
        # evtchn_2l_init's d->max_evtchns before XSA-342: latched at creation, before Xen knew
        # the guest's word size, so as for a 64-bit guest (4096)
        self.evtchn_2l_limit = LAYOUT_64.nr_channels
        self.pirq_to_evtchn: dict[int, int] = {}
        self.poll_mask: set[int] = set()  # d->poll_mask: vCPUs in SCHEDOP_poll (the engines hold it too)
        self.memory = GuestMemory()
        frame = self.memory.frame(SHARED_INFO_GFN)
        frame.content, frame.xen_mapping = "shared_info", Structure.SHARED_INFO
        self.shared_info = SharedInfoView(frame, LAYOUT_32 if compat else LAYOUT_64)
        self.vcpus = [Vcpu(self, i) for i in range(vcpus)]
        self.ports = PortTable(xen.domains)
        if xen.version.fixed_port_table:  # QEMU's port_table[EVTCHN_2L_NR_CHANNELS]
            self.ports.grow_to(self.shared_info.layout.nr_channels)
        self.fifo = None  # d->evtchn_fifo: set by the first init_control
        self.port_ops: EvtchnPortOps = TwoLevel(self)  # evtchn_2l_init

    def __repr__(self) -> str:
        return f"<Domain {self.domain_id} {self.abi} vcpus={len(self.vcpus)}>"

    @property
    def abi(self) -> Abi:
        """Abi.TWO_LEVEL or Abi.FIFO: which engine Xen uses for this domain now."""
        return self.port_ops.abi

    @property
    def is_hvm(self) -> bool:
        return bool(self.flags & XEN_DOMCTL_CDF_hvm)

    def max_evtchns(self) -> int:
        """max_evtchns(d): 131072 once FIFO exists, else BITS_PER_EVTCHN_WORD squared for this
        guest; before XSA-342 (62bcdc4edb, 4.15) the 2-level value evtchn_2l_init latched."""
        if self.fifo is not None:
            return EVTCHN_FIFO_NR_CHANNELS
        if self.xen.version.dynamic_2l_limit:
            return self.shared_info.layout.nr_channels
        return self.evtchn_2l_limit

    def fifo_refusal(self) -> int:
        """0, or the errno the 2020 series' flag makes the three FIFO ops return."""
        bit7 = bool(self.flags & (1 << 7))
        meaning = self.xen.version.bit7
        if (meaning is Bit7.DISABLE_FIFO and bit7) or (meaning is Bit7.EVTCHN_FIFO and not bit7):
            return self.xen.disable_fifo_errno
        return 0

    #: HYPERVISOR_event_channel_op(cmd, arg) issued by this domain: returns 0 or -errno.
    evtchn_op = do_event_channel_op

    # What the guest sees of its ports, in either ABI (evtsim.guest_state).
    is_pending = guest_state.is_pending
    is_masked = guest_state.is_masked
    control_block = guest_state.control_block
    event_word = guest_state.event_word

    def is_writable_gfn(self, gfn: int) -> bool:
        """Whether Xen could map ``gfn`` writable for this guest (a RAM page)."""
        return 0 <= gfn < self.nr_frames


def _destroyed(d: Domain) -> Callable[[int, object], int]:
    """What a destroyed domain's ``evtchn_op`` becomes: no guest runs there to make the call."""
    def evtchn_op(cmd: int, arg: object) -> int:
        raise ValueError(f"domain {d.domain_id} was destroyed: it makes no more hypercalls")
    return evtchn_op


@dataclass
class XenConsumer:
    """A port Xen itself consumes (alloc_unbound_xen_event_channel), e.g. an ioreq server."""

    notifications: int = 0

    def __call__(self, vcpu: Vcpu, port: int) -> None:
        self.notifications += 1


class Xen:
    """The hypervisor: domains, their memory, Xen's write record, policy and faults.

    ``version`` picks a row of ``versions.XEN_VERSIONS`` (or a release such as "4.6").
    Dom0 exists from the start, as on a booted host.
    """

    def __init__(self, version: str | XenVersion = "master", *, recording: Recording | str = Recording.COUNTS,
                 dom0_vcpus: int = 1, preempt_reset: bool = False, wallclock: int = DEFAULT_BOOT_WALLCLOCK) -> None:
        if type(preempt_reset) is not bool:
            raise TypeError(f"preempt_reset is True or False, got {preempt_reset!r}")
        _require_int("wallclock", wallclock)
        if not 0 <= wallclock < 1 << 64:
            raise ValueError(f"wallclock is seconds since 1970 (0 .. 2**64-1), got {wallclock}")
        self.version = xen_version(version)
        self.time = SystemTime()  # NOW() is self.time.now; timers fire as it advances
        self.timekeeping = Timekeeping(self, wallclock)
        self._calibration = Timer(self._calibrate)
        self.time.set_timer(self._calibration, EPOCH)
        self.hypercall_table = hypercall_table(self.version)
        self.log = WriteLog(Recording(recording))
        self.domains: dict[DomId, Domain] = {}
        self.xsm = Xsm()
        self.faults = Faults()
        self.disable_fifo_errno = -Errno.ENOSYS  # what the 2020 flag returns (the review's question)
        # hypercall_preempt_check in evtchn_reset answers yes every 64 ports (evtsim.reset)
        self.preempt_reset = preempt_reset
        self.continuations = 0  # hypercall continuations Xen created (-ERESTART turned into *_cont)
        self.console: list[str] = []  # Xen's warnings (printk), e.g. lost events
        self.global_virq_handlers: dict[int, Domain] = {}
        self.xen_consumers: dict[tuple[DomId, int], XenConsumer] = {}
        self._next_domid = 1
        dom0_flags = 1 << 7 if self.version.bit7 is Bit7.EVTCHN_FIFO else 0  # v5: dom0 gets FIFO
        self._sanitise(dom0_flags, dom0_vcpus)
        self.dom0 = self._new_domain(0, vcpus=dom0_vcpus, max_evtchn_port=None, flags=dom0_flags, compat=False,
                                     privileged=True, nr_frames=1 << 18)  # dom0: no port limit (INT_MAX)

    @property
    def clock(self) -> int:
        """Logical time: one tick per hypercall (and per ``tick()``); the write log stamps writes
        with it. Not system time: that is ``now``, in nanoseconds, which moves only by ``advance``."""
        return self.log.clock

    def tick(self) -> int:
        """Advance logical time by one step and return it."""
        self.log.clock += 1
        return self.log.clock

    # --- system time -----------------------------------------------------------------------

    @property
    def now(self) -> int:
        """NOW(): Xen's system time in nanoseconds since this Xen booted (starts at 0)."""
        return self.time.now

    def advance(self, ns: int) -> int:
        """Let ``ns`` nanoseconds of system time pass, firing every timer that falls due (a
        vCPU's one-shot timer raises VIRQ_TIMER; a poll times out); returns the new ``now``."""
        return self.time.advance(ns)

    def next_deadline(self) -> int | None:
        """When the earliest pending timer fires (system time in ns), or None."""
        return self.time.next_deadline()

    def rdtsc(self) -> int:
        """The virtual TSC a guest reads now (``timekeeping.TSC_HZ`` ticks a second)."""
        return rdtsc(self.time.now)

    def settime(self, secs: int, nsecs: int = 0) -> None:
        """do_settime (dom0's XENPF_settime): the wallclock reads ``secs``.``nsecs`` now."""
        _require_int("secs", secs)
        _require_int("nsecs", nsecs)
        if secs < 0 or not 0 <= nsecs < 1_000_000_000:
            raise ValueError(f"settime takes secs >= 0 and 0 <= nsecs < 10**9, got {secs}, {nsecs}")
        self.timekeeping.settime(secs, nsecs)

    def _calibrate(self) -> None:
        """The time calibration timer: restamp and rewrite running vCPUs' records every EPOCH."""
        self.timekeeping.calibrate()
        self.time.set_timer(self._calibration, self.time.now + EPOCH)

    def domain_create(self, *, vcpus: int = 1, max_evtchn_port: int | None = None,
                      flags: int = XEN_DOMCTL_CDF_hvm, compat: bool = False, privileged: bool = False,
                      domid: DomId | None = None, nr_frames: int = 1 << 18) -> Domain:
        """XEN_DOMCTL_createdomain as xl issues it; raises DomctlError where Xen refuses.

        ``max_evtchn_port`` is xl's ``max_event_channels`` (XEN_DOMCTL_set_max_evtchn, a77eb86f44,
        4.4): None takes xl's default, 1023, where the knob exists; Xen 4.3 and QEMU have no
        such knob, so their guests are limited by the ABI alone and a value is refused.
        """
        self._sanitise(flags, vcpus)
        limit = self._max_evtchn_port(max_evtchn_port)
        if domid is None:
            domid, self._next_domid = self._next_domid, self._next_domid + 1
        if domid in self.domains or not 0 <= domid < DOMID_SELF:
            raise DomctlError(Errno.EEXIST, f"domain id {domid} is taken or out of range")
        return self._new_domain(domid, vcpus=vcpus, max_evtchn_port=limit, flags=flags, compat=compat,
                                privileged=privileged, nr_frames=nr_frames)

    def _new_domain(self, domid: DomId, **config: object) -> Domain:
        d = Domain(self, domid, **config)
        self.domains[domid] = d
        update_domain_wallclock_time(d)  # arch_set_info_guest for vCPU 0
        for v in d.vcpus:
            update_vcpu_system_time(v)  # each vCPU is scheduled in with a fresh record
        return d

    def _max_evtchn_port(self, value: int | None) -> int | None:
        """The limit a new domain gets: xl's default or ``value`` where the knob exists."""
        if value is not None and (type(value) is not int or value < 0):
            raise TypeError(f"max_evtchn_port is a port number (a non-negative int) or None, got {value!r}")
        if not self.version.max_evtchn_port:
            if value is not None:
                raise DomctlError(Errno.ENOSYS, f"Xen {self.version.name} has no max_evtchn_port "
                                                "(XEN_DOMCTL_set_max_evtchn arrived in 4.4, a77eb86f44)")
            return None
        return XL_MAX_EVTCHN_PORT if value is None else value

    def _sanitise(self, flags: int, vcpus: int) -> None:
        if not 1 <= vcpus <= XEN_LEGACY_MAX_VCPUS:
            raise DomctlError(Errno.EINVAL, f"evtsim models 1..{XEN_LEGACY_MAX_VCPUS} vCPUs, got {vcpus}")
        known = XEN_DOMCTL_CDF_BASE | (0 if self.version.bit7 is Bit7.UNKNOWN else 1 << 7)
        if flags & ~known:
            raise DomctlError(Errno.EINVAL, f"create flags {flags:#x} unknown to Xen {self.version.name}")

    def domain(self, domid: DomId, caller: Domain | None = None) -> Domain | None:
        """rcu_lock_domain_by_any_id: DOMID_SELF is the caller; None if there is no such domain."""
        if domid == DOMID_SELF and caller is not None:
            return caller
        return self.domains.get(domid)

    def domain_destroy(self, d: Domain) -> None:
        """domain_kill -> evtchn_destroy: close every port (high to low), then drop FIFO.

        The domain's object stays, for the snapshots that name it, but it is not a guest any
        more: its hypercalls, another destroy or a soft reset raise ValueError.
        """
        self._check_alive(d, "destroy")
        d.is_dying = True
        for v in d.vcpus:
            self.time.stop_timer(v.singleshot_timer)
            self.time.stop_timer(v.poll_timer)
        for port in range(d.ports.valid_evtchns - 1, 0, -1):
            evtchn_close(d, port, guest=False)
        if d.fifo is not None:
            d.fifo.destroy()
        for virq, handler in list(self.global_virq_handlers.items()):
            if handler is d:
                del self.global_virq_handlers[virq]
        del self.domains[d.domain_id]
        d.evtchn_op = _destroyed(d)  # an instance attribute: live domains pay nothing for it

    def _check_alive(self, d: Domain, action: str) -> None:
        """Simulator misuse: ``d`` must be a live domain of this Xen."""
        domid = getattr(d, "domain_id", None)
        if self.domains.get(domid) is not d:
            why = "it was destroyed" if getattr(d, "xen", None) is self else "it is not a domain of this Xen"
            raise ValueError(f"cannot {action} {f'domain {domid}' if domid is not None else repr(d)}: {why}")

    def domain_pause(self, d: Domain, paused: bool = True) -> None:
        """XEN_DOMCTL_pausedomain / unpausedomain (controller pause)."""
        self._check_alive(d, "pause")
        d.controller_paused = paused

    def domain_soft_reset(self, d: Domain, resuming: bool = False) -> int:
        """XEN_DOMCTL_soft_reset (1a043f9dc7, 4.7): evtchn_reset, reverting FIFO to 2-level.

        The toolstack runs it for a guest that asked for SHUTDOWN_soft_reset (kexec). Where the
        reset can be preempted (XSA-344) it may return -ERESTART: the toolstack's hypercall is
        then continued as XEN_DOMCTL_soft_reset_cont, which is ``resuming=True`` here.
        """
        if type(resuming) is not bool:
            raise TypeError(f"resuming is True (XEN_DOMCTL_soft_reset_cont) or False, got {resuming!r}")
        self._check_alive(d, "soft-reset")
        if not self.version.soft_reset:
            return -Errno.ENOSYS
        rc = evtchn_reset(d, None, resuming, revert=True)
        if rc == -Errno.ERESTART:
            self.continuations += 1
        return rc

    # --- Xen-originated events (evtsim.virq) ----------------------------------------------

    send_guest_vcpu_virq = virq.send_guest_vcpu_virq
    send_guest_global_virq = virq.send_guest_global_virq
    send_global_virq = virq.send_global_virq
    send_guest_pirq = virq.send_guest_pirq

    def alloc_unbound_xen_event_channel(self, d: Domain, vcpu: int, remote_domid: DomId,
                                        ) -> int:
        """alloc_unbound_xen_event_channel: an unbound port that Xen, not the guest, consumes."""
        port = get_free_port(d)
        if port < 0:
            return port
        chn = d.ports.chn[port]
        chn.state, chn.notify_vcpu_id, chn.remote_domid = ECS.ECS_UNBOUND, vcpu, remote_domid
        chn.xen_consumer = 1
        self.xen_consumers[(d.domain_id, port)] = XenConsumer()
        return port


def _require_int(what: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")
