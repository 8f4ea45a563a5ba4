"""Fault injection for the review's questions: what if a FIFO op failed for another reason?

Jan Beulich's point in the v4 review was that a guest must fall back to 2-level on *any*
error from EVTCHNOP_init_control: -ENOMEM, or an XSM denial if a check were added later.
``Xsm`` denies chosen sub-ops with a chosen errno (Xen's dummy policy would return -EPERM;
FLASK may say -EACCES); ``Faults`` makes chosen allocations fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .abi import DomId, Errno, EvtchnOp


class AllocSite(str, Enum):
    """Allocations inside the event-channel code that can return -ENOMEM."""

    EVTCHN_BUCKET = "evtchn_bucket"  # get_free_port: a new bucket of 64 struct evtchn
    FIFO_INIT = "fifo_init"  # first init_control: evtchn_fifo_domain and per-vCPU queues
    EVENT_ARRAY_PAGE = "event_array_page"  # expand_array: mapping the new page


@dataclass
class Xsm:
    """A policy that denies chosen sub-ops, for every domain or for one (``domid``)."""

    denials: dict[tuple[EvtchnOp, DomId | None], Errno] = field(default_factory=dict)

    def deny(self, op: EvtchnOp, errno: Errno = Errno.EPERM, domid: DomId | None = None) -> None:
        """From now on ``op`` from ``domid`` (or anyone) fails with ``-errno``."""
        self.denials[(EvtchnOp(op), domid)] = Errno(abs(errno))

    def allow(self, op: EvtchnOp, domid: DomId | None = None) -> None:
        """Lift a denial made with the same arguments."""
        self.denials.pop((EvtchnOp(op), domid), None)

    def check(self, op: EvtchnOp, domid: DomId) -> int:
        """0, or the negative errno the policy returns for ``op`` from ``domid``."""
        errno = self.denials.get((op, domid)) or self.denials.get((op, None))
        return -errno if errno else 0


@dataclass
class Faults:
    """Allocation failures armed for the next ``count`` attempts at a site."""

    armed: dict[tuple[AllocSite, DomId | None], int] = field(default_factory=dict)

    def fail(self, site: AllocSite, domid: DomId | None = None, count: int = 1) -> None:
        """Make the next ``count`` allocations at ``site`` (for ``domid`` or anyone) fail."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self.armed[(AllocSite(site), domid)] = count

    def take(self, site: AllocSite, domid: DomId) -> bool:
        """True (and one fewer armed) if this allocation is to fail with -ENOMEM."""
        for key in ((site, domid), (site, None)):
            left = self.armed.get(key, 0)
            if left:
                if left == 1:
                    del self.armed[key]
                else:
                    self.armed[key] = left - 1
                return True
        return False
