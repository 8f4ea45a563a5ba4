"""A vCPU as Xen keeps it: its ``vcpu_info``, VIRQ ports, run state, timers and upcall counts.

The hypercalls a vCPU makes for itself live here as methods, as ``Domain.evtchn_op`` does
for the event-channel ones: ``sched_op`` (block, poll, yield), ``set_timer_op`` and
``vcpu_op`` (the one-shot timer). ``run`` is the vCPU executing guest code, which is when
Xen delivers an upcall.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .abi import NR_VIRQS, RunState
from .memory import VCPU_INFO_SIZE, Structure, VcpuInfoView
from .sched import do_sched_op, poll_timer_fn, run_state, vcpu_run, vcpu_unblock
from .timer import Timer
from .vcpu_timer import do_set_timer_op, do_vcpu_op, send_timer_event

if TYPE_CHECKING:
    from .xen import Domain


class Vcpu:
    """One vCPU of a domain (``struct vcpu``).

    Upcalls are counted twice, because raising one and taking it are different moments:

    * ``upcalls``: how often Xen *raised* the upcall: vcpu_mark_events_pending found
      ``evtchn_upcall_pending`` clear and set it (then kicked the vCPU, or asserted the HVM
      callback). Setting it while it is still set raises nothing.
    * ``upcalls_delivered``: how often the vCPU *took* it: it ran (``run``) while an upcall
      was pending and, for PV, ``evtchn_upcall_mask`` was clear.

    ``blocked`` is Xen's ``_VPF_blocked``; ``run_state`` tells running, blocked and polling
    apart. ``poll_evtchn`` is the one port a single-port poll waits for (-1: several ports).
    """

    __slots__ = ("vcpu_id", "domain", "vcpu_info", "virq_to_evtchn", "upcalls", "upcalls_delivered", "blocked",
                 "poll_evtchn", "singleshot_timer", "poll_timer")

    def __init__(self, domain: Domain, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.domain = domain
        shinfo = domain.shared_info
        self.vcpu_info = VcpuInfoView(shinfo.frame, vcpu_id * VCPU_INFO_SIZE, shinfo.layout)
        self.virq_to_evtchn = [0] * NR_VIRQS
        self.upcalls = 0
        self.upcalls_delivered = 0
        self.blocked = False
        self.poll_evtchn = 0
        self.singleshot_timer = Timer(lambda: send_timer_event(self))  # vcpu_singleshot_timer_fn
        self.poll_timer = Timer(lambda: poll_timer_fn(self))

    def __repr__(self) -> str:
        return f"<Vcpu {self.vcpu_id} of dom{self.domain.domain_id} {self.run_state}>"

    @property
    def run_state(self) -> RunState:
        """RunState.RUNNING, BLOCKED or POLLING."""
        return run_state(self)

    def mark_events_pending(self) -> None:
        """vcpu_mark_events_pending (xen/arch/x86/domain.c): raise only on a 0->1 change, and
        kick the vCPU, which wakes it if it was blocked or polling (vcpu_kick)."""
        info = self.vcpu_info
        if info.bytes[0]:
            return
        info.bytes[0] = 1
        self.domain.xen.log.wrote(self.domain.domain_id, info.frame, info.offset, Structure.VCPU_INFO, 1)
        self.upcalls += 1
        if self.blocked:
            vcpu_unblock(self)

    #: HYPERVISOR_sched_op(cmd, arg) issued by this vCPU: 0 or -errno.
    sched_op = do_sched_op
    #: HYPERVISOR_set_timer_op(timeout) issued by this vCPU: 0 (0 stops the timer).
    set_timer_op = do_set_timer_op
    #: HYPERVISOR_vcpu_op(cmd, vcpuid, arg) issued by this vCPU: 0 or -errno.
    vcpu_op = do_vcpu_op

    def run(self, upcall: Callable[[int], object]) -> bool:
        """The vCPU runs guest code: if Xen may deliver a pending upcall, ``upcall(vcpu_id)``
        runs as the guest's event handler. Returns whether an upcall was delivered."""
        if not callable(upcall):
            raise TypeError(f"run takes the guest's upcall handler, a callable of the vCPU id, got {upcall!r}")
        return vcpu_run(self, upcall)
