"""Shared helpers for the core tests: short names for the sub-ops, a domain pair, fixtures.

The hand-wiring itself (``op``, ``to_fifo``, the consumers) lives in ``evtsim.testing``, which
the benchmarks use too; it is imported here so that tests keep importing it from conftest.
"""

from __future__ import annotations

import pytest

from evtsim import EvtchnOp, Xen
from evtsim.testing import ARRAY_GFN, CONTROL_GFN, fifo_consumer, op, setup_op, to_fifo, two_level_consumer
from evtsim.xen import Domain

__all__ = ["ARRAY_GFN", "B", "CONTROL_GFN", "L", "M", "P", "connect", "fifo_consumer", "ipi", "op", "send", "shinfo_mask",
           "shinfo_masked", "shinfo_pending", "to_fifo", "two_level_consumer"]

# The FIFO event word's flag bits as xen/include/public/event_channel.h numbers them (31 PENDING,
# 30 MASKED, 29 LINKED, 28 BUSY), written out here rather than taken from evtsim.fifo, so that
# the tests check evtsim's constants instead of trusting them.
P, M, L, B = 1 << 31, 1 << 30, 1 << 29, 1 << 28

# Short names for the sub-ops, so that a table of hypercalls fits one row to a line.
ALLOC = EvtchnOp.EVTCHNOP_alloc_unbound
INTERDOMAIN = EvtchnOp.EVTCHNOP_bind_interdomain
VIRQ = EvtchnOp.EVTCHNOP_bind_virq
PIRQ = EvtchnOp.EVTCHNOP_bind_pirq
IPI = EvtchnOp.EVTCHNOP_bind_ipi
CLOSE = EvtchnOp.EVTCHNOP_close
SEND = EvtchnOp.EVTCHNOP_send
STATUS = EvtchnOp.EVTCHNOP_status
BIND_VCPU = EvtchnOp.EVTCHNOP_bind_vcpu
UNMASK = EvtchnOp.EVTCHNOP_unmask
RESET = EvtchnOp.EVTCHNOP_reset
RESET_CONT = EvtchnOp.EVTCHNOP_reset_cont
INIT = EvtchnOp.EVTCHNOP_init_control
EXPAND = EvtchnOp.EVTCHNOP_expand_array
PRIO = EvtchnOp.EVTCHNOP_set_priority


def shinfo_pending(d: Domain, port: int) -> bool:
    """Bit ``port`` of shared_info.evtchn_pending, as a 2-level guest reads it."""
    bits = d.shared_info.layout.bits_per_word
    return bool(d.shared_info.evtchn_pending[port // bits] >> (port % bits) & 1)


def shinfo_masked(d: Domain, port: int) -> bool:
    """Bit ``port`` of shared_info.evtchn_mask."""
    bits = d.shared_info.layout.bits_per_word
    return bool(d.shared_info.evtchn_mask[port // bits] >> (port % bits) & 1)


def shinfo_mask(d: Domain, port: int) -> None:
    """The 2-level guest masks a port itself (mask_evtchn): sets its bit in evtchn_mask."""
    bits = d.shared_info.layout.bits_per_word
    d.shared_info.evtchn_mask[port // bits] |= 1 << (port % bits)


def ipi(d: Domain, vcpu: int = 0, priority: int | None = None) -> int:
    """A new IPI port on ``vcpu`` (moved to ``priority``'s queue if given): its number."""
    port = setup_op(d, EvtchnOp.EVTCHNOP_bind_ipi, vcpu=vcpu).port
    if priority is not None:
        setup_op(d, EvtchnOp.EVTCHNOP_set_priority, port=port, priority=priority)
    return port


def send(d: Domain, port: int) -> None:
    """EVTCHNOP_send on ``port``, which must succeed."""
    setup_op(d, SEND, port=port)


def connect(backend: Domain, frontend: Domain) -> tuple[int, int]:
    """An interdomain channel: (backend port, frontend port), as a PV backend/frontend pair do."""
    alloc = setup_op(backend, ALLOC, dom=backend.domain_id, remote_dom=frontend.domain_id)
    bind = setup_op(frontend, INTERDOMAIN, remote_dom=backend.domain_id, remote_port=alloc.port)
    return alloc.port, bind.local_port


@pytest.fixture
def xen() -> Xen:
    return Xen("master")


@pytest.fixture
def guest(xen: Xen) -> Domain:
    return xen.domain_create(vcpus=2)


@pytest.fixture(params=["2-level", "fifo"])
def either_abi(request, xen: Xen) -> Domain:
    """A 2-vCPU HVM guest in either ABI (FIFO: control blocks on both vCPUs, one zeroed page)."""
    d = xen.domain_create(vcpus=2)
    if request.param == "fifo":
        to_fifo(d)
    return d
