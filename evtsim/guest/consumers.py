"""Event consumers: what a Linux-like kernel runs on an upcall, reading guest memory only.

Models drivers/xen/events/events_base.c (__xen_evtchn_do_upcall, the ack in the IRQ
flow), events_2l.c (evtchn_2l_handle_events: selector exchange, word scan with a per-CPU
fairness cursor, timer first) and events_fifo.c (__evtchn_fifo_handle_events,
consume_one_event, clear_linked: one event per step, highest ready priority re-chosen
after each). A consumer never calls Xen; it sees exactly what Xen wrote.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from ..abi import EVTCHN_FIFO_LINK_MASK, Abi, EVTCHN_FIFO_MAX_QUEUES, Gfn, Port
from ..fifo import L, M, P
from ..memory import (
    VCPU_INFO_SIZE,
    ControlBlockView,
    Frame,
    GuestMemory,
    SharedInfoLayout,
    SharedInfoView,
    VcpuInfoView,
    event_words,
)

Handler = Callable[[int, Port], None]  # (cpu, port)
_UNLINKED = ~(L | EVTCHN_FIFO_LINK_MASK)  # clear_linked: LINKED and LINK cleared
_P_OR_M, _NOT_P = P | M, ~P
_HEAD0 = ControlBlockView.HEAD0


class Consumer(ABC):
    """What both ABIs share: the upcall loop, the ack, handlers and what each port received.

    ``received[port]`` counts dispatched events (None turns the per-port statistics off,
    like a kernel without /proc/interrupts); ``handlers[port]`` (optional) runs after the ack,
    like an IRQ handler. The shared_info and vcpu_info frames are the guest's own view.
    """

    abi: Abi

    def __init__(self, memory: GuestMemory, shared_info_gfn: Gfn, layout: SharedInfoLayout, nr_cpus: int) -> None:
        frame = memory.frame(shared_info_gfn)
        self.shinfo = SharedInfoView(frame, layout)
        self.vcpu_info = [VcpuInfoView(frame, cpu * VCPU_INFO_SIZE, layout) for cpu in range(nr_cpus)]
        self.handlers: dict[Port, Callable[[int, Port], None]] = {}
        self.received: Counter[Port] | None = Counter()
        self.events = 0  # everything dispatched so far
        self.dispatched: list[tuple[int, Port]] = []  # (cpu, port) in order, when ``trace`` is on
        self.trace = False

    def run(self) -> int:
        """Take every upcall that is pending and not masked; return how many events ran."""
        before = self.events
        for cpu, info in enumerate(self.vcpu_info):
            if info.bytes[0] and not info.bytes[1]:
                self.upcall(cpu)
        return self.events - before

    def upcall(self, cpu: int) -> None:
        """__xen_evtchn_do_upcall: clear upcall_pending, handle events, repeat if re-set."""
        info = self.vcpu_info[cpu].bytes
        while True:
            info[0] = 0
            self.handle_events(cpu)
            if not info[0]:
                return

    @abstractmethod
    def handle_events(self, cpu: int) -> None:
        """The ABI's scan of what is pending (evtchn_ops->handle_events)."""

    def dispatch(self, cpu: int, port: Port) -> None:
        """handle_irq_for_port: ack (clear the pending bit), then the port's handler."""
        self.clear_pending(port)
        self.handle(cpu, port)

    def counting_only(self) -> bool:
        """Whether ``handle`` would only count: the hot loops then count locally instead."""
        return self.received is None and not self.trace and not self.handlers

    def handle(self, cpu: int, port: Port) -> None:
        """The IRQ handler's half of dispatch, after the ack: count, trace, call the handler."""
        self.events += 1
        if self.received is not None:
            self.received[port] += 1
        if self.trace:
            self.dispatched.append((cpu, port))
        if self.handlers:
            handler = self.handlers.get(port)
            if handler is not None:
                handler(cpu, port)

    @abstractmethod
    def clear_pending(self, port: Port) -> None:
        """The ack: the guest clears the port's pending state in its own memory."""


class TwoLevelConsumer(Consumer):
    """evtchn_2l_handle_events with Linux's per-CPU bound-port mask and fairness cursor."""

    abi = Abi.TWO_LEVEL

    def __init__(self, memory: GuestMemory, shared_info_gfn: Gfn, layout: SharedInfoLayout, nr_cpus: int) -> None:
        super().__init__(memory, shared_info_gfn, layout, nr_cpus)
        self.bits = layout.bits_per_word
        self.all_ones = (1 << self.bits) - 1
        self.cpu_evtchn_mask = [[0] * self.bits for _ in range(nr_cpus)]
        self.timer_port = [0] * nr_cpus
        self.current_word_idx = [0] * nr_cpus
        self.current_bit_idx = [0] * nr_cpus

    def bind_to_cpu(self, port: Port, cpu: int) -> None:
        """evtchn_2l_bind_to_cpu: this CPU, and only it, scans ``port``."""
        word, bit = divmod(port, self.bits)
        for mask in self.cpu_evtchn_mask:
            mask[word] &= ~(1 << bit)
        self.cpu_evtchn_mask[cpu][word] |= 1 << bit

    def active(self, cpu: int, word: int) -> int:
        """active_evtchns: pending, bound to this CPU and not masked."""
        return self.shinfo.evtchn_pending[word] & self.cpu_evtchn_mask[cpu][word] & ~self.shinfo.evtchn_mask[word]

    def handle_events(self, cpu: int) -> None:
        """Timer first, then the selector words from the saved cursor, round robin."""
        timer = self.timer_port[cpu]
        if timer and self.active(cpu, timer // self.bits) >> (timer % self.bits) & 1:
            self.dispatch(cpu, timer)
        sel = self.vcpu_info[cpu].sel
        pending_words, sel[0] = sel[0], 0
        start_word = word = self.current_word_idx[cpu]
        start_bit = self.current_bit_idx[cpu]
        first_pass = True
        while pending_words:
            words = pending_words & (self.all_ones << word)
            if not words:
                word, first_pass = 0, False  # wrap to the beginning
                continue
            word = (words & -words).bit_length() - 1  # __ffs
            bit = start_bit if word == start_word and first_pass else 0
            self._scan_word(cpu, word, bit)
            if word != start_word or not first_pass:
                pending_words &= ~(1 << word)  # the starting word is scanned twice
            word = (word + 1) % self.bits
            first_pass = False

    def _scan_word(self, cpu: int, word: int, bit: int) -> None:
        """Dispatch the active ports of ``word`` from ``bit`` up, saving last+1 as the cursor."""
        pending = self.shinfo.evtchn_pending
        pending_bits = pending[word] & self.cpu_evtchn_mask[cpu][word] & ~self.shinfo.evtchn_mask[word]
        nbits, base, ones = self.bits, word * self.bits, self.all_ones
        dispatched, counting, counted = False, self.counting_only(), 0
        while True:
            bits = pending_bits & (ones << bit)
            if not bits:
                break
            low = bits & -bits
            bit = low.bit_length() - 1
            pending[word] &= ~low  # the ack (clear_evtchn), then the handler
            if counting:
                counted += 1  # all that handle() would do: skip the call
            else:
                self.handle(cpu, base + bit)
            bit = (bit + 1) % nbits
            dispatched = True
            if bit == 0:
                break
        self.events += counted
        if dispatched:  # the next upcall starts after the last port dispatched
            self.current_word_idx[cpu], self.current_bit_idx[cpu] = (word if bit else (word + 1) % nbits), bit

    def clear_pending(self, port: Port) -> None:
        """clear_evtchn: the guest clears its pending bit in shared_info."""
        word, bit = divmod(port, self.bits)
        self.shinfo.evtchn_pending[word] &= ~(1 << bit)


class FifoConsumer(Consumer):
    """__evtchn_fifo_handle_events: strict priority between queues, FIFO within one.

    The guest registers what it gave Xen: a control block per CPU (``attach_control_block``)
    and event-array pages in order (``add_array_page``). ``anomalies`` counts HEADs that
    point outside the guest's array: in Linux that is a wild read.
    """

    abi = Abi.FIFO

    def __init__(self, memory: GuestMemory, shared_info_gfn: Gfn, layout: SharedInfoLayout, nr_cpus: int) -> None:
        super().__init__(memory, shared_info_gfn, layout, nr_cpus)
        self.control_block: list[ControlBlockView | None] = [None] * nr_cpus
        self.head = [[0] * EVTCHN_FIFO_MAX_QUEUES for _ in range(nr_cpus)]  # cpu_queue.head
        self.pages: list[memoryview] = []
        self.anomalies = 0

    def attach_control_block(self, cpu: int, frame: Frame, offset: int) -> None:
        """init_control_block: the guest's mapping of the block it handed to Xen."""
        self.control_block[cpu] = ControlBlockView(frame, offset)
        self.head[cpu] = [0] * EVTCHN_FIFO_MAX_QUEUES

    def add_array_page(self, frame: Frame) -> None:
        """A page the guest added with EVTCHNOP_expand_array."""
        self.pages.append(event_words(frame))

    def word_index(self, port: Port) -> tuple[memoryview, int] | None:
        """(page, index) of ``port``'s event word in the guest's array, or None."""
        if port >> 10 >= len(self.pages):
            return None
        return self.pages[port >> 10], port & 1023

    def handle_events(self, cpu: int) -> None:
        """Exchange READY with 0, then consume one event at a time, highest priority first.

        Each turn of the loop is Linux's consume_one_event for the lowest set READY bit,
        written inline because it runs once per event; READY is merged again after each.
        """
        cb = self.control_block[cpu]
        if cb is None:
            return
        words, heads, pages = cb.words, self.head[cpu], self.pages
        counting, counted = self.counting_only(), 0
        ready, words[0] = words[0], 0
        while ready:
            low = ready & -ready
            q = low.bit_length() - 1
            port = heads[q] or words[_HEAD0 + q]  # local head, else HEAD[q]
            page_no = port >> 10
            if not port or page_no >= len(pages):
                self.anomalies += port != 0  # Linux would read outside its event array here
                heads[q] = 0
                ready &= ~low
            else:
                page, index = pages[page_no], port & 1023
                old = page[index]
                now = old & _UNLINKED  # clear_linked
                nxt = old & EVTCHN_FIFO_LINK_MASK
                if not nxt:
                    ready &= ~low  # that was the tail: the queue looks empty
                if now & _P_OR_M == P:  # pending, not masked: clear_linked and the ack (clear_evtchn)
                    page[index] = now & _NOT_P  # in one write (nothing runs between), then the handler
                    if counting:
                        counted += 1  # all that handle() would do: skip the call
                    else:
                        self.handle(cpu, port)
                else:
                    page[index] = now
                heads[q] = nxt
            more = words[0]  # xchg(&ready, 0): a read, and a write only if something is set
            if more:
                ready |= more
                words[0] = 0
        self.events += counted

    def clear_pending(self, port: Port) -> None:
        """clear_evtchn: the guest clears P in the event word."""
        if port >> 10 < len(self.pages):
            self.pages[port >> 10][port & 1023] &= ~P
