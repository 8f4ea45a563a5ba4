"""EVTCHNOP_reset and its continuation, as Xen has them since XSA-343/344 (RELEASE-4.15.0).

Models evtchn_reset and the EVTCHNOP_reset / EVTCHNOP_reset_cont case of do_event_channel_op
(xen/common/event_channel.c; 2785b2a9e0, 8d385b247b) and domain_soft_reset (xen/common/domain.c).
With ``Xen(preempt_reset=True)``, hypercall_preempt_check answers yes every 64 ports; the
reset then returns -ERESTART and the caller re-enters it as EVTCHNOP_reset_cont.
"""

from __future__ import annotations

import pytest
from conftest import IPI, RESET, RESET_CONT, STATUS, op, to_fifo

from evtsim import DOMID_SELF, EVTCHNSTAT_closed, EVTCHNSTAT_ipi, Errno, EvtchnReset, Xen
from evtsim.guest.kernel import Kernel

ERESTART, EBUSY, EAGAIN, ENOSYS = -Errno.ERESTART, -Errno.EBUSY, -Errno.EAGAIN, -Errno.ENOSYS


def fifo_guest(version: str = "master", ports: int = 100, preempt: bool = True):
    """A FIFO guest with IPI ports 1..``ports``, on a Xen whose resets are preempted."""
    xen = Xen(version, preempt_reset=preempt)
    d = xen.domain_create(vcpus=2, max_evtchn_port=4095)
    to_fifo(d, pages=1)
    for _ in range(ports):
        assert op(d, IPI, vcpu=0)[0] == 0
    return xen, d


def status(d, port: int) -> int:
    rc, arg = op(d, STATUS, dom=DOMID_SELF, port=port)
    assert rc == 0
    return arg.status


def test_a_preempted_reset_stops_after_port_64_and_returns_erestart():
    """evtchn_reset checks hypercall_preempt_check when the port it closed is a multiple of 64:
    ports 1-64 are closed, 65-100 still bound, FIFO still on, d->next_evtchn = 64."""
    xen, d = fifo_guest()
    assert op(d, RESET, dom=DOMID_SELF)[0] == ERESTART
    assert [status(d, p) for p in (1, 64, 65, 100)] == [EVTCHNSTAT_closed, EVTCHNSTAT_closed,
                                                        EVTCHNSTAT_ipi, EVTCHNSTAT_ipi]
    assert d.abi == "fifo" and d.next_evtchn == 64 and xen.continuations == 1


def test_reset_cont_resumes_where_the_reset_stopped_and_finishes_it():
    """EVTCHNOP_reset_cont (14) resumes at d->next_evtchn: the rest is closed, FIFO is left."""
    xen, d = fifo_guest()
    arg = EvtchnReset(dom=DOMID_SELF)
    assert d.evtchn_op(RESET, arg) == ERESTART
    assert d.evtchn_op(RESET_CONT, arg) == 0
    assert d.ports.bound() == [] and d.abi == "2-level" and d.next_evtchn == 0


def test_a_long_reset_continues_every_64_ports():
    """200 ports: preempted after ports 64, 128 and 192, then done."""
    xen, d = fifo_guest(ports=200)
    arg = EvtchnReset(dom=DOMID_SELF)
    rcs = [d.evtchn_op(RESET, arg)]
    while rcs[-1] == ERESTART:
        rcs.append(d.evtchn_op(RESET_CONT, arg))
    assert rcs == [ERESTART, ERESTART, ERESTART, 0] and xen.continuations == 3


def test_a_port_bound_between_the_continuation_and_reset_cont_makes_it_fail_with_eagain():
    """The XSA-343 window: another vCPU binds a port (the lowest free: 1) while the reset is
    preempted; the continuation never comes back to port 1, finds a guest port still active
    and returns -EAGAIN (8d385b247b). The domain stays FIFO, the new port stays bound, and the
    reset is over: a new one starts from scratch and succeeds."""
    xen, d = fifo_guest()
    arg = EvtchnReset(dom=DOMID_SELF)
    assert d.evtchn_op(RESET, arg) == ERESTART
    rc, bound = op(d, IPI, vcpu=1)  # another vCPU of the same guest
    assert rc == 0 and bound.port == 1
    assert d.evtchn_op(RESET_CONT, arg) == EAGAIN
    assert d.abi == "fifo" and status(d, 1) == EVTCHNSTAT_ipi and d.next_evtchn == 0
    assert d.evtchn_op(RESET, arg) == 0 and d.abi == "2-level" and d.ports.bound() == []


def test_a_reset_while_one_is_preempted_is_ebusy_and_changes_nothing():
    """evtchn_reset: a fresh reset while d->next_evtchn is set is -EBUSY."""
    xen, d = fifo_guest()
    assert op(d, RESET, dom=DOMID_SELF)[0] == ERESTART
    assert op(d, RESET, dom=DOMID_SELF)[0] == EBUSY
    assert d.next_evtchn == 64 and status(d, 65) == EVTCHNSTAT_ipi


def test_reset_cont_with_no_reset_running_is_ebusy():
    """d->next_evtchn is 0: nothing to resume."""
    xen, d = fifo_guest(preempt=False)
    assert op(d, RESET_CONT, dom=DOMID_SELF)[0] == EBUSY
    assert d.abi == "fifo" and status(d, 1) == EVTCHNSTAT_ipi


def test_a_small_domain_is_reset_without_preemption():
    """The loop stops once only Xen's ports are left: 10 ports never reach port 64."""
    xen, d = fifo_guest(ports=10)
    assert op(d, RESET, dom=DOMID_SELF)[0] == 0 and xen.continuations == 0


@pytest.mark.parametrize("version", ["4.4", "4.5", "4.7", "4.8"])
def test_before_4_15_a_reset_runs_to_completion_and_reset_cont_is_unknown(version):
    """No XSA-344 before 4.15: preemption is never checked, op 14 falls to -ENOSYS."""
    xen, d = fifo_guest(version)
    assert op(d, RESET, dom=DOMID_SELF)[0] == 0
    assert d.ports.bound() == [] and xen.continuations == 0
    assert op(d, RESET_CONT, dom=DOMID_SELF)[0] == ENOSYS


def test_the_backport_variant_has_the_continuation():
    """4.14-xsa: the 4.8-era row with the XSA-344 backport."""
    xen, d = fifo_guest("4.14-xsa")
    assert op(d, RESET, dom=DOMID_SELF)[0] == ERESTART
    assert op(d, RESET_CONT, dom=DOMID_SELF)[0] == 0 and d.abi == "2-level"


def test_the_guest_kernel_re_enters_the_continuation_itself():
    """Kernel.hypercall: the vCPU re-issues a continued hypercall as EVTCHNOP_reset_cont before
    the kernel runs on, so the kernel only sees the final 0."""
    xen, d = fifo_guest(ports=150)
    kernel = Kernel(d)
    assert kernel.hypercall(RESET, EvtchnReset(dom=DOMID_SELF)) == 0
    assert xen.continuations == 2 and d.abi == "2-level" and d.ports.bound() == []


def test_dom0_continues_a_preempted_reset_of_a_paused_guest():
    """The continuation works across domains too: dom0 resets a controller-paused guest."""
    xen, d = fifo_guest()
    xen.domain_pause(d)
    arg = EvtchnReset(dom=d.domain_id)
    assert xen.dom0.evtchn_op(RESET, arg) == ERESTART
    assert xen.dom0.evtchn_op(RESET_CONT, arg) == 0 and d.abi == "2-level"


def test_another_guest_cannot_continue_someone_elses_reset():
    """xsm_evtchn_reset(XSM_TARGET) guards reset_cont as it guards reset: -EPERM."""
    xen, d = fifo_guest()
    assert op(d, RESET, dom=DOMID_SELF)[0] == ERESTART
    other = xen.domain_create()
    assert op(other, RESET_CONT, dom=d.domain_id)[0] == -Errno.EPERM
    assert op(other, RESET_CONT, dom=0x1234)[0] == -Errno.ESRCH
    assert d.next_evtchn == 64


def test_a_preempted_soft_reset_is_continued_by_the_toolstack():
    """domain_soft_reset -> evtchn_reset: -ERESTART, then XEN_DOMCTL_soft_reset_cont."""
    xen, d = fifo_guest()
    assert xen.domain_soft_reset(d) == ERESTART
    assert xen.domain_soft_reset(d, resuming=True) == 0
    assert d.abi == "2-level" and d.ports.bound() == [] and xen.continuations == 1


@pytest.mark.parametrize("misuse", [1, "yes", None])
def test_preempt_reset_and_resuming_must_be_booleans(misuse):
    """Simulator misuse, not guest input: a clear TypeError."""
    with pytest.raises(TypeError, match="preempt_reset"):
        Xen(preempt_reset=misuse)
    xen, d = fifo_guest(ports=1)
    with pytest.raises(TypeError, match="resuming"):
        xen.domain_soft_reset(d, resuming=misuse)


def test_a_soft_reset_of_another_xens_domain_is_a_value_error():
    xen, d = fifo_guest(ports=1)
    with pytest.raises(ValueError, match="not a domain of this Xen"):
        Xen().domain_soft_reset(d)
