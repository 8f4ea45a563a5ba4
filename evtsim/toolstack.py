"""Dom0's side of a guest: what xl/libxl and the backends do with event channels.

``xl_create`` builds a domain the way the toolstack does: it allocates the xenstore and
console ports *in the guest* (EVTCHNOP_alloc_unbound with dom = the guest, a privileged
call), and xenstored / xenconsoled bind to them from dom0. The guest learns the port
numbers from HVM params, not from a hypercall. ``Backend`` holds dom0's ends and sends the
notifications a real backend would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .abi import (
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_send,
    XEN_DOMCTL_CDF_hvm,
    EvtchnAllocUnbound,
    EvtchnBindInterdomain,
    EvtchnSend,
    Port,
)
from .xen import Domain, Xen


@dataclass
class Backend:
    """Dom0's ends of one guest's channels (xenstored, xenconsoled, a block backend)."""

    xen: Xen
    guest: Domain
    ports: dict[str, Port] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)

    def bind(self, name: str, guest_port: Port) -> int:
        """A backend binds to the port the guest (or toolstack) offered: 0 or -errno."""
        arg = EvtchnBindInterdomain(remote_dom=self.guest.domain_id, remote_port=guest_port)
        rc = self.xen.dom0.evtchn_op(EVTCHNOP_bind_interdomain, arg)
        if rc == 0:
            self.ports[name] = arg.local_port
        return rc

    def notify(self, name: str) -> int:
        """notify_remote_via_evtchn from dom0: one event on ``name``'s channel."""
        port = self.ports.get(name)
        if port is None:
            return 0
        self.sent[name] += 1
        return self.xen.dom0.evtchn_op(EVTCHNOP_send, EvtchnSend(port=port))


@dataclass
class GuestHandle:
    """A created guest: its domain, dom0's backend, and the HVM params it boots with."""

    domain: Domain
    backend: Backend
    store_evtchn: Port
    console_evtchn: Port


def xl_create(xen: Xen, *, vcpus: int = 2, flags: int = XEN_DOMCTL_CDF_hvm,
              max_evtchn_port: int | None = None, compat: bool = False) -> GuestHandle:
    """libxl domain creation: the domain (``max_evtchn_port`` None: xl's default where the
    knob exists), then its xenstore and console channels."""
    domain = xen.domain_create(vcpus=vcpus, flags=flags, max_evtchn_port=max_evtchn_port, compat=compat)
    backend = Backend(xen, domain)
    store, console = plumb(backend)
    return GuestHandle(domain, backend, store, console)


def plumb(backend: Backend) -> tuple[Port, Port]:
    """The xenstore and console channels: ports allocated in the guest by the toolstack
    (a privileged alloc_unbound with dom = the guest), bound by xenstored and xenconsoled."""
    ports = []
    for name in ("xenstore", "console"):
        alloc = EvtchnAllocUnbound(dom=backend.guest.domain_id, remote_dom=0)
        rc = backend.xen.dom0.evtchn_op(EVTCHNOP_alloc_unbound, alloc)
        if rc < 0:
            raise RuntimeError(f"toolstack: alloc_unbound for {name} failed with {rc}")
        backend.bind(name, alloc.port)
        ports.append(alloc.port)
    return ports[0], ports[1]
