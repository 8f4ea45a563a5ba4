"""The Linux-like FIFO consumer: one event per step, strict priority, FIFO within a queue.

Models drivers/xen/events/events_fifo.c (__evtchn_fifo_handle_events, consume_one_event,
clear_linked) and the ack of events_base.c (ack_dynirq -> clear_evtchn), per
xen-abi-facts.md section 4.3. Events are produced by the modelled Xen, so each test also
checks that the consumer reads exactly what Xen wrote.
"""

from __future__ import annotations

from conftest import ARRAY_GFN, CONTROL_GFN, L, M, P, connect, fifo_consumer, ipi, op, send, to_fifo

from evtsim import (
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHNOP_close,
    Xen,
)
from evtsim.memory import ControlBlockView, event_words

Q7 = EVTCHN_FIFO_PRIORITY_DEFAULT






def word(d, port: int) -> int:
    return event_words(d.memory.frame(ARRAY_GFN + (port >> 10)))[port & 1023]


def cb(d, vcpu: int = 0) -> ControlBlockView:
    return ControlBlockView(d.memory.frame(CONTROL_GFN + vcpu), 0)


def fifo_guest(vcpus: int = 1):
    xen = Xen()
    g = xen.domain_create(vcpus=vcpus)
    to_fifo(g)
    return xen, g


def traced(d):
    consumer = fifo_consumer(d)
    consumer.trace = True
    return consumer


def test_event_sent_by_dom0_runs_the_guest_handler():
    """__xen_evtchn_do_upcall -> handle_irq_for_port: Xen queues dom0's notification; the guest's
    upcall dispatches it to the port's handler.
    """
    xen, g = fifo_guest()
    port, remote = connect(g, xen.dom0)
    consumer = traced(g)
    calls = []
    consumer.handlers[port] = lambda cpu, p: calls.append((cpu, p))
    send(xen.dom0, remote)
    assert consumer.run() == 1
    assert calls == [(0, port)]
    assert consumer.received[port] == 1


def test_events_of_one_queue_are_handled_in_the_order_they_were_sent():
    """consume_one_event: FIFO within a queue; the LINK chain Xen built is followed from HEAD, not port
    order.
    """
    _, g = fifo_guest()
    a, b, c = ipi(g), ipi(g), ipi(g)
    for port in (c, a, b):
        send(g, port)
    consumer = traced(g)
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [c, a, b]


def test_the_highest_priority_ready_queue_is_handled_first():
    """__evtchn_fifo_handle_events: the lowest set READY bit is taken first, whatever the order of sending."""
    _, g = fifo_guest()
    low, high = ipi(g), ipi(g, priority=3)
    send(g, low)
    send(g, high)
    consumer = traced(g)
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [high, low]


def test_priority_is_re_evaluated_after_every_event():
    """__evtchn_fifo_handle_events, one event per step: C (priority 0) raised while handling A runs
    before B, A's queue-mate.
    """
    _, g = fifo_guest()
    a, b = ipi(g), ipi(g)
    c = ipi(g, priority=0)
    send(g, a)
    send(g, b)
    consumer = traced(g)
    consumer.handlers[a] = lambda cpu, p: send(g, c)
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [a, c, b]


def test_consumed_word_has_no_linked_bit_and_the_ack_clears_pending():
    """clear_linked drops L and LINK before dispatch; the IRQ ack (clear_evtchn) drops P."""
    _, g = fifo_guest()
    a, b = ipi(g), ipi(g)
    send(g, a)
    send(g, b)
    assert word(g, a) == P | L | b
    consumer = traced(g)
    seen = {}
    consumer.handlers[a] = lambda cpu, p: seen.setdefault(p, word(g, p))
    consumer.run()
    assert seen[a] & (L | P | EVTCHN_FIFO_LINK_MASK) == 0  # both done before the handler runs
    assert word(g, a) == 0 and word(g, b) == 0


def test_masked_event_in_a_queue_is_unlinked_and_skipped():
    """consume_one_event dispatches only P and not M; a masked word is unlinked and keeps P."""
    _, g = fifo_guest()
    a, b = ipi(g), ipi(g)
    send(g, a)
    send(g, b)
    event_words(g.memory.frame(ARRAY_GFN))[a] |= M  # the guest masks a LINKED word (allowed)
    consumer = traced(g)
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [b]
    assert word(g, a) == P | M  # unlinked, still pending: the consumer loop does not ack


def test_event_no_longer_pending_is_unlinked_and_skipped():
    """close clears only P; the consumer then unlinks the word without dispatching it."""
    _, g = fifo_guest()
    a, b = ipi(g), ipi(g)
    send(g, a)
    send(g, b)
    assert op(g, EVTCHNOP_close, port=a)[0] == 0
    consumer = traced(g)
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [b]
    assert word(g, a) == 0
    assert ipi(g) == a  # no longer LINKED, so no longer busy


def test_ready_is_exchanged_with_zero():
    """__evtchn_fifo_handle_events takes READY with an exchange: it reads 0 while handling."""
    _, g = fifo_guest()
    a = ipi(g)
    send(g, a)
    assert cb(g).ready == 1 << Q7
    consumer = traced(g)
    seen = []
    consumer.handlers[a] = lambda cpu, p: seen.append(cb(g).ready)
    consumer.run()
    assert seen == [0] and cb(g).ready == 0


def test_local_head_continues_a_queue_without_rereading_head():
    """cpu_queue.head[q] holds the next port; HEAD[q] is read only when it is 0.

    Xen writes HEAD only for an empty queue, so HEAD still names the first event while the
    consumer walks the LINK chain (including an event linked during a handler).
    """
    _, g = fifo_guest()
    a, b, c = ipi(g), ipi(g), ipi(g)
    send(g, a)
    send(g, b)
    consumer = traced(g)
    seen = {}

    def note(cpu, port):
        seen[port] = (consumer.head[cpu][Q7], cb(g).head(Q7))

    consumer.handlers = {a: lambda cpu, p: (note(cpu, p), send(g, c)), b: note, c: note}
    consumer.run()
    assert [p for _, p in consumer.dispatched] == [a, b, c]
    assert seen[b] == (b, a) and seen[c] == (c, a)
    assert consumer.head[0][Q7] == 0  # reached the tail


def test_event_raised_again_during_its_own_handler_is_delivered_again():
    """consume_one_event: the word is unlinked before dispatch, so Xen can queue the port again at once."""
    _, g = fifo_guest()
    a = ipi(g)
    send(g, a)
    consumer = traced(g)
    consumer.handlers[a] = lambda cpu, p: send(g, a) if consumer.received[a] == 1 else None
    consumer.run()
    assert consumer.received[a] == 2
    assert word(g, a) == 0


def test_events_on_vcpu_1_are_consumed_by_cpu_1_only():
    """__evtchn_fifo_handle_events: each CPU scans its own control block; vCPU 1's queue is invisible
    to CPU 0.
    """
    _, g = fifo_guest(vcpus=2)
    port = ipi(g, vcpu=1)
    send(g, port)
    consumer = traced(g)
    consumer.upcall(0)
    assert consumer.dispatched == [] and word(g, port) == P | L
    assert consumer.run() == 1
    assert consumer.dispatched == [(1, port)]


def test_head_beyond_the_guests_pages_is_an_anomaly_not_a_crash():
    """consume_one_event: a HEAD outside the registered array (e.g. an overwritten control block) is
    counted.
    """
    _, g = fifo_guest()
    consumer = traced(g)
    block = cb(g)
    block.words[ControlBlockView.HEAD0 + Q7] = 5000  # page 4: never added
    block.words[ControlBlockView.READY] = 1 << Q7
    g.vcpus[0].vcpu_info.bytes[0] = 1
    assert consumer.run() == 0
    assert consumer.anomalies == 1
    assert consumer.dispatched == [] and block.ready == 0
    assert consumer.head[0][Q7] == 0
    a = ipi(g)  # later, genuine events still flow
    send(g, a)
    assert consumer.run() == 1 and consumer.dispatched == [(0, a)]
