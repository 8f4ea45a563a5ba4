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

if TYPE_CHECKING:
    from .xen import Domain, Vcpu

P = 1 << EVTCHN_FIFO_PENDING
M = 1 << EVTCHN_FIFO_MASKED
L = 1 << EVTCHN_FIFO_LINKED
B = 1 << EVTCHN_FIFO_BUSY
_M_OR_L, _P_AND_L = M | L, P | L
_NOT_BUSY_OR_LINK = ~(B | EVTCHN_FIFO_LINK_MASK)
WORDS_PER_PAGE = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
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
    ("lost event" warnings in Xen's log).
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
        """evtchn_fifo_set_pending: mark pending; link onto a queue if unmasked and unlinked.

        The hot path of every FIFO event, so the linking (evtchn_fifo_set_link) and the write
        accounting (WriteLog.wrote) are written inline here.
        """
        if port >= self.num_evtchns:
            self.ports.pending[port] = True  # no array page yet: raised again by add_page
            return
        page = port >> 10
        words, index = self.pages[page], port & 1023
        fv = self.vcpus[v.vcpu_id]
        if fv.control_block is None:
            self._drop_without_control_block(words, index, port)
            return
        word = words[index]
        if word & _M_OR_L:  # masked, or already queued: only PENDING is set
            words[index] = word | P
            self._wrote_word(port, word | P)
            return
        words[index] = word | _P_AND_L
        frame, log = self.page_frames[page], self.log
        frame.xen_writes += 1
        frame.last_xen_write = clock = log.clock
        if log.full:
            log.keep(self.domid, frame, index * 4, EVENT_ARRAY, word | _P_AND_L)
        t = self.ports
        priority = t.priority[port]
        q = fv.queues[priority]
        tail = q.tail
        lastq = v.vcpu_id << 16 | priority  # lastq_raw(v.vcpu_id, priority), inlined
        if t.fifo_lastq[port] == lastq:  # the usual case: the queue it was last linked on
            if tail == port:
                tail = 0  # e33d4257fc: it was this queue's tail, so the queue is empty now
        else:
            self._leave_old_queue(port, lastq)
        q.tail = port
        if tail:  # link behind the tail, but only while the tail is still LINKED
            tail_words, tail_index = self.pages[tail >> 10], tail & 1023
            tail_word = tail_words[tail_index]
            if tail_word & L:
                tail_words[tail_index] = linked = (tail_word & _NOT_BUSY_OR_LINK) | port
                frame = self.page_frames[tail >> 10]
                frame.xen_writes += 1
                frame.last_xen_write = clock
                if log.full:
                    log.keep(self.domid, frame, tail_index * 4, EVENT_ARRAY, linked)
                return  # appended to a non-empty queue: no new upcall
        cb = fv.control_block  # the queue was empty (or its tail consumed): port is the HEAD
        cb.words[ControlBlockView.HEAD0 + q.priority] = port
        self._wrote_cb(cb, ControlBlockView.HEAD0 + q.priority, port)
        self._raise_ready(v, cb, q.priority)

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
        if self.d.xen.version.no_control_block_sets_pending:
            words[index] |= P  # Xen <= 4.16 set PENDING before noticing
            self._wrote_word(port, words[index])

    def clear_pending(self, port: Port) -> None:
        """evtchn_fifo_clear_pending: clear P only; a LINKED word stays queued."""
        if port < self.num_evtchns:
            words, index = self.pages[port >> 10], port & 1023
            if words[index] & P:
                words[index] &= ~P
                self._wrote_word(port, words[index])

    def unmask(self, port: Port) -> None:
        """evtchn_fifo_unmask: clear M; if P is set, set_pending again, which relinks it."""
        if port >= self.num_evtchns:
            return
        words, index = self.pages[port >> 10], port & 1023
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
        return self.pages[port >> 10][port & 1023]

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
        """Account Xen's write of ``port``'s event word (WriteLog.wrote, inlined: hot path)."""
        frame, log = self.page_frames[port >> 10], self.log
        frame.xen_writes += 1
        frame.last_xen_write = log.clock
        if log.full:
            log.keep(self.domid, frame, (port & 1023) * 4, EVENT_ARRAY, value)

    def _wrote_cb(self, cb: ControlBlockView, index: int, value: int) -> None:
        self.log.wrote(self.domid, cb.frame, cb.offset + index * 4, Structure.CONTROL_BLOCK, value)
