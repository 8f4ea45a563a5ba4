"""What a Linux-like kernel is told at boot: the ``xen.fifo_events`` parameter and what it
does when Xen refuses FIFO (Linux: fall back to 2-level on any error; xen_init_IRQ in
drivers/xen/events/events_base.c).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..abi import Errno


class FallbackPolicy(str, Enum):
    """What the kernel does when EVTCHNOP_init_control fails at boot."""

    ANY_ERROR = "any"  # Linux: any negative result -> 2-level
    ENOSYS_ONLY = "enosys-only"  # a guest that trusts only "not implemented" (the review's worry)
    NEVER = "never"  # a guest that insists on FIFO

    def falls_back(self, rc: int) -> bool:
        """Whether a failed init_control returning ``rc`` leads to 2-level (else a panic)."""
        return self is FallbackPolicy.ANY_ERROR or (self is FallbackPolicy.ENOSYS_ONLY and rc == -Errno.ENOSYS)


@dataclass(frozen=True)
class KernelConfig:
    """Boot-time choices: the ``xen.fifo_events`` parameter and the fallback policy."""

    fifo_events: bool = True
    fallback: FallbackPolicy = FallbackPolicy.ANY_ERROR
