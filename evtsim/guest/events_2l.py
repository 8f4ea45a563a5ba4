"""Linux's 2-level ABI (drivers/xen/events/events_2l.c): the ops a kernel uses when
xen_init_IRQ chose 2-level (``xen.fifo_events=0``, or FIFO refused), and its upcall scan.

``TwoLevelOps`` is ``evtchn_ops_2l``: bind_to_cpu moves a port's bit between the per-CPU
``cpu_evtchn_mask`` arrays, mask/unmask work on shared_info's ``evtchn_mask`` (unmask as
evtchn_2l_unmask), resume is evtchn_2l_resume. ``TwoLevelConsumer`` is its handle_events
(evtchn_2l_handle_events: timer first, selector exchange, word scan with a per-CPU fairness
cursor); it reads guest memory only, so tests and benchmarks also drive it by hand.
"""

from __future__ import annotations

from array import array

from ..abi import EVTCHNOP_unmask, Abi, EvtchnUnmask, Gfn, Port
from ..memory import GuestMemory, SharedInfoLayout, VcpuInfoView
from ..xen import SHARED_INFO_GFN
from .consumers import Consumer
from .evtchn_ops import EvtchnOps


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


class TwoLevelOps(EvtchnOps):
    """evtchn_ops_2l: the ports are bits of shared_info; nothing to register with Xen."""

    abi = Abi.TWO_LEVEL
    consumer: TwoLevelConsumer

    def new_consumer(self, memory: GuestMemory, layout: SharedInfoLayout, nr_cpus: int) -> TwoLevelConsumer:
        consumer = TwoLevelConsumer(memory, SHARED_INFO_GFN, layout, nr_cpus)
        consumer.timer_port = self.kernel.timer_ports  # irq_from_virq(cpu, VIRQ_TIMER) reads the kernel's table
        return consumer

    def max_channels(self) -> int:
        """evtchn_2l_max_channels: EVTCHN_2L_NR_CHANNELS for the guest's word size."""
        return self.consumer.shinfo.layout.nr_channels

    nr_channels = max_channels  # evtchn_ops_2l fills both members with evtchn_2l_max_channels

    def bind_to_cpu(self, port: Port, cpu: int, old_cpu: int) -> None:
        """evtchn_2l_bind_to_cpu: ``port``'s bit leaves ``old_cpu``'s mask for ``cpu``'s.

        The consumer clears the bit in every CPU's mask: the same thing, since a bound port
        is in exactly one CPU's mask."""
        self.consumer.bind_to_cpu(port, cpu)

    def _word_bit(self, port: Port) -> tuple[int, int]:
        word, bit = divmod(port, self.consumer.bits)
        return word, 1 << bit

    def is_pending(self, port: Port) -> bool:
        """evtchn_2l_is_pending: the port's bit in ``evtchn_pending``."""
        word, bit = self._word_bit(port)
        return bool(self.consumer.shinfo.evtchn_pending[word] & bit)

    def mask(self, port: Port) -> None:
        """evtchn_2l_mask: the guest sets the port's bit in ``evtchn_mask``."""
        word, bit = self._word_bit(port)
        self.consumer.shinfo.evtchn_mask[word] |= bit

    def mask_all(self) -> None:
        """The bits of masking each of the nr_channels ports in turn, a word at a time."""
        mask = self.consumer.shinfo.evtchn_mask
        mask[:] = array(mask.format, [self.consumer.all_ones]) * len(mask)

    def unmask(self, port: Port, cpu: int) -> None:
        """evtchn_2l_unmask on ``cpu``: another CPU's port, or a pending one on HVM, needs Xen."""
        kernel = self.kernel
        if cpu != kernel.cpu_from_evtchn(port):
            kernel.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
            return
        shinfo = self.consumer.shinfo
        word, bit = self._word_bit(port)
        shinfo.evtchn_mask[word] &= ~bit  # clear first, then test pending: no window to lose an edge
        if not shinfo.evtchn_pending[word] & bit:
            return
        if kernel.domain.is_hvm:  # re-mask, so that Xen's unmask sees a masked port and raises the upcall
            shinfo.evtchn_mask[word] |= bit
            kernel.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
        else:
            self._resend(cpu, word)

    def _resend(self, cpu: int, word: int) -> None:
        """The PV path's hw_resend_irq: set this CPU's selector bit for ``word``, and
        ``evtchn_upcall_pending`` only if that bit was clear (else an upcall is on its way)."""
        info = self.consumer.vcpu_info[cpu]
        if info.sel[0] >> word & 1:
            return
        info.sel[0] |= 1 << word
        info.bytes[VcpuInfoView.UPCALL_PENDING] = 1

    def resume(self) -> None:
        """evtchn_2l_resume: every online CPU forgets which ports it scans; no hypercall."""
        masks = self.consumer.cpu_evtchn_mask
        for cpu in self.kernel.online_cpus:
            masks[cpu][:] = [0] * len(masks[cpu])
