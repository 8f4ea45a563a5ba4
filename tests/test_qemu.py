"""QEMU's Xen emulation on KVM where it is not Xen: each divergence is one field of the
``qemu`` row, tested here against the same hypercall on Xen.

Every expected result was read in QEMU's hw/i386/kvm/xen_evtchn.c (xen_evtchn_*_op,
valid_port, allocate_port, close_port, unmask_port) and target/i386/kvm/xen-emu.c
(kvm_xen_set_vcpu_virq), and in Xen's xen/common/event_channel.c for the other column.
DOMID_QEMU is 0: dom0 stands in for QEMU's own (backend) side.
"""

from __future__ import annotations

import pytest
from conftest import (
    ALLOC,
    BIND_VCPU,
    CLOSE,
    INTERDOMAIN,
    IPI,
    PIRQ,
    RESET,
    STATUS,
    UNMASK,
    VIRQ,
    op,
    shinfo_pending,
)

from evtsim import DOMID_SELF, VIRQ_CONSOLE, DomctlError, Errno, Xen


def guest(version: str, **config):
    xen = Xen(version)
    return xen, xen.domain_create(vcpus=2, **config)


def loopback(d) -> int:
    """An unbound port the guest offers itself, then binds: the new local port's number."""
    offer = op(d, ALLOC, dom=DOMID_SELF, remote_dom=DOMID_SELF)[1].port
    rc, bind = op(d, INTERDOMAIN, remote_dom=DOMID_SELF, remote_port=offer)
    assert rc == 0
    return bind.local_port


@pytest.mark.parametrize("version, pending", [("master", True), ("4.3", True), ("qemu", False)])
def test_a_loopback_bind_interdomain_marks_the_new_port_pending_on_xen_only(version, pending):
    """Xen's evtchn_bind_interdomain always sets the new local port pending (lost
    notifications); QEMU's xen_evtchn_bind_interdomain_op does not: no bit, no upcall."""
    _, d = guest(version)
    port = loopback(d)
    assert shinfo_pending(d, port) is pending
    assert d.vcpus[0].vcpu_info.evtchn_upcall_pending == int(pending)


def test_binding_a_port_qemu_offered_does_not_mark_it_pending_either():
    """The same in QEMU for a port offered by QEMU itself (dom0 here, DOMID_QEMU = 0)."""
    xen, d = guest("qemu")
    offer = op(xen.dom0, ALLOC, dom=0, remote_dom=d.domain_id)[1].port
    rc, bind = op(d, INTERDOMAIN, remote_dom=0, remote_port=offer)
    assert rc == 0 and not shinfo_pending(d, bind.local_port)


@pytest.mark.parametrize("version, rc", [("master", -Errno.EINVAL), ("qemu", 0)])
def test_every_port_below_4096_exists_in_qemus_fixed_table(version, rc):
    """valid_port: any port 1-4095 (a fixed port_table); Xen's port_is_valid only ports whose
    bucket was allocated (port 100 needs a second bucket of 64)."""
    _, d = guest(version)
    assert op(d, STATUS, dom=DOMID_SELF, port=100)[0] == rc


@pytest.mark.parametrize("port, compat", [(0, False), (4096, False), (1024, True)])
def test_qemus_valid_port_rejects_port_0_and_ports_past_the_2_level_limit(port, compat):
    _, d = guest("qemu", compat=compat)
    assert op(d, STATUS, dom=DOMID_SELF, port=port)[0] == -Errno.EINVAL


@pytest.mark.parametrize("version, rc", [("master", 4095), ("qemu", 4095), ("4.4", 1023)])
def test_a_qemu_guest_has_no_port_limit_but_the_abis(version, rc):
    """QEMU has no XEN_DOMCTL_set_max_evtchn: ports up to 4095, as on Xen 4.3; xl's default
    limits a Xen guest to 1023 (the master case asks for 4095 explicitly)."""
    xen = Xen(version)
    d = xen.domain_create(max_evtchn_port=4095 if version == "master" else None)
    last = 0
    while (arg := op(d, ALLOC, dom=DOMID_SELF, remote_dom=0)[1]) and arg.port:
        last = arg.port
    assert last == rc


def test_asking_qemu_for_a_port_limit_is_refused():
    with pytest.raises(DomctlError, match="max_evtchn_port"):
        Xen("qemu").domain_create(max_evtchn_port=1023)


@pytest.mark.parametrize("cmd, fields, xen_rc", [
    (ALLOC, dict(dom=0, remote_dom=DOMID_SELF), -Errno.EPERM),  # xsm_evtchn_unbound
    (STATUS, dict(dom=0, port=1), -Errno.EPERM),  # xsm_evtchn_status
    (RESET, dict(dom=0), -Errno.EPERM),  # xsm_evtchn_reset
])
def test_a_guest_naming_another_domain_gets_esrch_from_qemu_and_eperm_from_xen(cmd, fields, xen_rc):
    """QEMU emulates one guest: a dom other than DOMID_SELF or its own id is -ESRCH; Xen finds
    dom0 and refuses by XSM policy."""
    assert op(guest("master")[1], cmd, **fields)[0] == xen_rc
    assert op(guest("qemu")[1], cmd, **fields)[0] == -Errno.ESRCH


def test_qemu_allows_only_itself_or_the_guest_as_interdomain_peer():
    """alloc_unbound for a third domain is -EPERM; binding a third domain's port is -ESRCH."""
    xen, d = guest("qemu")
    other = xen.domain_create()
    assert op(d, ALLOC, dom=DOMID_SELF, remote_dom=other.domain_id)[0] == -Errno.EPERM
    offer = op(other, ALLOC, dom=DOMID_SELF, remote_dom=d.domain_id)[1].port
    assert op(d, INTERDOMAIN, remote_dom=other.domain_id, remote_port=offer)[0] == -Errno.ESRCH


@pytest.mark.parametrize("version, rc", [("master", -Errno.ENOSPC), ("qemu", -Errno.EINVAL)])
def test_qemu_checks_the_remote_port_before_allocating_the_local_one(version, rc):
    """A guest with no free port binding an invalid remote port: Xen's get_free_port fails
    first (-ENOSPC), QEMU's valid_port(remote_port) first (-EINVAL)."""
    xen = Xen(version)
    d = xen.domain_create(max_evtchn_port=None if version == "qemu" else 4095)
    while op(d, IPI, vcpu=0)[0] == 0:
        pass
    assert op(d, INTERDOMAIN, remote_dom=DOMID_SELF, remote_port=5000)[0] == rc


@pytest.mark.parametrize("version, rc", [("master", -Errno.EEXIST), ("qemu", -Errno.EBUSY)])
def test_binding_a_bound_pirq_again(version, rc):
    _, d = guest(version)
    assert op(d, PIRQ, pirq=5, flags=0)[0] == 0
    assert op(d, PIRQ, pirq=5, flags=0)[0] == rc


@pytest.mark.parametrize("version, close_rc, unmask_rc", [("master", -Errno.EINVAL, 0),
                                                          ("qemu", -Errno.ENOENT, -Errno.EINVAL)])
def test_close_and_unmask_of_a_closed_port(version, close_rc, unmask_rc):
    """close_port: a closed port is -ENOENT; unmask_port: -EINVAL (Xen: -EINVAL and 0)."""
    _, d = guest(version)
    port = op(d, IPI, vcpu=0)[1].port
    assert op(d, CLOSE, port=port)[0] == 0
    assert op(d, CLOSE, port=port)[0] == close_rc
    assert op(d, UNMASK, port=port)[0] == unmask_rc


@pytest.mark.parametrize("version, rc", [("master", -Errno.EBUSY), ("qemu", 0)])
def test_a_qemu_guest_may_bind_a_global_virq(version, rc):
    """kvm_xen_set_vcpu_virq knows no global-VIRQ owner; Xen master keeps VIRQ_CONSOLE for dom0."""
    assert op(guest(version)[1], VIRQ, virq=VIRQ_CONSOLE, vcpu=0)[0] == rc


@pytest.mark.parametrize("version, rc", [("master", -Errno.ENOENT), ("qemu", -Errno.EINVAL)])
def test_bind_vcpu_with_a_bad_port_and_a_bad_vcpu(version, rc):
    """Xen checks the vCPU first (-ENOENT); QEMU the port (-EINVAL)."""
    assert op(guest(version)[1], BIND_VCPU, port=0, vcpu=99)[0] == rc


@pytest.mark.parametrize("version, raised", [("master", False), ("qemu", True)])
def test_bind_vcpu_moves_a_pending_event_to_the_new_vcpu_only_in_qemu(version, raised):
    """QEMU's bind_vcpu calls unmask_port(do_unmask=false): a pending, unmasked port sets its
    selector bit and upcall on the new vCPU. Xen leaves pending events where they are."""
    _, d = guest(version)
    port = loopback(d)
    d.shared_info.evtchn_pending[0] |= 1 << port  # pending (QEMU's bind left it clear)
    assert op(d, BIND_VCPU, port=port, vcpu=1)[0] == 0
    v1 = d.vcpus[1].vcpu_info
    assert (v1.evtchn_pending_sel, v1.evtchn_upcall_pending) == ((1, 1) if raised else (0, 0))
