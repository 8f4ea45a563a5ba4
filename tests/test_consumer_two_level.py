"""The Linux-like 2-level consumer: what a guest kernel runs on an upcall, reading only the
shared_info that Xen wrote.

Expectations come from xen-abi-facts.md section 4.4, which describes Linux's
drivers/xen/events/events_2l.c (evtchn_2l_handle_events) and events_base.c
(__xen_evtchn_do_upcall, the ack in the IRQ flow), plus section 2.3 for what Xen writes.
Ports are bound with real hypercalls and events are raised by Xen; the consumer only sees
guest memory.
"""

from __future__ import annotations

from conftest import connect, op, send, shinfo_mask, shinfo_pending, two_level_consumer

from evtsim import EVTCHNOP_bind_ipi, EVTCHNOP_bind_virq, VIRQ_TIMER


def ipis(d, count: int, vcpu: int = 0) -> list[int]:
    """``count`` fresh IPI ports on ``vcpu``; a fresh domain hands them out as 1, 2, 3, ..."""
    ports = []
    for _ in range(count):
        rc, arg = op(d, EVTCHNOP_bind_ipi, vcpu=vcpu)
        assert rc == 0, rc
        ports.append(arg.port)
    return ports








def traced(c):
    c.trace = True
    return c


def order(c) -> list[int]:
    """Ports in dispatch order since the last call, and forget them."""
    ports = [port for _, port in c.dispatched]
    c.dispatched.clear()
    return ports


# --- delivery end to end ---------------------------------------------------------------------


def test_send_from_dom0_runs_the_guest_handler(xen, guest):
    """Models __xen_evtchn_do_upcall -> evtchn_2l_handle_events -> handle_irq_for_port: a dom0
    notification reaches the handler registered for the guest's port."""
    dom0_port, port = connect(xen.dom0, guest)
    c = two_level_consumer(guest)
    calls = []
    c.handlers[port] = lambda cpu, p: calls.append((cpu, p))
    assert c.run() == 1  # the event bind_interdomain raised
    send(xen.dom0, dom0_port)
    assert c.run() == 1
    assert calls == [(0, port), (0, port)]
    assert c.received[port] == 2


def test_ack_clears_the_pending_bit_before_the_handler_runs(xen, guest):
    """Models handle_edge_irq -> ack_dynirq -> clear_evtchn (drivers/xen/events/events_base.c):
    the pending bit is cleared first, so an event sent during the handler is not lost."""
    dom0_port, port = connect(xen.dom0, guest)
    c = two_level_consumer(guest)
    seen = []
    c.handlers[port] = lambda cpu, p: seen.append(shinfo_pending(guest, p))
    c.run()
    assert seen == [False]
    assert not shinfo_pending(guest, port)


def test_no_upcall_pending_means_nothing_runs(guest):
    """Models the upcall entry: nothing is scanned unless Xen set evtchn_upcall_pending."""
    (port,) = ipis(guest, 1)
    c = two_level_consumer(guest)
    guest.shared_info.evtchn_pending[0] |= 1 << port  # pending, but Xen raised no upcall
    assert c.run() == 0
    assert shinfo_pending(guest, port)


def test_masked_port_is_not_dispatched(guest):
    """Models active_evtchns (events_2l.c): pending AND bound to this CPU AND NOT masked."""
    live, muted = ipis(guest, 2)  # same word
    c = traced(two_level_consumer(guest))
    shinfo_mask(guest, muted)
    send(guest, muted)  # masked: Xen sets only the pending bit
    send(guest, live)  # this one raises the upcall that scans the shared word
    assert c.run() == 1
    assert order(c) == [live]
    assert muted not in c.received
    assert shinfo_pending(guest, muted)  # never acked


def test_port_bound_to_another_cpu_is_not_scanned_by_this_cpu(guest):
    """Models cpu_evtchn_mask in active_evtchns: CPU 0 skips a pending port of CPU 1 even in a
    word it scans; CPU 1 takes it on its own upcall."""
    (other,) = ipis(guest, 1, vcpu=1)
    (mine,) = ipis(guest, 1, vcpu=0)
    assert other // 64 == mine // 64
    c = traced(two_level_consumer(guest))
    guest.vcpus[1].vcpu_info.bytes[1] = 1  # CPU 1 has its upcalls masked for now
    send(guest, other)
    send(guest, mine)
    assert c.run() == 1
    assert c.dispatched == [(0, mine)]
    assert shinfo_pending(guest, other)
    guest.vcpus[1].vcpu_info.bytes[1] = 0
    assert c.run() == 1
    assert c.dispatched == [(0, mine), (1, other)]


# --- scan order ------------------------------------------------------------------------------


def test_timer_port_is_dispatched_before_lower_numbered_ports(xen, guest):
    """Models the timer-first rule of evtchn_2l_handle_events: this CPU's VIRQ_TIMER port runs
    before the selector scan."""
    low = ipis(guest, 3)
    rc, arg = op(guest, EVTCHNOP_bind_virq, virq=VIRQ_TIMER, vcpu=0)
    assert rc == 0
    timer = arg.port
    assert timer > max(low)
    c = traced(two_level_consumer(guest))
    c.timer_port[0] = timer
    for port in low:
        send(guest, port)
    xen.send_guest_vcpu_virq(guest.vcpus[0], VIRQ_TIMER)
    assert c.run() == 4
    assert order(c) == [timer, *low]
    assert c.received[timer] == 1  # acked first, so the scan does not see it again


def test_next_upcall_starts_after_the_last_dispatched_port(guest):
    """Models current_word_idx/current_bit_idx in evtchn_2l_handle_events: after port p the
    next scan starts at p+1 and wraps round, so a low port waits behind a higher one."""
    ports = ipis(guest, 70)
    c = traced(two_level_consumer(guest))
    send(guest, 65)  # word 1, bit 1
    c.run()
    assert order(c) == [65]
    send(guest, 1)  # word 0
    send(guest, 66)  # word 1, bit 2: at the saved cursor
    assert c.run() == 2
    assert order(c) == [66, 1]
    assert ports[-1] == 70


def test_cursor_after_the_last_bit_of_a_word_moves_to_the_next_word(guest):
    """Models the cursor update: bit 63 + 1 wraps to bit 0 of the following word."""
    ipis(guest, 64)
    c = traced(two_level_consumer(guest))
    send(guest, 63)  # word 0, last bit
    c.run()
    assert order(c) == [63]
    send(guest, 1)
    send(guest, 64)  # word 1, bit 0
    c.run()
    assert order(c) == [64, 1]


def test_cursor_after_the_last_port_wraps_to_word_0_on_a_32_bit_guest(xen):
    """Models the cursor update modulo BITS_PER_EVTCHN_WORD: on a compat guest (32 words of
    32 bits) dispatching port 1023 sends the next scan back to port 0."""
    d = xen.domain_create(vcpus=1, compat=True, max_evtchn_port=1023)
    ports = ipis(d, 1023)
    assert ports[-1] == 1023
    c = traced(two_level_consumer(d))
    send(d, 1023)
    c.run()
    assert order(c) == [1023]
    send(d, 2)
    send(d, 1022)
    assert c.run() == 2
    assert order(c) == [2, 1022]  # a cursor left in word 31 would give [1022, 2]


def test_start_word_is_scanned_twice_so_ports_below_the_cursor_run_in_the_same_upcall(guest):
    """Models "scan the starting word twice" in evtchn_2l_handle_events: first from the saved
    bit up, then, after wrapping, the whole word."""
    ipis(guest, 70)
    c = traced(two_level_consumer(guest))
    send(guest, 65)
    c.run()
    order(c)  # cursor now at port 66 (word 1, bit 2)
    send(guest, 65)  # below the cursor in the start word
    send(guest, 66)  # at the cursor
    upcalls = guest.vcpus[0].upcalls
    assert c.run() == 2
    assert order(c) == [66, 65]
    assert guest.vcpus[0].upcalls == upcalls  # one upcall did both: no second one was raised
    assert not shinfo_pending(guest, 65) and not shinfo_pending(guest, 66)
    assert guest.vcpus[0].vcpu_info.evtchn_pending_sel == 0


# --- the upcall loop and its mask ------------------------------------------------------------


def test_upcall_loop_repeats_when_a_handler_raises_another_event(guest):
    """Models __xen_evtchn_do_upcall: evtchn_upcall_pending is cleared before each scan and the
    scan repeats while Xen set it again. Port 5 (word 0) is sent from port 70's handler (word 1),
    after the selector snapshot, so only the outer loop can pick it up."""
    ipis(guest, 70)
    c = traced(two_level_consumer(guest))
    c.handlers[70] = lambda cpu, port: send(guest, 5)
    send(guest, 70)
    assert c.run() == 2
    assert order(c) == [70, 5]
    v0 = guest.vcpus[0]
    assert v0.upcalls == 2  # Xen saw upcall_pending cleared and raised it again
    assert v0.vcpu_info.evtchn_upcall_pending == 0
    assert v0.vcpu_info.evtchn_pending_sel == 0


def test_upcall_mask_blocks_the_upcall_until_cleared(guest):
    """Models the PV evtchn_upcall_mask (byte 1 of vcpu_info, XEN_HAVE_PV_UPCALL_MASK): while set,
    the guest takes no upcall; the event stays pending and runs once the mask is cleared."""
    (port,) = ipis(guest, 1)
    c = two_level_consumer(guest)
    calls = []
    c.handlers[port] = lambda cpu, p: calls.append(p)
    guest.shared_info.frame.data[64 * 0 + 1] = 1
    send(guest, port)
    assert c.run() == 0
    assert calls == []
    assert shinfo_pending(guest, port)
    assert guest.vcpus[0].vcpu_info.evtchn_upcall_pending == 1
    guest.shared_info.frame.data[1] = 0
    assert c.run() == 1
    assert calls == [port]
