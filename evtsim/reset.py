"""EVTCHNOP_reset, its continuation EVTCHNOP_reset_cont, and the soft reset built on them.

Models evtchn_reset and the EVTCHNOP_reset / EVTCHNOP_reset_cont case of do_event_channel_op
(xen/common/event_channel.c), and domain_soft_reset's call of it (xen/common/domain.c), as
each release has them: which resets leave FIFO (``XenVersion.reset_revert``) and whether a
reset can be preempted (``XenVersion.reset_continuation``, XSA-343/344, RELEASE-4.15.0).

How a caller sees a continuation. Since XSA-344 (2785b2a9e0) evtchn_reset asks, every 64
ports, whether it should give the CPU up (hypercall_preempt_check). If so it records where it
stopped (``d->next_evtchn``) and returns -ERESTART, which do_event_channel_op turns into a
hypercall continuation: the calling vCPU re-issues the hypercall, as EVTCHNOP_reset_cont with
the same argument, before the guest runs on. evtsim hands that re-entry to its caller:
``Domain.evtchn_op(EVTCHNOP_reset, arg)`` returns ``-Errno.ERESTART``, and the caller issues
``evtchn_op(EVTCHNOP_reset_cont, arg)`` until the result is something else (the guest kernel's
``Kernel.hypercall`` does). Whatever happens in between is the XSA-343 window: a port bound
meanwhile survives, and the final reset_cont returns -EAGAIN (8d385b247b). A reset_cont with no
reset running, or a second reset while one runs, gets -EBUSY. ``Xen(preempt_reset=True)``
makes hypercall_preempt_check say yes at every check but the one a continuation resumes at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import DOMID_SELF, ECS, Errno, EvtchnReset, u16
from .event_channel import evtchn_close, foreign_domain
from .two_level import TwoLevel
from .versions import ResetRevert

if TYPE_CHECKING:
    from .xen import Domain

PREEMPT_EVERY = 64  # evtchn_reset checks for preemption when the port it closed is a multiple of 64


def evtchn_reset_op(caller: Domain, arg: EvtchnReset) -> int:
    """EVTCHNOP_reset: close every port of ``dom``; -ERESTART when preempted (see above)."""
    return _reset_op(caller, arg, resuming=False)


def evtchn_reset_cont_op(caller: Domain, arg: EvtchnReset) -> int:
    """EVTCHNOP_reset_cont (14): resume the preempted reset of ``dom`` (-EBUSY if none runs)."""
    return _reset_op(caller, arg, resuming=True)


def _reset_op(caller: Domain, arg: EvtchnReset, resuming: bool) -> int:
    """The EVTCHNOP_reset / reset_cont case: look up ``dom``, check XSM, reset, continue."""
    dom, xen = u16(arg.dom), caller.xen
    if xen.version.foreign_dom_esrch and foreign_domain(caller, dom):
        return -Errno.ESRCH  # QEMU (xen_evtchn_reset_op): a guest resets only itself
    d = xen.domain(dom, caller)
    if d is None:
        return -Errno.ESRCH
    if d is not caller and not caller.privileged:  # xsm_evtchn_reset(XSM_TARGET)
        return -Errno.EPERM
    rc = evtchn_reset(d, caller, resuming, revert=_reverts(xen.version.reset_revert, dom))
    if rc == -Errno.ERESTART:
        xen.continuations += 1  # hypercall_create_continuation(..., EVTCHNOP_reset_cont, arg)
    return rc


def _reverts(policy: ResetRevert, dom: int) -> bool:
    """Whether this reset leaves FIFO: 4.4 never; 4.5-4.6 only for the literal DOMID_SELF
    (400b3bd642); from 4.7 always (546d558a7a)."""
    return policy is ResetRevert.ALWAYS or (policy is ResetRevert.SELF and dom == DOMID_SELF)


def evtchn_reset(d: Domain, caller: Domain | None, resuming: bool, revert: bool) -> int:
    """evtchn_reset: close every guest port of ``d``, then go back to 2-level if ``revert``.

    ``caller`` is None for the toolstack's soft reset. 0, or -EINVAL (a running target its
    controller has not paused, since 4.7), -EBUSY, -ERESTART or -EAGAIN where the row has
    continuations.
    """
    version = d.xen.version
    if version.reset_revert is ResetRevert.ALWAYS and caller is not None:
        if d is not caller and not d.controller_paused:
            return -Errno.EINVAL
    if not version.reset_continuation:
        _close_all(d)
        rc = 0
    else:
        rc = _close_preemptibly(d, resuming)
        if rc:
            return rc
    if revert:
        evtchn_2l_init(d)
    return rc


def _close_all(d: Domain) -> None:
    """Before XSA-343/344: close every valid port in one go (port 0 refuses, harmlessly)."""
    port = 0
    while d.ports.is_valid(port):
        evtchn_close(d, port)
        port += 1


def _close_preemptibly(d: Domain, resuming: bool) -> int:
    """XSA-344's loop: resume at ``d.next_evtchn`` or start at 1 unless a reset already runs
    (-EBUSY); stop when only Xen's ports are left; -ERESTART when preempted; -EAGAIN (XSA-343)
    if guest ports are active at the end, because something bound them meanwhile."""
    start = d.next_evtchn if resuming else int(not d.next_evtchn)
    if start > d.next_evtchn:
        d.next_evtchn = start
    if not start:
        return -Errno.EBUSY
    xen_ports = _xen_ports(d)
    port = start
    while d.ports.is_valid(port) and d.ports.active > xen_ports:
        evtchn_close(d, port)
        if port % PREEMPT_EVERY == 0 and port != start and d.xen.preempt_reset:
            d.next_evtchn = port
            return -Errno.ERESTART
        port += 1
    d.next_evtchn = 0
    return -Errno.EAGAIN if d.ports.active > xen_ports else 0


def _xen_ports(d: Domain) -> int:
    """d->xen_evtchns: how many ports Xen itself consumes (they refuse a guest close)."""
    return sum(1 for chn in d.ports.chn if chn.xen_consumer and chn.state is not ECS.ECS_FREE)


def evtchn_2l_init(d: Domain) -> None:
    """evtchn_fifo_destroy then evtchn_2l_init: back to 2-level. Before XSA-342 (62bcdc4edb)
    evtchn_2l_init also latched the 2-level limit, now at the guest's real word size."""
    if d.fifo is not None:
        d.fifo.destroy()
        d.fifo = None
        d.port_ops = TwoLevel(d)
        d.evtchn_2l_limit = d.shared_info.layout.nr_channels
