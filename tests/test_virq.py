"""Raising VIRQs from Xen's side, and reading what the guest then sees, without a peer.

send_guest_vcpu_virq / send_guest_global_virq / send_global_virq (xen/common/event_channel.c)
go through evtchn_port_set_pending, so a script can make a chosen port pending, in either
ABI, and find it with ``Domain.is_pending`` / ``is_masked`` / ``event_word`` / ``control_block``.
"""

from __future__ import annotations

import pytest
from conftest import BIND_VCPU, CONTROL_GFN, INIT, VIRQ, M, P, setup_op, shinfo_mask, shinfo_pending, to_fifo

from evtsim import (
    SCHEDOP_poll,
    VIRQ_CONSOLE,
    VIRQ_DEBUG,
    VIRQ_TIMER,
    XEN_DOMCTL_CDF_hvm,
    RunState,
    SchedPoll,
    Xen,
)



def bind_virq(d, virq: int, vcpu: int = 0) -> int:
    return setup_op(d, VIRQ, virq=virq, vcpu=vcpu).port



@pytest.fixture
def guest(either_abi):
    """Here every ``guest`` test runs in both ABIs (conftest's either_abi)."""
    return either_abi

# --- raising ---------------------------------------------------------------------------------


def test_a_per_vcpu_virq_makes_its_port_pending_on_the_vcpu_it_was_bound_on(guest):
    port = bind_virq(guest, VIRQ_DEBUG, vcpu=1)
    guest.xen.send_guest_vcpu_virq(guest.vcpus[1], VIRQ_DEBUG)
    assert guest.is_pending(port) and not guest.is_masked(port)
    assert guest.vcpus[1].upcalls == 1 and guest.vcpus[0].upcalls == 0


def test_the_same_virq_on_another_vcpu_is_another_port(guest):
    p0, p1 = bind_virq(guest, VIRQ_TIMER, 0), bind_virq(guest, VIRQ_TIMER, 1)
    guest.xen.send_guest_vcpu_virq(guest.vcpus[0], VIRQ_TIMER)
    assert guest.is_pending(p0) and not guest.is_pending(p1)


def test_a_2_level_virq_sets_the_bit_the_selector_and_the_upcall_byte():
    d = Xen().domain_create()
    port = bind_virq(d, VIRQ_TIMER)
    d.xen.send_guest_vcpu_virq(d.vcpus[0], VIRQ_TIMER)
    info = d.vcpus[0].vcpu_info
    assert shinfo_pending(d, port)
    assert info.evtchn_pending_sel == 1 << (port // 64) and info.evtchn_upcall_pending == 1


def test_a_fifo_virq_queues_its_port_at_the_head_with_ready_set():
    d = Xen().domain_create()
    to_fifo(d)
    port = bind_virq(d, VIRQ_TIMER)
    d.xen.send_guest_vcpu_virq(d.vcpus[0], VIRQ_TIMER)
    cb = d.control_block(0)
    assert d.event_word(port) == P | (1 << 29)  # PENDING | LINKED
    assert cb.head(7) == port and cb.ready == 1 << 7
    assert cb.frame.gfn == CONTROL_GFN


def test_a_global_virq_goes_to_dom0_unless_another_domain_handles_it():
    xen = Xen()
    port = bind_virq(xen.dom0, VIRQ_CONSOLE)
    xen.send_global_virq(VIRQ_CONSOLE)
    assert xen.dom0.is_pending(port)


def test_send_guest_global_virq_raises_in_the_named_domain_at_the_ports_notify_vcpu():
    xen = Xen()
    d = xen.domain_create(vcpus=2)
    xen.global_virq_handlers[VIRQ_CONSOLE] = d  # as set_global_virq_handler would
    port = bind_virq(d, VIRQ_CONSOLE)
    setup_op(d, BIND_VCPU, port=port, vcpu=1)
    xen.send_guest_global_virq(d, VIRQ_CONSOLE)
    assert d.is_pending(port) and d.vcpus[1].upcalls == 1


def test_an_unbound_virq_changes_nothing(guest):
    guest.xen.send_guest_vcpu_virq(guest.vcpus[0], VIRQ_TIMER)
    assert guest.vcpus[0].upcalls == 0


def test_a_virq_wakes_a_vcpu_polling_its_port_even_when_masked(guest):
    port = bind_virq(guest, VIRQ_DEBUG, vcpu=0)
    if guest.fifo is None:
        shinfo_mask(guest, port)
    else:
        guest.fifo.pages[0][port] |= M
    v1 = guest.vcpus[1]
    v1.sched_op(SCHEDOP_poll, SchedPoll(ports=(port,), nr_ports=1))
    assert v1.run_state is RunState.POLLING
    guest.xen.send_guest_vcpu_virq(guest.vcpus[0], VIRQ_DEBUG)
    assert v1.run_state is RunState.RUNNING and guest.is_masked(port)


@pytest.mark.parametrize("call, error", [
    (lambda x, d: x.send_guest_vcpu_virq(d.vcpus[0], VIRQ_CONSOLE), ValueError),  # a global VIRQ
    (lambda x, d: x.send_guest_global_virq(d, VIRQ_TIMER), ValueError),  # a per-vCPU one
    (lambda x, d: x.send_guest_vcpu_virq(d.vcpus[0], 24), ValueError),  # NR_VIRQS
    (lambda x, d: x.send_guest_vcpu_virq(d.vcpus[0], -1), ValueError),
    (lambda x, d: x.send_guest_vcpu_virq(d.vcpus[0], "timer"), TypeError),
    (lambda x, d: x.send_global_virq(1.0), TypeError),
    (lambda x, d: Xen().send_guest_vcpu_virq(d.vcpus[0], VIRQ_TIMER), ValueError),  # another host's vCPU
    (lambda x, d: x.send_guest_global_virq("dom1", VIRQ_CONSOLE), ValueError),
    (lambda x, d: x.send_guest_pirq(d, "5"), TypeError),
])
def test_raising_the_wrong_kind_of_virq_or_in_the_wrong_place_is_a_clear_error(call, error):
    """Xen's callers never do this (it ASSERTs): in evtsim it is Python misuse, not an errno."""
    xen = Xen()
    with pytest.raises(error):
        call(xen, xen.domain_create())


def test_a_destroyed_domain_gets_no_virqs():
    xen = Xen()
    d = xen.domain_create()
    xen.domain_destroy(d)
    with pytest.raises(ValueError, match="not a domain of this Xen"):
        xen.send_guest_vcpu_virq(d.vcpus[0], VIRQ_TIMER)


# --- reading what the guest sees --------------------------------------------------------------


def test_is_masked_reads_the_guests_own_mask_in_either_abi(guest):
    port = bind_virq(guest, VIRQ_TIMER)
    assert not guest.is_masked(port)
    if guest.fifo is None:
        shinfo_mask(guest, port)
    else:
        guest.fifo.pages[0][port] |= M
    assert guest.is_masked(port) and not guest.is_pending(port)


@pytest.mark.parametrize("port, pending, masked", [(4096, False, True), (1 << 20, False, True)])
def test_a_port_beyond_what_the_abi_shows_is_not_pending_and_masked(guest, port, pending, masked):
    assert (guest.is_pending(port), guest.is_masked(port)) == (pending, masked)


def test_fifo_accessors_find_blocks_and_words_by_vcpu_and_port():
    d = Xen().domain_create(vcpus=2, flags=XEN_DOMCTL_CDF_hvm)
    to_fifo(d, masked=True)
    assert d.control_block(1).frame.gfn == CONTROL_GFN + 1
    assert d.event_word(5) == M and d.event_word(1024) is None  # one page: ports 0..1023


def test_a_vcpu_without_a_control_block_has_none():
    d = Xen().domain_create(vcpus=2)
    setup_op(d, INIT, control_gfn=CONTROL_GFN, offset=0, vcpu=0)
    assert d.control_block(0) is not None and d.control_block(1) is None


@pytest.mark.parametrize("call, error", [
    (lambda d: d.is_pending("1"), TypeError),
    (lambda d: d.is_pending(True), TypeError),
    (lambda d: d.is_masked(-1), ValueError),
    (lambda d: d.is_pending(1 << 32), ValueError),
    (lambda d: d.control_block(0), ValueError),  # a 2-level domain has no control blocks
    (lambda d: d.event_word(1), ValueError),
])
def test_accessor_misuse_is_a_clear_error(call, error):
    with pytest.raises(error):
        call(Xen().domain_create())


@pytest.mark.parametrize("vcpu, error", [(2, ValueError), (-1, ValueError), (None, TypeError)])
def test_control_block_of_a_vcpu_the_domain_lacks_is_a_clear_error(vcpu, error):
    d = Xen().domain_create(vcpus=2)
    to_fifo(d)
    with pytest.raises(error):
        d.control_block(vcpu)
