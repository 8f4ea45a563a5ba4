"""The 2-level ABI's ops in the guest kernel (evtsim.guest.events_2l): every port masked at
boot, the per-CPU bound-port masks, unmask by evtchn_2l_unmask, and resume.

Models Linux's drivers/xen/events/events_2l.c: evtchn_2l_mask, evtchn_2l_unmask (the local
path, the HVM re-mask, the PV path that sets ``evtchn_upcall_pending`` only when it newly
set the selector bit), evtchn_2l_bind_to_cpu, evtchn_2l_is_pending, evtchn_2l_resume, and
xen_init_IRQ's masking of every port (events_base.c); per xen-abi-facts.md sections 2.3, 4.4
and 4.5. Each test reads shared_info and vcpu_info bytes and the hypercalls made.
"""

from __future__ import annotations

from conftest import shinfo_mask, shinfo_masked, shinfo_pending
from guest_support import TWO_LEVEL, Machine, machine, peek_wrap

from evtsim import VIRQ_TIMER, Xen
from evtsim.guest.kernel import Kernel
from evtsim.toolstack import xl_create

ALL_ONES = (1 << 64) - 1
PV = 0  # domain create flags without XEN_DOMCTL_CDF_hvm


def mask_and_notify(m: Machine, channel: str) -> int:
    """The guest masks ``channel``'s port, dom0 notifies it: only its pending bit is set. The word."""
    port = m.port(channel)
    m.kernel.mask(port)
    m.guest.backend.notify(channel)
    assert shinfo_pending(m.domain, port)
    assert m.domain.vcpus[0].vcpu_info.sel[0] == 0  # masked: no selector, no upcall
    return port // 64


# --- xen_init_IRQ: no event channel is live at boot -----------------------------------------


def test_boot_masks_every_port_the_abi_has():
    m = machine("master", TWO_LEVEL, channels=False)
    assert list(m.domain.shared_info.evtchn_mask) == [ALL_ONES] * 64
    assert m.kernel.ops.nr_channels() == m.kernel.ops.max_channels() == 4096


def test_boot_of_a_32_bit_guest_masks_its_1024_ports():
    guest = xl_create(Xen("master"), vcpus=1, compat=True)
    kernel = Kernel(guest.domain, TWO_LEVEL)
    kernel.boot()
    assert list(guest.domain.shared_info.evtchn_mask) == [(1 << 32) - 1] * 32
    assert kernel.ops.nr_channels() == kernel.ops.max_channels() == 1024


# --- evtchn_2l_bind_to_cpu --------------------------------------------------------------------


def test_each_port_is_in_the_mask_of_the_cpu_it_is_bound_to_and_no_other():
    m = machine("master", TWO_LEVEL)
    masks = m.kernel.consumer.cpu_evtchn_mask
    for channel in m.kernel.channels.values():
        word, bit = divmod(channel.port, 64)
        assert [masks[cpu][word] >> bit & 1 for cpu in (0, 1)] == [channel.cpu == 0, channel.cpu == 1], channel


def test_resume_clears_every_online_cpus_mask_without_a_hypercall():
    m = machine("master", TWO_LEVEL)
    mark = len(m.calls)
    m.kernel.ops.resume()
    assert m.kernel.consumer.cpu_evtchn_mask == [[0] * 64, [0] * 64]
    assert m.since(mark) == []


# --- evtchn_2l_unmask ---------------------------------------------------------------------------


def test_unmask_of_a_port_that_is_not_pending_needs_no_hypercall():
    m = machine("master", TWO_LEVEL)
    port = m.port("xenstore")
    shinfo_mask(m.domain, port)
    mark = len(m.calls)
    m.kernel.unmask(port)
    assert not shinfo_masked(m.domain, port)
    assert m.since(mark) == []


def test_unmask_of_a_pending_port_on_hvm_remasks_and_asks_xen():
    m = machine("master", TWO_LEVEL)
    port = m.port("xenstore")
    word = mask_and_notify(m, "xenstore")
    v0 = m.domain.vcpus[0]
    seen = []
    m.domain.evtchn_op = peek_wrap(m.domain.evtchn_op, lambda: seen.append(shinfo_masked(m.domain, port)))
    upcalls, mark = v0.upcalls, len(m.calls)
    m.kernel.unmask(port)
    assert m.since(mark) == [("unmask", 0)]
    assert seen == [True]  # masked again when the hypercall was made
    assert not shinfo_masked(m.domain, port)
    assert v0.vcpu_info.sel[0] >> word & 1 and v0.upcalls == upcalls + 1  # Xen raised the upcall
    m.kernel.run()
    assert m.kernel.received["xenstore"] == 1


def test_unmask_of_a_pending_port_on_pv_sets_selector_and_upcall_locally():
    m = machine("master", TWO_LEVEL, flags=PV)
    port = m.port("xenstore")
    word = mask_and_notify(m, "xenstore")
    v0 = m.domain.vcpus[0]
    upcalls, mark = v0.upcalls, len(m.calls)
    m.kernel.unmask(port)
    assert m.since(mark) == []
    assert not shinfo_masked(m.domain, port)
    assert v0.vcpu_info.sel[0] == 1 << word and v0.vcpu_info.evtchn_upcall_pending == 1
    assert v0.upcalls == upcalls  # the guest re-injected the edge, not Xen
    m.kernel.run()
    assert m.kernel.received["xenstore"] == 1


def test_pv_unmask_leaves_the_upcall_flag_alone_when_the_selector_bit_was_already_set():
    """Crafted: the upcall loop has cleared evtchn_upcall_pending but not yet taken the
    selector. The edge is already on its way; evtchn_2l_unmask must not raise another."""
    m = machine("master", TWO_LEVEL, flags=PV)
    port = m.port("xenstore")
    word = mask_and_notify(m, "xenstore")
    info = m.domain.vcpus[0].vcpu_info
    info.sel[0] = 1 << word
    info.bytes[0] = 0  # evtchn_upcall_pending
    m.kernel.unmask(port)
    assert info.sel[0] == 1 << word and info.evtchn_upcall_pending == 0
    assert not shinfo_masked(m.domain, port)


def test_unmask_of_a_port_bound_to_another_cpu_uses_the_hypercall():
    m = machine("master", TWO_LEVEL)
    mark = len(m.calls)
    m.kernel.unmask(m.port("timer1"))
    assert m.since(mark) == [("unmask", 0)]


def test_unmask_run_on_the_ports_own_cpu_re_injects_on_that_cpus_vcpu_info():
    m = machine("master", TWO_LEVEL, flags=PV)
    port = m.port("timer1")
    m.kernel.mask(port)
    m.xen.send_guest_vcpu_virq(m.domain.vcpus[1], VIRQ_TIMER)
    mark = len(m.calls)
    m.kernel.unmask(port, cpu=1)
    v0, v1 = (v.vcpu_info for v in m.domain.vcpus)
    assert m.since(mark) == []
    assert v1.sel[0] == 1 << port // 64 and v1.evtchn_upcall_pending == 1
    assert v0.sel[0] == 0 and v0.evtchn_upcall_pending == 0


# --- mask_evtchn / test_evtchn ---------------------------------------------------------------


def test_mask_sets_the_bit_in_evtchn_mask_without_a_hypercall():
    m = machine("master", TWO_LEVEL)
    port = m.port("console")
    mark = len(m.calls)
    m.kernel.mask(port)
    assert shinfo_masked(m.domain, port) and m.since(mark) == []


def test_is_pending_reads_the_bit_in_evtchn_pending():
    m = machine("master", TWO_LEVEL)
    port = m.port("console")
    assert not m.kernel.ops.is_pending(port)
    m.guest.backend.notify("console")
    assert shinfo_pending(m.domain, port) and m.kernel.ops.is_pending(port)
