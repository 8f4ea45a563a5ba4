"""vCPU run states and the scheduler hypercall: block, poll, yield, and who wakes whom.

Models xen/common/sched/core.c (do_sched_op, vcpu_block_enable_events / vcpu_block,
do_poll, vcpu_yield, poll_timer_fn), the wake-ups of xen/include/xen/sched.h (vcpu_unblock)
and xen/common/event_channel.c (evtchn_check_pollers), and x86's event-delivery test
(local_events_need_delivery in asm/event.h). do_poll's checks and their order are those of
RELEASE-4.15.0 onwards, read at xen-project/xen 01ca29f0b1 (a 4.17-era tree): more than 128
ports is -EINVAL, a guest array that ends early is -EFAULT at the first entry past its end,
and a port that is not valid or not usable (evtchn_port_poll) is -EINVAL. Rows before 4.15
check validity only (``XenVersion.poll_checks_usable``).

A vCPU is *blocked* while Xen's ``_VPF_blocked`` is set; it is *polling* while it is also in
its domain's ``poll_mask``. A woken poller may stay in ``poll_mask`` until the next event of
the domain clears it, exactly as in Xen: the bit is cleaned up lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .abi import SCHED_POLL_MAX_PORTS, Errno, RunState, SchedOp, SchedPoll, u32
from .memory import Structure
from .timekeeping import update_vcpu_system_time
from .timer import s_time

if TYPE_CHECKING:
    from .xen import Domain, Vcpu

#: Sub-ops Xen has that evtsim does not model: a clear ValueError, not a made-up errno.
UNMODELLED = frozenset(SchedOp) - {SchedOp.SCHEDOP_yield, SchedOp.SCHEDOP_block, SchedOp.SCHEDOP_poll}


def run_state(v: Vcpu) -> RunState:
    """RUNNING, BLOCKED (SCHEDOP_block) or POLLING (SCHEDOP_poll) from Xen's flags."""
    if not v.blocked:
        return RunState.RUNNING
    return RunState.POLLING if v.vcpu_id in v.domain.poll_mask else RunState.BLOCKED


def events_need_delivery(v: Vcpu) -> bool:
    """local_events_need_delivery: PV needs upcall_pending and no upcall_mask.

    An HVM vCPU gets the callback vector whenever an upcall is pending; Xen ignores
    ``evtchn_upcall_mask`` for HVM (its guest's own interrupt flag, which evtsim does not
    model, decides; evtsim takes it as enabled).
    """
    info = v.vcpu_info.bytes
    return bool(info[0]) and (v.domain.is_hvm or not info[1])


def set_upcall_mask(v: Vcpu, masked: int) -> None:
    """Xen stores ``evtchn_upcall_mask`` (local_event_delivery_disable / _enable)."""
    info = v.vcpu_info
    info.bytes[1] = masked
    v.domain.xen.log.wrote(v.domain.domain_id, info.frame, info.offset + 1, Structure.VCPU_INFO, masked)


def vcpu_unblock(v: Vcpu) -> None:
    """vcpu_unblock: clear ``_VPF_blocked``; the woken vCPU is scheduled in with a fresh clock."""
    if v.blocked:
        v.blocked = False
        update_vcpu_system_time(v)


def evtchn_check_pollers(d: Domain, port: int) -> None:
    """evtchn_check_pollers: wake pollers of ``port``, and those polling several ports (any
    event may be theirs), lowest vCPU first. The caller knows ``d.poll_mask`` is not empty."""
    for vcpu_id in sorted(d.poll_mask):
        v = d.vcpus[vcpu_id]
        if (v.poll_evtchn <= 0 or v.poll_evtchn == port) and vcpu_id in d.poll_mask:
            d.poll_mask.discard(vcpu_id)
            v.poll_evtchn = 0
            vcpu_unblock(v)


def poll_timer_fn(v: Vcpu) -> None:
    """poll_timer_fn: the poll timed out; wake ``v`` if it is still polling."""
    d = v.domain
    if v.vcpu_id in d.poll_mask:
        d.poll_mask.discard(v.vcpu_id)
        vcpu_unblock(v)


def do_sched_op(v: Vcpu, cmd: int, arg: SchedPoll | None = None) -> int:
    """HYPERVISOR_sched_op(cmd, arg) from ``v``: 0 or -errno; unknown commands get -ENOSYS."""
    require_int("cmd (a SCHEDOP_* number)", cmd)
    require_running(v)
    v.domain.xen.log.clock += 1
    if cmd == SchedOp.SCHEDOP_yield:
        return 0  # vcpu_yield: no other vCPU waits for a CPU in evtsim
    if cmd == SchedOp.SCHEDOP_block:
        vcpu_block_enable_events(v)
        return 0
    if cmd == SchedOp.SCHEDOP_poll:
        if type(arg) is not SchedPoll:
            raise TypeError(f"SCHEDOP_poll takes SchedPoll, got {type(arg).__name__}")
        return do_poll(v, arg)
    if cmd in UNMODELLED:
        raise ValueError(f"{SchedOp(cmd).name} exists in Xen but evtsim does not model it")
    return -Errno.ENOSYS


def require_int(what: str, value: object) -> None:
    """Simulator misuse: a hypercall argument that is not an integer raises TypeError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")


def require_running(v: Vcpu) -> None:
    """Simulator misuse: only a running vCPU executes guest code, so only it makes hypercalls."""
    if v.blocked:
        raise ValueError(f"dom{v.domain.domain_id} vCPU {v.vcpu_id} is {run_state(v)}: "
                         "it runs no guest code, so it issues no hypercalls, until it is woken")


def vcpu_block_enable_events(v: Vcpu) -> None:
    """SCHEDOP_block: enable event delivery (upcall_mask = 0), then vcpu_block.

    vcpu_block sets ``_VPF_blocked`` and only then checks for events, so an upcall that is
    already pending ends the block at once (no "wakeup waiting" race).
    """
    set_upcall_mask(v, 0)
    v.blocked = True
    if events_need_delivery(v):
        v.blocked = False


def do_poll(v: Vcpu, poll: SchedPoll) -> int:
    """do_poll: block until a listed port is pending, an upcall is due, or ``timeout``.

    Returns 0 at once when a listed port is already pending or an upcall can be delivered.
    A single port is remembered in ``poll_evtchn``; with several, any event of the domain
    wakes the vCPU, which must look for itself (evtchn_check_pollers).
    """
    d, nr_ports = v.domain, u32(poll.nr_ports)
    if nr_ports > SCHED_POLL_MAX_PORTS:
        return -Errno.EINVAL
    v.blocked = True
    v.poll_evtchn = -1
    d.poll_mask.add(v.vcpu_id)
    rc = _poll_ports(v, poll, nr_ports)
    if rc is not None:
        v.poll_evtchn = 0
        d.poll_mask.discard(v.vcpu_id)
        v.blocked = False
        return rc
    if nr_ports == 1:
        v.poll_evtchn = u32(poll.ports[0])
    if poll.timeout & (1 << 64) - 1:
        d.xen.time.set_timer(v.poll_timer, s_time(poll.timeout))
    return 0


def _poll_ports(v: Vcpu, poll: SchedPoll, nr_ports: int) -> int | None:
    """do_poll's checks before blocking: the rc to return at once, or None to block."""
    if events_need_delivery(v):
        return 0
    for i in range(nr_ports):
        if i >= len(poll.ports):
            return -Errno.EFAULT  # __copy_from_guest_offset past the guest's array
        rc = evtchn_port_poll(v.domain, u32(poll.ports[i]))
        if rc:
            return 0 if rc > 0 else rc
    return None


def evtchn_port_poll(d: Domain, port: int) -> int:
    """evtchn_port_poll: -EINVAL for an invalid (or, since 4.15, unusable) port, else 1 if pending."""
    if not d.ports.is_valid(port):
        return -Errno.EINVAL
    if d.ports.usable(port):
        return int(d.port_ops.is_pending(port))
    # Before 4.15 an unusable port only counted as not pending: the poll blocked on it.
    return -Errno.EINVAL if d.xen.version.poll_checks_usable else 0


def vcpu_run(v: Vcpu, upcall: Callable[[int], object]) -> bool:
    """The vCPU runs guest code: Xen first delivers a pending upcall if it may.

    A blocked or polling vCPU does not run. A PV vCPU takes the upcall only with
    ``evtchn_upcall_mask`` clear; Xen sets the mask as it enters the event callback (the
    bounce frame, like an interrupt gate clearing IF) and the guest's return (HYPERVISOR_iret)
    clears it again. An HVM vCPU takes the callback vector. Returns whether it delivered.
    """
    if v.blocked or not events_need_delivery(v):
        return False
    v.upcalls_delivered += 1
    if v.domain.is_hvm:
        upcall(v.vcpu_id)
        return True
    set_upcall_mask(v, 1)
    upcall(v.vcpu_id)
    set_upcall_mask(v, 0)
    return True
