"""What each row's fields change, from first principles: return codes and guest memory bytes.

Covers the port limit knob (a77eb86f44, 4.4), the 2-level limit of a 32-bit guest before and
after XSA-342 (62bcdc4edb, 4.15), the evtchn_usable gate (XSA-343, e045199c7c, 4.15),
port_is_valid before and after XSA-338 (e59ce972d1, 4.15) and the global-VIRQ owner check.
Reset and its continuation are in test_reset.py; QEMU's emulation in test_qemu.py.
"""

from __future__ import annotations

import pytest
from conftest import ALLOC, CLOSE, IPI, PRIO, RESET, STATUS, UNMASK, VIRQ, op, send, shinfo_mask, to_fifo

from evtsim import DOMID_SELF, VIRQ_CONSOLE, DomctlError, Errno, Xen
from evtsim.reset import evtchn_reset

SHINFO_PENDING = 2048
COMPAT_MASK = 2048 + 32 * 4  # evtchn_mask of a 32-bit guest's shared_info: 32 words of 32 bits
COMPAT_SEL = 4  # evtchn_pending_sel in a 32-bit vcpu_info


def fill(d) -> tuple[int, int]:
    """Allocate unbound ports until Xen refuses: (the last port handed out, the refusing rc)."""
    last = 0
    while True:
        rc, arg = op(d, ALLOC, dom=DOMID_SELF, remote_dom=0)
        if rc < 0:
            return last, rc
        last = arg.port


def bit(data: bytearray, offset: int, n: int) -> int:
    """Bit ``n`` of the bitmap at byte ``offset``, as x86 numbers bits (little-endian)."""
    return data[offset + n // 8] >> n % 8 & 1


# --- max_evtchn_port: a knob since 4.4 -----------------------------------------------------------


@pytest.mark.parametrize("compat, last", [(False, 4095), (True, 1023)])
def test_on_4_3_a_guest_gets_every_port_its_abi_has(compat, last):
    """Xen 4.3 has no XEN_DOMCTL_set_max_evtchn: a 64-bit domU allocates up to port 4095, a
    32-bit one up to 1023 (MAX_EVTCHNS(d), BITS_PER_EVTCHN_WORD(d) squared)."""
    d = Xen("4.3").domain_create(compat=compat)
    assert d.max_evtchn_port is None
    assert fill(d) == (last, -Errno.ENOSPC)


def test_from_4_4_xl_limits_a_guest_to_port_1023_by_default():
    """xl's max_event_channels default (a77eb86f44, 4.4): ports up to 1023, then -ENOSPC."""
    d = Xen("4.4").domain_create()
    assert d.max_evtchn_port == 1023
    assert fill(d) == (1023, -Errno.ENOSPC)


def test_asking_4_3_for_a_port_limit_is_refused_as_xen_would():
    """The domctl did not exist: a toolstack asking for it gets -ENOSYS (DomctlError)."""
    with pytest.raises(DomctlError, match="ENOSYS.*max_evtchn_port"):
        Xen("4.3").domain_create(max_evtchn_port=100)


@pytest.mark.parametrize("misuse", [-1, 1.5, "1023", True])
def test_a_port_limit_that_is_not_a_port_number_is_a_type_error(misuse):
    with pytest.raises(TypeError, match="max_evtchn_port"):
        Xen().domain_create(max_evtchn_port=misuse)


def test_dom0_has_no_port_limit_on_any_row():
    """dom0 is not created by xl: Xen's own default, INT_MAX, i.e. only the ABI limits it."""
    for version in ("4.3", "4.8", "master", "qemu"):
        assert Xen(version).dom0.max_evtchn_port is None


# --- XSA-342: a 32-bit guest's 2-level limit ---------------------------------------------------


@pytest.mark.parametrize("version, last", [("4.4", 4095), ("4.14-xsa", 1023), ("4.15", 1023), ("4.3", 1023)])
def test_a_32_bit_guest_gets_4096_ports_from_4_4_until_xsa_342(version, last):
    """evtchn_2l_init latched BITS_PER_EVTCHN_WORD(d)^2 at creation, when every guest looked
    64-bit: 4.4 to 4.14 let a 32-bit guest allocate ports up to 4095 (XSA-342). 4.3's macro
    and 4.15's max_evtchns(d) ask the guest's real width: 1023."""
    max_port = None if version == "4.3" else 4095
    d = Xen(version).domain_create(compat=True, max_evtchn_port=max_port)
    assert fill(d) == (last, -Errno.ENOSPC)


def test_before_xsa_342_an_event_on_port_1100_of_a_32_bit_guest_lands_outside_its_bitmaps():
    """The XSA-342 corruption, byte for byte: on 4.14 port 1100's pending bit is bit 76 of
    evtchn_mask (masking port 76), its mask test reads wc_nsec, its selector bit (34) lands in
    vcpu_info.arch, and the upcall is raised."""
    xen = Xen("4.8")
    d = xen.domain_create(compat=True, max_evtchn_port=4095)
    for _ in range(1100):
        assert op(d, IPI, vcpu=0)[0] == 0
    data = d.shared_info.frame.data
    before = bytes(data)
    send(d, 1100)
    assert bit(data, SHINFO_PENDING, 1100) == 1 and bit(data, COMPAT_MASK, 76) == 1  # the same bit
    assert d.port_ops.is_masked(76)  # port 76 is now masked, though nobody masked it
    assert bit(data, COMPAT_SEL, 1100 // 32) == 1 and data[COMPAT_SEL + 4] == 1 << 2  # vcpu_info byte 8
    assert d.vcpus[0].vcpu_info.evtchn_upcall_pending == 1
    changed = [i for i in range(len(data)) if data[i] != before[i]]
    assert changed == [0, 8, SHINFO_PENDING + 1100 // 8]  # upcall byte, vcpu_info.arch, mask word 2


def test_after_xsa_342_the_same_guest_cannot_get_port_1024():
    """max_evtchns(d) for a 32-bit guest is 1024 from 4.15: port 1024 is -ENOSPC."""
    d = Xen("4.15").domain_create(compat=True, max_evtchn_port=4095)
    last, rc = fill(d)
    assert (last, rc) == (1023, -Errno.ENOSPC)


def test_before_xsa_342_the_limit_is_latched_again_when_a_reset_leaves_fifo():
    """evtchn_2l_init runs again on the way back from FIFO, now knowing the guest is 32-bit."""
    xen = Xen("4.8")
    d = xen.domain_create(compat=True, max_evtchn_port=4095)
    assert d.max_evtchns() == 4096
    to_fifo(d)
    assert evtchn_reset(d, d, resuming=False, revert=True) == 0
    assert d.abi == "2-level" and d.max_evtchns() == 1024


# --- XSA-338: port_is_valid ------------------------------------------------------------------------


@pytest.mark.parametrize("version, rc", [("4.8", -Errno.EINVAL), ("4.15", 0)])
def test_a_port_above_the_2_level_limit_turns_invalid_after_leaving_fifo_until_xsa_338(version, rc):
    """A FIFO guest used port 5000; after the reset back to 2-level, port_is_valid said no to
    it before e59ce972d1 (it checked max_evtchns) and yes after (valid ports never shrink)."""
    xen = Xen(version)
    d = xen.domain_create(max_evtchn_port=8191)
    to_fifo(d, pages=5)
    for _ in range(5000):
        assert op(d, IPI, vcpu=0)[0] == 0
    assert op(d, RESET, dom=DOMID_SELF)[0] == 0
    assert d.abi == "2-level" and d.ports.valid_evtchns > 5000
    assert op(d, STATUS, dom=DOMID_SELF, port=5000)[0] == rc


# --- XSA-343: the evtchn_usable gate --------------------------------------------------------------


@pytest.mark.parametrize("version, unmasked", [("4.8", True), ("4.15", False)])
def test_unmask_of_a_closed_port_clears_its_mask_bit_only_before_xsa_343(version, unmasked):
    """evtchn_unmask -> evtchn_port_unmask: before e045199c7c the 2-level unmask ran on any
    valid port; since, only on a usable one. Both return 0."""
    d = Xen(version).domain_create()
    port = op(d, IPI, vcpu=0)[1].port
    assert op(d, CLOSE, port=port)[0] == 0
    shinfo_mask(d, port)
    d.shared_info.evtchn_pending[0] |= 1 << port  # a stale pending bit the guest left
    assert op(d, UNMASK, port=port)[0] == 0
    assert (not d.port_ops.is_masked(port)) is unmasked
    assert d.vcpus[0].vcpu_info.evtchn_upcall_pending == int(unmasked)  # the event was re-raised


@pytest.mark.parametrize("version, rc", [("4.8", 0), ("4.15", -Errno.EACCES)])
def test_set_priority_on_a_closed_port_is_eacces_only_since_xsa_343(version, rc):
    """evtchn_port_set_priority gained its evtchn_usable check in e045199c7c."""
    d = Xen(version).domain_create()
    to_fifo(d)
    port = op(d, IPI, vcpu=0)[1].port
    op(d, CLOSE, port=port)
    assert op(d, PRIO, port=port, priority=3)[0] == rc



# --- global VIRQs -------------------------------------------------------------------------------


@pytest.mark.parametrize("version, rc", [("4.17", 0), ("4.8", 0), ("master", -Errno.EBUSY)])
def test_a_guest_binding_dom0s_global_virq_is_refused_only_on_master(version, rc):
    """Before the 2025 get_global_virq_handler check a domU could bind VIRQ_CONSOLE (a port
    that never fires, since Xen sends it to dom0); master answers -EBUSY."""
    d = Xen(version).domain_create()
    assert op(d, VIRQ, virq=VIRQ_CONSOLE, vcpu=0)[0] == rc
