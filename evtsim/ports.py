"""The per-domain port table: Xen's ``struct evtchn`` and lowest-free allocation.

Mirrors xen/common/event_channel.c (get_free_port, evtchn_allocate_port) and the bucket
scheme of xen/include/xen/sched.h: ports become *valid* 64 at a time as buckets are
allocated, and a valid port is not necessarily bound. Port 0 is reserved at creation
(evtchn_init) and never handed out.

Each field of ``struct evtchn`` is a compact array indexed by port (``table.state[port]``),
so 131072 ports cost a few dozen bytes each and the hot paths read a byte or a word instead
of chasing a Python object per port. The fields a send touches share one 16-byte record per
port (``RECORD``): each such array is a strided view of the record buffer, so a send touches
one cache line and one page of each domain's table, not one per field. ``table.chn[port]``
gives a readable ``Evtchn`` view of one port for everything that is not hot.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Iterator, Mapping
from struct import calcsize
from typing import TYPE_CHECKING, Protocol

from .abi import ECS, EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHNS_PER_BUCKET, DomId, Errno, Port

if TYPE_CHECKING:
    from .xen import Domain, Vcpu

_ECS = tuple(ECS)  # state byte -> ECS member, so a view's ``state`` is the enum itself
_FREE, _RESERVED, _INTERDOMAIN = int(ECS.ECS_FREE), int(ECS.ECS_RESERVED), int(ECS.ECS_INTERDOMAIN)
_ZEROS = bytes(EVTCHNS_PER_BUCKET)
_DEFAULT_PRIORITIES = bytes([EVTCHN_FIFO_PRIORITY_DEFAULT]) * EVTCHNS_PER_BUCKET

RECORD_SIZE = 16
#: The per-port record: (field, byte offset, struct format). What a send reads is here.
RECORD = (
    ("state", 0, "B"),  # ECS_* values
    ("xen_consumer", 1, "B"),  # non-zero: Xen itself consumes the port (e.g. an ioreq server)
    ("pending", 2, "B"),  # FIFO: raised while the port had no event-array page; never cleared
    ("priority", 3, "B"),  # FIFO: the queue of future links
    ("notify_vcpu_id", 4, "H"),
    ("remote_domid", 6, "H"),  # u.unbound.remote_domid; the id of u.interdomain.remote_dom
    ("remote_port", 8, "I"),  # u.interdomain.remote_port
    ("fifo_lastq", 12, "I"),  # FIFO: the queue last linked on, lastq_raw(last_vcpu_id, last_priority)
)


def lastq_raw(last_vcpu_id: int, last_priority: int) -> int:
    """``union evtchn_fifo_lastq``'s ``raw``: last_priority in byte 0, last_vcpu_id in bytes 2-3."""
    return last_vcpu_id << 16 | last_priority


_DEFAULT_LASTQ = array("I", [lastq_raw(0, EVTCHN_FIFO_PRIORITY_DEFAULT)] * EVTCHNS_PER_BUCKET)


class PortTable:
    """Valid ports of one domain, one array per ``struct evtchn`` field, and the allocator.

    Xen scans from port 0 on every allocation; a heap of free valid ports gives the same
    answer (the lowest FREE, non-busy port) without the quadratic cost at 131072 ports.
    The union ``u`` is flattened into separate fields, except that ``remote_domid`` also names
    an interdomain port's peer (``remote_dom``, looked up in ``domains``), as the union does.
    The ``RECORD`` fields are views of one buffer that is replaced as it grows: index them
    through the table (``table.state[p]``) rather than keeping ``table.state`` across an allocation.
    """

    __slots__ = (*(name for name, _, _ in RECORD), "domains", "virq", "pirq", "chn", "valid_evtchns",
                 "active", "_records", "_free")

    def __init__(self, domains: Mapping[DomId, Domain] | None = None) -> None:
        self.domains = {} if domains is None else domains  # Xen's domains, by id: remote_dom
        self._records = bytearray()  # RECORD_SIZE bytes per port, room for at least valid_evtchns
        self.virq = bytearray()  # u.virq (< NR_VIRQS)
        self.pirq = array("H")  # u.pirq.irq (< NR_PIRQS)
        self.chn = Channels(self)
        self.valid_evtchns = 0  # d->valid_evtchns: ports below this have a ``struct evtchn``
        self.active = 0  # d->active_evtchns: guest ports not FREE (port 0 is not counted)
        self._free: list[Port] = []
        self._add_bucket()
        self.state[0] = _RESERVED
        heapq.heappop(self._free)

    def is_valid(self, port: Port) -> bool:
        """port_is_valid: the port's bucket exists (not: the port is bound)."""
        return port < self.valid_evtchns

    def remote_dom(self, port: Port) -> Domain | None:
        """u.interdomain.remote_dom: the peer domain of an interdomain port, else None."""
        if self.state[port] != _INTERDOMAIN:
            return None
        return self.domains[self.remote_domid[port]]

    def usable(self, port: Port) -> bool:
        """evtchn_usable (xen/include/xen/event.h): guest-owned and bound (state > RESERVED)."""
        return not self.xen_consumer[port] and self.state[port] > _RESERVED

    def allocate(self, limit: int, is_busy: Callable[[Port], bool],
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
            if is_busy(candidate):
                skipped.append(candidate)
                continue
            port = candidate
            break
        for busy in skipped:
            heapq.heappush(self._free, busy)
        if port < 0 and self.valid_evtchns < limit:
            if bucket_fails():
                return -Errno.ENOMEM
            self._add_bucket()
            return self.allocate(limit, is_busy, bucket_fails)
        if port > 0:
            self.active += 1
        return port

    def grow_to(self, count: int) -> None:
        """Make ports below ``count`` valid at once (QEMU's fixed table of 4096)."""
        while self.valid_evtchns < count:
            self._add_bucket()

    def release(self, port: Port) -> None:
        """The port became FREE again (free_evtchn): it may be handed out later."""
        self.state[port] = _FREE
        self.notify_vcpu_id[port] = 0
        self.active -= 1
        heapq.heappush(self._free, port)

    def bound(self) -> list[Evtchn]:
        """Every port that is neither FREE nor RESERVED, in port order."""
        return [Evtchn(self, port) for port, state in enumerate(self.state) if state > _RESERVED]

    def _add_bucket(self) -> None:
        """A new bucket: 64 more valid ports, FREE, vCPU 0, priority 7 (alloc_evtchn_bucket)."""
        base = self.valid_evtchns
        count = self.valid_evtchns = base + EVTCHNS_PER_BUCKET
        if count * RECORD_SIZE > len(self._records):  # double the room, as a list would
            records = bytearray(max(count, 2 * base) * RECORD_SIZE)
            records[: len(self._records)] = self._records
            self._records = records
        self._view_records()
        self.priority[base:count] = _DEFAULT_PRIORITIES
        self.fifo_lastq[base:count] = _DEFAULT_LASTQ
        self.virq += _ZEROS
        self.pirq.frombytes(bytes(2 * EVTCHNS_PER_BUCKET))
        for port in range(base, count):
            heapq.heappush(self._free, port)

    def _view_records(self) -> None:
        """Point each RECORD field at its column of the record buffer, ports 0..valid_evtchns-1."""
        whole = memoryview(self._records)
        for name, offset, fmt in RECORD:
            step = RECORD_SIZE // calcsize(fmt)
            setattr(self, name, whole[offset:].cast(fmt)[: self.valid_evtchns * step : step])


class Channels:
    """``table.chn``: the valid ports as ``Evtchn`` views (indexing, ``len``, iteration)."""

    __slots__ = ("table",)

    def __init__(self, table: PortTable) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.valid_evtchns

    def __getitem__(self, port: Port) -> Evtchn:
        if not 0 <= port < self.table.valid_evtchns:
            raise IndexError(f"port {port} is not valid (valid_evtchns = {self.table.valid_evtchns})")
        return Evtchn(self.table, port)

    def __iter__(self) -> Iterator[Evtchn]:
        table = self.table
        return (Evtchn(table, port) for port in range(table.valid_evtchns))


def _field(name: str, read: Callable[[int], object] | None = None, doc: str = "") -> property:
    """A property of ``Evtchn`` that reads (through ``read``, if given) and writes ``table.<name>[port]``."""

    def get(self: Evtchn) -> object:
        value = getattr(self.table, name)[self.port]
        return value if read is None else read(value)

    def put(self: Evtchn, value: object) -> None:
        getattr(self.table, name)[self.port] = value

    return property(get, put, doc=doc or f"``{name}`` of this port.")


class Evtchn:
    """One port's Xen-private state (``struct evtchn``), read from and written to its table.

    Not used on hot paths; handy in tests, snapshots and notebooks: ``d.ports.chn[p].state``.
    """

    __slots__ = ("table", "port")

    def __init__(self, table: PortTable, port: Port) -> None:
        self.table = table
        self.port = port

    state = _field("state", _ECS.__getitem__, "The port's ECS_* state.")
    notify_vcpu_id = _field("notify_vcpu_id")
    xen_consumer = _field("xen_consumer", doc="Non-zero: Xen itself consumes the port.")
    remote_domid = _field("remote_domid", doc="u.unbound.remote_domid (an interdomain port: its peer's id).")
    remote_port = _field("remote_port", doc="u.interdomain.remote_port.")
    virq = _field("virq", doc="u.virq.")
    pirq = _field("pirq", doc="u.pirq.irq.")
    priority = _field("priority", doc="FIFO priority for future links.")
    pending = _field("pending", bool, "FIFO: raised while the port had no event-array page.")

    @property
    def remote_dom(self) -> Domain | None:
        """u.interdomain.remote_dom: the peer domain while INTERDOMAIN, else None."""
        return self.table.remote_dom(self.port)

    @remote_dom.setter
    def remote_dom(self, value: Domain | None) -> None:
        if value is not None:  # None: nothing to store, the state already says "no peer"
            self.table.remote_domid[self.port] = value.domain_id

    @property
    def last_vcpu_id(self) -> int:
        """fifo_lastq.last_vcpu_id: the vCPU of the queue the port was last linked on."""
        return self.table.fifo_lastq[self.port] >> 16

    @last_vcpu_id.setter
    def last_vcpu_id(self, value: int) -> None:
        self.table.fifo_lastq[self.port] = lastq_raw(value, self.last_priority)

    @property
    def last_priority(self) -> int:
        """fifo_lastq.last_priority: the priority of the queue the port was last linked on."""
        return self.table.fifo_lastq[self.port] & 0xFF

    @last_priority.setter
    def last_priority(self, value: int) -> None:
        self.table.fifo_lastq[self.port] = lastq_raw(self.last_vcpu_id, value)

    @property
    def usable(self) -> bool:
        """evtchn_usable (xen/include/xen/event.h): guest-owned and bound (state > RESERVED)."""
        return self.table.usable(self.port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Evtchn) and other.table is self.table and other.port == self.port

    def __hash__(self) -> int:
        return hash((id(self.table), self.port))

    def __repr__(self) -> str:
        return f"<Evtchn {self.port} {self.state.name} vcpu={self.notify_vcpu_id}>"


class EvtchnPortOps(Protocol):
    """struct evtchn_port_ops (xen/include/xen/event.h): what an ABI engine provides.

    Xen passes ``struct evtchn *``; evtsim passes the port number, the index of its fields.
    ``set_priority`` is None for 2-level: the hook is absent, so EVTCHNOP_set_priority
    returns -ENOSYS (edc8872aeb4a).
    """

    abi: str

    def init(self, port: Port) -> None: ...
    def set_pending(self, v: Vcpu, port: Port) -> None: ...
    def clear_pending(self, port: Port) -> None: ...
    def unmask(self, port: Port) -> None: ...
    def is_pending(self, port: Port) -> bool: ...
    def is_masked(self, port: Port) -> bool: ...
    def is_busy(self, port: Port) -> bool: ...
