"""Shared helpers for the core tests: short ways to issue hypercalls and wire consumers.

The real guest kernels arrive with the scenario work; these helpers do by hand what such a
kernel does (alloc/bind, init_control, expand_array with MASKED pages) so each test can
state one behaviour in a few lines.
"""

from __future__ import annotations

import pytest

from evtsim import ARG_TYPES, EvtchnOp, Xen
from evtsim.fifo import M
from evtsim.guest import FifoConsumer, TwoLevelConsumer
from evtsim.xen import SHARED_INFO_GFN, Domain

CONTROL_GFN = 0x100  # + vcpu: where tests put control blocks
ARRAY_GFN = 0x200  # + page index: where tests put event-array pages


def op(d: Domain, cmd: EvtchnOp, **fields):
    """Issue ``cmd`` from ``d`` with an argument struct built from ``fields``: (rc, arg)."""
    arg = ARG_TYPES[cmd](**fields)
    return d.evtchn_op(cmd, arg), arg


def connect(backend: Domain, frontend: Domain) -> tuple[int, int]:
    """An interdomain channel: (backend port, frontend port), as a PV backend/frontend pair do."""
    rc, alloc = op(backend, EvtchnOp.EVTCHNOP_alloc_unbound, dom=backend.domain_id,
                   remote_dom=frontend.domain_id)
    assert rc == 0, rc
    rc, bind = op(frontend, EvtchnOp.EVTCHNOP_bind_interdomain, remote_dom=backend.domain_id,
                  remote_port=alloc.port)
    assert rc == 0, rc
    return alloc.port, bind.local_port


def to_fifo(d: Domain, pages: int = 1, masked: bool = False) -> None:
    """init_control on every vCPU, then ``pages`` array pages (all MASKED if ``masked``)."""
    for v in d.vcpus:
        rc, _ = op(d, EvtchnOp.EVTCHNOP_init_control, control_gfn=CONTROL_GFN + v.vcpu_id, offset=0,
                   vcpu=v.vcpu_id)
        assert rc == 0, rc
    for i in range(pages):
        if masked:  # Linux's init_array_page: every word starts MASKED
            d.memory.frame(ARRAY_GFN + i).data[:] = M.to_bytes(4, "little") * 1024
        rc, _ = op(d, EvtchnOp.EVTCHNOP_expand_array, array_gfn=ARRAY_GFN + i)
        assert rc == 0, rc


def two_level_consumer(d: Domain) -> TwoLevelConsumer:
    """The guest's 2-level consumer with every bound port routed to its notify vCPU."""
    c = TwoLevelConsumer(d.memory, SHARED_INFO_GFN, d.shared_info.layout, len(d.vcpus))
    for chn in d.ports.bound():
        c.bind_to_cpu(chn.port, chn.notify_vcpu_id)
    return c


def fifo_consumer(d: Domain) -> FifoConsumer:
    """The guest's FIFO consumer over the control blocks and pages ``to_fifo`` registered."""
    c = FifoConsumer(d.memory, SHARED_INFO_GFN, d.shared_info.layout, len(d.vcpus))
    for v in d.vcpus:
        c.attach_control_block(v.vcpu_id, d.memory.frame(CONTROL_GFN + v.vcpu_id), 0)
    for i in range(len(d.fifo.pages)):
        c.add_array_page(d.memory.frame(ARRAY_GFN + i))
    return c


@pytest.fixture
def xen() -> Xen:
    return Xen("master")


@pytest.fixture
def guest(xen: Xen) -> Domain:
    return xen.domain_create(vcpus=2)
