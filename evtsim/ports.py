"""The per-domain port table: Xen's ``struct evtchn`` and lowest-free allocation.

Mirrors xen/common/event_channel.c (get_free_port, evtchn_allocate_port) and the bucket
scheme of xen/include/xen/sched.h: ports become *valid* 64 at a time as buckets are
allocated, and a valid port is not necessarily bound. Port 0 is reserved at creation
(evtchn_init) and never handed out.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .abi import ECS, EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHNS_PER_BUCKET, DomId, Errno, Port

if TYPE_CHECKING:
    from .xen import Domain, Vcpu


@dataclass(eq=False, slots=True)
class Evtchn:
    """One port's Xen-private state (``struct evtchn``); the union ``u`` is flattened."""

    port: Port
    state: ECS = ECS.ECS_FREE
    notify_vcpu_id: int = 0
    xen_consumer: int = 0  # non-zero: Xen itself consumes the port (e.g. an ioreq server)
    remote_domid: DomId = 0  # u.unbound.remote_domid
    remote_dom: Domain | None = None  # u.interdomain.remote_dom
    remote_port: Port = 0  # u.interdomain.remote_port
    virq: int = 0  # u.virq
    pirq: int = 0  # u.pirq.irq
    # FIFO-only fields (xen/common/event_fifo.c):
    priority: int = EVTCHN_FIFO_PRIORITY_DEFAULT
    pending: bool = False  # raised while the port had no event-array page; never cleared
    last_vcpu_id: int = 0  # fifo_lastq: the queue the port was last linked on
    last_priority: int = EVTCHN_FIFO_PRIORITY_DEFAULT

    @property
    def usable(self) -> bool:
        """evtchn_usable (xen/include/xen/event.h): guest-owned and bound (state > RESERVED)."""
        return not self.xen_consumer and self.state > ECS.ECS_RESERVED


class PortTable:
    """Valid ports of one domain, and the lowest-free allocator.

    Xen scans from port 0 on every allocation; a heap of free valid ports gives the same
    answer (the lowest FREE, non-busy port) without the quadratic cost at 131072 ports.
    """

    __slots__ = ("chn", "active", "_free")

    def __init__(self) -> None:
        self.chn: list[Evtchn] = []
        self.active = 0  # d->active_evtchns: guest ports not FREE (port 0 is not counted)
        self._free: list[Port] = []
        self._add_bucket()
        self.chn[0].state = ECS.ECS_RESERVED
        heapq.heappop(self._free)

    @property
    def valid_evtchns(self) -> int:
        """d->valid_evtchns: ports below this have a ``struct evtchn``."""
        return len(self.chn)

    def is_valid(self, port: Port) -> bool:
        """port_is_valid: the port's bucket exists (not: the port is bound)."""
        return port < len(self.chn)

    def allocate(self, limit: int, is_busy: Callable[[Evtchn], bool],
                 bucket_fails: Callable[[], bool]) -> Port | int:
        """The lowest free, non-busy port below ``limit``, or -ENOSPC / -ENOMEM.

        Models get_free_port + evtchn_allocate_port. ``limit`` is
        min(max_evtchn_port + 1, max_evtchns(d)); ``bucket_fails`` is asked only when a new
        bucket is needed (fault injection: -ENOMEM).
        """
        skipped: list[Port] = []
        port = -Errno.ENOSPC
        while self._free:
            candidate = heapq.heappop(self._free)
            if candidate >= limit:
                heapq.heappush(self._free, candidate)
                break
            if is_busy(self.chn[candidate]):
                skipped.append(candidate)
                continue
            port = candidate
            break
        for busy in skipped:
            heapq.heappush(self._free, busy)
        if port < 0 and len(self.chn) < limit:
            if bucket_fails():
                return -Errno.ENOMEM
            self._add_bucket()
            return self.allocate(limit, is_busy, bucket_fails)
        if port > 0:
            self.active += 1
        return port

    def grow_to(self, count: int) -> None:
        """Make ports below ``count`` valid at once (QEMU's fixed table of 4096)."""
        while len(self.chn) < count:
            self._add_bucket()

    def release(self, chn: Evtchn) -> None:
        """The port became FREE again (free_evtchn): it may be handed out later."""
        chn.state = ECS.ECS_FREE
        chn.notify_vcpu_id = 0
        self.active -= 1
        heapq.heappush(self._free, chn.port)

    def bound(self) -> list[Evtchn]:
        """Every port that is neither FREE nor RESERVED, in port order."""
        return [chn for chn in self.chn if chn.state > ECS.ECS_RESERVED]

    def _add_bucket(self) -> None:
        base = len(self.chn)
        self.chn.extend(Evtchn(port) for port in range(base, base + EVTCHNS_PER_BUCKET))
        for chn in self.chn[base:]:
            heapq.heappush(self._free, chn.port)  # the same int object: no second copy per port


class EvtchnPortOps(Protocol):
    """struct evtchn_port_ops (xen/include/xen/event.h): what an ABI engine provides.

    ``set_priority`` is None for 2-level: the hook is absent, so EVTCHNOP_set_priority
    returns -ENOSYS (edc8872aeb4a).
    """

    abi: str

    def init(self, chn: Evtchn) -> None: ...
    def set_pending(self, v: Vcpu, chn: Evtchn) -> None: ...
    def clear_pending(self, chn: Evtchn) -> None: ...
    def unmask(self, chn: Evtchn) -> None: ...
    def is_pending(self, chn: Evtchn) -> bool: ...
    def is_masked(self, chn: Evtchn) -> bool: ...
    def is_busy(self, chn: Evtchn) -> bool: ...
