"""The guest's one-shot timer and VIRQ_TIMER: set_timer_op and VCPUOP_set/stop_singleshot_timer.

Mirrors do_set_timer_op (xen/common/sched/core.c), the timer cases of do_vcpu_op
(xen/common/domain.c) and send_timer_event: at the deadline Xen raises VIRQ_TIMER with
send_guest_vcpu_virq, so the timer's port becomes pending in guest memory.
"""

from __future__ import annotations

import pytest
from conftest import VIRQ, setup_op, shinfo_pending

from evtsim import (
    SCHEDOP_block,
    VCPU_SSHOTTMR_future,
    VCPUOP_set_singleshot_timer,
    VCPUOP_stop_singleshot_timer,
    VIRQ_TIMER,
    Errno,
    RunState,
    VcpuOp,
    VcpuSetSingleshotTimer,
    Xen,
)

MS = 1_000_000


def timer_port(d, vcpu: int = 0) -> int:
    """bind_virq(VIRQ_TIMER) on ``vcpu``, as Linux's xen_setup_timer does: the port."""
    return setup_op(d, VIRQ, virq=VIRQ_TIMER, vcpu=vcpu).port


def singleshot(v, timeout: int, flags: int = 0, vcpuid: int | None = None) -> int:
    arg = VcpuSetSingleshotTimer(timeout_abs_ns=timeout, flags=flags)
    return v.vcpu_op(VCPUOP_set_singleshot_timer, v.vcpu_id if vcpuid is None else vcpuid, arg)




@pytest.fixture
def guest(either_abi):
    """Here every ``guest`` test runs in both ABIs (conftest's either_abi)."""
    return either_abi

# --- the timer fires VIRQ_TIMER ----------------------------------------------------------------


@pytest.mark.parametrize("arm", ["set_timer_op", "singleshot"])
def test_the_timer_port_goes_pending_at_the_deadline_and_not_before(guest, arm):
    xen, v = guest.xen, guest.vcpus[1]
    port = timer_port(guest, 1)
    deadline = xen.now + 4 * MS
    assert (v.set_timer_op(deadline) if arm == "set_timer_op" else singleshot(v, deadline)) == 0
    xen.advance(4 * MS - 1)
    assert not guest.is_pending(port)
    xen.advance(1)
    assert guest.is_pending(port) and v.upcalls == 1
    assert not v.singleshot_timer.active  # one-shot: it does not fire again


def test_the_timer_wakes_a_blocked_vcpu(guest):
    """The usual idle loop: arm the timer, SCHEDOP_block, be woken by VIRQ_TIMER."""
    xen, v = guest.xen, guest.vcpus[0]
    timer_port(guest, 0)
    v.set_timer_op(xen.now + MS)
    v.sched_op(SCHEDOP_block)
    assert v.run_state is RunState.BLOCKED
    xen.advance(MS)
    assert v.run_state is RunState.RUNNING


def test_a_2_level_timer_event_is_the_pending_bit_the_guest_reads():
    d = Xen().domain_create()
    port = timer_port(d)
    d.vcpus[0].set_timer_op(MS)
    d.xen.advance(MS)
    assert shinfo_pending(d, port)


def test_an_unbound_timer_fires_into_nothing():
    xen = Xen()
    d = xen.domain_create()
    d.vcpus[0].set_timer_op(MS)
    xen.advance(MS)
    assert d.vcpus[0].upcalls == 0


def test_a_new_deadline_replaces_the_old_one(guest):
    xen, v = guest.xen, guest.vcpus[0]
    port = timer_port(guest)
    v.set_timer_op(10 * MS)
    singleshot(v, 2 * MS)
    xen.advance(2 * MS)
    assert guest.is_pending(port)


@pytest.mark.parametrize("stop", ["set_timer_op(0)", "stop_singleshot_timer"])
def test_a_stopped_timer_does_not_fire(guest, stop):
    xen, v = guest.xen, guest.vcpus[0]
    port = timer_port(guest)
    v.set_timer_op(MS)
    rc = v.set_timer_op(0) if stop.startswith("set") else v.vcpu_op(VCPUOP_stop_singleshot_timer, 0)
    assert rc == 0
    xen.advance(10 * MS)
    assert not guest.is_pending(port)


# --- set_timer_op: the huge-timeout workaround -------------------------------------------------


@pytest.mark.parametrize("timeout", [(1 << 64) - 5, 1 << 63, (1 << 50) + 10 * MS])
def test_a_wrapped_or_far_off_deadline_fires_in_100_ms(timeout):
    """do_set_timer_op's Linux workaround: negative as s_time_t, or more than 2**50 ns ahead."""
    xen = Xen()
    d = xen.domain_create()
    port = timer_port(d)
    xen.advance(10 * MS)
    assert d.vcpus[0].set_timer_op(timeout) == 0
    assert d.vcpus[0].singleshot_timer.expires == 110 * MS
    assert any("huge timeout" in line for line in xen.console)
    xen.advance(100 * MS)
    assert d.is_pending(port)


def test_a_deadline_2_to_the_50_ns_ahead_is_still_taken_as_given():
    xen = Xen()
    d = xen.domain_create()
    d.vcpus[0].set_timer_op((1 << 50) - 1)
    assert d.vcpus[0].singleshot_timer.expires == (1 << 50) - 1


def test_a_past_deadline_fires_at_once():
    xen = Xen()
    d = xen.domain_create()
    port = timer_port(d)
    xen.advance(5 * MS)
    d.vcpus[0].set_timer_op(MS)
    assert d.is_pending(port)


# --- VCPUOP_set_singleshot_timer: VCPU_SSHOTTMR_future and its -ETIME, by release --------------


@pytest.mark.parametrize("version, rc, fired", [("4.3", -Errno.ETIME, False), ("4.17", -Errno.ETIME, False),
                                                ("4.18", 0, True), ("master", 0, True), ("qemu", 0, True)])
def test_a_past_deadline_with_sshottmr_future_is_etime_until_xen_ignores_the_flag(version, rc, fired):
    """Xen honoured VCPU_SSHOTTMR_future until 19c6cbd909 (4.18): now it raises the timer at once."""
    xen = Xen(version)
    d = xen.domain_create()
    port = timer_port(d)
    xen.advance(5 * MS)
    assert singleshot(d.vcpus[0], MS, VCPU_SSHOTTMR_future) == rc
    assert d.is_pending(port) is fired


@pytest.mark.parametrize("version", ["4.3", "4.17", "4.18", "master"])
def test_a_past_deadline_without_the_flag_fires_at_once_in_every_release(version):
    xen = Xen(version)
    d = xen.domain_create()
    port = timer_port(d)
    xen.advance(5 * MS)
    assert singleshot(d.vcpus[0], MS) == 0
    assert d.is_pending(port)


def test_a_future_deadline_with_the_flag_is_armed_as_usual():
    xen = Xen("4.17")
    d = xen.domain_create()
    assert singleshot(d.vcpus[0], 3 * MS, VCPU_SSHOTTMR_future) == 0
    assert d.vcpus[0].singleshot_timer.expires == 3 * MS and d.vcpus[0].singleshot_timer.active


def test_a_deadline_of_2_to_the_63_counts_as_future_but_fires_at_once():
    """Compared with NOW() unsigned, handed to set_timer as a negative s_time_t."""
    xen = Xen("4.17")
    d = xen.domain_create()
    port = timer_port(d)
    xen.advance(MS)
    assert singleshot(d.vcpus[0], 1 << 63, VCPU_SSHOTTMR_future) == 0
    assert d.is_pending(port)


# --- do_vcpu_op's errors, in its order ---------------------------------------------------------


@pytest.mark.parametrize("vcpuid", [2, 32, -1])
def test_a_vcpu_the_domain_does_not_have_is_enoent_before_the_command_is_looked_at(vcpuid):
    v = Xen().domain_create(vcpus=2).vcpus[0]
    assert v.vcpu_op(VCPUOP_stop_singleshot_timer, vcpuid) == -Errno.ENOENT
    assert v.vcpu_op(999, vcpuid) == -Errno.ENOENT


def test_a_vcpuid_is_truncated_to_unsigned_int():
    v = Xen().domain_create(vcpus=2).vcpus[0]
    assert v.vcpu_op(VCPUOP_stop_singleshot_timer, 1 << 32) == 0  # vCPU 0: the caller itself


def test_another_vcpus_timer_is_einval():
    d = Xen().domain_create(vcpus=2)
    v0 = d.vcpus[0]
    assert singleshot(v0, MS, vcpuid=1) == -Errno.EINVAL
    assert v0.vcpu_op(VCPUOP_stop_singleshot_timer, 1) == -Errno.EINVAL


def test_an_unknown_vcpu_op_is_enosys_and_an_unmodelled_one_a_value_error():
    v = Xen().domain_create().vcpus[0]
    assert v.vcpu_op(999, 0) == -Errno.ENOSYS
    with pytest.raises(ValueError, match="VCPUOP_up"):
        v.vcpu_op(VcpuOp.VCPUOP_up, 0)


@pytest.mark.parametrize("call", [
    lambda v: v.vcpu_op(VCPUOP_set_singleshot_timer, 0, None),
    lambda v: v.vcpu_op(VCPUOP_set_singleshot_timer, 0.0, VcpuSetSingleshotTimer()),
    lambda v: v.vcpu_op("8", 0),
    lambda v: v.set_timer_op(1.5),
    lambda v: VcpuSetSingleshotTimer(timeout_abs_ns="now"),
])
def test_python_misuse_of_the_timer_calls_is_a_type_error(call):
    with pytest.raises(TypeError):
        call(Xen().domain_create().vcpus[0])


def test_a_32_bit_guest_arms_its_timer_the_same_way():
    xen = Xen()
    d = xen.domain_create(compat=True)
    port = timer_port(d)
    singleshot(d.vcpus[0], MS)
    xen.advance(MS)
    assert d.is_pending(port)
