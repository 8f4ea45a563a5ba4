"""The Xen object: domains, create flags, Xen-originated events, destruction."""

import pytest
from conftest import connect, op

from evtsim import (
    DOMID_SELF,
    ECS,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_virq,
    EVTCHNOP_close,
    EVTCHNOP_init_control,
    EVTCHNOP_send,
    VIRQ_DOM_EXC,
    XEN_DOMCTL_CDF_disable_fifo,
    XEN_DOMCTL_CDF_evtchn_fifo,
    XEN_DOMCTL_CDF_hvm,
    DomctlError,
    Errno,
    Xen,
)


def test_dom0_exists_from_boot_and_is_privileged():
    xen = Xen()
    assert xen.dom0.domain_id == 0 and xen.dom0.privileged
    assert xen.domain_create().domain_id == 1


def test_every_domain_starts_2_level():
    """evtchn_init calls evtchn_2l_init."""
    xen = Xen()
    assert {d.abi for d in (xen.dom0, xen.domain_create())} == {"2-level"}


def test_bit_7_is_refused_by_a_xen_that_does_not_know_it():
    """sanitise_domain_config rejects unknown create flags with -EINVAL."""
    with pytest.raises(DomctlError) as raised:
        Xen("4.8").domain_create(flags=XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_disable_fifo)
    assert raised.value.errno is Errno.EINVAL and "unknown to Xen 4.8" in str(raised.value)


def test_the_v4_flag_is_accepted_by_the_patched_xen():
    g = Xen("patch-v4").domain_create(flags=XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_disable_fifo)
    assert op(g, EVTCHNOP_init_control, control_gfn=1, offset=0, vcpu=0)[0] == -Errno.ENOSYS


def test_v5_gives_dom0_the_evtchn_fifo_flag_by_default():
    """[PATCH v5 1/4]: dom0 sets XEN_DOMCTL_CDF_evtchn_fifo; a plain domU without it has no FIFO."""
    xen = Xen("patch-v5")
    assert xen.dom0.flags & XEN_DOMCTL_CDF_evtchn_fifo
    assert op(xen.dom0, EVTCHNOP_init_control, control_gfn=1, offset=0, vcpu=0)[0] == 0
    assert op(xen.domain_create(), EVTCHNOP_init_control, control_gfn=1, offset=0, vcpu=0)[0] == -Errno.ENOSYS


@pytest.mark.parametrize("vcpus", [0, 33])
def test_vcpu_counts_outside_the_legacy_vcpu_info_array_are_refused(vcpus):
    with pytest.raises(DomctlError, match="vCPUs"):
        Xen().domain_create(vcpus=vcpus)


def test_destroying_a_domain_returns_its_peers_to_unbound(xen, guest):
    """evtchn_destroy closes every port; the backend's end goes back to ECS_UNBOUND."""
    back, _ = connect(xen.dom0, guest)
    xen.domain_destroy(guest)
    assert xen.dom0.ports.chn[back].state == ECS.ECS_UNBOUND
    assert guest.domain_id not in xen.domains
    assert op(xen.dom0, EVTCHNOP_send, port=back)[0] == 0  # unbound: dropped silently


def test_a_global_virq_is_bound_by_dom0_and_refused_to_others(xen, guest):
    """Global VIRQs belong to their handler domain (dom0 by default): -EBUSY for others."""
    assert op(guest, EVTCHNOP_bind_virq, virq=VIRQ_DOM_EXC, vcpu=0)[0] == -Errno.EBUSY
    rc, arg = op(xen.dom0, EVTCHNOP_bind_virq, virq=VIRQ_DOM_EXC, vcpu=0)
    assert rc == 0
    xen.send_global_virq(VIRQ_DOM_EXC)
    assert xen.dom0.port_ops.is_pending(arg.port)


def test_a_xen_consumer_port_cannot_be_closed_by_the_guest_and_is_notified(xen, guest):
    """alloc_unbound_xen_event_channel: the guest may not close it; sends notify Xen."""
    port = xen.alloc_unbound_xen_event_channel(guest, 0, xen.dom0.domain_id)
    assert op(guest, EVTCHNOP_close, port=port)[0] == -Errno.EINVAL
    rc, _ = op(xen.dom0, EVTCHNOP_bind_interdomain, remote_dom=guest.domain_id, remote_port=port)
    assert rc == 0
    assert op(xen.dom0, EVTCHNOP_send, port=1)[0] == 0
    assert xen.xen_consumers[(guest.domain_id, port)].notifications == 1


def test_domid_self_means_the_caller():
    xen = Xen()
    g = xen.domain_create()
    assert xen.domain(DOMID_SELF, g) is g and xen.domain(DOMID_SELF) is None
