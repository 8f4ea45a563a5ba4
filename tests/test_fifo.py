"""The FIFO engine: event words, per-vCPU priority queues, HEAD/READY in guest memory.

Models xen/common/event_fifo.c (evtchn_fifo_set_pending, evtchn_fifo_set_link,
evtchn_fifo_unmask, evtchn_fifo_clear_pending, evtchn_fifo_set_priority, evtchn_fifo_is_busy,
add_page_to_event_array, evtchn_fifo_destroy), as described in xen-abi-facts.md sections 1.5,
2.4 and 8.7. Words and control blocks are read from the guest's own frames, the way a guest
would see them; only TAIL, which is private to Xen, is read from Xen's state.
"""

from __future__ import annotations

import struct

import pytest
from conftest import ARRAY_GFN, B, CONTROL_GFN, L, M, P, connect, ipi, op, send, to_fifo

from evtsim import (
    DOMID_SELF,
    EVTCHN_FIFO_BUSY,
    EVTCHN_FIFO_LINK_BITS,
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_NR_CHANNELS,
    EVTCHN_FIFO_PENDING,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_close,
    EVTCHNOP_expand_array,
    EVTCHNOP_init_control,
    EVTCHNOP_reset,
    EVTCHNOP_set_priority,
    EVTCHNOP_unmask,
    Errno,
    Xen,
)
from evtsim.memory import ControlBlockView, Recording, Structure, event_words

Q7 = EVTCHN_FIFO_PRIORITY_DEFAULT


# --- a guest's view of its own memory ---------------------------------------------------


def word(d, port: int) -> int:
    """The event word of ``port`` as the guest reads it from its array page."""
    return event_words(d.memory.frame(ARRAY_GFN + (port >> 10)))[port & 1023]


def set_word(d, port: int, value: int) -> None:
    """A guest write to the event word of ``port``."""
    event_words(d.memory.frame(ARRAY_GFN + (port >> 10)))[port & 1023] = value


def consume(d, port: int) -> None:
    """What Linux's consume_one_event + ack do to a word: clear LINKED, LINK and PENDING."""
    set_word(d, port, word(d, port) & ~(L | P | EVTCHN_FIFO_LINK_MASK))


def cb(d, vcpu: int = 0) -> ControlBlockView:
    """The guest's view of the control block it registered for ``vcpu`` (offset 0)."""
    return ControlBlockView(d.memory.frame(CONTROL_GFN + vcpu), 0)


def take_upcall(d, vcpu: int = 0) -> None:
    """The guest enters its upcall handler: it clears evtchn_upcall_pending."""
    d.vcpus[vcpu].vcpu_info.bytes[0] = 0


def tail(d, priority: int = Q7, vcpu: int = 0) -> int:
    """Xen's private TAIL of a queue (struct evtchn_fifo_queue.tail)."""
    return d.fifo.vcpus[vcpu].queues[priority].tail






def set_priority(d, port: int, priority: int) -> int:
    return op(d, EVTCHNOP_set_priority, port=port, priority=priority)[0]


@pytest.fixture
def fifo_guest(guest):
    """A 2-vCPU guest with a control block on each vCPU and one unmasked array page."""
    to_fifo(guest)
    return guest


# --- layout (section 1.5) ----------------------------------------------------------------


def test_event_word_flags_are_bits_31_to_28_and_link_is_the_low_17_bits():
    """event_word_t in xen/include/public/event_channel.h: P=31, M=30, L=29, B=28, LINK 0-16."""
    assert (EVTCHN_FIFO_PENDING, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_BUSY) == (31, 30, 29, 28)
    assert EVTCHN_FIFO_LINK_BITS == 17 and EVTCHN_FIFO_LINK_MASK == 0x1FFFF
    assert EVTCHN_FIFO_NR_CHANNELS == 131072
    unused = ((1 << 28) - 1) & ~0x1FFFF  # bits 17-27
    assert (P | M | L | B | EVTCHN_FIFO_LINK_MASK) & unused == 0


def test_each_vcpu_has_16_queues_one_per_priority(fifo_guest):
    """setup_control_block: queue i of every vCPU gets priority i; TAIL starts at 0."""
    assert EVTCHN_FIFO_MAX_QUEUES == 16
    for fv in fifo_guest.fifo.vcpus:
        assert [q.priority for q in fv.queues] == list(range(16))
        assert all(q.tail == 0 for q in fv.queues)
    assert len(fifo_guest.fifo.vcpus) == len(fifo_guest.vcpus)


def test_ready_and_head_are_written_at_the_guest_chosen_offset():
    """struct evtchn_fifo_control_block at init_control's offset: ready at +0, head[q] at +8+4q."""
    xen = Xen()
    g = xen.domain_create()
    assert op(g, EVTCHNOP_init_control, control_gfn=CONTROL_GFN, offset=256, vcpu=0)[0] == 0
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    port = ipi(g)
    send(g, port)
    data = g.memory.frame(CONTROL_GFN).data
    ready, rsvd = struct.unpack_from("<II", data, 256)
    heads = struct.unpack_from("<16I", data, 256 + 8)
    assert ready == 1 << Q7 and rsvd == 0
    assert heads == tuple(port if q == Q7 else 0 for q in range(16))
    assert not any(data[:256])  # nothing written before the block
    page = g.memory.frame(ARRAY_GFN).data
    assert struct.unpack_from("<I", page, port * 4)[0] == P | L  # port p is word p of page 0


# --- linking (section 2.4 set_pending) ---------------------------------------------------


def test_first_event_in_an_empty_queue_writes_head_sets_ready_and_raises_the_upcall(fifo_guest):
    """evtchn_fifo_set_pending: empty queue -> HEAD[q] = port, READY bit q, vcpu_mark_events_pending."""
    a = ipi(fifo_guest)
    send(fifo_guest, a)
    assert word(fifo_guest, a) == P | L
    assert cb(fifo_guest).head(Q7) == a
    assert cb(fifo_guest).ready == 1 << Q7
    assert tail(fifo_guest) == a
    assert fifo_guest.vcpus[0].upcalls == 1
    assert fifo_guest.vcpus[0].vcpu_info.evtchn_upcall_pending == 1


def test_second_event_links_behind_the_linked_tail_without_upcall_or_head_write(fifo_guest):
    """evtchn_fifo_set_link: the tail's LINK becomes the new port; HEAD and READY are untouched."""
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    take_upcall(fifo_guest)
    writes_to_cb = fifo_guest.memory.frame(CONTROL_GFN).xen_writes
    send(fifo_guest, b)
    assert word(fifo_guest, a) == P | L | b
    assert word(fifo_guest, b) == P | L
    assert cb(fifo_guest).head(Q7) == a
    assert tail(fifo_guest) == b
    assert fifo_guest.memory.frame(CONTROL_GFN).xen_writes == writes_to_cb
    assert fifo_guest.vcpus[0].upcalls == 1


def test_event_after_the_tail_was_consumed_writes_head_again_without_upcall_while_ready_is_set(fifo_guest):
    """evtchn_fifo_set_link fails on an unlinked tail, so the queue counts as empty: HEAD is rewritten.

    READY bit q is still set (the guest has not exchanged it yet), so no new upcall.
    """
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    take_upcall(fifo_guest)
    consume(fifo_guest, a)
    send(fifo_guest, b)
    assert cb(fifo_guest).head(Q7) == b
    assert word(fifo_guest, a) & EVTCHN_FIFO_LINK_MASK == 0  # not linked behind a consumed word
    assert tail(fifo_guest) == b
    assert cb(fifo_guest).ready == 1 << Q7
    assert fifo_guest.vcpus[0].upcalls == 1
    assert fifo_guest.vcpus[0].vcpu_info.evtchn_upcall_pending == 0


def test_event_after_the_tail_was_consumed_and_ready_cleared_raises_a_new_upcall(fifo_guest):
    """evtchn_fifo_set_pending: the upcall is raised when HEAD was written and test-and-set of READY
    bit q found it clear.
    """
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    take_upcall(fifo_guest)
    cb(fifo_guest).words[ControlBlockView.READY] = 0  # the guest's exchange of READY with 0
    consume(fifo_guest, a)
    send(fifo_guest, b)
    assert cb(fifo_guest).head(Q7) == b
    assert cb(fifo_guest).ready == 1 << Q7
    assert fifo_guest.vcpus[0].upcalls == 2


def test_first_event_of_another_priority_sets_its_own_ready_bit_and_upcalls(fifo_guest):
    """evtchn_fifo_set_pending: READY has one bit per queue; queue 3 becoming non-empty raises an
    upcall of its own.
    """
    a, c = ipi(fifo_guest), ipi(fifo_guest)
    assert set_priority(fifo_guest, c, 3) == 0
    send(fifo_guest, a)
    take_upcall(fifo_guest)
    send(fifo_guest, c)
    assert cb(fifo_guest).head(3) == c and cb(fifo_guest).head(Q7) == a
    assert cb(fifo_guest).ready == (1 << 3) | (1 << Q7)
    assert word(fifo_guest, a) & EVTCHN_FIFO_LINK_MASK == 0  # different queues are not linked
    assert fifo_guest.vcpus[0].upcalls == 2


def test_events_of_vcpu_1_use_vcpu_1_control_block_and_queues(fifo_guest):
    """evtchn_fifo_set_pending uses v->evtchn_fifo, which is per vCPU: an IPI bound to vCPU 1 is queued
    in vCPU 1's block only.
    """
    port = ipi(fifo_guest, vcpu=1)
    send(fifo_guest, port)
    assert cb(fifo_guest, 1).head(Q7) == port and cb(fifo_guest, 1).ready == 1 << Q7
    assert cb(fifo_guest, 0).ready == 0 and cb(fifo_guest, 0).head(Q7) == 0
    assert tail(fifo_guest, vcpu=1) == port and tail(fifo_guest, vcpu=0) == 0
    assert [v.upcalls for v in fifo_guest.vcpus] == [0, 1]


def test_masked_event_gets_the_pending_bit_but_is_not_linked(guest):
    """evtchn_fifo_set_pending: a MASKED word only gains P: no LINKED, no HEAD, no READY, no upcall
    (Linux's pages start masked).
    """
    to_fifo(guest, masked=True)
    a = ipi(guest)
    send(guest, a)
    assert word(guest, a) == P | M
    assert cb(guest).head(Q7) == 0 and cb(guest).ready == 0
    assert tail(guest) == 0
    assert guest.vcpus[0].upcalls == 0


def test_unmask_relinks_a_pending_masked_event(guest):
    """evtchn_fifo_unmask: clear M, and since P is set, set_pending again, which links it."""
    to_fifo(guest, masked=True)
    a = ipi(guest)
    send(guest, a)
    assert op(guest, EVTCHNOP_unmask, port=a)[0] == 0
    assert word(guest, a) == P | L
    assert cb(guest).head(Q7) == a and cb(guest).ready == 1 << Q7
    assert tail(guest) == a
    assert guest.vcpus[0].upcalls == 1


def test_unmask_of_a_port_that_is_not_pending_only_clears_the_mask(guest):
    """evtchn_fifo_unmask relinks only if P is set."""
    to_fifo(guest, masked=True)
    a = ipi(guest)
    assert op(guest, EVTCHNOP_unmask, port=a)[0] == 0
    assert word(guest, a) == 0
    assert cb(guest).head(Q7) == 0 and guest.vcpus[0].upcalls == 0


def test_an_already_linked_event_is_not_queued_again(fifo_guest):
    """evtchn_fifo_set_pending: test-and-set of LINKED finds it set; the event stays where it is, not
    linked to itself.
    """
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    take_upcall(fifo_guest)
    set_word(fifo_guest, a, word(fifo_guest, a) & ~P)  # the guest acked but has not unlinked yet
    send(fifo_guest, a)
    assert word(fifo_guest, a) == P | L  # P again, LINK still 0: no self-link
    assert tail(fifo_guest) == a and cb(fifo_guest).head(Q7) == a
    assert fifo_guest.vcpus[0].upcalls == 1
    send(fifo_guest, b)  # the queue is still a well-formed one-element list
    assert word(fifo_guest, a) == P | L | b


def test_event_for_a_port_without_array_page_is_stashed_in_evtchn_pending(guest):
    """set_pending with no word: evtchn->pending = true and return, no upcall."""
    to_fifo(guest, pages=0)
    a = ipi(guest)
    send(guest, a)
    assert guest.ports.chn[a].pending is True
    assert guest.fifo.word(a) is None
    assert cb(guest).head(Q7) == 0 and cb(guest).ready == 0
    assert guest.vcpus[0].upcalls == 0


def test_stashed_event_is_linked_when_expand_array_adds_its_page(guest):
    """add_page_to_event_array re-raises every port of the new page whose evtchn->pending is set."""
    to_fifo(guest, pages=0)
    a = ipi(guest)
    send(guest, a)
    assert op(guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert word(guest, a) == P | L
    assert cb(guest).head(Q7) == a and cb(guest).ready == 1 << Q7
    assert guest.vcpus[0].upcalls == 1


def test_stashed_event_on_a_linux_masked_page_stays_pending_and_masked(guest):
    """Linux's init_array_page fills new pages with MASKED, so the re-raised event is P + M."""
    to_fifo(guest, pages=0)
    a = ipi(guest)
    send(guest, a)
    guest.memory.frame(ARRAY_GFN).data[:] = M.to_bytes(4, "little") * 1024
    assert op(guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert word(guest, a) == P | M
    assert cb(guest).head(Q7) == 0 and guest.vcpus[0].upcalls == 0
    assert op(guest, EVTCHNOP_unmask, port=a)[0] == 0  # Linux unmasks when the IRQ is enabled
    assert word(guest, a) == P | L and cb(guest).head(Q7) == a


def test_stashed_event_waits_for_the_page_that_covers_its_port():
    """add_page_to_event_array re-raises only ports of the page just added: port 1024 needs page 1, not
    page 0.
    """
    g = Xen().domain_create(max_evtchn_port=2047)
    to_fifo(g, pages=0)
    ports = [ipi(g) for _ in range(1024)]
    high = ports[-1]
    assert high == 1024
    send(g, high)
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    assert cb(g).head(Q7) == 0 and g.vcpus[0].upcalls == 0
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN + 1)[0] == 0
    assert word(g, high) == P | L and cb(g).head(Q7) == high


def test_a_page_added_later_does_not_reraise_stashed_ports_of_earlier_pages():
    """Xen never clears evtchn->pending, but add_page_to_event_array only walks the new page's ports."""
    g = Xen().domain_create(max_evtchn_port=2047)
    to_fifo(g, pages=0)
    a = ipi(g)
    send(g, a)
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    consume(g, a)
    assert g.ports.chn[a].pending is True  # the stale flag stays
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN + 1)[0] == 0
    assert word(g, a) == 0


# --- Xen's atomic steps in the write log (evtchn_fifo_set_pending, evtchn_fifo_set_link) ----


def full_xen(vcpus: int = 1):
    """A FIFO guest on a Xen that keeps every write (Recording.FULL), with one array page."""
    xen = Xen(recording=Recording.FULL)
    d = xen.domain_create(vcpus=vcpus)
    to_fifo(d)
    xen.log.writes.clear()
    return xen, d


def word_writes(xen, port: int) -> list[int]:
    """The values Xen wrote into ``port``'s event word, in order (page 0 of the array)."""
    return [w.value for w in xen.log.writes
            if w.structure is Structure.EVENT_ARRAY and w.gfn == ARRAY_GFN and w.offset == 4 * port]


def test_pending_and_linked_are_two_writes_pending_first():
    """evtchn_fifo_set_pending does test-and-set PENDING, tests MASKED, then test-and-set
    LINKED: a guest reading the log sees the word go 0 -> P -> P|L, then HEAD and READY."""
    xen, d = full_xen()
    port = ipi(d)
    send(d, port)
    assert [(w.structure, w.offset, w.value) for w in xen.log.writes] == [
        (Structure.EVENT_ARRAY, 4 * port, P),
        (Structure.EVENT_ARRAY, 4 * port, P | L),
        (Structure.CONTROL_BLOCK, 8 + 4 * Q7, port),  # HEAD[7]
        (Structure.CONTROL_BLOCK, 0, 1 << Q7),  # READY
        (Structure.VCPU_INFO, 0, 1),  # evtchn_upcall_pending
    ]
    assert d.memory.frame(ARRAY_GFN).xen_writes == 2


def test_linking_behind_the_tail_writes_the_tails_link_after_the_new_words_two_steps():
    """The second event: its own P and L, then the tail's word gets LINK = port (cmpxchg)."""
    xen, d = full_xen()
    first, second = ipi(d), ipi(d)
    send(d, first)
    xen.log.writes.clear()
    send(d, second)
    assert [(w.offset // 4, w.value) for w in xen.log.writes] == [
        (second, P), (second, P | L), (first, P | L | second)]


def test_a_masked_word_gets_only_the_pending_step_and_a_repeat_writes_nothing():
    """MASKED stops set_pending after step 1; when PENDING is already set, step 1 changes
    nothing, so nothing is written (a test-and-set that finds its bit set stores no new value)."""
    xen, d = full_xen()
    port = ipi(d)
    set_word(d, port, M)
    send(d, port)
    send(d, port)
    assert word_writes(xen, port) == [M | P]
    assert d.memory.frame(CONTROL_GFN).xen_writes == 0


def test_a_pending_unlinked_word_gets_only_the_linked_step():
    """PENDING already set (the guest unlinked the word but kept P): only LINKED is written."""
    xen, d = full_xen()
    port = ipi(d)
    set_word(d, port, P)
    send(d, port)
    assert word_writes(xen, port) == [P | L]


def test_the_full_log_replayed_onto_the_old_bytes_gives_the_new_bytes():
    """Every change Xen made to the event words is in the log, in order: replaying it over
    the page as it was reproduces the page as it is."""
    xen, d = full_xen()
    ports = [ipi(d) for _ in range(5)]
    page = d.memory.frame(ARRAY_GFN)
    before = bytearray(page.data)
    for port in ports + ports[:2]:
        send(d, port)
    consume(d, ports[0])
    before[4 * ports[0]:4 * ports[0] + 4] = page.data[4 * ports[0]:4 * ports[0] + 4]  # the guest's own write
    send(d, ports[0])
    replay = memoryview(before).cast("I")
    for w in xen.log.writes:
        if w.gfn == ARRAY_GFN:
            replay[w.offset // 4] = w.value
    assert bytes(before) == bytes(page.data)


def test_steps_that_change_nothing_are_not_writes_unmask_of_an_unmasked_word_and_the_same_head():
    """evtchn_fifo_unmask's clear of a MASKED bit that is already clear, and a HEAD store of the
    port HEAD already holds, leave memory as it was: the log records neither."""
    xen, d = full_xen()
    port = ipi(d)
    send(d, port)
    consume(d, port)  # HEAD still names the port
    xen.log.writes.clear()
    assert op(d, EVTCHNOP_unmask, port=port)[0] == 0  # the word is not MASKED: nothing to clear
    assert xen.log.writes == []
    send(d, port)
    assert [(w.structure, w.value) for w in xen.log.writes] == [
        (Structure.EVENT_ARRAY, P), (Structure.EVENT_ARRAY, P | L)]  # HEAD already == port; READY still set


def race_on(d, tail: int, *changes: int):
    """A guest vCPU that, racing Xen, XORs ``changes`` into ``tail``'s word, one per window
    between Xen's read of the tail word and its cmpxchg (``Fifo.guest_race``)."""
    pending = list(changes)

    def race(port: int) -> None:
        assert port == tail
        if pending:
            set_word(d, port, word(d, port) ^ pending.pop(0))

    d.fifo.guest_race = race
    return pending


def test_set_link_with_a_guest_that_never_races_writes_what_the_inline_path_writes():
    """The hot path inlines evtchn_fifo_set_link's first, uncontested cmpxchg: with a racing
    guest that does nothing, ``set_link`` leaves the same bytes and the same log."""
    results = []
    for racing in (False, True):
        xen, d = full_xen()
        if racing:
            d.fifo.guest_race = lambda port: None
        ports = [ipi(d) for _ in range(6)]
        for port in ports + ports[::2]:
            send(d, port)
        consume(d, ports[0])
        send(d, ports[0])
        results.append((bytes(d.memory.frame(ARRAY_GFN).data), bytes(d.memory.frame(CONTROL_GFN).data),
                        [(w.gfn, w.offset, w.value) for w in xen.log.writes]))
    assert results[0] == results[1]


def test_a_guest_write_between_read_and_cmpxchg_makes_xen_set_busy_then_link():
    """evtchn_fifo_set_link: the first cmpxchg fails because the guest masked the tail; Xen
    sets BUSY on the tail word, re-reads it and links with a cmpxchg that also clears BUSY."""
    xen, d = full_xen()
    tail, port = ipi(d), ipi(d)
    send(d, tail)
    xen.log.writes.clear()
    race_on(d, tail, M)  # the guest masks the linked tail (a change it is allowed to make)
    send(d, port)
    assert word_writes(xen, tail) == [P | L | M | B, P | L | M | port]
    assert word(d, tail) == P | L | M | port
    assert d.memory.frame(CONTROL_GFN).xen_writes == 2  # only to_fifo's first HEAD and READY


def test_a_tail_unlinked_during_the_race_gets_busy_cleared_and_the_port_becomes_head():
    """The guest consumed the tail between Xen's read and its cmpxchg: Xen sets BUSY, re-reads
    an unlinked word, clears BUSY again and writes HEAD: the queue was empty after all."""
    xen, d = full_xen()
    tail, port = ipi(d), ipi(d)
    send(d, tail)
    take_upcall(d)
    cb(d).words[0] = 0  # the guest took READY
    xen.log.writes.clear()
    race_on(d, tail, P | L)  # consume_one_event + ack: LINKED and PENDING cleared
    send(d, port)
    assert word_writes(xen, tail) == [B, 0]
    assert cb(d).head(Q7) == port and cb(d).ready == 1 << Q7
    assert d.vcpus[0].vcpu_info.evtchn_upcall_pending == 1


def test_a_guest_that_keeps_racing_makes_xen_give_up_warn_and_lose_the_event():
    """Five failed cmpxchgs (one before BUSY, four after): Xen warns "not linked", clears BUSY
    and treats the port as linked, so it is queued nowhere: the buggy guest loses it."""
    xen, d = full_xen()
    first, port = ipi(d), ipi(d)
    send(d, first)
    xen.log.writes.clear()
    left = race_on(d, first, *[M] * 6)  # toggling MASKED faster than Xen can cmpxchg
    send(d, port)
    assert len(left) == 1  # Xen raced five times, then gave up
    assert word_writes(xen, first) == [P | L | M | B, P | L | M]  # BUSY set, then cleared (M toggled 5 times)
    assert xen.console == [f"domain {d.domain_id}, port {port} not linked"]
    assert word(d, port) == P | L and tail(d) == port  # Xen believes it queued the port
    assert cb(d).head(Q7) == first and word(d, first) & EVTCHN_FIFO_LINK_MASK == 0  # nothing leads to it


# --- set_priority and bind_vcpu: future links only ---------------------------------------


def test_set_priority_affects_only_future_links(fifo_guest):
    """evtchn_fifo_set_priority: a queued event stays on its old queue until it is consumed."""
    a = ipi(fifo_guest)
    send(fifo_guest, a)
    assert set_priority(fifo_guest, a, 2) == 0
    send(fifo_guest, a)  # still LINKED on queue 7: not moved
    assert cb(fifo_guest).head(2) == 0 and tail(fifo_guest, 2) == 0
    assert cb(fifo_guest).head(Q7) == a and tail(fifo_guest) == a
    consume(fifo_guest, a)
    send(fifo_guest, a)
    assert cb(fifo_guest).head(2) == a and tail(fifo_guest, 2) == a
    assert cb(fifo_guest).ready & 1 << 2


@pytest.mark.parametrize("priority, rc", [
    (0, 0),
    (15, 0),
    (16, -Errno.EINVAL),
    (0xFFFF_FFFF, -Errno.EINVAL),
    (-1, -Errno.EINVAL),  # a u32 field: -1 arrives as 0xFFFFFFFF
])
def test_set_priority_accepts_0_to_15_only(fifo_guest, priority, rc):
    """evtchn_fifo_set_priority: priority > EVTCHN_FIFO_PRIORITY_MIN (15) is -EINVAL."""
    a = ipi(fifo_guest)
    assert set_priority(fifo_guest, a, priority) == rc
    assert fifo_guest.ports.chn[a].priority == (priority if rc == 0 else Q7)


def test_set_priority_on_a_port_that_is_not_bound_is_eacces(fifo_guest):
    """evtchn_port_set_priority: a valid but unusable port (FREE, RESERVED, closed) gives -EACCES."""
    a = ipi(fifo_guest)
    assert op(fifo_guest, EVTCHNOP_close, port=a)[0] == 0
    assert set_priority(fifo_guest, a, 3) == -Errno.EACCES
    assert set_priority(fifo_guest, a + 5, 3) == -Errno.EACCES  # never bound, bucket exists
    assert set_priority(fifo_guest, 0, 3) == -Errno.EACCES  # port 0 is ECS_RESERVED


def test_set_priority_on_an_invalid_port_is_einval(fifo_guest):
    """_evtchn_from_port fails for a port whose bucket was never allocated."""
    assert set_priority(fifo_guest, fifo_guest.ports.valid_evtchns, 3) == -Errno.EINVAL


def test_set_priority_on_an_unbound_state_port_is_allowed(fifo_guest):
    """evtchn_usable is state > ECS_RESERVED, so an ECS_UNBOUND port is usable."""
    rc, arg = op(fifo_guest, EVTCHNOP_alloc_unbound, dom=DOMID_SELF, remote_dom=0)
    assert rc == 0
    assert set_priority(fifo_guest, arg.port, 4) == 0


def test_old_tail_is_reset_when_its_event_is_relinked_on_another_queue(fifo_guest):
    """e33d4257fc: if the old queue's TAIL is this port, it becomes 0 when the port moves.

    Without it, the next event on the old queue would be linked behind the port in its new
    queue, corrupting that queue.
    """
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    consume(fifo_guest, a)
    assert set_priority(fifo_guest, a, 3) == 0
    send(fifo_guest, a)
    assert tail(fifo_guest, Q7) == 0
    assert tail(fifo_guest, 3) == a and cb(fifo_guest).head(3) == a
    send(fifo_guest, b)  # queue 7 is empty: b becomes its HEAD, a's LINK is untouched
    assert cb(fifo_guest).head(Q7) == b
    assert word(fifo_guest, a) == P | L
    assert tail(fifo_guest, 3) == a


def test_bind_vcpu_affects_only_future_links_and_resets_the_old_tail(xen, fifo_guest):
    """EVTCHNOP_bind_vcpu does not move a linked event; the next link goes to the new vCPU."""
    port, remote = connect(fifo_guest, xen.dom0)
    send(xen.dom0, remote)
    assert cb(fifo_guest, 0).head(Q7) == port
    assert op(fifo_guest, EVTCHNOP_bind_vcpu, port=port, vcpu=1)[0] == 0
    send(xen.dom0, remote)
    assert cb(fifo_guest, 1).head(Q7) == 0 and tail(fifo_guest, vcpu=1) == 0
    consume(fifo_guest, port)
    send(xen.dom0, remote)
    assert cb(fifo_guest, 1).head(Q7) == port and tail(fifo_guest, vcpu=1) == port
    assert tail(fifo_guest, vcpu=0) == 0  # the old-tail rule across vCPUs
    assert fifo_guest.vcpus[1].upcalls == 1


# --- busy ports, close, missing control blocks --------------------------------------------


@pytest.mark.parametrize("version, reused", [("master", False), ("4.7", False), ("4.4", True)])
def test_a_linked_free_port_is_busy_and_not_reallocated_since_4_7(version, reused):
    """evtchn_fifo_is_busy (78e24c269b0a, 4.7.0): get_free_port skips a FREE port still LINKED."""
    g = Xen(version).domain_create()
    to_fifo(g)
    a = ipi(g)
    send(g, a)
    assert op(g, EVTCHNOP_close, port=a)[0] == 0
    assert word(g, a) == L  # close cleared P only
    assert (ipi(g) == a) is reused


def test_a_busy_port_is_reallocated_once_the_guest_unlinks_it(fifo_guest):
    """get_free_port + evtchn_fifo_is_busy: busy means LINKED; once the guest consumed the word, the
    port is the lowest free again.
    """
    a = ipi(fifo_guest)
    send(fifo_guest, a)
    assert op(fifo_guest, EVTCHNOP_close, port=a)[0] == 0
    other = ipi(fifo_guest)
    assert other != a
    consume(fifo_guest, a)
    assert ipi(fifo_guest) == a


@pytest.mark.parametrize("version, sets_pending", [("4.8", True), ("4.17", False), ("master", False)])
def test_event_for_a_vcpu_without_control_block_is_dropped(version, sets_pending):
    """set_pending on a vCPU with no control block warns and drops the event.

    Xen <= 4.16 had already set PENDING by then; 8aa0e9d2d1 (4.17) no longer does.
    """
    g = Xen(version).domain_create(vcpus=2)
    assert op(g, EVTCHNOP_init_control, control_gfn=CONTROL_GFN, offset=0, vcpu=0)[0] == 0
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    port = ipi(g, vcpu=1)
    send(g, port)
    assert g.fifo.dropped == 1
    assert word(g, port) == (P if sets_pending else 0)
    assert g.fifo.vcpus[1].queues[Q7].tail == 0
    assert cb(g, 0).ready == 0 and cb(g, 0).head(Q7) == 0
    assert [v.upcalls for v in g.vcpus] == [0, 0]


def test_events_for_a_vcpu_are_delivered_once_it_registers_its_control_block():
    """map_control_block then evtchn_fifo_set_pending: the drop is not remembered; after init_control
    for vCPU 1, its next event is queued.
    """
    g = Xen().domain_create(vcpus=2)
    assert op(g, EVTCHNOP_init_control, control_gfn=CONTROL_GFN, offset=0, vcpu=0)[0] == 0
    assert op(g, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN)[0] == 0
    port = ipi(g, vcpu=1)
    send(g, port)
    assert op(g, EVTCHNOP_init_control, control_gfn=CONTROL_GFN + 1, offset=0, vcpu=1)[0] == 0
    assert cb(g, 1).head(Q7) == 0  # the dropped event is not re-sent
    send(g, port)
    assert cb(g, 1).head(Q7) == port and g.vcpus[1].upcalls == 1


def test_close_clears_only_pending_and_leaves_the_linked_word_queued(fifo_guest):
    """evtchn_fifo_clear_pending: just P; the guest will unlink and ignore the word."""
    a, b = ipi(fifo_guest), ipi(fifo_guest)
    send(fifo_guest, a)
    send(fifo_guest, b)
    assert op(fifo_guest, EVTCHNOP_close, port=a)[0] == 0
    assert word(fifo_guest, a) == L | b
    assert cb(fifo_guest).head(Q7) == a and tail(fifo_guest) == b


# --- teardown ----------------------------------------------------------------------------


def test_reset_destroys_the_fifo_state_and_xen_stops_writing_the_guest_pages(fifo_guest):
    """EVTCHNOP_reset -> evtchn_fifo_destroy: control blocks and array pages are unmapped."""
    frames = [fifo_guest.memory.frame(CONTROL_GFN + v) for v in (0, 1)] + [fifo_guest.memory.frame(ARRAY_GFN)]
    assert op(fifo_guest, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
    assert fifo_guest.fifo is None and fifo_guest.abi == "2-level"
    assert all(f.xen_mapping is None for f in frames)
    before = [f.xen_writes for f in frames]
    send(fifo_guest, ipi(fifo_guest))
    assert [f.xen_writes for f in frames] == before
