"""Switching a domain between the 2-level and FIFO ABIs, and back.

Models evtchn_fifo_init_control and setup_ports (xen/common/event_fifo.c), evtchn_init
(evtchn_2l_init), evtchn_reset / EVTCHNOP_reset_cont and domain_soft_reset
(xen/common/event_channel.c, xen/common/domain.c), per xen-abi-facts.md sections 2.4, 2.6,
8.1 and 8.8.
"""

from __future__ import annotations

import pytest
from conftest import ARRAY_GFN, CONTROL_GFN, L, M, P, ipi, op, send, shinfo_mask, shinfo_pending, to_fifo

from evtsim import (
    DOMID_SELF,
    EVTCHN_FIFO_NR_CHANNELS,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_close,
    EVTCHNOP_expand_array,
    EVTCHNOP_init_control,
    EVTCHNOP_reset,
    EVTCHNOP_reset_cont,
    EVTCHNOP_set_priority,
    EVTCHNOP_status,
    EVTCHNSTAT_closed,
    EVTCHNSTAT_ipi,
    AllocSite,
    Errno,
    Structure,
    Xen,
)
from evtsim.memory import ControlBlockView, event_words

Q7 = EVTCHN_FIFO_PRIORITY_DEFAULT


def init_control(d, vcpu: int = 0, gfn: int | None = None, offset: int = 0):
    """EVTCHNOP_init_control for ``vcpu``: (rc, arg)."""
    return op(d, EVTCHNOP_init_control, control_gfn=CONTROL_GFN + vcpu if gfn is None else gfn,
              offset=offset, vcpu=vcpu)






def status(d, port: int) -> int:
    rc, arg = op(d, EVTCHNOP_status, dom=DOMID_SELF, port=port)
    assert rc == 0, rc
    return arg.status


def word(d, port: int) -> int:
    """The guest's view of ``port``'s event word."""
    return event_words(d.memory.frame(ARRAY_GFN + (port >> 10)))[port & 1023]


def cb(d, vcpu: int = 0) -> ControlBlockView:
    return ControlBlockView(d.memory.frame(CONTROL_GFN + vcpu), 0)






def wipe_fifo_pages(d) -> None:
    """A kernel that registers FIFO pages again starts from cleared pages."""
    for gfn in (CONTROL_GFN, CONTROL_GFN + 1, ARRAY_GFN):
        d.memory.frame(gfn).data[:] = bytes(4096)


# --- starting point and the switch --------------------------------------------------------


@pytest.mark.parametrize("compat, limit", [(False, 4096), (True, 1024)])
def test_every_domain_starts_2_level(compat, limit):
    """evtchn_init -> evtchn_2l_init: no FIFO state, the 2-level limit, no set_priority hook."""
    xen = Xen()
    for d in (xen.dom0, xen.domain_create(compat=compat)):
        assert d.abi == "2-level" and d.fifo is None
    d = xen.domain_create(compat=compat)
    assert d.max_evtchns() == limit
    port = ipi(d)
    assert op(d, EVTCHNOP_set_priority, port=port, priority=3)[0] == -Errno.ENOSYS
    send(d, port)
    assert shinfo_pending(d, port)


def test_first_init_control_on_any_vcpu_switches_the_whole_domain(guest):
    """The first init_control (here vCPU 1) sets FIFO port ops for the domain; link_bits OUT = 17."""
    rc, arg = init_control(guest, vcpu=1)
    assert rc == 0 and arg.link_bits == 17
    assert guest.abi == "fifo"
    assert guest.xen.dom0.abi == "2-level"  # the ABI is per domain
    # XSA-107 (a4e0cea6fc): FIFO state exists for every vCPU, but only vCPU 1 has a block.
    assert len(guest.fifo.vcpus) == 2
    assert guest.fifo.vcpus[0].control_block is None
    assert guest.fifo.vcpus[1].control_block is not None


def test_second_init_control_for_the_same_vcpu_is_einval(guest):
    """map_control_block refuses a vCPU that already has a control block."""
    assert init_control(guest, vcpu=0)[0] == 0
    rc, arg = init_control(guest, vcpu=0, gfn=CONTROL_GFN + 5)
    assert rc == -Errno.EINVAL
    assert arg.link_bits == 0  # OUT fields are copied back only on success
    assert guest.fifo.vcpus[0].control_block.frame.gfn == CONTROL_GFN


def test_init_control_for_another_vcpu_maps_its_block(guest):
    """evtchn_fifo_init_control: later calls only map_control_block for the vCPU named."""
    assert init_control(guest, vcpu=0)[0] == 0
    rc, arg = init_control(guest, vcpu=1)
    assert rc == 0 and arg.link_bits == 17
    assert guest.fifo.vcpus[1].control_block.frame.gfn == CONTROL_GFN + 1


@pytest.mark.parametrize("fields, rc", [
    (dict(vcpu=2), -Errno.ENOENT),  # domain_vcpu finds no such vCPU
    (dict(offset=4032), -Errno.EINVAL),  # the 72-byte block would cross the page
    (dict(offset=4), -Errno.EINVAL),  # not 8-byte aligned
    (dict(gfn=1 << 18), -Errno.EINVAL),  # not a writable guest page
])
def test_failed_first_init_control_leaves_the_domain_2_level(guest, fields, rc):
    """evtchn_fifo_init_control: on any error the domain keeps the 2-level ABI and limit."""
    got, arg = init_control(guest, **fields)
    assert got == rc and arg.link_bits == 0
    assert guest.abi == "2-level" and guest.fifo is None
    assert guest.max_evtchns() == 4096
    port = ipi(guest)
    send(guest, port)
    assert shinfo_pending(guest, port)  # still delivered the 2-level way
    assert init_control(guest)[0] == 0  # and a correct call still works


def test_init_control_at_the_last_aligned_offset_is_accepted(guest):
    """evtchn_fifo_init_control: offset 4024 = PAGE_SIZE - 72, 8-byte aligned: the block ends exactly
    at the page end.
    """
    assert init_control(guest, offset=4024)[0] == 0


def test_out_of_memory_in_the_first_init_control_leaves_the_domain_2_level(xen, guest):
    """-ENOMEM while allocating the FIFO structures: evtchn_fifo_destroy undoes everything."""
    xen.faults.fail(AllocSite.FIFO_INIT)
    assert init_control(guest)[0] == -Errno.ENOMEM
    assert guest.abi == "2-level" and guest.fifo is None
    assert op(guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == -Errno.EOPNOTSUPP
    assert init_control(guest)[0] == 0 and guest.abi == "fifo"


def test_fifo_raises_max_evtchns_to_131072(guest):
    """max_evtchns(d) is EVTCHN_FIFO_NR_CHANNELS as soon as d->evtchn_fifo exists."""
    assert guest.max_evtchns() == 4096
    assert init_control(guest)[0] == 0
    assert guest.max_evtchns() == EVTCHN_FIFO_NR_CHANNELS == 131072


def test_fifo_lifts_the_2_level_port_limit_of_a_32_bit_guest():
    """max_evtchns(d) in get_free_port: a compat guest's 2-level ABI stops at port 1023; after the
    switch port 1024 is allocated.
    """
    g = Xen().domain_create(compat=True, max_evtchn_port=2047)
    ports = [op(g, EVTCHNOP_bind_ipi, vcpu=0) for _ in range(1024)]
    assert ports[-2][1].port == 1023
    assert ports[-1][0] == -Errno.ENOSPC
    assert init_control(g)[0] == 0
    assert ipi(g) == 1024


# --- what the switch carries over ---------------------------------------------------------


def test_pending_2_level_events_are_kept_and_reraised_when_their_page_is_added(guest):
    """setup_ports saves each 2-level pending bit in evtchn->pending; add_page re-raises it.

    The public header says events pending at init_control "will be lost"; the code keeps them.
    This test follows the code (xen-abi-facts.md 1.3, 2.4, 8.11).
    """
    a = ipi(guest)
    send(guest, a)
    assert shinfo_pending(guest, a)
    assert init_control(guest)[0] == 0
    assert guest.ports.chn[a].pending is True
    assert op(guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert word(guest, a) == P | L
    assert cb(guest).head(Q7) == a and cb(guest).ready == 1 << Q7


def test_reraised_2_level_event_sits_pending_and_masked_on_a_linux_page(guest):
    """add_page_to_event_array on Linux's pages, which start all MASKED: so the re-raised event waits
    as P + M for the unmask.
    """
    a = ipi(guest)
    send(guest, a)
    assert init_control(guest)[0] == 0
    guest.memory.frame(ARRAY_GFN).data[:] = M.to_bytes(4, "little") * 1024
    assert op(guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert word(guest, a) == P | M
    assert cb(guest).head(Q7) == 0


def test_2_level_mask_bits_are_not_carried_over(guest):
    """setup_ports copies pending state only: a port masked in shared_info is linked in FIFO."""
    a, b = ipi(guest), ipi(guest)
    shinfo_mask(guest, a)
    shinfo_mask(guest, b)
    send(guest, a)  # 2-level: pending bit only, because masked
    assert guest.vcpus[0].vcpu_info.evtchn_pending_sel == 0
    to_fifo(guest, pages=1)  # vCPUs 0 and 1, one page of unmasked words
    assert word(guest, a) == P | L and cb(guest).head(Q7) == a
    send(guest, b)
    assert word(guest, b) == P | L and word(guest, a) == P | L | b


def test_init_control_resets_priorities_to_the_default():
    """setup_ports sets priority 7 on every port below the old 2-level limit.

    A port given priority 3 under FIFO keeps that value in struct evtchn through a reset and a
    2-level rebind (2-level has no init hook); the next switch puts it back on queue 7.
    """
    g = Xen().domain_create()
    to_fifo(g)
    a = ipi(g)
    assert op(g, EVTCHNOP_set_priority, port=a, priority=3)[0] == 0
    assert op(g, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    assert g.abi == "2-level"
    assert ipi(g) == a
    wipe_fifo_pages(g)
    assert init_control(g)[0] == 0
    assert g.ports.chn[a].priority == EVTCHN_FIFO_PRIORITY_DEFAULT
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    send(g, a)
    assert cb(g).head(Q7) == a and cb(g).head(3) == 0


def test_a_stale_evtchn_pending_flag_reraises_an_event_after_reset_and_a_new_switch():
    """setup_ports / add_page_to_event_array: nothing clears evtchn->pending, so a flag stashed in one
    FIFO session is re-raised by add_page in the next one although nothing was sent since."""
    g = Xen().domain_create()
    to_fifo(g, pages=0)
    a = ipi(g)
    send(g, a)  # no array page: stashed
    assert op(g, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    assert ipi(g) == a
    wipe_fifo_pages(g)
    assert init_control(g)[0] == 0
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert word(g, a) == P | L and cb(g).head(Q7) == a


# --- what Xen writes after the switch -----------------------------------------------------


def test_after_the_switch_a_send_writes_no_shared_info_bitmap():
    """evtchn_fifo_set_pending: shared_info evtchn_pending/mask and evtchn_pending_sel are ignored once
    FIFO is on.
    """
    xen = Xen(recording="full")
    g = xen.domain_create()
    old = ipi(g)
    send(g, old)  # control: in 2-level a send writes the shared_info bitmap
    assert Structure.SHARED_INFO in {w.structure for w in xen.log.writes}
    assert op(g, EVTCHNOP_close, port=old)[0] == 0  # so nothing is carried into FIFO
    to_fifo(g)
    a = ipi(g)
    g.vcpus[0].vcpu_info.bytes[0] = 0  # the guest took the upcall
    bitmap = bytes(g.shared_info.evtchn_pending)
    start = len(xen.log.writes)
    send(g, a)
    writes = xen.log.writes[start:]
    assert {w.structure for w in writes} == {Structure.EVENT_ARRAY, Structure.CONTROL_BLOCK,
                                             Structure.VCPU_INFO}
    assert bytes(g.shared_info.evtchn_pending) == bitmap
    assert [w.offset for w in writes if w.structure is Structure.VCPU_INFO] == [0]  # upcall_pending


def test_evtchn_upcall_pending_is_still_used_after_the_switch(guest):
    """vcpu_mark_events_pending sets evtchn_upcall_pending; the selector word stays 0."""
    to_fifo(guest)
    send(guest, ipi(guest))
    info = guest.vcpus[0].vcpu_info
    assert info.evtchn_upcall_pending == 1
    assert info.evtchn_pending_sel == 0


# --- reset, per version -------------------------------------------------------------------


def fifo_guest_with_ports(version: str, ports: int = 3, **create):
    xen = Xen(version)
    g = xen.domain_create(**create)
    to_fifo(g)
    return xen, g, [ipi(g) for _ in range(ports)]


def test_reset_on_4_4_closes_ports_but_stays_fifo():
    """Xen 4.4's evtchn_reset only closed ports; control blocks and array stayed mapped."""
    _, g, ports = fifo_guest_with_ports("4.4")
    assert op(g, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_closed] * 3
    assert g.abi == "fifo"
    assert init_control(g)[0] == -Errno.EINVAL  # vCPU 0's block is still mapped


@pytest.mark.parametrize("self_id, abi", [("DOMID_SELF", "2-level"), ("numeric", "fifo")])
def test_reset_on_4_5_reverts_only_when_called_with_the_literal_domid_self(self_id, abi):
    """400b3bd642 (4.5) tested dom == DOMID_SELF, not "the caller": its own domid keeps FIFO."""
    _, g, ports = fifo_guest_with_ports("4.5")
    dom = DOMID_SELF if self_id == "DOMID_SELF" else g.domain_id
    assert op(g, EVTCHNOP_reset, dom=dom)[0] == 0
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_closed] * 3
    assert g.abi == abi


@pytest.mark.parametrize("version", ["4.7", "master"])
@pytest.mark.parametrize("self_id", ["DOMID_SELF", "numeric"])
def test_reset_on_4_7_and_later_always_reverts(version, self_id):
    """546d558a7a (4.7) dropped the DOMID_SELF condition: any successful reset reverts."""
    _, g, ports = fifo_guest_with_ports(version)
    dom = DOMID_SELF if self_id == "DOMID_SELF" else g.domain_id
    assert op(g, EVTCHNOP_reset, dom=dom)[0] == 0
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_closed] * 3
    assert g.abi == "2-level" and g.fifo is None
    assert g.max_evtchns() == 4096


@pytest.mark.parametrize("version", ["4.7", "master"])
def test_dom0_reset_of_a_controller_paused_guest_reverts_it(version):
    """evtchn_reset on another domain needs it paused by its controller; then it reverts too."""
    xen, g, ports = fifo_guest_with_ports(version)
    xen.domain_pause(g)
    assert op(xen.dom0, EVTCHNOP_reset, dom=g.domain_id)[0] == 0
    assert g.abi == "2-level"
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_closed] * 3


@pytest.mark.parametrize("version", ["4.7", "master"])
def test_dom0_reset_of_a_running_guest_is_einval(version):
    """evtchn_reset: d != current->domain and no controller pause -> -EINVAL, nothing changes."""
    xen, g, ports = fifo_guest_with_ports(version)
    assert op(xen.dom0, EVTCHNOP_reset, dom=g.domain_id)[0] == -Errno.EINVAL
    assert g.abi == "fifo"
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_ipi] * 3


def test_guest_can_init_control_again_after_a_reverting_reset():
    """After evtchn_fifo_destroy + evtchn_2l_init the next init_control is a first call again."""
    _, g, _ = fifo_guest_with_ports("master")
    assert op(g, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    rc, arg = init_control(g)
    assert rc == 0 and arg.link_bits == 17 and g.abi == "fifo"
    assert init_control(g, vcpu=0)[0] == -Errno.EINVAL


def test_soft_reset_reverts_to_2_level_on_master():
    """XEN_DOMCTL_soft_reset -> domain_soft_reset -> evtchn_reset: ports closed, back to 2-level."""
    xen, g, ports = fifo_guest_with_ports("master")
    assert xen.domain_soft_reset(g) == 0
    assert g.abi == "2-level"
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_closed] * 3
    assert init_control(g)[0] == 0


def test_soft_reset_does_not_exist_on_4_5():
    """XEN_DOMCTL_soft_reset arrived in 4.7 (1a043f9dc7): on 4.5 it is -ENOSYS and nothing changes."""
    xen, g, ports = fifo_guest_with_ports("4.5")
    assert xen.domain_soft_reset(g) == -Errno.ENOSYS
    assert g.abi == "fifo"
    assert [status(g, p) for p in ports] == [EVTCHNSTAT_ipi] * 3


def test_reset_without_preemption_needs_no_continuation():
    """evtchn_reset, control for the test above: the same reset, never preempted, runs in one go."""
    xen, g, _ = fifo_guest_with_ports("master", ports=100)
    assert op(g, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    assert xen.continuations == 0 and g.ports.bound() == []


def test_reset_cont_issued_alone_is_ebusy(guest):
    """evtchn_reset(resuming) with no reset in progress: d->next_evtchn is 0 -> -EBUSY."""
    to_fifo(guest)
    port = ipi(guest)
    assert op(guest, EVTCHNOP_reset_cont, dom=DOMID_SELF)[0] == -Errno.EBUSY
    assert guest.abi == "fifo" and status(guest, port) == EVTCHNSTAT_ipi
