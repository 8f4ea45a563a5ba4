"""Linux's FIFO ABI (drivers/xen/events/events_fifo.c): the ops a kernel uses when
xen_init_IRQ's evtchn_fifo_init succeeded, and its upcall consumer.

``FifoOps`` is ``evtchn_ops_fifo``: a control block per CPU (evtchn_fifo_init,
evtchn_fifo_percpu_init, init_control_block), event-array pages added lazily as ports are
bound (evtchn_fifo_setup, init_array_page), mask/unmask on the event word
(evtchn_fifo_unmask), resume (evtchn_fifo_resume). ``FifoConsumer`` is its handle_events
(__evtchn_fifo_handle_events, consume_one_event, clear_linked: one event per step, the
highest ready priority chosen again after each); it reads guest memory only, so tests and
benchmarks also drive it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..abi import (
    EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_NR_CHANNELS,
    EVTCHNOP_expand_array,
    EVTCHNOP_init_control,
    EVTCHNOP_unmask,
    Abi,
    Errno,
    EvtchnExpandArray,
    EvtchnInitControl,
    EvtchnUnmask,
    Gfn,
    Port,
    errno_name,
)
from ..fifo import EVENT_WORD_MASK, EVENT_WORDS_SHIFT, B, L, M, P
from ..memory import PAGE_SIZE, ControlBlockView, Frame, GuestMemory, SharedInfoLayout, event_words
from ..xen import SHARED_INFO_GFN, Domain
from .consumers import Consumer
from .evtchn_ops import EvtchnOps

if TYPE_CHECKING:
    from .kernel import Kernel

WORDS_PER_PAGE = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
MASKED_PAGE = M.to_bytes(4, "little") * WORDS_PER_PAGE  # init_array_page: every word MASKED
_UNLINKED = ~(L | EVTCHN_FIFO_LINK_MASK)  # clear_linked: LINKED and LINK cleared
_P_OR_M, _NOT_P = P | M, ~P
_HEAD0 = ControlBlockView.HEAD0


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
        if port >> EVENT_WORDS_SHIFT >= len(self.pages):
            return None
        return self.pages[port >> EVENT_WORDS_SHIFT], port & EVENT_WORD_MASK

    def handle_events(self, cpu: int) -> None:
        """Exchange READY with 0, then consume one event at a time, highest priority first.

        Each turn of the loop is Linux's consume_one_event for the lowest set READY bit,
        written inline because it runs once per event (its constants read as locals);
        READY is merged again after each.
        """
        cb = self.control_block[cpu]
        if cb is None:
            return
        words, heads, pages = cb.words, self.head[cpu], self.pages
        shift, word_mask, link_mask, unlinked = EVENT_WORDS_SHIFT, EVENT_WORD_MASK, EVTCHN_FIFO_LINK_MASK, _UNLINKED
        pending, p_or_m, not_p = P, _P_OR_M, _NOT_P
        counting, counted = self.counting_only(), 0
        ready, words[0] = words[0], 0
        while ready:
            low = ready & -ready
            q = low.bit_length() - 1
            port = heads[q] or words[_HEAD0 + q]  # local head, else HEAD[q]
            page_no = port >> shift
            if not port or page_no >= len(pages):
                self.anomalies += port != 0  # Linux would read outside its event array here
                heads[q] = 0
                ready &= ~low
            else:
                page, index = pages[page_no], port & word_mask
                old = page[index]
                now = old & unlinked  # clear_linked
                nxt = old & link_mask
                if not nxt:
                    ready &= ~low  # that was the tail: the queue looks empty
                if now & p_or_m == pending:  # pending, not masked: clear_linked and the ack (clear_evtchn)
                    page[index] = now & not_p  # in one write (nothing runs between), then the handler
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
        if port >> EVENT_WORDS_SHIFT < len(self.pages):
            self.pages[port >> EVENT_WORDS_SHIFT][port & EVENT_WORD_MASK] &= ~P


#: How often clear_masked_cond tries its compare-and-swap on a BUSY word before the model
#: calls it a hang. Linux has no bound. Xen holds BUSY only across its own few tries at
#: linking (evtchn_fifo_set_link), so a real guest spins briefly; in the model only crafted
#: memory shows BUSY to a guest, and nothing would ever clear it.
BUSY_SPINS = 64


def clear_masked_cond(page: memoryview, index: int) -> bool | None:
    """clear_masked_cond: clear M in the word unless it is PENDING; whether M is now clear.

    Linux clears M with a compare-and-swap whose expected value has BUSY clear, so while Xen
    holds BUSY the swap fails and the guest reads the word again and retries: the guest
    must not clear MASKED while BUSY is set (commit dae2a1c5f9, design draft H). A word
    still BUSY after ``BUSY_SPINS`` tries is reported as None: a CPU spinning with
    interrupts off for ever.
    """
    old = page[index]
    for _ in range(BUSY_SPINS):
        if not old & M:
            return True
        if old & P:
            return False  # leave it masked: the caller asks Xen, which also links it
        expected = old & ~B
        seen = page[index]  # the compare-and-swap: write only if the word is still ``expected``
        if seen == expected:
            page[index] = expected & ~M
            return True
        old = seen
    return None


class FifoOps(EvtchnOps):
    """evtchn_ops_fifo: a control block per CPU, event words in pages the kernel adds.

    ``array_gfns`` is every event-array page the kernel owns (Linux's ``event_array[]``);
    ``event_array_pages`` how many of them Xen has now. They differ after a resume: the
    pages are kept, and evtchn_fifo_setup gives them to the new domain again.
    """

    abi = Abi.FIFO
    consumer: FifoConsumer

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.event_array_pages = 0

    def new_consumer(self, memory: GuestMemory, layout: SharedInfoLayout, nr_cpus: int) -> FifoConsumer:
        return FifoConsumer(memory, SHARED_INFO_GFN, layout, nr_cpus)

    def attach(self, domain: Domain) -> None:
        """The shared_info views, then the control blocks and the pages Xen has, in ``domain``."""
        super().attach(domain)
        memory, consumer = domain.memory, self.consumer
        for cpu, gfn in self.control_gfns.items():
            consumer.attach_control_block(cpu, memory.frame(gfn), 0)
        consumer.pages.clear()
        for gfn in self.array_gfns[:self.event_array_pages]:
            consumer.add_array_page(memory.frame(gfn))

    # --- control blocks: evtchn_fifo_init, percpu_init, resume ----------------------------

    def init(self) -> int:
        """xen_evtchn_fifo_init: the boot CPU's control block; any error means 2-level."""
        return self.alloc_control_block(0)

    def percpu_init(self, cpu: int) -> int:
        """evtchn_fifo_percpu_init: a CPU that has no control block yet gets one."""
        return 0 if cpu in self.control_gfns else self.alloc_control_block(cpu)

    def alloc_control_block(self, cpu: int) -> int:
        """evtchn_fifo_alloc_control_block: a new page, registered by init_control_block.

        On failure Linux frees the page; the model's page allocator never hands a gfn out
        twice, so the page is simply forgotten."""
        gfn = self.kernel.alloc_page()
        rc = self.init_control_block(cpu, gfn)
        if rc == 0:
            self.control_gfns[cpu] = gfn
        return rc

    def init_control_block(self, cpu: int, gfn: Gfn) -> int:
        """init_control_block: clear the page (and the CPU's local HEADs), then
        EVTCHNOP_init_control for ``cpu``; Linux ignores the ``link_bits`` Xen writes back."""
        kernel = self.kernel
        frame = kernel.domain.memory.fill(gfn, bytes(PAGE_SIZE), f"{kernel.name}: FIFO control block cpu{cpu}")
        rc = kernel.hypercall(EVTCHNOP_init_control, EvtchnInitControl(control_gfn=gfn, offset=0, vcpu=cpu))
        if rc == 0:
            self.consumer.attach_control_block(cpu, frame, 0)
        return rc

    def resume(self) -> None:
        """evtchn_fifo_resume: each CPU's own block is cleared and registered again (BUG if
        Xen refuses); the event array starts empty, and its pages are kept for setup to reuse.

        Linux also frees the block of a CPU that is offline; the model never offlines one."""
        kernel = self.kernel
        for cpu, gfn in self.control_gfns.items():
            rc = self.init_control_block(cpu, gfn)
            if rc < 0:
                kernel.panic(f"evtchn_fifo_resume: init_control(cpu{cpu}) -> {errno_name(rc)}")
                return
        self.event_array_pages = 0
        self.consumer.pages.clear()

    # --- the event array: evtchn_fifo_setup -------------------------------------------------

    def max_channels(self) -> int:
        """evtchn_fifo_max_channels: EVTCHN_FIFO_NR_CHANNELS."""
        return EVTCHN_FIFO_NR_CHANNELS

    def nr_channels(self) -> int:
        """evtchn_fifo_nr_channels: the ports the pages Xen has cover (none at boot)."""
        return self.event_array_pages * WORDS_PER_PAGE

    def setup(self, port: Port) -> int:
        """evtchn_fifo_setup: add pages until ``port`` has an event word; 0 or -errno.

        A port past the last possible page is -EINVAL. If Xen refuses a page, the very
        first one panics; a later one fails this bind, and the kernel frees the pages past
        the last one Xen has (free_unused_array_pages), even ones kept from before a resume.
        """
        pages = port // WORDS_PER_PAGE + 1
        if pages > EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES:
            return -Errno.EINVAL
        while self.event_array_pages < pages:
            rc = self._expand()
            if rc < 0:
                self._expand_failed(rc)
                return rc
        return 0

    def _expand(self) -> int:
        """One page more: the kernel's next page if it has one ("might already have a page if
        we've resumed"), else a new one; all MASKED (init_array_page); EVTCHNOP_expand_array."""
        kernel = self.kernel
        if self.event_array_pages == len(self.array_gfns):
            self.array_gfns.append(kernel.alloc_page())
        gfn = self.array_gfns[self.event_array_pages]
        frame = kernel.domain.memory.fill(gfn, MASKED_PAGE, f"{kernel.name}: event channels")
        rc = kernel.hypercall(EVTCHNOP_expand_array, EvtchnExpandArray(array_gfn=gfn))
        if rc == 0:
            self.event_array_pages += 1
            self.consumer.add_array_page(frame)
        return rc

    def _expand_failed(self, rc: int) -> None:
        if self.event_array_pages == 0:
            self.kernel.panic(f"unable to expand event array with initial page ({errno_name(rc)})")
        else:
            self.kernel.log(f"evtchn_fifo_setup: unable to expand event array ({errno_name(rc)})")
        del self.array_gfns[self.event_array_pages:]

    # --- the event word -------------------------------------------------------------------

    def bind_to_cpu(self, port: Port, cpu: int, old_cpu: int) -> None:
        """evtchn_fifo_bind_to_cpu does nothing: the queue is Xen's choice (the notify vCPU)."""

    def is_pending(self, port: Port) -> bool:
        """evtchn_fifo_is_pending: P in the port's event word."""
        where = self.consumer.word_index(port)
        return where is not None and bool(where[0][where[1]] & P)

    def mask(self, port: Port) -> None:
        """evtchn_fifo_mask: the guest sets M in the port's event word."""
        where = self.consumer.word_index(port)
        if where is not None:
            where[0][where[1]] |= M

    def unmask(self, port: Port, cpu: int) -> None:
        """evtchn_fifo_unmask: clear_masked_cond; only a port that is masked and pending
        needs EVTCHNOP_unmask (Xen clears M and links the event)."""
        where = self.consumer.word_index(port)
        if where is None:
            return
        cleared = clear_masked_cond(*where)
        if cleared is None:
            self.kernel.lockup(f"cpu{cpu} spins in evtchn_fifo_unmask: port {port} stays BUSY")
        elif not cleared:
            self.kernel.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
