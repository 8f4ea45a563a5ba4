"""Xen's FIFO port ops: an event word per port in guest pages, linked into per-vCPU
queues of 16 priorities whose HEAD and READY live in the guest's control block.

Models xen/common/event_fifo.c: evtchn_fifo_init_control, evtchn_fifo_expand_array
(add_page_to_event_array), evtchn_fifo_set_pending, evtchn_fifo_set_link,
evtchn_fifo_unmask, evtchn_fifo_clear_pending, evtchn_fifo_set_priority,
evtchn_fifo_destroy and setup_ports. TAIL is private to Xen, as in Xen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .abi import (
    EVTCHN_FIFO_BUSY,
    Abi,
    EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PENDING,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHN_FIFO_PRIORITY_MIN,
    Errno,
    Port,
)
from .memory import ControlBlockView, Frame, Structure, event_words
from .sched import evtchn_check_pollers

if TYPE_CHECKING:
    from .xen import Domain, Vcpu

P = 1 << EVTCHN_FIFO_PENDING
M = 1 << EVTCHN_FIFO_MASKED
L = 1 << EVTCHN_FIFO_LINKED
B = 1 << EVTCHN_FIFO_BUSY
_M_OR_L, _P_AND_L = M | L, P | L
_NOT_BUSY_OR_LINK = ~(B | EVTCHN_FIFO_LINK_MASK)
WORDS_PER_PAGE = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
#: Port p is event word ``p & EVENT_WORD_MASK`` of array page ``p >> EVENT_WORDS_SHIFT``
#: (evtchn_fifo_word_from_port: 1024 words of 4 bytes to a page).
EVENT_WORDS_SHIFT = WORDS_PER_PAGE.bit_length() - 1
EVENT_WORD_MASK = WORDS_PER_PAGE - 1
#: evtchn_fifo_set_link tries its cmpxchg this many more times once it has set BUSY.
SET_LINK_RETRIES = 4
EVENT_ARRAY = Structure.EVENT_ARRAY


@dataclass(eq=False, slots=True)
class FifoQueue:
    """struct evtchn_fifo_queue: HEAD is in the control block; TAIL only Xen knows."""

    priority: int
    tail: int = 0


@dataclass(eq=False, slots=True)
class FifoVcpu:
    """struct evtchn_fifo_vcpu: the mapped control block (or None) and 16 queues."""

    control_block: ControlBlockView | None = None
    queues: list[FifoQueue] = field(
        default_factory=lambda: [FifoQueue(q) for q in range(EVTCHN_FIFO_MAX_QUEUES)]
    )


class Fifo:
    """The FIFO ABI engine of one domain (``evtchn_port_ops_fifo`` + evtchn_fifo_domain).

    ``dropped`` counts events Xen threw away because the target vCPU had no control block
    ("lost event" warnings in Xen's log). ``guest_race``, None unless a test or the interleaving
    explorer sets it, is called with the tail port between Xen's read of a tail word and each
    compare-and-swap on it in ``set_link``: a stand-in for a guest vCPU writing that word at the
    same moment, the only way Xen's BUSY path can run in a sequential model.
    """

    abi = Abi.FIFO

    def __init__(self, d: Domain) -> None:
        self.d = d
        self.domid = d.domain_id
        self.log = d.xen.log
        self.ports = d.ports
        self.vcpus = [FifoVcpu() for _ in d.vcpus]
        self.pages: list[memoryview] = []
        self.page_frames: list[Frame] = []
        self.num_evtchns = 0
        self.dropped = 0
        self.guest_race: Callable[[Port], None] | None = None
        self.poll_mask = d.poll_mask  # the domain's set: empty (falsy) unless a vCPU polls

    # --- set-up: init_control and expand_array -------------------------------------------

    def map_control_block(self, vcpu_id: int, frame: Frame, offset: int) -> int:
        """map_control_block: 0, or -EINVAL when this vCPU already has one."""
        fv = self.vcpus[vcpu_id]
        if fv.control_block is not None:
            return -Errno.EINVAL
        frame.xen_mapping = Structure.CONTROL_BLOCK
        fv.control_block = ControlBlockView(frame, offset)
        return 0

    def setup_ports(self, prev_evtchns: int, was_pending: Callable[[Port], bool]) -> None:
        """setup_ports: keep each 2-level pending bit as ``evtchn->pending``; priority 7."""
        t = self.ports
        for port in range(1, min(prev_evtchns, t.valid_evtchns)):
            if was_pending(port):
                t.pending[port] = True
            t.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT

    def add_page(self, frame: Frame) -> int:
        """add_page_to_event_array: append a page, then re-raise the stashed events in it."""
        slot = len(self.pages)
        if slot >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES:
            return -Errno.ENOSPC
        frame.xen_mapping = Structure.EVENT_ARRAY
        self.pages.append(event_words(frame))
        self.page_frames.append(frame)
        self.num_evtchns += WORDS_PER_PAGE
        t = self.ports
        for port in range(slot * WORDS_PER_PAGE, min(t.valid_evtchns, self.num_evtchns)):
            if t.pending[port]:
                self.set_pending(self.d.vcpus[t.notify_vcpu_id[port]], port)
        return 0

    def destroy(self) -> None:
        """evtchn_fifo_destroy: Xen forgets every control block and array page."""
        for fv in self.vcpus:
            if fv.control_block is not None:
                fv.control_block.frame.xen_mapping = None
            fv.control_block = None
        for frame in self.page_frames:
            frame.xen_mapping = None
        self.pages.clear()
        self.page_frames.clear()
        self.num_evtchns = 0

    # --- port ops -------------------------------------------------------------------------

    def init(self, port: Port) -> None:
        """evtchn_fifo_init: a newly bound port gets the default priority."""
        self.ports.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT

    def set_pending(self, v: Vcpu, port: Port) -> None:
        """evtchn_fifo_set_pending: Xen's atomic steps on the port's event word, in order.

        1. test-and-set PENDING; 2. test MASKED: a masked word, or one already LINKED, is not
        queued; 3. test-and-set LINKED; 4. link the port behind its queue's TAIL
        (evtchn_fifo_set_link) or, when that queue is empty, write HEAD; a new HEAD sets READY
        and raises the upcall; 5. if step 1 set PENDING, wake pollers (evtchn_check_pollers),
        masked or not. Each step that changes a word is a write of its own in the log.
        The hot path of every FIFO event, so the steps and their accounting are inline.
        """
        if port >= self.num_evtchns:
            self.ports.pending[port] = True  # no array page yet: raised again by add_page
            return
        page = port >> EVENT_WORDS_SHIFT
        words, index = self.pages[page], port & EVENT_WORD_MASK
        vcpu_id = v.vcpu_id
        fv = self.vcpus[vcpu_id]
        if fv.control_block is None:
            self._drop_without_control_block(words, index, port)
            return
        word = words[index]
        if word & _M_OR_L:  # step 2 says stop: only step 1 can change the word
            if not word & P:
                words[index] = word | P
                self._wrote_word(port, word | P)
                if self.poll_mask:  # PENDING newly set: a poller wakes, masked or not
                    evtchn_check_pollers(self.d, port)
            return
        words[index] = linked = word | _P_AND_L  # steps 1 and 3: PENDING (if clear), LINKED
        # WriteLog.wrote, inlined here and for the tail's LINK below: a call per write costs
        # 15% of an event (measured in benchmarks/engines.py's loop), below the 0.5x target
        frame, log = self.page_frames[page], self.log
        frame.xen_writes += 1 if word & P else 2
        if log.full:
            if not word & P:
                log.keep(self.domid, frame, index << 2, EVENT_ARRAY, word | P)
            log.keep(self.domid, frame, index << 2, EVENT_ARRAY, linked)
        t = self.ports
        priority = t.priority[port]
        q = fv.queues[priority]
        tail = q.tail
        lastq = vcpu_id << 16 | priority  # lastq_raw(vcpu_id, priority), inlined
        if t.fifo_lastq[port] != lastq:  # the port moved queue since it was last linked
            self._leave_old_queue(port, lastq)
        elif tail == port:
            tail = 0  # e33d4257fc: it was this queue's tail, so the queue is empty now
        q.tail = port
        # Step 5 closes each way out below: pollers last, as in Xen, and only if step 1 set
        # PENDING (written out at each return rather than through a flag: the hot path).
        if tail:  # step 4: link behind the tail, but only while the tail is still LINKED
            if self.guest_race is None:  # evtchn_fifo_set_link unraced: its first cmpxchg succeeds
                tail_page = tail >> EVENT_WORDS_SHIFT
                tail_words, tail_index = self.pages[tail_page], tail & EVENT_WORD_MASK
                tail_word = tail_words[tail_index]
                if tail_word & L:
                    tail_words[tail_index] = tail_word = (tail_word & _NOT_BUSY_OR_LINK) | port
                    frame = self.page_frames[tail_page]
                    frame.xen_writes += 1
                    if log.full:
                        log.keep(self.domid, frame, tail_index << 2, EVENT_ARRAY, tail_word)
                    if self.poll_mask and not word & P:
                        evtchn_check_pollers(self.d, port)
                    return  # appended to a non-empty queue: no new upcall
            elif self.set_link(tail, port):
                if self.poll_mask and not word & P:
                    evtchn_check_pollers(self.d, port)
                return
        cb = fv.control_block  # the queue was empty (or its tail consumed): port is the HEAD
        head = ControlBlockView.HEAD0 + q.priority
        if cb.words[head] != port:  # write_atomic(q->head, port): the same value changes nothing
            cb.words[head] = port
            self._wrote_cb(cb, head, port)
        self._raise_ready(v, cb, q.priority)
        if self.poll_mask and not word & P:
            evtchn_check_pollers(self.d, port)

    def set_link(self, tail: Port, port: Port) -> bool:
        """evtchn_fifo_set_link: make ``tail``'s LINK ``port`` iff ``tail`` is still LINKED.

        True when linked (or given up on), False when the tail was unlinked meanwhile (the
        queue is empty: the caller writes HEAD). The write is a compare-and-swap against the
        value Xen read; ``guest_race`` runs before each one. When the first fails, Xen sets
        BUSY on the tail word, which forbids the guest to clear MASKED, re-reads it and tries
        up to 4 more times; it clears BUSY again if the word turns out unlinked, and after 4
        failures warns "not linked", clears BUSY and reports the port linked (it is lost).
        """
        words, index = self.pages[tail >> EVENT_WORDS_SHIFT], tail & EVENT_WORD_MASK
        seen = words[index]  # read_atomic
        done, seen = self._try_set_link(tail, seen, port)
        if done is not None:
            return done
        self._set_busy(tail, True)  # guest_set_bit: lock the word against unmasking
        seen = words[index]
        for _ in range(SET_LINK_RETRIES):
            done, seen = self._try_set_link(tail, seen, port)
            if done is not None:
                if not done:
                    self._set_busy(tail, False)
                return done
        self.d.xen.console.append(f"domain {self.domid}, port {port} not linked")
        self._set_busy(tail, False)
        return True

    def _try_set_link(self, tail: Port, seen: int, port: Port) -> tuple[bool | None, int]:
        """try_set_link: (False, seen) if ``seen`` is unlinked; else one cmpxchg of ``seen`` to
        LINK = ``port`` with BUSY clear: (True, new) if the word still held ``seen``, else
        (None, what it held)."""
        if not seen & L:
            return False, seen
        if self.guest_race is not None:
            self.guest_race(tail)
        words, index = self.pages[tail >> EVENT_WORDS_SHIFT], tail & EVENT_WORD_MASK
        current = words[index]
        if current != seen:
            return None, current
        words[index] = new = (seen & _NOT_BUSY_OR_LINK) | port
        self._wrote_word(tail, new)
        return True, new

    def _set_busy(self, port: Port, busy: bool) -> None:
        """guest_set_bit / guest_clear_bit of BUSY on ``port``'s word (a write if it changes)."""
        words, index = self.pages[port >> EVENT_WORDS_SHIFT], port & EVENT_WORD_MASK
        word = words[index]
        new = word | B if busy else word & ~B
        if new != word:
            words[index] = new
            self._wrote_word(port, new)

    def _leave_old_queue(self, port: Port, lastq: int) -> None:
        """The port moved to another queue: if it was the old queue's tail, that queue is
        empty now (e33d4257fc); then remember the new queue in fifo_lastq."""
        t = self.ports
        old = t.fifo_lastq[port]
        old_q = self.vcpus[old >> 16].queues[old & 0xFF]
        if old_q.tail == port:
            old_q.tail = 0
        t.fifo_lastq[port] = lastq

    def _raise_ready(self, v: Vcpu, cb: ControlBlockView, priority: int) -> None:
        """Set READY bit ``priority``; only a 0->1 change marks events pending on ``v``."""
        ready = cb.words[ControlBlockView.READY]
        if ready >> priority & 1:
            return
        cb.words[ControlBlockView.READY] = ready | 1 << priority
        self._wrote_cb(cb, ControlBlockView.READY, ready | 1 << priority)
        v.mark_events_pending()

    def _drop_without_control_block(self, words: memoryview, index: int, port: int) -> None:
        """A vCPU without a control block: Xen warns and drops the event (8aa0e9d2d1)."""
        self.dropped += 1
        if self.d.xen.version.no_control_block_sets_pending and not words[index] & P:
            words[index] |= P  # Xen <= 4.16 set PENDING before noticing, and so woke pollers
            self._wrote_word(port, words[index])
            if self.poll_mask:
                evtchn_check_pollers(self.d, port)

    def clear_pending(self, port: Port) -> None:
        """evtchn_fifo_clear_pending: clear P only; a LINKED word stays queued."""
        if port < self.num_evtchns:
            words, index = self.pages[port >> EVENT_WORDS_SHIFT], port & EVENT_WORD_MASK
            if words[index] & P:
                words[index] &= ~P
                self._wrote_word(port, words[index])

    def unmask(self, port: Port) -> None:
        """evtchn_fifo_unmask: clear M; if P is set, set_pending again, which relinks it."""
        if port >= self.num_evtchns:
            return
        words, index = self.pages[port >> EVENT_WORDS_SHIFT], port & EVENT_WORD_MASK
        if words[index] & M:
            words[index] &= ~M
            self._wrote_word(port, words[index])
        if words[index] & P:
            self.set_pending(self.d.vcpus[self.ports.notify_vcpu_id[port]], port)

    def set_priority(self, port: Port, priority: int) -> int:
        """evtchn_fifo_set_priority: future links only; a queued event stays where it is."""
        if priority > EVTCHN_FIFO_PRIORITY_MIN:
            return -Errno.EINVAL
        self.ports.priority[port] = priority
        return 0

    def word(self, port: Port) -> int | None:
        """The event word of ``port``, or None when its page does not exist."""
        if port >= self.num_evtchns:
            return None
        return self.pages[port >> EVENT_WORDS_SHIFT][port & EVENT_WORD_MASK]

    def is_pending(self, port: Port) -> bool:
        """evtchn_fifo_is_pending: P is set (no page: not pending)."""
        word = self.word(port)
        return word is not None and bool(word & P)

    def is_masked(self, port: Port) -> bool:
        """evtchn_fifo_is_masked: M is set (no page: masked)."""
        word = self.word(port)
        return word is None or bool(word & M)

    def is_busy(self, port: Port) -> bool:
        """evtchn_fifo_is_busy: a LINKED word may not be reused (78e24c269b0a)."""
        word = self.word(port)
        return word is not None and bool(word & L)

    # --- recording ------------------------------------------------------------------------

    def _wrote_word(self, port: int, value: int) -> None:
        """Xen changed ``port``'s event word to ``value`` (WriteLog.wrote)."""
        self.log.wrote(self.domid, self.page_frames[port >> EVENT_WORDS_SHIFT], (port & EVENT_WORD_MASK) << 2,
                       EVENT_ARRAY, value)

    def _wrote_cb(self, cb: ControlBlockView, index: int, value: int) -> None:
        """Xen changed word ``index`` of control block ``cb`` to ``value`` (WriteLog.wrote)."""
        self.log.wrote(self.domid, cb.frame, cb.offset + index * 4, Structure.CONTROL_BLOCK, value)
