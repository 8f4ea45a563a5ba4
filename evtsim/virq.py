"""Events Xen raises itself: virtual IRQs (VIRQ_TIMER, VIRQ_CONSOLE, ...) and physical ones.

Models xen/common/event_channel.c: send_guest_vcpu_virq (a per-vCPU VIRQ, on the vCPU it
was bound on), send_guest_global_virq (a global or per-domain VIRQ, bound on vCPU 0 and
delivered to the port's notify vCPU), send_global_virq (to the domain registered with
set_global_virq_handler, else the hardware domain) and send_guest_pirq. Each goes through
evtchn_port_set_pending, so the port's ABI engine marks it pending, raises the upcall if it
should, and wakes vCPUs polling it. Nothing happens when the VIRQ is not bound.

These are Xen-internal calls, not hypercalls: Xen's callers never pass a VIRQ of the wrong
kind (Xen ASSERTs it), so here a wrong kind or number is a ValueError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import NR_VIRQS, PER_VCPU_VIRQS, Virq
from .event_channel import evtchn_port_set_pending

if TYPE_CHECKING:
    from .xen import Domain, Vcpu, Xen


def send_guest_vcpu_virq(xen: Xen, v: Vcpu, virq: int) -> None:
    """send_guest_vcpu_virq: raise per-vCPU ``virq`` (VIRQ_TIMER, VIRQ_DEBUG, ...) on ``v``."""
    _check_domain(xen, v.domain)
    if _virq_number(virq) not in PER_VCPU_VIRQS:
        raise ValueError(f"{_name(virq)} is not a per-vCPU VIRQ: raise it with send_guest_global_virq")
    port = v.virq_to_evtchn[virq]
    if port:
        evtchn_port_set_pending(v.domain, v.vcpu_id, port)


def send_guest_global_virq(xen: Xen, d: Domain, virq: int) -> None:
    """send_guest_global_virq: raise global or per-domain ``virq`` in ``d`` (bound on vCPU 0)."""
    _check_domain(xen, d)
    if _virq_number(virq) in PER_VCPU_VIRQS:
        raise ValueError(f"{_name(virq)} is a per-vCPU VIRQ: raise it with send_guest_vcpu_virq")
    port = d.vcpus[0].virq_to_evtchn[virq]
    if port:
        evtchn_port_set_pending(d, d.ports.notify_vcpu_id[port], port)


def send_global_virq(xen: Xen, virq: int) -> None:
    """send_global_virq: to the domain set_global_virq_handler chose for ``virq``, else dom0."""
    send_guest_global_virq(xen, xen.global_virq_handlers.get(_virq_number(virq), xen.dom0), virq)


def send_guest_pirq(xen: Xen, d: Domain, pirq: int) -> None:
    """send_guest_pirq: a physical interrupt routed to ``d``'s port bound to ``pirq``."""
    _check_domain(xen, d)
    if not isinstance(pirq, int) or isinstance(pirq, bool):
        raise TypeError(f"pirq must be a PIRQ number, got {pirq!r}")
    port = d.pirq_to_evtchn.get(pirq, 0)
    if port:
        evtchn_port_set_pending(d, d.ports.notify_vcpu_id[port], port)


def _virq_number(virq: object) -> int:
    if not isinstance(virq, int) or isinstance(virq, bool):
        raise TypeError(f"virq must be a VIRQ_* number, got {virq!r}")
    if not 0 <= virq < NR_VIRQS:
        raise ValueError(f"virq must be below NR_VIRQS ({NR_VIRQS}), got {virq}")
    return virq


def _name(virq: int) -> str:
    return Virq(virq).name if virq in Virq._value2member_map_ else f"VIRQ {virq}"


def _check_domain(xen: Xen, d: object) -> None:
    """The domain (or the vCPU's domain) must be a live domain of this Xen."""
    if xen.domains.get(getattr(d, "domain_id", None)) is not d:
        raise ValueError(f"{d!r} is not a domain of this Xen (destroyed, or another host's)")
