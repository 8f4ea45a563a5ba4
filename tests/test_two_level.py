"""The 2-level engine: what Xen writes into shared_info and vcpu_info, bit by bit.

Expectations come from xen-abi-facts.md sections 1.3, 1.4, 2.2, 2.3 and 8.3-8.6, which
describe xen/common/event_2l.c and xen/common/event_channel.c. Tests look only at guest
memory (the bitmaps, the selector, the upcall byte) and at ``Vcpu.upcalls``, never at the
engine's private state.
"""

from __future__ import annotations

from conftest import connect, ipi, op, shinfo_mask, shinfo_masked, shinfo_pending

from evtsim import (
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_bind_virq,
    EVTCHNOP_close,
    EVTCHNOP_send,
    EVTCHNOP_set_priority,
    EVTCHNOP_unmask,
    VIRQ_TIMER,
    Errno,
)

BITS = 64  # BITS_PER_EVTCHN_WORD for a 64-bit guest
BITS_32 = 32  # ... and for a 32-bit (compat) guest


# --- small guest-side helpers ---------------------------------------------------------------








def guest_clear_pending(d, port: int) -> None:
    """The guest acks a port: clears its pending bit (clear_evtchn)."""
    bits = d.shared_info.layout.bits_per_word
    d.shared_info.evtchn_pending[port // bits] &= ~(1 << (port % bits))


def guest_consume_selector(v) -> None:
    """What the guest's upcall does first: clear upcall_pending and take the selector."""
    v.vcpu_info.bytes[0] = 0
    v.vcpu_info.sel[0] = 0




def ipis(d, count: int, vcpu: int = 0) -> list[int]:
    """``count`` fresh IPI ports; a fresh domain hands them out as 1, 2, 3, ..."""
    return [ipi(d, vcpu) for _ in range(count)]


def send(d, port: int) -> int:
    rc, _ = op(d, EVTCHNOP_send, port=port)
    return rc


def unmask(d, port: int) -> int:
    rc, _ = op(d, EVTCHNOP_unmask, port=port)
    return rc


def connect_to(frontend, backend, backend_port: int) -> tuple[int, int]:
    """Bind ``frontend`` to an existing unbound port of ``backend``."""
    rc, bind = op(frontend, EVTCHNOP_bind_interdomain, remote_dom=backend.domain_id,
                  remote_port=backend_port)
    assert rc == 0, rc
    return backend_port, bind.local_port


def sel(v) -> int:
    return v.vcpu_info.evtchn_pending_sel


def upcall_pending(v) -> int:
    return v.vcpu_info.evtchn_upcall_pending


# --- set_pending (evtchn_2l_set_pending) ------------------------------------------------------


def test_send_sets_pending_bit_selector_bit_and_upcall(guest):
    """Models evtchn_2l_set_pending + vcpu_mark_events_pending (xen/common/event_2l.c,
    xen/arch/x86/domain.c): pending bit, then selector bit of its word, then the upcall."""
    ports = ipis(guest, 70)
    port = ports[-1]  # port 70: word 1, bit 6
    v0 = guest.vcpus[0]
    assert send(guest, port) == 0
    assert guest.shared_info.evtchn_pending[1] == 1 << 6
    assert sel(v0) == 1 << 1
    assert upcall_pending(v0) == 1
    assert v0.upcalls == 1


def test_already_pending_port_sets_no_selector_and_no_upcall(guest):
    """Models evtchn_2l_set_pending: if the pending bit was already set, Xen stops there."""
    port = ipi(guest)
    v0 = guest.vcpus[0]
    send(guest, port)
    guest_consume_selector(v0)  # the guest took the upcall but has not acked the port yet
    assert send(guest, port) == 0
    assert shinfo_pending(guest, port)
    assert sel(v0) == 0
    assert upcall_pending(v0) == 0
    assert v0.upcalls == 1


def test_masked_port_sets_only_pending_bit(guest):
    """Models evtchn_2l_set_pending: a masked port gets its pending bit and nothing else."""
    port = ipi(guest)
    v0 = guest.vcpus[0]
    shinfo_mask(guest, port)
    assert send(guest, port) == 0
    assert shinfo_pending(guest, port)
    assert sel(v0) == 0
    assert upcall_pending(v0) == 0
    assert v0.upcalls == 0


def test_second_port_in_a_selected_word_raises_no_new_upcall(guest):
    """Models evtchn_2l_set_pending: the selector bit is only acted on when it goes 0->1."""
    a, b = ipis(guest, 2)  # both in word 0
    v0 = guest.vcpus[0]
    send(guest, a)
    v0.vcpu_info.bytes[0] = 0  # guest clears upcall_pending but has not taken the selector yet
    send(guest, b)
    assert shinfo_pending(guest, a) and shinfo_pending(guest, b)
    assert sel(v0) == 1 << 0
    assert upcall_pending(v0) == 0  # selector bit was already set: no vcpu_mark_events_pending
    assert v0.upcalls == 1


def test_new_word_with_upcall_already_pending_sets_selector_but_no_new_upcall(guest):
    """Models vcpu_mark_events_pending (xen/arch/x86/domain.c): the upcall is raised only when
    evtchn_upcall_pending goes 0->1, even though a new selector bit appeared."""
    ports = ipis(guest, 65)
    v0 = guest.vcpus[0]
    send(guest, ports[0])  # port 1, word 0
    send(guest, ports[64])  # port 65, word 1
    assert sel(v0) == 0b11
    assert upcall_pending(v0) == 1
    assert v0.upcalls == 1


def test_upcall_is_raised_again_after_the_guest_consumed_the_previous_one(guest):
    """Models evtchn_2l_set_pending: after the guest clears selector and upcall_pending (and
    acks), the next event is a fresh 0->1 edge on both."""
    port = ipi(guest)
    v0 = guest.vcpus[0]
    send(guest, port)
    guest_consume_selector(v0)
    guest_clear_pending(guest, port)
    send(guest, port)
    assert sel(v0) == 1
    assert upcall_pending(v0) == 1
    assert v0.upcalls == 2


# --- unmask (evtchn_2l_unmask) ---------------------------------------------------------------


def test_unmask_of_masked_pending_port_delivers_to_its_notify_vcpu(guest):
    """Models evtchn_2l_unmask: masked and pending -> selector bit and upcall on the notify vCPU."""
    port = ipi(guest, vcpu=1)
    v0, v1 = guest.vcpus
    shinfo_mask(guest, port)
    send(guest, port)
    assert v1.upcalls == 0
    assert unmask(guest, port) == 0
    assert not shinfo_masked(guest, port)
    assert sel(v1) == 1 << 0
    assert upcall_pending(v1) == 1
    assert v1.upcalls == 1
    assert sel(v0) == 0 and upcall_pending(v0) == 0 and v0.upcalls == 0


def test_unmask_of_masked_idle_port_only_clears_the_mask(guest):
    """Models evtchn_2l_unmask: no pending bit, nothing to deliver."""
    port = ipi(guest)
    v0 = guest.vcpus[0]
    shinfo_mask(guest, port)
    assert unmask(guest, port) == 0
    assert not shinfo_masked(guest, port)
    assert not shinfo_pending(guest, port)
    assert sel(v0) == 0 and upcall_pending(v0) == 0 and v0.upcalls == 0


def test_unmask_of_unmasked_pending_port_does_nothing(guest):
    """Models evtchn_2l_unmask: it continues only if the mask bit was set."""
    port = ipi(guest)
    v0 = guest.vcpus[0]
    send(guest, port)
    guest_consume_selector(v0)  # pending bit stays set, the port was never masked
    assert unmask(guest, port) == 0
    assert shinfo_pending(guest, port)
    assert sel(v0) == 0
    assert upcall_pending(v0) == 0
    assert v0.upcalls == 1


def test_unmask_follows_a_rebind_to_the_new_notify_vcpu(guest, xen):
    """Models evtchn_2l_unmask + evtchn_bind_vcpu: Linux's rebind (mask, bind_vcpu, unmask;
    events_base.c xen_rebind_evtchn_to_cpu) re-delivers a pending event on the new vCPU."""
    _, port = connect(xen.dom0, guest)  # bind_interdomain leaves it pending, selected on vCPU 0
    v0, v1 = guest.vcpus
    guest_consume_selector(v0)
    shinfo_mask(guest, port)
    rc, _ = op(guest, EVTCHNOP_bind_vcpu, port=port, vcpu=1)
    assert rc == 0
    assert unmask(guest, port) == 0
    assert sel(v1) == 1 << 0 and upcall_pending(v1) == 1 and v1.upcalls == 1
    assert sel(v0) == 0 and upcall_pending(v0) == 0


# --- which vCPU: notify_vcpu_id --------------------------------------------------------------


def test_ipi_send_sets_pending_on_senders_own_port_at_its_vcpu(guest):
    """Models evtchn_send (xen/common/event_channel.c): an IPI port notifies itself, on the vCPU
    it was bound to."""
    port = ipi(guest, vcpu=1)
    v0, v1 = guest.vcpus
    assert send(guest, port) == 0
    assert shinfo_pending(guest, port)
    assert sel(v1) == 1 << (port // BITS)
    assert upcall_pending(v1) == 1 and v1.upcalls == 1
    assert sel(v0) == 0 and upcall_pending(v0) == 0 and v0.upcalls == 0


def test_interdomain_send_lands_in_the_selector_of_the_peers_notify_vcpu(guest, xen):
    """Models evtchn_send: INTERDOMAIN sets pending on the remote port at its notify vCPU."""
    dom0_port, port = connect(xen.dom0, guest)
    v0, v1 = guest.vcpus
    rc, _ = op(guest, EVTCHNOP_bind_vcpu, port=port, vcpu=1)
    assert rc == 0
    guest_clear_pending(guest, port)
    assert send(xen.dom0, dom0_port) == 0
    assert shinfo_pending(guest, port)
    assert sel(v1) == 1 << (port // BITS)
    assert v1.upcalls == 1


def test_bind_vcpu_moves_future_notifications_but_not_the_set_selector_bit(guest, xen):
    """Models evtchn_bind_vcpu: only notify_vcpu_id changes; what is already pending stays."""
    dom0_port, port = connect(xen.dom0, guest)
    v0, v1 = guest.vcpus
    word_bit = 1 << (port // BITS)
    assert sel(v0) == word_bit  # from bind_interdomain
    rc, _ = op(guest, EVTCHNOP_bind_vcpu, port=port, vcpu=1)
    assert rc == 0
    assert sel(v0) == word_bit
    assert upcall_pending(v0) == 1
    assert sel(v1) == 0 and upcall_pending(v1) == 0
    guest_clear_pending(guest, port)
    send(xen.dom0, dom0_port)
    assert sel(v1) == word_bit
    assert upcall_pending(v1) == 1 and v1.upcalls == 1
    assert v0.upcalls == 1  # nothing new on vCPU 0


def test_virq_timer_lands_on_the_vcpu_it_was_bound_on(guest, xen):
    """Models send_guest_vcpu_virq (xen/common/event_channel.c) into evtchn_2l_set_pending."""
    rc, arg = op(guest, EVTCHNOP_bind_virq, virq=VIRQ_TIMER, vcpu=1)
    assert rc == 0
    v0, v1 = guest.vcpus
    xen.send_guest_vcpu_virq(v1, VIRQ_TIMER)
    assert shinfo_pending(guest, arg.port)
    assert sel(v1) == 1 << (arg.port // BITS)
    assert upcall_pending(v1) == 1 and v1.upcalls == 1
    assert sel(v0) == 0 and v0.upcalls == 0


def test_virq_timer_on_a_vcpu_without_binding_sets_nothing(guest, xen):
    """Models send_guest_vcpu_virq: no port bound for that VIRQ on that vCPU, no event."""
    rc, arg = op(guest, EVTCHNOP_bind_virq, virq=VIRQ_TIMER, vcpu=1)
    assert rc == 0
    xen.send_guest_vcpu_virq(guest.vcpus[0], VIRQ_TIMER)
    assert not any(guest.shared_info.evtchn_pending)
    assert all(v.upcalls == 0 and sel(v) == 0 for v in guest.vcpus)


# --- bind_interdomain, close, send to UNBOUND ------------------------------------------------


def test_bind_interdomain_marks_the_new_local_port_pending(guest, xen):
    """Models evtchn_bind_interdomain: Xen always raises the new local port, covering
    notifications the peer sent while it was unbound."""
    _, port = connect(xen.dom0, guest)
    v0 = guest.vcpus[0]
    assert shinfo_pending(guest, port)
    assert sel(v0) == 1 << (port // BITS)
    assert upcall_pending(v0) == 1 and v0.upcalls == 1


def test_bind_interdomain_on_a_masked_port_sets_only_pending(guest, xen):
    """Models evtchn_bind_interdomain + evtchn_2l_set_pending: Linux masks every port at boot,
    so the bind-time event is only a pending bit until the guest unmasks."""
    for word in range(len(guest.shared_info.evtchn_mask)):
        guest.shared_info.evtchn_mask[word] = (1 << BITS) - 1
    _, port = connect(xen.dom0, guest)
    v0 = guest.vcpus[0]
    assert shinfo_pending(guest, port)
    assert sel(v0) == 0 and upcall_pending(v0) == 0 and v0.upcalls == 0
    assert unmask(guest, port) == 0
    assert sel(v0) == 1 << (port // BITS) and v0.upcalls == 1


def test_peer_notification_before_bind_is_dropped_but_bind_makes_up_for_it(guest, xen):
    """Models evtchn_send on UNBOUND (dropped, rc 0) followed by evtchn_bind_interdomain."""
    rc, alloc = op(xen.dom0, EVTCHNOP_alloc_unbound, dom=0, remote_dom=guest.domain_id)
    assert rc == 0
    assert send(xen.dom0, alloc.port) == 0
    assert not any(guest.shared_info.evtchn_pending)
    assert not any(xen.dom0.shared_info.evtchn_pending)
    _, port = connect_to(guest, xen.dom0, alloc.port)
    assert shinfo_pending(guest, port)


def test_send_to_unbound_port_returns_zero_and_sets_nothing(guest):
    """Models evtchn_send: an UNBOUND port drops the notification silently."""
    rc, alloc = op(guest, EVTCHNOP_alloc_unbound, dom=guest.domain_id, remote_dom=0)
    assert rc == 0
    frame = guest.shared_info.frame
    before = bytes(frame.data)
    writes = frame.xen_writes
    assert send(guest, alloc.port) == 0
    assert bytes(frame.data) == before
    assert frame.xen_writes == writes
    assert all(v.upcalls == 0 for v in guest.vcpus)


def test_close_clears_the_pending_bit(guest, xen):
    """Models evtchn_close -> free_evtchn -> evtchn_2l_clear_pending."""
    _, port = connect(xen.dom0, guest)
    assert shinfo_pending(guest, port)
    rc, _ = op(guest, EVTCHNOP_close, port=port)
    assert rc == 0
    assert not shinfo_pending(guest, port)


def test_close_of_a_masked_pending_port_clears_pending_but_leaves_the_mask(guest):
    """Models evtchn_2l_clear_pending: only the pending bit is cleared; the mask is the
    guest's and stays."""
    port = ipi(guest)
    shinfo_mask(guest, port)
    send(guest, port)
    rc, _ = op(guest, EVTCHNOP_close, port=port)
    assert rc == 0
    assert not shinfo_pending(guest, port)
    assert shinfo_masked(guest, port)


# --- ABI limits and the missing set_priority hook --------------------------------------------


def fill_ports(d) -> tuple[int, int]:
    """Allocate until Xen refuses: (highest port handed out, the refusing rc)."""
    last = 0
    while True:
        rc, arg = op(d, EVTCHNOP_alloc_unbound, dom=d.domain_id, remote_dom=0)
        if rc < 0:
            return last, rc
        last = arg.port


def test_64_bit_guest_gets_4096_channels_even_with_a_larger_max_evtchn_port(xen):
    """Models get_free_port + max_evtchns (xen/common/event_channel.c, .h): the 2-level limit
    is BITS_PER_EVTCHN_WORD squared = 4096 ports, so 4095 is the last; then -ENOSPC."""
    d = xen.domain_create(vcpus=1, max_evtchn_port=10_000)
    last, rc = fill_ports(d)
    assert last == BITS * BITS - 1
    assert rc == -Errno.ENOSPC


def test_32_bit_guest_gets_1024_channels_even_with_a_larger_max_evtchn_port(xen):
    """Models max_evtchns for has_32bit_shinfo: 32 x 32 = 1024 ports, 1023 is the last."""
    d = xen.domain_create(vcpus=1, max_evtchn_port=10_000, compat=True)
    last, rc = fill_ports(d)
    assert last == BITS_32 * BITS_32 - 1
    assert rc == -Errno.ENOSPC


def test_32_bit_guest_uses_32_bit_words_and_selector_at_offset_4(xen):
    """Models evtchn_2l_set_pending on a compat guest: port 33 is word 1, bit 1 of 32-bit words;
    the selector is the u32 at vcpu_info+4."""
    d = xen.domain_create(vcpus=1, compat=True)
    port = ipis(d, 33)[-1]
    assert port == 33
    send(d, port)
    raw = d.shared_info.frame.data
    assert int.from_bytes(raw[2048 + 4:2048 + 8], "little") == 1 << 1
    assert int.from_bytes(raw[2048:2048 + 4], "little") == 0
    assert int.from_bytes(raw[4:8], "little") == 1 << 1  # evtchn_pending_sel, word 1
    assert raw[0] == 1  # evtchn_upcall_pending


def test_set_priority_in_2_level_mode_returns_enosys(guest):
    """Models evtchn_port_set_priority (xen/common/event_channel.h): no hook -> -ENOSYS."""
    port = ipi(guest)
    rc, _ = op(guest, EVTCHNOP_set_priority, port=port, priority=0)
    assert rc == -Errno.ENOSYS


def test_set_priority_in_2_level_mode_checks_the_hook_before_usability_and_priority(guest):
    """Models evtchn_port_set_priority: the missing hook (-ENOSYS) is found before -EACCES
    (free port) and before the priority is ever range-checked."""
    port = ipi(guest)
    free_port = port + 1  # valid (same bucket) but never bound
    rc, _ = op(guest, EVTCHNOP_set_priority, port=free_port, priority=0)
    assert rc == -Errno.ENOSYS
    rc, _ = op(guest, EVTCHNOP_set_priority, port=port, priority=99)
    assert rc == -Errno.ENOSYS
    assert guest.abi == "2-level"
