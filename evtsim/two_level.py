"""Xen's 2-level port ops: one pending and one mask bit per port in shared_info, and a
per-vCPU selector word saying which pending words to look at.

Models xen/common/event_2l.c (evtchn_2l_set_pending, evtchn_2l_unmask,
evtchn_2l_clear_pending, evtchn_2l_is_pending, evtchn_2l_is_masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import Abi, Port
from .memory import SHINFO_PENDING_OFFSET, Frame, Structure
from .sched import evtchn_check_pollers

if TYPE_CHECKING:
    from .xen import Domain, Vcpu

SHARED_INFO = Structure.SHARED_INFO
VCPU_INFO = Structure.VCPU_INFO


class TwoLevel:
    """The 2-level ABI engine of one domain (``evtchn_port_ops_2l``).

    Word ``port >> shift``, bit ``port & low``: 64-bit words for a 64-bit guest, 32-bit words
    for a compat one (BITS_PER_EVTCHN_WORD). A port at or beyond the guest's 2-level limit only
    reaches this engine on a Xen that latched a 64-bit limit for a 32-bit guest (before XSA-342,
    ``unchecked``): Xen's bit operations then run past the guest's bitmaps, into the rest of
    shared_info and vcpu_info, and so do evtsim's (``BitsInFrame``).
    """

    abi = Abi.TWO_LEVEL
    set_priority = None  # no hook: EVTCHNOP_set_priority returns -ENOSYS

    def __init__(self, d: Domain) -> None:
        layout = d.shared_info.layout
        self.d = d
        self.domid = d.domain_id
        self.log = d.xen.log
        self.frame = d.shared_info.frame
        self.pending = d.shared_info.evtchn_pending
        self.mask = d.shared_info.evtchn_mask
        self.shift = layout.bits_per_word.bit_length() - 1
        self.low = layout.bits_per_word - 1
        self.word_size = layout.bits_per_word // 8
        self.nr_channels = layout.nr_channels
        self.mask_offset = layout.mask_offset
        self.sel_offset = layout.pending_sel_offset
        self.unchecked = not d.xen.version.dynamic_2l_limit
        self.poll_mask = d.poll_mask  # the domain's set: empty (falsy) unless a vCPU polls

    def init(self, port: Port) -> None:
        """No per-port set-up in 2-level (there is no init hook)."""

    def set_pending(self, v: Vcpu, port: Port) -> None:
        """evtchn_2l_set_pending: pending bit first; selector and upcall only on 0->1 edges;
        then, if the pending bit was newly set, wake pollers (evtchn_check_pollers), masked or not."""
        if port >= self.nr_channels:
            if self.unchecked:
                self._set_pending_beyond(v, port)
            return
        word, bit = port >> self.shift, 1 << (port & self.low)
        pending = self.pending
        if pending[word] & bit:
            return  # already pending: nothing more, not even a poller wake
        pending[word] |= bit
        # WriteLog.wrote, inlined on the hot path: a call per write costs 15-18% of an event
        # (measured in benchmarks/engines.py's loop), below the 0.5x target
        frame, log = self.frame, self.log
        frame.xen_writes += 1
        if log.full:
            log.keep(self.domid, frame, SHINFO_PENDING_OFFSET + word * self.word_size, SHARED_INFO, pending[word])
        if not self.mask[word] & bit:  # masked: the pending bit waits for EVTCHNOP_unmask
            info = v.vcpu_info
            sel = info.sel
            if not sel[0] >> word & 1:
                sel[0] |= 1 << word  # _select, inlined on this hot path
                frame.xen_writes += 1
                if log.full:
                    log.keep(self.domid, frame, info.offset + self.sel_offset, VCPU_INFO, sel[0])
                if not info.bytes[0]:
                    v.mark_events_pending()
        if self.poll_mask:  # the pending bit was newly set: pollers wake, masked or not
            evtchn_check_pollers(self.d, port)

    def _select(self, v: Vcpu, word: int) -> None:
        """Set selector bit ``word`` on ``v``; mark events pending if it was clear."""
        sel = v.vcpu_info.sel
        if sel[0] >> word & 1:
            return
        sel[0] |= 1 << word
        self.log.wrote(self.domid, self.frame, v.vcpu_info.offset + self.sel_offset, VCPU_INFO, sel[0])
        if not v.vcpu_info.bytes[0]:
            v.mark_events_pending()

    def clear_pending(self, port: Port) -> None:
        """evtchn_2l_clear_pending: clear the pending bit."""
        if port >= self.nr_channels:
            if self.unchecked and self._bits(SHINFO_PENDING_OFFSET).clear(port):
                self._wrote(SHINFO_PENDING_OFFSET, port)
            return
        word, bit = port >> self.shift, 1 << (port & self.low)
        if self.pending[word] & bit:
            self.pending[word] &= ~bit
            self.log.wrote(self.domid, self.frame, SHINFO_PENDING_OFFSET + word * self.word_size,
                           SHARED_INFO, self.pending[word])

    def unmask(self, port: Port) -> None:
        """evtchn_2l_unmask: re-deliver only if the port was masked *and* is pending."""
        if port >= self.nr_channels:
            if self.unchecked:
                self._unmask_beyond(port)
            return
        word, bit = port >> self.shift, 1 << (port & self.low)
        if not self.mask[word] & bit:
            return  # already unmasked: nothing happens, even if pending
        self.mask[word] &= ~bit
        self.log.wrote(self.domid, self.frame, self.mask_offset + word * self.word_size, SHARED_INFO,
                       self.mask[word])
        if self.pending[word] & bit:
            self._select(self.d.vcpus[self.d.ports.notify_vcpu_id[port]], word)

    def is_pending(self, port: Port) -> bool:
        """evtchn_2l_is_pending: ports beyond the ABI limit count as not pending (since XSA-342)."""
        if port >= self.nr_channels:
            return self.unchecked and self._bits(SHINFO_PENDING_OFFSET).test(port)
        return bool(self.pending[port >> self.shift] >> (port & self.low) & 1)

    def is_masked(self, port: Port) -> bool:
        """evtchn_2l_is_masked: ports beyond the ABI limit count as masked (since XSA-342)."""
        if port >= self.nr_channels:
            return not self.unchecked or self._bits(self.mask_offset).test(port)
        return bool(self.mask[port >> self.shift] >> (port & self.low) & 1)

    def is_busy(self, port: Port) -> bool:
        """2-level has no is_busy hook: a free port is always reusable."""
        return False

    def raise_on(self, v: Vcpu, port: Port) -> None:
        """QEMU's unmask_port(do_unmask=false) after bind_vcpu: a pending, unmasked port sets
        its selector bit (and the upcall) on ``v``, its new vCPU (hw/i386/kvm/xen_evtchn.c)."""
        if port < self.nr_channels and self.is_pending(port) and not self.is_masked(port):
            self._select(v, port >> self.shift)

    # --- before XSA-342: ports past a 32-bit guest's bitmaps ----------------------------------

    def _bits(self, offset: int) -> BitsInFrame:
        return BitsInFrame(self.frame, offset, self.word_size)

    def _wrote(self, offset: int, bit: int) -> None:
        word_offset, value = self._bits(offset).word(bit)
        self.log.wrote(self.domid, self.frame, word_offset, SHARED_INFO, value)

    def _set_pending_beyond(self, v: Vcpu, port: Port) -> None:
        """evtchn_2l_set_pending before 62bcdc4edb, on a port past the guest's bitmaps."""
        if not self._bits(SHINFO_PENDING_OFFSET).set(port):
            return
        self._wrote(SHINFO_PENDING_OFFSET, port)
        if not self._bits(self.mask_offset).test(port):
            self._select_beyond(v, port >> self.shift)
        if self.poll_mask:
            evtchn_check_pollers(self.d, port)

    def _unmask_beyond(self, port: Port) -> None:
        """evtchn_2l_unmask before 62bcdc4edb, on a port past the guest's bitmaps."""
        if not self._bits(self.mask_offset).clear(port):
            return
        self._wrote(self.mask_offset, port)
        if self._bits(SHINFO_PENDING_OFFSET).test(port):
            self._select_beyond(self.d.vcpus[self.d.ports.notify_vcpu_id[port]], port >> self.shift)

    def _select_beyond(self, v: Vcpu, word: int) -> None:
        """Selector bit ``word`` (past evtchn_pending_sel's width), then the upcall."""
        sel = v.vcpu_info.offset + self.sel_offset
        if not self._bits(sel).set(word):
            return
        offset, value = self._bits(sel).word(word)
        self.log.wrote(self.domid, self.frame, offset, VCPU_INFO, value)
        if not v.vcpu_info.bytes[0]:
            v.mark_events_pending()


class BitsInFrame:
    """x86 bit operations on a bitmap that starts at ``offset`` in ``frame``, unbounded: bit
    ``n`` is bit ``n % 8`` of byte ``offset + n // 8``, wherever that falls in the page."""

    __slots__ = ("data", "offset", "word_size")

    def __init__(self, frame: Frame, offset: int, word_size: int) -> None:
        self.data, self.offset, self.word_size = frame.data, offset, word_size

    def test(self, n: int) -> bool:
        return bool(self.data[self.offset + n // 8] >> n % 8 & 1)

    def set(self, n: int) -> bool:
        """test_and_set_bit: True if the bit was clear (so this changed memory)."""
        if self.test(n):
            return False
        self.data[self.offset + n // 8] |= 1 << n % 8
        return True

    def clear(self, n: int) -> bool:
        """test_and_clear_bit: True if the bit was set."""
        if not self.test(n):
            return False
        self.data[self.offset + n // 8] &= ~(1 << n % 8) & 0xFF
        return True

    def word(self, n: int) -> tuple[int, int]:
        """(byte offset, value) of the xen_ulong_t that holds bit ``n``."""
        start = self.offset + n // (8 * self.word_size) * self.word_size
        return start, int.from_bytes(self.data[start:start + self.word_size], "little")
