"""The FIFO ABI's ops in the guest kernel (evtsim.guest.events_fifo): control blocks per CPU,
lazy event-array pages, their reuse after a resume, and unmask by clear_masked_cond.

Models Linux's drivers/xen/events/events_fifo.c: evtchn_fifo_init and
evtchn_fifo_percpu_init (evtchn_fifo_alloc_control_block, init_control_block),
evtchn_fifo_setup (init_array_page, free_unused_array_pages), evtchn_fifo_resume,
evtchn_fifo_unmask with clear_masked_cond, evtchn_fifo_mask / is_pending; per
xen-abi-facts.md sections 2.4, 4.1 and 4.3. Each test reads the bytes in guest memory and the
hypercalls the guest made, with their return codes.
"""

from __future__ import annotations

import pytest
from conftest import B, L, M, P
from guest_support import Machine, machine, page, peek_wrap, restore

from evtsim import EVTCHNOP_init_control, AllocSite, Errno, EvtchnInitControl, Structure, Xen
from evtsim.guest.events_fifo import clear_masked_cond
from evtsim.guest.kernel import KERNEL_PAGES_GFN
from evtsim.memory import ControlBlockView
from evtsim.toolstack import GuestHandle


def event_array_frames(domain) -> list[int]:
    """The gfns Xen has mapped as event-array pages, in gfn order."""
    return sorted(g for g, f in domain.memory.frames.items() if f.xen_mapping is Structure.EVENT_ARRAY)


# --- 4.1.4: a control block per CPU (evtchn_fifo_init, evtchn_fifo_percpu_init) ------------


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


# --- 4.1.5 / 4.3: lazy expand_array, MASKED pages (evtchn_fifo_setup) ----------------------


def test_boot_alone_adds_no_event_array_page_so_there_is_no_port_to_mask():
    m = machine(channels=False)
    assert "expand_array" not in m.ops()
    assert m.kernel.array_gfns == [] and m.kernel.ops.nr_channels() == 0


def test_binding_the_first_port_adds_exactly_one_page():
    m = machine()
    assert m.ops().count("expand_array") == 1
    assert m.ops().index("expand_array") == m.ops().index("bind_virq") + 1
    assert event_array_frames(m.domain) == m.kernel.array_gfns
    assert m.kernel.ops.nr_channels() == 1024


def test_a_new_page_is_all_masked_except_the_ports_the_kernel_unmasked():
    m = machine()
    words = page(m)
    bound = {c.port for c in m.kernel.channels.values()}
    assert all(words[i] == M for i in range(1024) if i not in bound)
    assert all(not words[p] & M for p in bound)


def test_a_port_beyond_the_array_adds_pages_until_it_fits():
    m = machine()
    mark = len(m.calls)
    m.kernel.bind_evtchn("far", 2100)  # needs pages 1 and 2
    assert m.ops()[mark:] == ["expand_array", "expand_array"]
    assert len(m.kernel.array_gfns) == 3
    assert all(w == M for w in page(m, 1))


def test_a_port_past_the_last_possible_page_is_einval_without_a_hypercall():
    m = machine()
    mark = len(m.calls)
    assert m.kernel.ops.setup(128 * 1024) == -Errno.EINVAL
    m.kernel.bind_evtchn("beyond", 128 * 1024)
    assert m.since(mark) == [] and "beyond" not in m.kernel.channels


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


# --- 4.5: evtchn_fifo_resume, then evtchn_fifo_setup reuses the pages -----------------------


def two_page_kernel() -> Machine:
    """A FIFO kernel whose array has two pages: the standard channels' and port 1500's."""
    m = machine()
    m.kernel.bind_evtchn("far", 1500)
    assert len(m.kernel.array_gfns) == 2
    return m


def junk(gfn: int):
    """A restore target whose RAM at ``gfn`` holds what the saved page last held: P|L words."""
    def prepare(xen: Xen, guest: GuestHandle) -> None:
        guest.domain.memory.fill(gfn, (P | L).to_bytes(4, "little") * 1024, "restored RAM")
    return prepare


def test_resume_registers_the_same_control_blocks_again_cleared():
    m = machine()
    gfns = dict(m.kernel.control_gfns)
    target, calls = restore(m.kernel, prepare=junk(gfns[1]))
    assert calls[:2] == [("init_control", 0)] * 2
    assert m.kernel.control_gfns == gfns
    block = ControlBlockView(target.domain.memory.frame(gfns[1]), 0)
    assert block.ready == 0 and [block.head(q) for q in range(16)] == [0] * 16


def test_after_a_resume_setup_gives_the_new_domain_the_pages_the_kernel_already_has():
    m = two_page_kernel()
    gfns = list(m.kernel.array_gfns)
    target, calls = restore(m.kernel, prepare=junk(gfns[0]))
    assert [c for c in calls if c[0] == "expand_array"] == [("expand_array", 0)]  # the standard channels need page 0
    assert m.kernel.array_gfns == gfns  # page 1 is kept for later
    assert event_array_frames(target.domain) == gfns[:1]
    words = page(m, 0)
    bound = {c.port for c in m.kernel.channels.values()}
    assert all(words[i] == M for i in range(1024) if i not in bound)  # init_array_page ran again
    mark = len(calls)
    m.kernel.bind_evtchn("far", 1500)
    assert calls[mark:] == [("expand_array", 0)]
    assert m.kernel.array_gfns == gfns and event_array_frames(target.domain) == gfns


def test_after_a_resume_a_refused_page_frees_the_kept_pages_past_the_last_one_xen_has():
    m = two_page_kernel()
    first, second = m.kernel.array_gfns
    target, calls = restore(m.kernel)
    target.domain.xen.faults.fail(AllocSite.EVENT_ARRAY_PAGE)
    m.kernel.bind_evtchn("far", 1500)
    assert calls[-1] == ("expand_array", -Errno.ENOMEM)
    assert m.kernel.array_gfns == [first] and m.kernel.crashed is None  # free_unused_array_pages
    m.kernel.bind_evtchn("far", 1500)
    assert m.kernel.array_gfns[0] == first and m.kernel.array_gfns[1] not in (first, second)


def test_after_a_resume_a_refused_first_page_panics_as_at_boot():
    m = two_page_kernel()
    _, calls = restore(m.kernel, prepare=lambda xen, guest: xen.faults.fail(AllocSite.EVENT_ARRAY_PAGE))
    assert ("expand_array", -Errno.ENOMEM) in calls
    assert "unable to expand event array with initial page" in m.kernel.crashed


# --- 4.3: unmask by clear_masked_cond ------------------------------------------------------

#: (the port's event word before unmask, the word when unmask returned, the hypercalls made)
UNMASK_CASES = [
    pytest.param(0, 0, [], id="unmasked"),
    pytest.param(P, P, [], id="pending-unmasked-no-hypercall"),
    pytest.param(B, B, [], id="busy-unmasked"),
    pytest.param(M, 0, [], id="masked"),
    pytest.param(M | L, L, [], id="masked-linked"),
    pytest.param(M | P, P | L, [("unmask", 0)], id="masked-pending-xen-links"),
]


@pytest.mark.parametrize("before, after, calls", UNMASK_CASES)
def test_unmask_asks_xen_only_for_a_port_that_is_masked_and_pending(before, after, calls):
    m = machine()
    port = m.port("xenstore")
    words = page(m)
    words[port] = before
    mark = len(m.calls)
    m.kernel.unmask(port)
    assert m.since(mark) == calls
    assert words[port] == after
    assert m.kernel.crashed is None


def test_unmask_of_a_masked_pending_port_leaves_m_for_xen_which_clears_it_and_links_the_event():
    m = machine()
    port = m.port("xenstore")
    words = page(m)
    m.kernel.mask(port)
    m.guest.backend.notify("xenstore")
    assert words[port] == P | M  # masked: pending but not queued
    seen = []
    m.domain.evtchn_op = peek_wrap(m.domain.evtchn_op, lambda: seen.append(words[port]))
    m.kernel.unmask(port)
    assert seen == [P | M]  # the guest did not clear M itself
    assert words[port] == P | L
    block = ControlBlockView(m.domain.memory.frame(m.kernel.control_gfns[0]), 0)
    assert block.head(7) == port and block.ready >> 7 & 1


def test_unmask_of_a_masked_busy_word_spins_for_ever_and_the_kernel_reports_the_lockup():
    """Linux must not clear MASKED while Xen holds BUSY, so its compare-and-swap expects BUSY
    clear. Only crafted memory shows BUSY to a guest in a sequential model: nothing clears it."""
    m = machine()
    port = m.port("xenstore")
    words = page(m)
    words[port] = M | B
    mark = len(m.calls)
    m.kernel.unmask(port)
    assert words[port] == M | B and m.since(mark) == []
    assert m.kernel.crashed.startswith("lockup:") and f"port {port}" in m.kernel.crashed
    assert any("LOCKUP" in line for line in m.kernel.log.lines)


def test_unmask_of_a_masked_pending_busy_word_asks_xen_at_once():
    """clear_masked_cond tests PENDING before it tries the swap, so BUSY does not matter here."""
    m = machine()
    port = m.port("xenstore")
    words = page(m)
    words[port] = M | P | B
    seen = []
    m.domain.evtchn_op = peek_wrap(m.domain.evtchn_op, lambda: seen.append(words[port]))
    m.kernel.unmask(port)
    assert seen == [M | P | B] and m.kernel.crashed is None


class XenClearsBusy:
    """One event word that Xen, on another CPU, changes between the guest's reads."""

    def __init__(self, *reads: int) -> None:
        self.reads, self.written = list(reads), []

    def __getitem__(self, index: int) -> int:
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def __setitem__(self, index: int, value: int) -> None:
        self.written.append(value)


def test_clear_masked_cond_spins_while_busy_and_clears_m_once_xen_drops_busy():
    word = XenClearsBusy(M | B, M | B, M | B, M)  # BUSY for three reads, then Xen's CAS cleared it
    assert clear_masked_cond(word, 0) is True
    assert word.written == [0]  # one write, MASKED cleared, BUSY never written by the guest


def test_clear_masked_cond_gives_up_clearing_when_the_word_turns_pending_while_it_spins():
    word = XenClearsBusy(M | B, M | B, M | P)
    assert clear_masked_cond(word, 0) is False and word.written == []


# --- mask_evtchn / test_evtchn ---------------------------------------------------------------


def test_mask_sets_m_in_guest_memory_without_a_hypercall():
    m = machine()
    port, words = m.port("console"), page(m)
    mark = len(m.calls)
    m.kernel.mask(port)
    assert words[port] == M and m.since(mark) == []


def test_is_pending_reads_p_in_the_event_word():
    m = machine()
    port, words = m.port("console"), page(m)
    assert not m.kernel.ops.is_pending(port)
    m.guest.backend.notify("console")
    assert words[port] & P and m.kernel.ops.is_pending(port)
    assert not m.kernel.ops.is_pending(5000)  # no word: not pending
