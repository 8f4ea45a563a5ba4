"""What the kernel knows of each bound channel (Linux's ``struct irq_info``) and why it is
masked: do_mask and do_unmask from drivers/xen/events/events_base.c.

A channel is unmasked only when no reason to keep it masked is left, so a temporary mask
(xen_rebind_evtchn_to_cpu) never unmasks a channel that was masked on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from ..abi import Port
from .evtchn_ops import EvtchnOps


class MaskReason(IntFlag):
    """Why the kernel keeps a channel masked (irq_info.mask_reason, events_base.c): do_mask
    masks the port when the first reason appears, do_unmask unmasks it when the last goes.
    (Linux also has EVT_MASK_REASON_EOI_PENDING for late EOI, which evtsim does not model.)"""

    EXPLICIT = 0x01  # disable_dynirq; and from binding until the IRQ starts up
    TEMPORARY = 0x02  # while xen_rebind_evtchn_to_cpu changes the vCPU


@dataclass
class Channel:
    """One bound channel as the kernel knows it (Linux's irq_info): what it is for, its
    port, the CPU it is bound to and why it is masked (if it is)."""

    name: str
    port: Port
    cpu: int = 0
    mask_reason: MaskReason = MaskReason.EXPLICIT


def do_mask(ops: EvtchnOps, channel: Channel, reason: MaskReason) -> None:
    """do_mask: mask the port if no reason masked it yet, and remember ``reason``."""
    if not channel.mask_reason:
        ops.mask(channel.port)
    channel.mask_reason |= reason


def do_unmask(ops: EvtchnOps, channel: Channel, reason: MaskReason, cpu: int) -> None:
    """do_unmask on ``cpu``: forget ``reason``; unmask the port (the ABI's unmask, which may
    ask Xen) if no reason is left."""
    channel.mask_reason &= ~reason
    if not channel.mask_reason:
        ops.unmask(channel.port, cpu)
