"""Xen's 2-level port ops: one pending and one mask bit per port in shared_info, and a
per-vCPU selector word saying which pending words to look at.

Models xen/common/event_2l.c (evtchn_2l_set_pending, evtchn_2l_unmask,
evtchn_2l_clear_pending, evtchn_2l_is_pending, evtchn_2l_is_masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .memory import SHINFO_PENDING_OFFSET, Structure, VcpuInfoView
from .ports import Evtchn

if TYPE_CHECKING:
    from .xen import Domain, Vcpu


class TwoLevel:
    """The 2-level ABI engine of one domain (``evtchn_port_ops_2l``)."""

    abi = "2-level"
    set_priority = None  # no hook: EVTCHNOP_set_priority returns -ENOSYS

    def __init__(self, d: Domain) -> None:
        self.d = d
        self.shinfo = d.shared_info
        self.bits = d.shared_info.layout.bits_per_word
        self.word_size = self.bits // 8
        self.nr_channels = self.bits * self.bits

    def init(self, chn: Evtchn) -> None:
        """No per-port set-up in 2-level (there is no init hook)."""

    def set_pending(self, v: Vcpu, chn: Evtchn) -> None:
        """evtchn_2l_set_pending: pending bit first; selector and upcall only on 0->1 edges."""
        port = chn.port
        if port >= self.nr_channels:
            return
        word, bit = divmod(port, self.bits)
        pending = self.shinfo.evtchn_pending
        if pending[word] >> bit & 1:
            return  # already pending: nothing more, not even a poller wake
        pending[word] |= 1 << bit
        log = self.d.xen.log
        log.wrote(self.d.domain_id, self.shinfo.frame, SHINFO_PENDING_OFFSET + word * self.word_size,
                  Structure.SHARED_INFO, pending[word])
        if not self.shinfo.evtchn_mask[word] >> bit & 1:
            self._select(v, word)

    def _select(self, v: Vcpu, word: int) -> None:
        """Set selector bit ``word`` on ``v``; mark events pending if it was clear."""
        info: VcpuInfoView = v.vcpu_info
        sel = info.sel
        if sel[0] >> word & 1:
            return
        sel[0] |= 1 << word
        self.d.xen.log.wrote(self.d.domain_id, info.frame, info.offset + self.d.shared_info.layout.pending_sel_offset,
                             Structure.VCPU_INFO, sel[0])
        v.mark_events_pending()

    def clear_pending(self, chn: Evtchn) -> None:
        """evtchn_2l_clear_pending: clear the pending bit."""
        if chn.port >= self.nr_channels:
            return
        word, bit = divmod(chn.port, self.bits)
        pending = self.shinfo.evtchn_pending
        if pending[word] >> bit & 1:
            pending[word] &= ~(1 << bit)
            self.d.xen.log.wrote(self.d.domain_id, self.shinfo.frame,
                                 SHINFO_PENDING_OFFSET + word * self.word_size,
                                 Structure.SHARED_INFO, pending[word])

    def unmask(self, chn: Evtchn) -> None:
        """evtchn_2l_unmask: re-deliver only if the port was masked *and* is pending."""
        if chn.port >= self.nr_channels:
            return
        word, bit = divmod(chn.port, self.bits)
        mask = self.shinfo.evtchn_mask
        if not mask[word] >> bit & 1:
            return  # already unmasked: nothing happens, even if pending
        mask[word] &= ~(1 << bit)
        layout = self.shinfo.layout
        self.d.xen.log.wrote(self.d.domain_id, self.shinfo.frame, layout.mask_offset + word * self.word_size,
                             Structure.SHARED_INFO, mask[word])
        if self.shinfo.evtchn_pending[word] >> bit & 1:
            self._select(self.d.vcpus[chn.notify_vcpu_id], word)

    def is_pending(self, chn: Evtchn) -> bool:
        """evtchn_2l_is_pending: ports beyond the ABI limit count as not pending."""
        if chn.port >= self.nr_channels:
            return False
        word, bit = divmod(chn.port, self.bits)
        return bool(self.shinfo.evtchn_pending[word] >> bit & 1)

    def is_masked(self, chn: Evtchn) -> bool:
        """evtchn_2l_is_masked: ports beyond the ABI limit count as masked."""
        if chn.port >= self.nr_channels:
            return True
        word, bit = divmod(chn.port, self.bits)
        return bool(self.shinfo.evtchn_mask[word] >> bit & 1)

    def is_busy(self, chn: Evtchn) -> bool:
        """2-level has no is_busy hook: a free port is always reusable."""
        return False
