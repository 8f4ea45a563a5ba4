"""The Linux-like guest kernel: ABI choice at boot, fallback policies, per-CPU bring-up,
lazy event-array growth, unmask rules, its standard channels, save/restore and its image.

Models drivers/xen/events/events_base.c (xen_init_IRQ, bind_virq_to_irq / find_virq,
xen_irq_resume), events_fifo.c (evtchn_fifo_init, evtchn_fifo_percpu_init,
evtchn_fifo_setup, evtchn_fifo_unmask, evtchn_fifo_resume) and events_2l.c
(evtchn_2l_unmask, evtchn_2l_resume), per xen-abi-facts.md sections 4.1-4.7.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from evtsim import (
    EVTCHNOP_init_control,
    EVTCHNOP_send,
    VIRQ_TIMER,
    XEN_DOMCTL_CDF_disable_fifo,
    XEN_DOMCTL_CDF_hvm,
    AllocSite,
    Errno,
    EvtchnOp,
    EvtchnInitControl,
    EvtchnSend,
    Structure,
    Xen,
)
from evtsim.fifo import L, M, P
from evtsim.guest.kernel import IPIS, KERNEL_PAGES_GFN, FallbackPolicy, Kernel, KernelConfig
from evtsim.memory import ControlBlockView, event_words
from evtsim.toolstack import GuestHandle, xl_create

FIFO_OPS = ("init_control", "expand_array", "set_priority")
ANY, ENOSYS_ONLY, NEVER = FallbackPolicy.ANY_ERROR, FallbackPolicy.ENOSYS_ONLY, FallbackPolicy.NEVER
TWO_LEVEL = KernelConfig(fifo_events=False)


@dataclass
class Machine:
    """One host, one xl-created guest, the kernel in it, and every hypercall the guest made."""

    xen: Xen
    guest: GuestHandle
    kernel: Kernel
    calls: list[tuple[str, int]]

    @property
    def domain(self):
        return self.guest.domain

    def ops(self) -> list[str]:
        return [name for name, _ in self.calls]


def record(domain, peek: Callable[[str], None] | None = None) -> list[tuple[str, int]]:
    """Record (sub-op, rc) for each hypercall ``domain`` makes; ``peek(op)`` runs just before."""
    calls: list[tuple[str, int]] = []
    real = domain.evtchn_op

    def evtchn_op(cmd, arg):
        name = EvtchnOp(cmd).name.removeprefix("EVTCHNOP_")
        if peek is not None:
            peek(name)
        rc = real(cmd, arg)
        calls.append((name, rc))
        return rc

    domain.evtchn_op = evtchn_op
    return calls


def machine(version: str = "master", config: KernelConfig = KernelConfig(), *, vcpus: int = 2,
            flags: int = XEN_DOMCTL_CDF_hvm, prepare: Callable[[Xen, GuestHandle], None] | None = None,
            boot: bool = True, channels: bool = True) -> Machine:
    """Create a guest on Xen ``version``, then (optionally) boot a kernel and bind its channels."""
    xen = Xen(version)
    guest = xl_create(xen, vcpus=vcpus, flags=flags)
    if prepare is not None:
        prepare(xen, guest)
    calls = record(guest.domain)
    kernel = Kernel(guest.domain, config)
    m = Machine(xen, guest, kernel, calls)
    if boot:
        kernel.boot()
        if channels:
            kernel.bind_standard_channels(guest.store_evtchn, guest.console_evtchn)
    return m


def deny_init_control(errno: Errno) -> Callable[[Xen, GuestHandle], None]:
    def prepare(xen: Xen, guest: GuestHandle) -> None:
        xen.xsm.deny(EVTCHNOP_init_control, errno)
    return prepare


def fail_fifo_init(xen: Xen, guest: GuestHandle) -> None:
    xen.faults.fail(AllocSite.FIFO_INIT)


#: (id, Xen version, preparation, the errno init_control returns): every way FIFO can be refused.
REFUSALS = [
    pytest.param("4.3", None, Errno.ENOSYS, id="4.3-ENOSYS"),
    pytest.param("fifo-off", None, Errno.EOPNOTSUPP, id="fifo-off-EOPNOTSUPP"),
    pytest.param("master", deny_init_control(Errno.EPERM), Errno.EPERM, id="xsm-EPERM"),
    pytest.param("master", fail_fifo_init, Errno.ENOMEM, id="ENOMEM"),
]
NOT_ENOSYS = [p for p in REFUSALS if p.values[2] != Errno.ENOSYS]


def first_page(m: Machine):
    return event_words(m.domain.memory.frame(m.kernel.array_gfns[0]))


def send_one_event_per_channel(m: Machine) -> None:
    """A timer tick on every vCPU, dom0 notifies xenstore and console, cpu0 IPIs cpu1."""
    for v in m.domain.vcpus:
        m.xen.send_guest_vcpu_virq(v, VIRQ_TIMER)
    m.guest.backend.notify("xenstore")
    m.guest.backend.notify("console")
    m.domain.evtchn_op(EVTCHNOP_send, EvtchnSend(port=m.kernel.channels["resched1"].port))


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


# --- 4.1.4: per-CPU init_control ---------------------------------------------------------


def test_each_secondary_cpu_registers_its_own_control_block():
    m = machine(vcpus=3, channels=False)
    assert m.calls == [("init_control", 0)] * 3
    assert m.kernel.online_cpus == [0, 1, 2]
    gfns = [m.kernel.control_gfns[cpu] for cpu in range(3)]
    assert len(set(gfns)) == 3
    assert all(m.domain.memory.frame(g).xen_mapping is Structure.CONTROL_BLOCK for g in gfns)


def test_a_secondary_cpu_whose_init_control_fails_stays_offline():
    def earlier_kernel_registered_cpu2(xen: Xen, guest: GuestHandle) -> None:
        """A previous kernel (kexec without soft reset) left vCPU 2 a control block: -EINVAL."""
        arg = EvtchnInitControl(control_gfn=KERNEL_PAGES_GFN + 0x40, offset=0, vcpu=2)
        assert guest.domain.evtchn_op(EVTCHNOP_init_control, arg) == 0

    m = machine(vcpus=3, prepare=earlier_kernel_registered_cpu2)
    assert m.calls[:3] == [("init_control", 0), ("init_control", 0), ("init_control", -Errno.EINVAL)]
    assert m.kernel.online_cpus == [0, 1]
    assert m.kernel.crashed is None and m.kernel.abi == "fifo"
    assert "timer2" not in m.kernel.channels and "timer1" in m.kernel.channels


# --- 4.1.5 / 4.3: lazy expand_array, MASKED pages ----------------------------------------


def test_boot_alone_adds_no_event_array_page():
    m = machine(channels=False)
    assert "expand_array" not in m.ops()
    assert m.kernel.array_gfns == []


def test_binding_the_first_port_adds_exactly_one_page():
    m = machine()
    assert m.ops().count("expand_array") == 1
    assert m.ops().index("expand_array") == m.ops().index("bind_virq") + 1
    assert m.domain.memory.frame(m.kernel.array_gfns[0]).xen_mapping is Structure.EVENT_ARRAY


def test_a_new_page_is_all_masked_except_the_ports_the_kernel_unmasked():
    m = machine()
    words = first_page(m)
    bound = {c.port for c in m.kernel.channels.values()}
    assert all(words[i] == M for i in range(1024) if i not in bound)
    assert all(not words[p] & M for p in bound)


def test_a_port_beyond_the_array_adds_pages_until_it_fits():
    m = machine()
    before = len(m.calls)
    m.kernel.bind_evtchn("far", 2100)  # needs pages 1 and 2
    assert m.ops()[before:] == ["expand_array", "expand_array"]
    assert len(m.kernel.array_gfns) == 3
    second = event_words(m.domain.memory.frame(m.kernel.array_gfns[1]))
    assert all(w == M for w in second)


def test_a_failed_first_expand_array_panics():
    m = machine(prepare=lambda xen, guest: xen.faults.fail(AllocSite.EVENT_ARRAY_PAGE))
    m.kernel.alloc_unbound("vbd", 0)
    assert "unable to expand event array with initial page" in m.kernel.crashed
    assert m.calls[-1] == ("expand_array", -Errno.ENOMEM)  # nothing after the panic


def test_a_failed_later_expand_array_only_fails_that_bind():
    m = machine()
    m.xen.faults.fail(AllocSite.EVENT_ARRAY_PAGE)
    m.kernel.bind_evtchn("far", 1500)
    assert m.calls[-1] == ("expand_array", -Errno.ENOMEM)
    assert m.kernel.crashed is None
    assert "far" not in m.kernel.channels
    assert m.kernel.alloc_unbound("vbd", 0) > 0


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


# --- 4.3: FIFO unmask ---------------------------------------------------------------------


def test_fifo_unmask_of_a_port_that_is_not_pending_clears_m_without_a_hypercall():
    m = machine()
    port = m.kernel.channels["xenstore"].port
    words = first_page(m)
    words[port] |= M  # mask_evtchn: the guest sets M itself
    before = len(m.calls)
    m.kernel.unmask(port)
    assert not words[port] & M
    assert m.calls[before:] == []


def test_fifo_unmask_of_a_pending_port_leaves_m_set_and_xen_clears_it_and_relinks():
    m = machine()
    port = m.kernel.channels["xenstore"].port
    words = first_page(m)
    words[port] |= M
    m.guest.backend.notify("xenstore")
    assert words[port] & (P | M | L) == P | M  # masked: pending but not queued
    seen = []
    m.domain.evtchn_op = _peek_wrap(m.domain.evtchn_op, lambda: seen.append(words[port]))
    before = len(m.calls)
    m.kernel.unmask(port)
    assert m.calls[before:] == [("unmask", 0)]
    assert seen[0] & M  # the guest did not clear M itself
    assert words[port] & (P | M | L) == P | L  # Xen cleared M and linked the event
    cb = ControlBlockView(m.domain.memory.frame(m.kernel.control_gfns[0]), 0)
    assert cb.head(7) == port and cb.ready >> 7 & 1


def _peek_wrap(evtchn_op, peek: Callable[[], None]):
    def wrapped(cmd, arg):
        peek()
        return evtchn_op(cmd, arg)
    return wrapped


# --- 4.4: 2-level unmask ------------------------------------------------------------------


def _mask_and_notify(m: Machine, channel: str) -> tuple[int, int]:
    """Mask ``channel``'s port in shared_info, let dom0 notify it: (word, bit)."""
    port = m.kernel.channels[channel].port
    word, bit = divmod(port, m.domain.shared_info.layout.bits_per_word)
    m.domain.shared_info.evtchn_mask[word] |= 1 << bit
    m.guest.backend.notify(channel)
    assert m.domain.shared_info.evtchn_pending[word] >> bit & 1
    assert m.domain.vcpus[0].vcpu_info.sel[0] == 0  # masked: no selector, no upcall
    return word, bit


def test_two_level_unmask_of_a_port_that_is_not_pending_needs_no_hypercall():
    m = machine("master", TWO_LEVEL)
    port = m.kernel.channels["xenstore"].port
    word, bit = divmod(port, 64)
    m.domain.shared_info.evtchn_mask[word] |= 1 << bit
    before = len(m.calls)
    m.kernel.unmask(port)
    assert not m.domain.shared_info.evtchn_mask[word] >> bit & 1
    assert m.calls[before:] == []


def test_two_level_unmask_of_a_pending_port_on_hvm_remasks_and_asks_xen():
    m = machine("master", TWO_LEVEL)
    word, bit = _mask_and_notify(m, "xenstore")
    shinfo, v0 = m.domain.shared_info, m.domain.vcpus[0]
    seen = []
    m.domain.evtchn_op = _peek_wrap(m.domain.evtchn_op, lambda: seen.append(shinfo.evtchn_mask[word] >> bit & 1))
    upcalls, before = v0.upcalls, len(m.calls)
    m.kernel.unmask(m.kernel.channels["xenstore"].port)
    assert m.calls[before:] == [("unmask", 0)]
    assert seen == [1]  # masked again when the hypercall was made
    assert not shinfo.evtchn_mask[word] >> bit & 1
    assert v0.vcpu_info.sel[0] >> word & 1 and v0.upcalls == upcalls + 1  # Xen raised the upcall
    m.kernel.run()
    assert m.kernel.received["xenstore"] == 1


def test_two_level_unmask_of_a_pending_port_on_pv_sets_selector_and_upcall_locally():
    m = machine("master", TWO_LEVEL, flags=0)
    word, bit = _mask_and_notify(m, "xenstore")
    v0 = m.domain.vcpus[0]
    upcalls, before = v0.upcalls, len(m.calls)
    m.kernel.unmask(m.kernel.channels["xenstore"].port)
    assert m.calls[before:] == []
    assert not m.domain.shared_info.evtchn_mask[word] >> bit & 1
    assert v0.vcpu_info.sel[0] >> word & 1 and v0.vcpu_info.evtchn_upcall_pending == 1
    assert v0.upcalls == upcalls  # the guest re-injected the edge, not Xen
    m.kernel.run()
    assert m.kernel.received["xenstore"] == 1


def test_two_level_unmask_of_a_port_bound_to_another_cpu_uses_the_hypercall():
    m = machine("master", TWO_LEVEL)
    before = len(m.calls)
    m.kernel.unmask(m.kernel.channels["timer1"].port)
    assert m.calls[before:] == [("unmask", 0)]


# --- standard channels --------------------------------------------------------------------


def test_standard_channels_are_a_timer_and_two_ipis_per_cpu_plus_xenstore_and_console():
    m = machine()
    expected = {f"{name}{cpu}" for cpu in (0, 1) for name in ("timer", *IPIS)} | {"xenstore", "console"}
    assert set(m.kernel.channels) == expected
    assert m.kernel.channels["xenstore"].port == m.guest.store_evtchn
    assert m.kernel.channels["console"].port == m.guest.console_evtchn


@pytest.mark.parametrize("config", [KernelConfig(), TWO_LEVEL], ids=["fifo", "2-level"])
def test_each_standard_channel_delivers_to_its_own_handler(config):
    m = machine("master", config)
    send_one_event_per_channel(m)
    m.kernel.run()
    assert m.kernel.received == Counter({"timer0": 1, "timer1": 1, "xenstore": 1, "console": 1, "resched1": 1})


# --- 4.5: Xen save/restore ----------------------------------------------------------------


def _restore(kernel: Kernel, version: str, flags: int = XEN_DOMCTL_CDF_hvm):
    target = xl_create(Xen(version), vcpus=2, flags=flags)
    calls = record(target.domain)
    kernel.resume_after_restore(target.domain, target.store_evtchn, target.console_evtchn)
    return target, calls


@pytest.mark.parametrize("version, flags, errno", [
    ("4.3", XEN_DOMCTL_CDF_hvm, Errno.ENOSYS),
    ("patch-v4", XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_disable_fifo, Errno.ENOSYS),
    ("fifo-off", XEN_DOMCTL_CDF_hvm, Errno.EOPNOTSUPP),
])
def test_a_fifo_kernel_restored_onto_a_xen_that_refuses_init_control_bugs(version, flags, errno):
    m = machine()
    target, calls = _restore(m.kernel, version, flags)
    assert m.kernel.crashed is not None and "init_control" in m.kernel.crashed
    assert calls == [("init_control", -errno)]  # BUG: nothing is rebound


def test_a_fifo_kernel_restored_onto_a_fifo_xen_reissues_init_control_on_every_cpu():
    m = machine()
    target, calls = _restore(m.kernel, "master")
    assert [c for c in calls if c[0] == "init_control"] == [("init_control", 0)] * 2
    assert target.domain.abi == "fifo" and m.kernel.crashed is None


def test_a_two_level_kernel_restored_makes_no_init_control():
    m = machine("master", TWO_LEVEL)
    target, calls = _restore(m.kernel, "master")
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
    m.kernel.log("later")
    assert _state(image) == before and image.log.lines == []


def _state(k: Kernel):
    return ({n: (c.name, c.port, c.cpu) for n, c in k.channels.items()}, Counter(k.received),
            dict(k.control_gfns), list(k.array_gfns), list(k.online_cpus), k.abi)
