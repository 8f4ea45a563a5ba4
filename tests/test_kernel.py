"""The ABI-independent half of the Linux-like guest kernel (evtsim.guest.kernel): the ABI
chosen once at boot, fallback policies, the standard channels and their handlers, find_virq,
xen_rebind_evtchn_to_cpu, save/restore and the hibernation image.

Models drivers/xen/events/events_base.c (xen_init_IRQ, bind_virq_to_irq / find_virq,
bind_evtchn_to_cpu, xen_rebind_evtchn_to_cpu with do_mask / do_unmask, xen_irq_resume with
restore_cpu_virqs / restore_cpu_ipis) and arch/x86/xen/time.c (xen_setup_timer), per
xen-abi-facts.md sections 4.1-4.7. The ABIs' own ops are tested in test_events_2l.py and
test_events_fifo.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from guest_support import (
    ANY,
    BOTH_ABIS,
    ENOSYS_ONLY,
    FIFO_OPS,
    NEVER,
    NOT_ENOSYS,
    REFUSALS,
    TWO_LEVEL,
    deny_init_control,
    machine,
    page,
    peek_wrap,
    record,
    restore,
    send_one_event_per_channel,
)

from conftest import L, M, P, shinfo_masked

from evtsim import (
    DOMID_SELF,
    EVTCHNOP_init_control,
    EVTCHNOP_status,
    XEN_DOMCTL_CDF_disable_fifo,
    XEN_DOMCTL_CDF_hvm,
    Errno,
    EvtchnStatus,
    Xen,
)
from evtsim.guest.kernel import IPIS, Kernel, KernelConfig
from evtsim.memory import ControlBlockView
from evtsim.toolstack import xl_create


# --- 4.1 / 4.2: choosing the ABI at boot -------------------------------------------------


def test_fifo_events_is_on_by_default_and_the_default_policy_falls_back_on_any_error():
    assert KernelConfig().fifo_events is True
    assert KernelConfig().fallback is ANY


def test_successful_init_control_makes_the_kernel_and_the_domain_fifo():
    m = machine(channels=False)
    assert m.calls[0] == ("init_control", 0)
    assert m.kernel.abi == "fifo" and m.domain.abi == "fifo"
    assert m.kernel.crashed is None


@pytest.mark.parametrize("version, prepare, errno", REFUSALS)
def test_any_negative_init_control_falls_back_to_two_level(version, prepare, errno):
    m = machine(version, KernelConfig(fallback=ANY), prepare=prepare)
    assert m.calls[0] == ("init_control", -errno)
    assert m.kernel.abi == "2-level" and m.domain.abi == "2-level"
    assert m.kernel.crashed is None
    assert "timer0" in m.kernel.channels


def test_enosys_only_guest_falls_back_on_enosys():
    m = machine("4.3", KernelConfig(fallback=ENOSYS_ONLY))
    assert m.calls[0] == ("init_control", -Errno.ENOSYS)
    assert m.kernel.abi == "2-level" and m.kernel.crashed is None


@pytest.mark.parametrize("version, prepare, errno", NOT_ENOSYS)
def test_enosys_only_guest_panics_on_any_other_error_and_makes_no_further_hypercall(version, prepare, errno):
    m = machine(version, KernelConfig(fallback=ENOSYS_ONLY), prepare=prepare)
    m.kernel.alloc_unbound("vbd", 0)
    m.kernel.run()
    assert m.kernel.crashed is not None
    assert Errno(errno).name in m.kernel.crashed
    assert m.calls == [("init_control", -errno)]


@pytest.mark.parametrize("version, prepare, errno", REFUSALS)
def test_never_guest_panics_on_every_error_even_enosys(version, prepare, errno):
    m = machine(version, KernelConfig(fallback=NEVER), prepare=prepare)
    assert m.kernel.crashed is not None
    assert m.calls == [("init_control", -errno)]


def test_fifo_events_0_never_issues_init_control():
    m = machine("master", TWO_LEVEL)
    send_one_event_per_channel(m)
    m.kernel.run()
    assert "init_control" not in m.ops()
    assert m.kernel.abi == "2-level" and m.domain.abi == "2-level"


def test_the_abi_is_chosen_at_boot_and_never_re_chosen():
    """Refused once (XSM), the kernel stays 2-level even after the denial is lifted, through
    binding, traffic, a Xen save/restore and a hibernation resume onto FIFO-capable hosts."""
    m = machine("master", prepare=deny_init_control(Errno.EPERM))
    m.xen.xsm.allow(EVTCHNOP_init_control)
    m.kernel.alloc_unbound("vbd", 0)
    send_one_event_per_channel(m)
    m.kernel.run()
    restored = xl_create(Xen("master"))
    restored_calls = record(restored.domain)
    m.kernel.resume_after_restore(restored.domain, restored.store_evtchn, restored.console_evtchn)
    image = m.kernel.image()
    resumed = xl_create(Xen("master"))
    resumed_calls = record(resumed.domain)
    image.resume_from_image(resumed.domain, resumed.store_evtchn, resumed.console_evtchn)
    assert [c for c in m.ops() if c == "init_control"] == ["init_control"]  # the refused one, at boot
    assert not any(c == "init_control" for c, _ in restored_calls + resumed_calls)
    assert m.kernel.abi == image.abi == "2-level"
    assert restored.domain.abi == resumed.domain.abi == "2-level"


# --- 4.7: bind_virq on -EEXIST ------------------------------------------------------------


def test_bind_virq_timer_on_eexist_finds_the_existing_port_with_status():
    m = machine("master", TWO_LEVEL)
    second = Kernel(m.domain, TWO_LEVEL, "second kernel")
    second.boot()
    before = len(m.calls)
    second.bind_virq_timer(0)
    assert m.calls[before] == ("bind_virq", -Errno.EEXIST)
    assert "status" in m.ops()[before:]
    assert second.channels["timer0"].port == m.kernel.channels["timer0"].port
    assert second.crashed is None


# --- standard channels --------------------------------------------------------------------


def test_standard_channels_are_a_timer_and_two_ipis_per_cpu_plus_xenstore_and_console():
    m = machine()
    expected = {f"{name}{cpu}" for cpu in (0, 1) for name in ("timer", *IPIS)} | {"xenstore", "console"}
    assert set(m.kernel.channels) == expected
    assert m.kernel.channels["xenstore"].port == m.guest.store_evtchn
    assert m.kernel.channels["console"].port == m.guest.console_evtchn


@BOTH_ABIS
def test_each_standard_channel_delivers_to_its_own_handler(config):
    m = machine("master", config)
    send_one_event_per_channel(m)
    m.kernel.run()
    assert m.kernel.received == Counter({"timer0": 1, "timer1": 1, "xenstore": 1, "console": 1, "resched1": 1})


# --- xen_rebind_evtchn_to_cpu ---------------------------------------------------------------


def bound_vcpu(m, port: int) -> int:
    """The vCPU Xen notifies for ``port``, as EVTCHNOP_status reports it to the guest."""
    status = EvtchnStatus(dom=DOMID_SELF, port=port)
    assert m.domain.evtchn_op(EVTCHNOP_status, status) == 0
    return status.vcpu


def masked(m, port: int) -> bool:
    """The port's mask in guest memory: M in its FIFO event word, or its evtchn_mask bit."""
    if m.kernel.abi == "fifo":
        return bool(page(m)[port] & M)
    return shinfo_masked(m.domain, port)


def traced(m):
    m.kernel.consumer.trace = True
    return m.kernel.consumer.dispatched


#: What the rebind of an idle channel from cpu0 to cpu1 asks Xen, run on cpu0: FIFO unmasks in
#: guest memory; 2-level asks Xen, because the port is now another CPU's (evtchn_2l_unmask).
REBIND_CALLS = {"fifo": [("bind_vcpu", 0)], "2-level": [("bind_vcpu", 0), ("unmask", 0)]}


@BOTH_ABIS
def test_rebind_masks_the_port_while_bind_vcpu_runs_then_unmasks_it(config):
    m = machine("master", config)
    port = m.port("xenstore")
    seen = []
    m.domain.evtchn_op = peek_wrap(m.domain.evtchn_op, lambda: seen.append(masked(m, port)))
    mark = len(m.calls)
    m.kernel.rebind_evtchn_to_cpu("xenstore", 1)
    assert m.since(mark) == REBIND_CALLS[m.kernel.abi]
    assert seen[0] is True  # masked when EVTCHNOP_bind_vcpu was made
    assert not masked(m, port) and m.kernel.channels["xenstore"].cpu == 1
    assert bound_vcpu(m, port) == 1


@BOTH_ABIS
def test_after_a_rebind_the_next_event_is_handled_on_the_new_cpu(config):
    m = machine("master", config)
    m.kernel.rebind_evtchn_to_cpu("xenstore", 1)
    dispatched = traced(m)
    m.guest.backend.notify("xenstore")
    m.kernel.run()
    assert dispatched == [(1, m.port("xenstore"))]


#: Which CPU's handler takes an event that was pending on cpu0 when the channel moved to cpu1.
PENDING_EVENT_CPU = {"fifo": 0, "2-level": 1}


@BOTH_ABIS
def test_an_event_pending_at_the_rebind_is_handled_where_linux_finds_it(config):
    """FIFO: the event stays linked on cpu0's queue, Xen's unmask does not link it again, and
    cpu0 consumes it. 2-level: the port's bit moved to cpu1's mask, so cpu0's scan skips it
    and the upcall the unmask raised on vCPU 1 delivers it there. The next event is cpu1's."""
    m = machine("master", config)
    port = m.port("xenstore")
    m.guest.backend.notify("xenstore")
    m.kernel.rebind_evtchn_to_cpu("xenstore", 1)
    dispatched = traced(m)
    m.kernel.run()
    assert dispatched == [(PENDING_EVENT_CPU[m.kernel.abi], port)]
    m.guest.backend.notify("xenstore")
    m.kernel.run()
    assert dispatched[1:] == [(1, port)]
    assert m.kernel.received["xenstore"] == 2


def test_in_fifo_the_pending_event_is_still_linked_on_the_old_cpus_queue_after_the_rebind():
    m = machine()
    port = m.port("xenstore")
    m.guest.backend.notify("xenstore")
    mark = len(m.calls)
    m.kernel.rebind_evtchn_to_cpu("xenstore", 1)
    assert m.since(mark) == [("bind_vcpu", 0), ("unmask", 0)]  # pending while masked: Xen unmasks
    assert page(m)[port] == P | L
    cpu0, cpu1 = (ControlBlockView(m.domain.memory.frame(m.kernel.control_gfns[cpu]), 0) for cpu in (0, 1))
    assert cpu0.head(7) == port and cpu0.ready >> 7 & 1
    assert cpu1.ready == 0


@BOTH_ABIS
def test_a_rebind_leaves_a_channel_the_kernel_masked_masked(config):
    m = machine("master", config)
    port = m.port("xenstore")
    m.kernel.mask(port)
    mark = len(m.calls)
    m.kernel.rebind_evtchn_to_cpu("xenstore", 1)
    assert m.since(mark) == [("bind_vcpu", 0)]
    assert masked(m, port) and m.kernel.channels["xenstore"].cpu == 1
    m.guest.backend.notify("xenstore")
    dispatched = traced(m)
    m.kernel.run()
    assert dispatched == []
    m.kernel.unmask(port)
    m.kernel.run()
    assert dispatched == [(1, port)]


#: Rebinds Xen refuses: (channel, target vCPU, errno). An IPI cannot move (nor can a per-vCPU
#: VIRQ); the domain has no vCPU 7.
REFUSED_REBINDS = [
    pytest.param("resched0", 1, Errno.EINVAL, id="ipi-EINVAL"),
    pytest.param("console", 7, Errno.ENOENT, id="no-vcpu-ENOENT"),
]


@BOTH_ABIS
@pytest.mark.parametrize("channel, tcpu, errno", REFUSED_REBINDS)
def test_a_refused_rebind_leaves_the_kernels_binding_and_unmasks_the_port_again(config, channel, tcpu, errno):
    m = machine("master", config)
    port = m.port(channel)
    mark = len(m.calls)
    m.kernel.rebind_evtchn_to_cpu(channel, tcpu)
    assert m.since(mark) == [("bind_vcpu", -errno)]
    assert m.kernel.channels[channel].cpu == 0 and not masked(m, port)
    assert bound_vcpu(m, port) == 0
    if m.kernel.abi == "2-level":  # still in cpu0's mask only
        assert [mask[port // 64] >> port % 64 & 1 for mask in m.kernel.consumer.cpu_evtchn_mask] == [1, 0]


@pytest.mark.parametrize("call, error", [
    (lambda k: k.rebind_evtchn_to_cpu("nosuch", 1), ValueError),
    (lambda k: k.rebind_evtchn_to_cpu("console", "1"), TypeError),
    (lambda k: k.rebind_evtchn_to_cpu("console", 1, cpu=5), ValueError),
    (lambda k: k.unmask(k.channels["console"].port, cpu=None), TypeError),
    (lambda k: k.mask("3"), TypeError),
    (lambda k: k.mask(4096), ValueError),
    (lambda k: k.unmask(-1), ValueError),
], ids=["unknown-channel", "tcpu-not-int", "cpu-offline", "unmask-cpu-not-int", "mask-port-not-int",
        "mask-port-past-4096", "unmask-negative-port"])
def test_misusing_the_python_api_raises_a_clear_error_and_makes_no_hypercall(call, error):
    m = machine("master", TWO_LEVEL)
    mark = len(m.calls)
    with pytest.raises(error):
        call(m.kernel)
    assert m.since(mark) == []


def test_a_dead_kernel_rebinds_nothing():
    m = machine()
    m.kernel.panic("test")
    mark = len(m.calls)
    m.kernel.rebind_evtchn_to_cpu("console", 1)
    assert m.since(mark) == []


# --- 4.5: Xen save/restore ----------------------------------------------------------------


@pytest.mark.parametrize("version, flags, errno", [
    ("4.3", XEN_DOMCTL_CDF_hvm, Errno.ENOSYS),
    ("patch-v4", XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_disable_fifo, Errno.ENOSYS),
    ("fifo-off", XEN_DOMCTL_CDF_hvm, Errno.EOPNOTSUPP),
])
def test_a_fifo_kernel_restored_onto_a_xen_that_refuses_init_control_bugs(version, flags, errno):
    m = machine()
    target, calls = restore(m.kernel, version, flags)
    assert m.kernel.crashed is not None and "init_control" in m.kernel.crashed
    assert calls == [("init_control", -errno)]  # BUG: nothing is rebound


def test_a_fifo_kernel_restored_onto_a_fifo_xen_reissues_init_control_on_every_cpu():
    m = machine()
    target, calls = restore(m.kernel, "master")
    assert [c for c in calls if c[0] == "init_control"] == [("init_control", 0)] * 2
    assert target.domain.abi == "fifo" and m.kernel.crashed is None


def test_a_two_level_kernel_restored_makes_no_init_control():
    m = machine("master", TWO_LEVEL)
    target, calls = restore(m.kernel, "master")
    assert calls and not any(op in FIFO_OPS for op, _ in calls)
    assert target.domain.abi == "2-level" and m.kernel.crashed is None


# --- the hibernation image ------------------------------------------------------------------


def test_the_image_keeps_the_kernels_own_state_and_no_live_views():
    m = machine()
    image = m.kernel.image()
    assert (image.abi, image.config, image.online_cpus) == (m.kernel.abi, m.kernel.config, m.kernel.online_cpus)
    assert {n: c.port for n, c in image.channels.items()} == {n: c.port for n, c in m.kernel.channels.items()}
    assert image.domain is None and image.consumer is None
    assert image.log.lines == []


def test_mutating_the_image_does_not_change_the_original():
    m = machine()
    image = m.kernel.image()
    before = _state(m.kernel)
    image.channels["xenstore"].port = 999
    image.channels["extra"] = image.channels["console"]
    image.received["xenstore"] += 5
    image.control_gfns[7] = 0x999
    image.array_gfns.append(0x999)
    image.online_cpus.append(7)
    image.timer_ports[0] = 999
    image.ops = None  # its ABI forgotten
    assert _state(m.kernel) == before


def test_mutating_the_original_does_not_change_the_image():
    m = machine()
    image = m.kernel.image()
    before = _state(image)
    m.kernel.channels["xenstore"].port = 999
    m.kernel.received["xenstore"] += 5
    m.kernel.control_gfns[7] = 0x999
    m.kernel.array_gfns.append(0x999)
    m.kernel.online_cpus.append(7)
    m.kernel.timer_ports[0] = 999
    m.kernel.log("later")
    assert _state(image) == before and image.log.lines == []


def _state(k: Kernel):
    return ({n: (c.name, c.port, c.cpu) for n, c in k.channels.items()}, Counter(k.received),
            dict(k.control_gfns), list(k.array_gfns), list(k.online_cpus), list(k.timer_ports), k.abi)
