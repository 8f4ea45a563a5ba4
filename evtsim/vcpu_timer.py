"""The guest's one-shot timer, which raises VIRQ_TIMER on its vCPU when the deadline comes.

Models HYPERVISOR_set_timer_op (do_set_timer_op, xen/common/sched/core.c), the timer cases
of HYPERVISOR_vcpu_op (do_vcpu_op, xen/common/domain.c: VCPUOP_set_singleshot_timer and
VCPUOP_stop_singleshot_timer) and vcpu_singleshot_timer_fn / send_timer_event, which sends
VIRQ_TIMER with send_guest_vcpu_virq. Deadlines are absolute system times (``Xen.now``).

VCPU_SSHOTTMR_future asked Xen to refuse a deadline already past with -ETIME; Xen ignores the
flag since 19c6cbd909 (first released in 4.18) and raises the timer at once instead
(``XenVersion.singleshot_future_etime``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import VCPU_SSHOTTMR_future, VIRQ_TIMER, Errno, VcpuOp, VcpuSetSingleshotTimer, u32, u64
from .sched import require_int, require_running
from .timer import MILLISECOND, s_time

if TYPE_CHECKING:
    from .xen import Vcpu

#: do_set_timer_op's answer to a deadline wrapped negative or more than 2**50 ns (~13 days) away.
HUGE_TIMEOUT_DELAY = 100 * MILLISECOND
TIMER_OPS = frozenset({VcpuOp.VCPUOP_set_singleshot_timer, VcpuOp.VCPUOP_stop_singleshot_timer})


def send_timer_event(v: Vcpu) -> None:
    """send_timer_event (also vcpu_singleshot_timer_fn): VIRQ_TIMER on ``v``."""
    v.domain.xen.send_guest_vcpu_virq(v, VIRQ_TIMER)


def do_set_timer_op(v: Vcpu, timeout: int) -> int:
    """HYPERVISOR_set_timer_op(timeout) from ``v``: 0 always; 0 stops the timer.

    A deadline that wrapped negative, or lies more than 2**50 ns ahead, is taken as "in
    100 ms": old Linux kernels set such deadlines from jiffies wrap-around or when they had
    no timer at all, and Xen chose neither never nor now (the "huge timeout" workaround).
    """
    require_int("timeout", timeout)
    require_running(v)
    xen = v.domain.xen
    xen.log.clock += 1
    clock, timeout = xen.time, s_time(timeout)
    offset = timeout - clock.now
    if timeout == 0:
        clock.stop_timer(v.singleshot_timer)
    elif timeout < 0 or (offset > 0 and (offset >> 50) & 0xFFFF_FFFF):
        xen.console.append(f"d{v.domain.domain_id}v{v.vcpu_id} Warning: huge timeout set: {timeout & (1 << 64) - 1:#x}")
        clock.set_timer(v.singleshot_timer, clock.now + HUGE_TIMEOUT_DELAY)
    else:
        clock.set_timer(v.singleshot_timer, timeout)
    return 0


def do_vcpu_op(v: Vcpu, cmd: int, vcpuid: int, arg: VcpuSetSingleshotTimer | None = None) -> int:
    """HYPERVISOR_vcpu_op(cmd, vcpuid, arg) from ``v``: the one-shot timer ops.

    -ENOENT for a vCPU the domain does not have (checked first), -EINVAL when the timer named
    is not the caller's own, -ENOSYS for an unknown command.
    """
    require_int("cmd (a VCPUOP_* number)", cmd)
    require_int("vcpuid", vcpuid)
    require_running(v)
    v.domain.xen.log.clock += 1
    vcpuid = u32(vcpuid)
    if vcpuid >= len(v.domain.vcpus):
        return -Errno.ENOENT
    target = v.domain.vcpus[vcpuid]
    if cmd == VcpuOp.VCPUOP_set_singleshot_timer:
        if type(arg) is not VcpuSetSingleshotTimer:
            raise TypeError(f"VCPUOP_set_singleshot_timer takes VcpuSetSingleshotTimer, got {type(arg).__name__}")
        return -Errno.EINVAL if target is not v else set_singleshot_timer(v, arg)
    if cmd == VcpuOp.VCPUOP_stop_singleshot_timer:
        if target is not v:
            return -Errno.EINVAL
        v.domain.xen.time.stop_timer(v.singleshot_timer)
        return 0
    if cmd in VcpuOp._value2member_map_:
        raise ValueError(f"{VcpuOp(cmd).name} exists in Xen but evtsim does not model it")
    return -Errno.ENOSYS


def set_singleshot_timer(v: Vcpu, arg: VcpuSetSingleshotTimer) -> int:
    """VCPUOP_set_singleshot_timer: arm ``v``'s timer for ``timeout_abs_ns``.

    The deadline is compared with NOW() as an unsigned number, then given to set_timer as a
    signed one: a deadline of 2**63 or more counts as "future" and yet fires at once.
    """
    xen, timeout = v.domain.xen, u64(arg.timeout_abs_ns)
    clock = xen.time
    if xen.version.singleshot_future_etime:
        if u32(arg.flags) & VCPU_SSHOTTMR_future and timeout < clock.now:
            return -Errno.ETIME
    elif timeout < clock.now:
        clock.stop_timer(v.singleshot_timer)
        send_timer_event(v)
        return 0
    clock.set_timer(v.singleshot_timer, s_time(timeout))
    return 0
