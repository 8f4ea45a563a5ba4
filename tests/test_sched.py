"""vCPU run states: SCHEDOP_block, SCHEDOP_poll and SCHEDOP_yield, and who wakes whom.

Mirrors xen/common/sched/core.c (do_sched_op, vcpu_block_enable_events, do_poll,
poll_timer_fn) and xen/common/event_channel.c (evtchn_check_pollers), with the 2-level and
FIFO set_pending paths that call it when a port's pending bit is newly set.
"""

from __future__ import annotations

import pytest
from conftest import EXPAND, INIT, IPI, L, M, P, ipi, send, setup_op, shinfo_mask, to_fifo

from evtsim import (
    SCHEDOP_block,
    SCHEDOP_poll,
    SCHEDOP_yield,
    XEN_DOMCTL_CDF_hvm,
    Errno,
    RunState,
    SchedOp,
    SchedPoll,
    Xen,
)

RUNNING, BLOCKED, POLLING = RunState.RUNNING, RunState.BLOCKED, RunState.POLLING
MS = 1_000_000


def pv_guest(xen: Xen, vcpus: int = 2):
    """A PV guest (no XEN_DOMCTL_CDF_hvm): Xen honours its evtchn_upcall_mask."""
    return xen.domain_create(vcpus=vcpus, flags=0)


def poll(v, *ports: int, timeout: int = 0, nr_ports: int | None = None) -> int:
    return v.sched_op(SCHEDOP_poll, SchedPoll(ports=ports, nr_ports=len(ports) if nr_ports is None else nr_ports,
                                               timeout=timeout))



def mask(d, port: int) -> None:
    """The guest masks ``port`` itself, in whichever ABI it runs."""
    if d.fifo is None:
        shinfo_mask(d, port)
    else:
        d.fifo.pages[0][port] |= M



@pytest.fixture
def guest(either_abi):
    """Here every ``guest`` test runs in both ABIs (conftest's either_abi)."""
    return either_abi

# --- SCHEDOP_block -------------------------------------------------------------------------


def test_block_enables_event_delivery_then_blocks(xen):
    d = pv_guest(xen)
    v = d.vcpus[0]
    v.vcpu_info.bytes[1] = 1  # the guest had upcalls masked
    assert v.sched_op(SCHEDOP_block) == 0
    assert v.vcpu_info.evtchn_upcall_mask == 0
    assert v.run_state is BLOCKED


def test_block_returns_at_once_when_an_upcall_is_already_pending(xen):
    """vcpu_block checks for events after setting _VPF_blocked: no "wakeup waiting" race."""
    d = pv_guest(xen)
    v = d.vcpus[0]
    v.vcpu_info.bytes[1] = 1  # masked, so the pending upcall was not taken yet
    send(d, ipi(d, 0))
    assert v.vcpu_info.evtchn_upcall_pending == 1
    assert v.sched_op(SCHEDOP_block) == 0
    assert v.run_state is RUNNING


def test_an_upcall_raised_on_a_blocked_vcpu_wakes_it(guest):
    v1 = guest.vcpus[1]
    port = ipi(guest, 1)
    v1.sched_op(SCHEDOP_block)
    send(guest, port)
    assert v1.run_state is RUNNING and v1.upcalls == 1


def test_a_masked_event_leaves_a_blocked_vcpu_blocked(guest):
    """No upcall is raised for a masked port, so nothing kicks the vCPU (but see pollers)."""
    v1 = guest.vcpus[1]
    port = ipi(guest, 1)
    mask(guest, port)
    v1.sched_op(SCHEDOP_block)
    send(guest, port)
    assert guest.is_pending(port)
    assert v1.run_state is BLOCKED and v1.upcalls == 0


def test_a_blocked_vcpu_makes_no_hypercalls(xen):
    v = xen.domain_create().vcpus[0]
    v.sched_op(SCHEDOP_block)
    with pytest.raises(ValueError, match="blocked"):
        v.sched_op(SCHEDOP_yield)


def test_yield_returns_zero_and_changes_nothing(xen):
    v = xen.domain_create().vcpus[0]
    assert v.sched_op(SCHEDOP_yield) == 0 and v.run_state is RUNNING


# --- SCHEDOP_poll: arguments, in do_poll's order -------------------------------------------


@pytest.mark.parametrize("version", ["master", "4.15", "4.8", "4.3"])
def test_more_than_128_ports_is_einval_before_anything_is_read(version):
    v = Xen(version).domain_create().vcpus[0]
    assert poll(v, nr_ports=129) == -Errno.EINVAL  # no array at all: the count is checked first
    assert v.run_state is RUNNING


def test_an_array_shorter_than_nr_ports_faults_at_the_first_entry_past_its_end(guest):
    v = guest.vcpus[0]
    port = ipi(guest, 0)
    assert poll(v, port, nr_ports=2) == -Errno.EFAULT
    assert v.run_state is RUNNING and not guest.poll_mask


def test_a_pending_port_before_the_fault_returns_zero_first(guest):
    """Entries are read one by one: a pending port ends the poll before the bad one is read."""
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    mask(guest, port)
    send(guest, port)
    assert poll(v, port, nr_ports=3) == 0


@pytest.mark.parametrize("port", [5, 0], ids=["free", "reserved"])
@pytest.mark.parametrize("version, rc, state", [("master", -Errno.EINVAL, RUNNING), ("4.15", -Errno.EINVAL, RUNNING),
                                                ("4.14-xsa", 0, POLLING), ("4.8", 0, POLLING), ("4.3", 0, POLLING)])
def test_polling_a_valid_but_unusable_port_is_einval_since_4_15(version, rc, state, port):
    """evtchn_port_poll (4.15) honours evtchn_usable; before, such a port just never fired.
    Port 5 is valid (in the first bucket) but free; port 0 is reserved."""
    v = Xen(version).domain_create().vcpus[0]
    assert poll(v, port) == rc
    assert v.run_state is state


@pytest.mark.parametrize("port", [64, 4096, 1 << 17, (1 << 32) - 1, -1])
def test_polling_a_port_beyond_the_valid_ones_is_einval(guest, port):
    assert poll(guest.vcpus[0], port) == -Errno.EINVAL  # -1 is 0xffffffff as evtchn_port_t


def test_a_bad_port_after_a_good_one_still_fails_the_poll(guest):
    v = guest.vcpus[0]
    assert poll(v, ipi(guest, 0), 999) == -Errno.EINVAL
    assert v.run_state is RUNNING and not guest.poll_mask


def test_a_poll_argument_of_the_wrong_python_type_is_a_type_error(xen):
    v = xen.domain_create().vcpus[0]
    with pytest.raises(TypeError):
        v.sched_op(SCHEDOP_poll, None)
    with pytest.raises(TypeError):
        SchedPoll(ports=("1",), nr_ports=1)
    with pytest.raises(TypeError):
        v.sched_op("poll")


def test_an_unknown_sched_op_is_enosys_and_an_unmodelled_one_a_value_error(xen):
    v = xen.domain_create().vcpus[0]
    assert v.sched_op(99) == -Errno.ENOSYS
    with pytest.raises(ValueError, match="SCHEDOP_shutdown"):
        v.sched_op(SchedOp.SCHEDOP_shutdown)


# --- SCHEDOP_poll: when it returns -----------------------------------------------------------


def test_a_poll_returns_at_once_when_a_polled_port_is_already_pending(guest):
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    mask(guest, port)
    send(guest, port)
    assert poll(v, port) == 0 and v.run_state is RUNNING and not guest.poll_mask


def test_a_poll_returns_at_once_when_an_upcall_can_be_delivered(guest):
    v = guest.vcpus[0]
    send(guest, ipi(guest, 0))  # unmasked: the upcall is pending on vCPU 0
    other = ipi(guest, 1)
    assert poll(v, other) == 0 and v.run_state is RUNNING


def test_a_single_port_poll_blocks_and_remembers_its_port(guest):
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    assert poll(v, port) == 0
    assert v.run_state is POLLING and v.poll_evtchn == port and guest.poll_mask == {1}


def test_the_polled_port_going_pending_wakes_the_poller_even_when_masked(guest):
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    mask(guest, port)
    poll(v, port)
    send(guest, port)
    assert v.run_state is RUNNING and v.poll_evtchn == 0 and not guest.poll_mask
    assert guest.is_pending(port) and guest.vcpus[0].upcalls == 0  # woken without any upcall


def test_a_single_port_poller_ignores_other_ports_of_its_domain(guest):
    v = guest.vcpus[1]
    polled, other = ipi(guest, 0), ipi(guest, 0)
    mask(guest, other)
    poll(v, polled)
    send(guest, other)
    assert v.run_state is POLLING


def test_a_multi_port_poller_is_woken_by_any_port_of_its_domain(guest):
    """poll_evtchn is -1: evtchn_check_pollers cannot tell, so it wakes the vCPU to look."""
    v = guest.vcpus[1]
    a, b, other = ipi(guest, 0), ipi(guest, 0), ipi(guest, 0)
    mask(guest, other)
    poll(v, a, b)
    assert v.poll_evtchn == -1
    send(guest, other)
    assert v.run_state is RUNNING


def test_an_edge_on_an_already_pending_port_wakes_nobody(guest):
    """Pollers are checked only when set_pending newly sets the pending bit: even a multi-port
    poller, whom any new event would wake, sleeps through a second edge on a pending port."""
    v = guest.vcpus[1]
    port, a, b = ipi(guest, 0), ipi(guest, 0), ipi(guest, 0)
    mask(guest, port)
    send(guest, port)
    poll(v, a, b)
    send(guest, port)
    assert v.run_state is POLLING


def test_an_upcall_raised_on_a_polling_vcpu_wakes_it_and_leaves_its_poll_bit_behind(guest):
    """vcpu_mark_events_pending kicks the vCPU (vcpu_unblock); only evtchn_check_pollers and
    poll_timer_fn clear poll_mask, so the stale bit goes at the domain's next new event."""
    v = guest.vcpus[1]
    polled, other = ipi(guest, 0), ipi(guest, 1)
    poll(v, polled)
    send(guest, other)  # unmasked, on vCPU 1: raises its upcall
    assert v.run_state is RUNNING and guest.poll_mask == {1}
    mask(guest, polled)
    send(guest, polled)
    assert not guest.poll_mask


def test_every_vcpu_polling_the_port_wakes(xen):
    d = xen.domain_create(vcpus=3)
    port = ipi(d, 0)
    shinfo_mask(d, port)
    poll(d.vcpus[2], port)
    poll(d.vcpus[1], port)
    send(d, port)
    assert [v.run_state for v in d.vcpus] == [RUNNING] * 3 and not d.poll_mask


# --- SCHEDOP_poll: timeouts ------------------------------------------------------------------


def test_a_timeout_ends_the_poll_at_its_deadline(guest, xen):
    v = guest.vcpus[1]
    poll(v, ipi(guest, 0), timeout=xen.now + 5 * MS)
    xen.advance(5 * MS - 1)
    assert v.run_state is POLLING
    xen.advance(1)
    assert v.run_state is RUNNING and not guest.poll_mask


def test_a_timeout_of_zero_means_none(guest, xen):
    v = guest.vcpus[1]
    poll(v, ipi(guest, 0), timeout=0)
    xen.advance(10**12)
    assert v.run_state is POLLING


def test_a_timeout_already_past_ends_the_poll_as_it_starts(guest, xen):
    xen.advance(10 * MS)
    v = guest.vcpus[1]
    assert poll(v, ipi(guest, 0), timeout=MS) == 0
    assert v.run_state is RUNNING


def test_an_early_wake_leaves_the_poll_timer_set_and_it_can_end_a_later_poll(guest, xen):
    """Nothing stops poll_timer when a poll ends early (do_poll returns at once; only the
    timer function and evtchn_check_pollers clear poll_mask), so the old timeout ends a
    second poll that asked for none: a spurious wake-up the guest's poll loop must handle.
    (Inferred from do_poll and poll_timer_fn.)"""
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    mask(guest, port)
    poll(v, port, timeout=xen.now + 5 * MS)
    send(guest, port)
    assert v.run_state is RUNNING
    poll(v, ipi(guest, 0))  # polls again, without a timeout
    xen.advance(5 * MS)
    assert v.run_state is RUNNING


def test_a_late_poll_timer_does_not_wake_a_blocked_vcpu(guest, xen):
    """poll_timer_fn wakes the vCPU only if it is still in poll_mask."""
    v = guest.vcpus[1]
    port = ipi(guest, 0)
    mask(guest, port)
    poll(v, port, timeout=xen.now + 5 * MS)
    send(guest, port)
    v.sched_op(SCHEDOP_block)
    xen.advance(5 * MS)
    assert v.run_state is BLOCKED


def test_a_poll_with_no_ports_and_a_timeout_is_a_sleep(guest, xen):
    v = guest.vcpus[0]
    assert poll(v, timeout=xen.now + MS) == 0 and v.run_state is POLLING
    xen.advance(MS)
    assert v.run_state is RUNNING


# --- FIFO specifics ---------------------------------------------------------------------------


def test_a_fifo_poller_wakes_on_a_masked_word_that_is_not_queued(xen):
    d = xen.domain_create(vcpus=2)
    to_fifo(d, masked=True)  # Linux's all-MASKED pages
    port = ipi(d, 0)
    v = d.vcpus[1]
    poll(v, port)
    send(d, port)
    assert d.event_word(port) == P | M  # pending, masked, not LINKED
    assert v.run_state is RUNNING


@pytest.mark.parametrize("version, wakes", [("4.16", True), ("master", False)])
def test_an_event_dropped_for_want_of_a_control_block_wakes_pollers_only_up_to_4_16(version, wakes):
    """Up to 4.16 Xen set PENDING before noticing the missing control block; since 4.17 it
    drops the event first, so PENDING and the poller wake-up never happen."""
    xen = Xen(version)
    d = xen.domain_create(vcpus=2)
    setup_op(d, INIT, control_gfn=0x100, offset=0, vcpu=0)
    setup_op(d, EXPAND, array_gfn=0x200)
    port = setup_op(d, IPI, vcpu=1).port  # notifies vCPU 1, which has no control block
    v0 = d.vcpus[0]
    poll(v0, port)
    send(d, port)
    assert (v0.run_state is RUNNING) is wakes
    assert bool(d.event_word(port) & P) is wakes and not d.event_word(port) & L


def test_hvm_and_pv_guests_both_poll(xen):
    for flags in (0, XEN_DOMCTL_CDF_hvm):
        d = xen.domain_create(vcpus=2, flags=flags)
        port = ipi(d, 0)
        shinfo_mask(d, port)
        poll(d.vcpus[1], port)
        send(d, port)
        assert d.vcpus[1].run_state is RUNNING
