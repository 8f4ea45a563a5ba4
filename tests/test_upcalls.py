"""Upcalls raised and upcalls delivered: two moments, two counts on each vCPU.

Xen *raises* an upcall in vcpu_mark_events_pending (xen/arch/x86/domain.c) when it finds
``evtchn_upcall_pending`` clear; the vCPU *takes* it only when it runs with, for PV,
``evtchn_upcall_mask`` clear (test_guest_events / create_bounce_frame, which masks upcalls
while the handler runs); an HVM vCPU takes the callback vector and Xen ignores the mask.
``Vcpu.run`` is the vCPU running; ``Kernel.run`` runs each online CPU that way.
"""

from __future__ import annotations

import pytest
from conftest import ipi, send, shinfo_mask

from evtsim import SCHEDOP_block, XEN_DOMCTL_CDF_hvm, Kernel, Xen, xl_create
from evtsim.testing import two_level_consumer

PV, HVM = 0, XEN_DOMCTL_CDF_hvm


def upcall_recorder(v, seen: list):
    """An event handler that notes the upcall mask the guest sees while it runs, then acks."""
    def upcall(cpu: int) -> None:
        seen.append((cpu, v.vcpu_info.evtchn_upcall_mask))
        v.vcpu_info.bytes[0] = 0  # __xen_evtchn_do_upcall clears evtchn_upcall_pending
    return upcall


def test_an_upcall_is_raised_once_while_pending_and_delivered_when_the_vcpu_runs():
    d = Xen().domain_create(flags=PV)
    v = d.vcpus[0]
    a, b = ipi(d, 0), ipi(d, 0)
    send(d, a)
    send(d, b)  # same selector word, upcall already pending: nothing new is raised
    assert (v.upcalls, v.upcalls_delivered) == (1, 0)
    seen = []
    assert v.run(upcall_recorder(v, seen)) is True
    assert (v.upcalls, v.upcalls_delivered) == (1, 1)
    assert v.run(upcall_recorder(v, seen)) is False  # nothing pending any more


def test_a_pv_vcpu_with_upcalls_masked_is_raised_to_but_takes_nothing_until_unmasked():
    d = Xen().domain_create(flags=PV)
    v = d.vcpus[0]
    v.vcpu_info.bytes[1] = 1  # local_irq_disable in a PV guest
    send(d, ipi(d, 0))
    seen = []
    assert v.run(upcall_recorder(v, seen)) is False
    assert (v.upcalls, v.upcalls_delivered) == (1, 0)
    v.vcpu_info.bytes[1] = 0  # local_irq_enable
    assert v.run(upcall_recorder(v, seen)) is True and v.upcalls_delivered == 1


def test_xen_masks_pv_upcalls_while_the_handler_runs_and_the_return_unmasks_them():
    d = Xen().domain_create(flags=PV)
    v = d.vcpus[0]
    send(d, ipi(d, 0))
    frame = v.vcpu_info.frame
    writes = frame.xen_writes
    seen = []
    v.run(upcall_recorder(v, seen))
    assert seen == [(0, 1)]
    assert v.vcpu_info.evtchn_upcall_mask == 0
    assert frame.xen_writes == writes + 2  # the bounce frame's mask, then HYPERVISOR_iret's unmask


def test_an_hvm_vcpu_takes_the_callback_whatever_its_upcall_mask_says():
    d = Xen().domain_create(flags=HVM)
    v = d.vcpus[0]
    v.vcpu_info.bytes[1] = 1
    send(d, ipi(d, 0))
    seen = []
    assert v.run(upcall_recorder(v, seen)) is True
    assert seen == [(0, 1)] and v.vcpu_info.evtchn_upcall_mask == 1  # Xen left the byte alone


def test_a_blocked_vcpu_does_not_run_so_takes_nothing():
    d = Xen().domain_create(vcpus=2, flags=PV)
    v1 = d.vcpus[1]
    port = ipi(d, 1)
    shinfo_mask(d, port)
    v1.sched_op(SCHEDOP_block)
    v1.vcpu_info.bytes[0] = 1  # even with the byte set by hand, a blocked vCPU runs no code
    assert v1.run(lambda cpu: None) is False and v1.upcalls_delivered == 0


def test_an_event_raised_while_the_handler_runs_is_taken_by_the_same_delivery():
    """The guest's handler loops while evtchn_upcall_pending is set again (Linux's
    __xen_evtchn_do_upcall): one delivery, two upcalls raised."""
    d = Xen().domain_create(flags=HVM)
    v = d.vcpus[0]
    a, b = ipi(d, 0), ipi(d, 0)
    consumer = two_level_consumer(d)  # routes the bound ports to their vCPUs
    send(d, a)
    consumer.handlers[a] = lambda cpu, port: send(d, b)
    v.run(consumer.upcall)
    assert (v.upcalls, v.upcalls_delivered) == (2, 1)
    assert consumer.received[a] == consumer.received[b] == 1


def test_the_kernel_runs_its_online_cpus_and_each_delivery_is_counted():
    xen = Xen()
    guest = xl_create(xen, vcpus=2)
    kernel = Kernel(guest.domain)
    kernel.boot()
    kernel.bind_standard_channels(guest.store_evtchn, guest.console_evtchn)
    for v in guest.domain.vcpus:
        xen.send_guest_vcpu_virq(v, 0)  # VIRQ_TIMER on each vCPU
    assert kernel.run() == 2
    assert [v.upcalls_delivered for v in guest.domain.vcpus] == [1, 1]
    assert kernel.received["timer0"] == kernel.received["timer1"] == 1


def test_running_a_vcpu_needs_a_handler_to_run():
    d = Xen().domain_create()
    with pytest.raises(TypeError, match="callable"):
        d.vcpus[0].run(None)
