"""Xen's error returns as a table: (Xen version row, setup, op, input) -> rc.

Models do_event_channel_op and the evtchn_* helpers of xen/common/event_channel.c, the FIFO
entry points of xen/common/event_fifo.c, xsm_default_action (xen/include/xsm/dummy.h), and
QEMU's emulation in hw/i386/kvm/xen_evtchn.c. Every expected rc comes from the fact sheet
(xen-abi-facts.md sections 2.2, 2.4, 2.6, 6, 8.1, 8.2 and 8.4); rows that rely on the real
source rather than the fact sheet say so in a comment.

A row reads left to right as a sentence: on this Xen, after this setup, this op with this
input returns this. Setups are a small vocabulary of named functions; ``PORT`` in an input
is the port the setup prepared, ``TARGET`` the domain id of the other domain it prepared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from evtsim import (
    ARG_TYPES,
    DOMID_SELF,
    VIRQ_ARGO,
    VIRQ_CONSOLE,
    VIRQ_TIMER,
    XEN_VERSIONS,
    XEN_DOMCTL_CDF_disable_fifo,
    XEN_DOMCTL_CDF_evtchn_fifo,
    XEN_DOMCTL_CDF_hvm,
    AllocSite,
    Domain,
    Errno,
    EvtchnOp,
    Xen,
    errno_name,
)
from evtsim.abi import EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, NR_VIRQS, PAGE_SIZE
from evtsim.event_channel import NR_PIRQS

from conftest import (
    ALLOC,
    ARRAY_GFN,
    BIND_VCPU,
    CLOSE,
    CONTROL_GFN,
    EXPAND,
    INIT,
    INTERDOMAIN,
    IPI,
    PIRQ,
    PRIO,
    RESET,
    RESET_CONT,
    SEND,
    STATUS,
    UNMASK,
    VIRQ,
    op,
    to_fifo,
)


OK = 0
EPERM, ENOENT, ESRCH = -Errno.EPERM, -Errno.ENOENT, -Errno.ESRCH
ENOMEM, EACCES, EBUSY, EEXIST = -Errno.ENOMEM, -Errno.EACCES, -Errno.EBUSY, -Errno.EEXIST
EINVAL, ENOSPC, ENOSYS, EOPNOTSUPP = -Errno.EINVAL, -Errno.ENOSPC, -Errno.ENOSYS, -Errno.EOPNOTSUPP

NO_SUCH_DOMID = 0x1234  # no domain has this id
UNALLOCATED_PORT = 100  # beyond the first bucket of 64 ports: not a valid port (port_is_valid)
BEYOND_RAM = 1 << 18  # Xen.domain_create's default nr_frames: the first gfn that is not RAM
INIT_VCPU0 = dict(control_gfn=CONTROL_GFN, offset=0, vcpu=0)
GLOBAL_VIRQ = VIRQ_CONSOLE  # a global VIRQ, owned by dom0 unless a handler is registered


# --- the setup vocabulary ---------------------------------------------------------------


@dataclass
class Ctx:
    """What a setup prepared: who calls, the port of interest, and another domain."""

    caller: Domain
    port: int = 0
    target: Domain | None = None


class _Ref:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PORT = _Ref("PORT")  # the port the setup prepared
TARGET = _Ref("TARGET")  # the domain id of the other domain the setup prepared


def _resolve(value, ctx: Ctx):
    if value is PORT:
        return ctx.port
    if value is TARGET:
        return ctx.target.domain_id
    return value


def _bound(d: Domain, cmd: EvtchnOp, **fields) -> int:
    rc, arg = op(d, cmd, **fields)
    assert rc == 0, errno_name(rc)
    return getattr(arg, "local_port", None) or arg.port


def fresh_guest(xen: Xen) -> Ctx:
    """A 2-vCPU HVM guest, still 2-level, nothing bound."""
    return Ctx(xen.domain_create(vcpus=2))


def pv_guest(xen: Xen) -> Ctx:
    """A 2-vCPU PV guest (no XEN_DOMCTL_CDF_hvm) without PIRQ access."""
    return Ctx(xen.domain_create(vcpus=2, flags=0))


def guest_out_of_ports(xen: Xen) -> Ctx:
    """max_evtchn_port = 1 and port 1 is bound (an unbound port offered to itself)."""
    d = xen.domain_create(vcpus=2, max_evtchn_port=1)
    return Ctx(d, _bound(d, ALLOC, dom=DOMID_SELF, remote_dom=DOMID_SELF))


def guest_with_full_first_bucket(xen: Xen) -> Ctx:
    """Ports 1-63 bound as IPIs: the next port needs a new bucket of struct evtchn."""
    d = xen.domain_create(vcpus=2)
    for _ in range(63):
        _bound(d, IPI, vcpu=0)
    return Ctx(d)


def guest_in_fifo(xen: Xen) -> Ctx:
    """Both vCPUs have control blocks and one event-array page is mapped."""
    d = xen.domain_create(vcpus=2)
    to_fifo(d, pages=1)
    return Ctx(d)


def guest_in_fifo_with_128_pages(xen: Xen) -> Ctx:
    """FIFO with EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES pages already mapped."""
    d = xen.domain_create(vcpus=2)
    to_fifo(d, pages=EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES)
    return Ctx(d)


def ipi_port(xen: Xen) -> Ctx:
    """A port bound as an IPI to vCPU 0."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, IPI, vcpu=0))


def fifo_ipi_port(xen: Xen) -> Ctx:
    """A FIFO guest with a port bound as an IPI to vCPU 0."""
    ctx = guest_in_fifo(xen)
    ctx.port = _bound(ctx.caller, IPI, vcpu=0)
    return ctx


def fifo_closed_port(xen: Xen) -> Ctx:
    """A FIFO guest with an IPI port that was closed again (FREE)."""
    ctx = fifo_ipi_port(xen)
    assert op(ctx.caller, CLOSE, port=ctx.port)[0] == 0
    return ctx


def unbound_port(xen: Xen) -> Ctx:
    """A port the guest allocated for dom0 to bind to (ECS_UNBOUND)."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, ALLOC, dom=DOMID_SELF, remote_dom=0))


def interdomain_port(xen: Xen) -> Ctx:
    """The guest's end of a channel to dom0, bound by the guest (ECS_INTERDOMAIN)."""
    d = xen.domain_create(vcpus=2)
    remote = _bound(xen.dom0, ALLOC, dom=DOMID_SELF, remote_dom=d.domain_id)
    return Ctx(d, _bound(d, INTERDOMAIN, remote_dom=0, remote_port=remote), xen.dom0)


def timer_virq_port(xen: Xen) -> Ctx:
    """VIRQ_TIMER bound on vCPU 0: a per-vCPU VIRQ."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, VIRQ, virq=VIRQ_TIMER, vcpu=0))


def argo_virq_port(xen: Xen) -> Ctx:
    """VIRQ_ARGO bound on vCPU 0: a per-domain VIRQ, which may be moved."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, VIRQ, virq=VIRQ_ARGO, vcpu=0))


def dom0_console_virq_port(xen: Xen) -> Ctx:
    """Dom0 (2 vCPUs) bound the global VIRQ_CONSOLE on vCPU 0."""
    return Ctx(xen.dom0, _bound(xen.dom0, VIRQ, virq=GLOBAL_VIRQ, vcpu=0))


def pirq_port(xen: Xen) -> Ctx:
    """PIRQ 5 bound by an HVM guest."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, PIRQ, pirq=5, flags=0))


def closed_port(xen: Xen) -> Ctx:
    """An IPI port that was closed again: valid, but ECS_FREE."""
    ctx = ipi_port(xen)
    assert op(ctx.caller, CLOSE, port=ctx.port)[0] == 0
    return ctx


def xen_consumer_port(xen: Xen) -> Ctx:
    """A port of the guest that Xen itself consumes (alloc_unbound_xen_event_channel)."""
    d = xen.domain_create(vcpus=2)
    port = xen.alloc_unbound_xen_event_channel(d, 0, 0)
    assert port > 0
    return Ctx(d, port)


def fifo_xen_consumer_port(xen: Xen) -> Ctx:
    """A FIFO guest with a port that Xen itself consumes."""
    ctx = guest_in_fifo(xen)
    ctx.port = xen.alloc_unbound_xen_event_channel(ctx.caller, 0, 0)
    return ctx


def loopback_offer(xen: Xen) -> Ctx:
    """An unbound port the guest offered to itself (remote_dom = DOMID_SELF)."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(d, ALLOC, dom=DOMID_SELF, remote_dom=DOMID_SELF), d)


def offer_to_someone_else(xen: Xen) -> Ctx:
    """Guest A offered a port to dom0; guest B (the caller) tries to bind it."""
    a = xen.domain_create(vcpus=2)
    port = _bound(a, ALLOC, dom=DOMID_SELF, remote_dom=0)
    return Ctx(xen.domain_create(vcpus=2), port, a)


def offer_to_caller(xen: Xen) -> Ctx:
    """Guest A offered a port to guest B; B (the caller) binds it."""
    a = xen.domain_create(vcpus=2)
    b = xen.domain_create(vcpus=2)
    return Ctx(b, _bound(a, ALLOC, dom=DOMID_SELF, remote_dom=b.domain_id), a)


def offer_from_dom0(xen: Xen) -> Ctx:
    """Dom0 offered a port to the guest (the caller)."""
    d = xen.domain_create(vcpus=2)
    return Ctx(d, _bound(xen.dom0, ALLOC, dom=DOMID_SELF, remote_dom=d.domain_id), xen.dom0)


def offer_from_another_guest(xen: Xen) -> Ctx:
    """A second domain holds an unbound port: neither QEMU (dom0) nor the caller itself."""
    d = xen.domain_create(vcpus=2)
    other = xen.domain_create()
    return Ctx(d, _bound(other, ALLOC, dom=DOMID_SELF, remote_dom=DOMID_SELF), other)


def guest_looking_at_dom0(xen: Xen) -> Ctx:
    """An unprivileged guest; the target is dom0."""
    return Ctx(xen.domain_create(vcpus=2), 0, xen.dom0)


def dom0_and_guest(xen: Xen) -> Ctx:
    """Dom0 calls; the target is a running (not controller-paused) guest with an IPI."""
    d = xen.domain_create(vcpus=2)
    return Ctx(xen.dom0, _bound(d, IPI, vcpu=0), d)


def dom0_and_paused_guest(xen: Xen) -> Ctx:
    """Dom0 calls; the target guest is paused by its controller (XEN_DOMCTL_pausedomain)."""
    ctx = dom0_and_guest(xen)
    xen.domain_pause(ctx.target)
    return ctx


def dom0_and_dying_guest(xen: Xen) -> Ctx:
    """Dom0 calls; the target guest is being destroyed (d->is_dying)."""
    d = xen.domain_create(vcpus=2)
    d.is_dying = True  # the state domain_kill sets before tearing the domain down
    return Ctx(xen.dom0, 0, d)


def reset_in_progress(xen: Xen) -> Ctx:
    """70 IPI ports and an EVTCHNOP_reset that Xen preempted after port 64 (-ERESTART, XSA-344):
    the continuation is due."""
    xen.preempt_reset = True
    ctx = ipi_port(xen)
    for _ in range(69):
        _bound(ctx.caller, IPI, vcpu=0)
    assert op(ctx.caller, RESET, dom=DOMID_SELF)[0] == -Errno.ERESTART
    return ctx


def guest_with_flag(flag: int) -> Callable[[Xen], Ctx]:
    """A fresh HVM guest created with an extra domain-create flag (bit 7 of the 2020 series)."""

    def setup(xen: Xen) -> Ctx:
        return Ctx(xen.domain_create(vcpus=2, flags=XEN_DOMCTL_CDF_hvm | flag))

    setup.__doc__ = f"A fresh guest created with flags hvm|{flag:#x}."
    return setup


def disable_fifo_answering_eperm(xen: Xen) -> Ctx:
    """v4's XEN_DOMCTL_CDF_disable_fifo, with Xen answering -EPERM (Jan's suggestion)."""
    xen.disable_fifo_errno = -Errno.EPERM
    return guest_with_flag(XEN_DOMCTL_CDF_disable_fifo)(xen)


def xsm_denies(cmd: EvtchnOp, errno: Errno, base: Callable[[Xen], Ctx] = fresh_guest) -> Callable[[Xen], Ctx]:
    """``base``, then an XSM policy that denies ``cmd`` with ``-errno``."""

    def setup(xen: Xen) -> Ctx:
        ctx = base(xen)
        xen.xsm.deny(cmd, errno)
        return ctx

    return setup


def allocation_fails(site: AllocSite, base: Callable[[Xen], Ctx] = fresh_guest) -> Callable[[Xen], Ctx]:
    """``base``, then the next allocation at ``site`` fails (-ENOMEM)."""

    def setup(xen: Xen) -> Ctx:
        ctx = base(xen)
        xen.faults.fail(site)
        return ctx

    return setup


with_disable_fifo = guest_with_flag(XEN_DOMCTL_CDF_disable_fifo)
with_evtchn_fifo = guest_with_flag(XEN_DOMCTL_CDF_evtchn_fifo)


# --- the table --------------------------------------------------------------------------


class Row(NamedTuple):
    version: str
    setup: Callable[[Xen], Ctx]
    cmd: int
    fields: dict
    rc: int
    case: str  # what the row shows, for its test id


def R(version, setup, cmd, fields, rc, case):  # noqa: N802  (a table constructor)
    return Row(version, setup, cmd, fields, rc, case)


ROWS = [
    # alloc_unbound (evtchn_alloc_unbound)
    R("master", fresh_guest, ALLOC, dict(dom=DOMID_SELF, remote_dom=DOMID_SELF), OK, "loopback offer"),
    R("master", fresh_guest, ALLOC, dict(dom=NO_SUCH_DOMID, remote_dom=0), ESRCH, "dom not found"),
    R("master", fresh_guest, ALLOC, dict(dom=0, remote_dom=DOMID_SELF), EPERM, "unprivileged for another dom"),
    R("master", dom0_and_guest, ALLOC, dict(dom=TARGET, remote_dom=0), OK, "privileged for another dom"),
    R("master", guest_out_of_ports, ALLOC, dict(dom=DOMID_SELF, remote_dom=0), ENOSPC, "max_evtchn_port reached"),
    R("master", dom0_and_dying_guest, ALLOC, dict(dom=TARGET, remote_dom=0), EINVAL, "target dying"),
    R("master", allocation_fails(AllocSite.EVTCHN_BUCKET, guest_with_full_first_bucket), ALLOC,
      dict(dom=DOMID_SELF, remote_dom=0), ENOMEM, "bucket allocation fails"),
    R("master", xsm_denies(ALLOC, Errno.EPERM), ALLOC, dict(dom=DOMID_SELF, remote_dom=0), EPERM, "xsm denies"),
    # bind_interdomain (evtchn_bind_interdomain)
    R("master", offer_to_caller, INTERDOMAIN, dict(remote_dom=TARGET, remote_port=PORT), OK, "offer to caller"),
    R("master", loopback_offer, INTERDOMAIN, dict(remote_dom=DOMID_SELF, remote_port=PORT), OK, "loopback"),
    R("master", fresh_guest, INTERDOMAIN, dict(remote_dom=NO_SUCH_DOMID, remote_port=1), ESRCH, "no remote dom"),
    R("master", fresh_guest, INTERDOMAIN, dict(remote_dom=0, remote_port=UNALLOCATED_PORT), EINVAL, "bad remote port"),
    R("master", ipi_port, INTERDOMAIN, dict(remote_dom=DOMID_SELF, remote_port=PORT), EINVAL, "remote not unbound"),
    R("master", offer_to_someone_else, INTERDOMAIN, dict(remote_dom=TARGET, remote_port=PORT), EINVAL,
      "offered to another domain"),
    R("master", guest_out_of_ports, INTERDOMAIN, dict(remote_dom=DOMID_SELF, remote_port=PORT), ENOSPC, "no free port"),
    R("master", xsm_denies(INTERDOMAIN, Errno.EACCES, offer_to_caller), INTERDOMAIN,
      dict(remote_dom=TARGET, remote_port=PORT), EACCES, "xsm (flask) denies"),
    # bind_virq (evtchn_bind_virq)
    R("master", fresh_guest, VIRQ, dict(virq=VIRQ_TIMER, vcpu=1), OK, "per-vcpu virq on vcpu 1"),
    R("master", fresh_guest, VIRQ, dict(virq=NR_VIRQS, vcpu=0), EINVAL, "virq >= NR_VIRQS"),
    R("master", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=1), EINVAL, "global virq on vcpu 1"),
    R("master", fresh_guest, VIRQ, dict(virq=VIRQ_ARGO, vcpu=1), EINVAL, "per-domain virq on vcpu 1"),
    R("master", fresh_guest, VIRQ, dict(virq=VIRQ_ARGO, vcpu=0), OK, "per-domain virq on vcpu 0"),
    R("master", fresh_guest, VIRQ, dict(virq=VIRQ_TIMER, vcpu=2), ENOENT, "no such vcpu"),
    R("master", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), EBUSY, "global virq owned by dom0"),
    R("4.17", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), OK, "no owner check before 4.21"),
    R("4.18", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), OK, "still no owner check"),
    R("4.3", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), OK, "no owner check"),
    R("master", dom0_and_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), OK, "dom0 binds its global virq"),
    R("master", timer_virq_port, VIRQ, dict(virq=VIRQ_TIMER, vcpu=0), EEXIST, "twice on one vcpu"),
    R("master", timer_virq_port, VIRQ, dict(virq=VIRQ_TIMER, vcpu=1), OK, "same virq on another vcpu"),
    R("master", guest_out_of_ports, VIRQ, dict(virq=VIRQ_TIMER, vcpu=0), ENOSPC, "max_evtchn_port reached"),
    R("4.3", fresh_guest, ALLOC, dict(dom=DOMID_SELF, remote_dom=0), OK, "no max_evtchn_port yet"),
    # bind_ipi (evtchn_bind_ipi)
    R("master", fresh_guest, IPI, dict(vcpu=1), OK, "vcpu 1"),
    R("master", fresh_guest, IPI, dict(vcpu=2), ENOENT, "no such vcpu"),
    R("master", guest_out_of_ports, IPI, dict(vcpu=0), ENOSPC, "max_evtchn_port reached"),
    R("master", allocation_fails(AllocSite.EVTCHN_BUCKET, guest_with_full_first_bucket), IPI, dict(vcpu=0), ENOMEM,
      "bucket allocation fails"),
    # bind_pirq (evtchn_bind_pirq)
    R("master", fresh_guest, PIRQ, dict(pirq=5, flags=0), OK, "hvm guest"),
    R("master", fresh_guest, PIRQ, dict(pirq=NR_PIRQS, flags=0), EINVAL, "pirq >= nr_pirqs"),
    R("master", pv_guest, PIRQ, dict(pirq=5, flags=0), EPERM, "pv guest without access"),
    R("master", pirq_port, PIRQ, dict(pirq=5, flags=0), EEXIST, "pirq already bound"),
    R("master", guest_out_of_ports, PIRQ, dict(pirq=5, flags=0), ENOSPC, "max_evtchn_port reached"),
    R("master", allocation_fails(AllocSite.EVTCHN_BUCKET, guest_with_full_first_bucket), PIRQ, dict(pirq=5, flags=0),
      ENOMEM, "bucket allocation fails"),
    # close (evtchn_close)
    R("master", ipi_port, CLOSE, dict(port=PORT), OK, "ipi port"),
    R("master", interdomain_port, CLOSE, dict(port=PORT), OK, "interdomain port"),
    R("master", fresh_guest, CLOSE, dict(port=0), EINVAL, "port 0 reserved"),
    R("master", closed_port, CLOSE, dict(port=PORT), EINVAL, "port already closed"),
    R("master", fresh_guest, CLOSE, dict(port=UNALLOCATED_PORT), EINVAL, "port not valid"),
    R("master", xen_consumer_port, CLOSE, dict(port=PORT), EINVAL, "xen consumer port"),
    # send (evtchn_send)
    R("master", unbound_port, SEND, dict(port=PORT), OK, "unbound port drops silently"),
    R("master", ipi_port, SEND, dict(port=PORT), OK, "ipi port"),
    R("master", interdomain_port, SEND, dict(port=PORT), OK, "interdomain port"),
    R("master", timer_virq_port, SEND, dict(port=PORT), EINVAL, "virq port"),
    R("master", pirq_port, SEND, dict(port=PORT), EINVAL, "pirq port"),
    R("master", closed_port, SEND, dict(port=PORT), EINVAL, "closed port"),
    R("master", fresh_guest, SEND, dict(port=0), EINVAL, "port 0 reserved"),
    R("master", fresh_guest, SEND, dict(port=UNALLOCATED_PORT), EINVAL, "port not valid"),
    R("master", xen_consumer_port, SEND, dict(port=PORT), EINVAL, "xen consumer port"),
    R("master", xsm_denies(SEND, Errno.EACCES, ipi_port), SEND, dict(port=PORT), EACCES, "xsm (flask) denies"),
    # status (evtchn_status)
    R("master", ipi_port, STATUS, dict(dom=DOMID_SELF, port=PORT), OK, "own ipi port"),
    R("master", fresh_guest, STATUS, dict(dom=DOMID_SELF, port=0), OK, "port 0 reads closed"),
    R("master", fresh_guest, STATUS, dict(dom=NO_SUCH_DOMID, port=1), ESRCH, "dom not found"),
    R("master", fresh_guest, STATUS, dict(dom=DOMID_SELF, port=UNALLOCATED_PORT), EINVAL, "port not valid"),
    R("master", guest_looking_at_dom0, STATUS, dict(dom=TARGET, port=1), EPERM, "unprivileged about another dom"),
    R("master", dom0_and_guest, STATUS, dict(dom=TARGET, port=PORT), OK, "privileged about another dom"),
    R("master", xsm_denies(STATUS, Errno.EPERM, ipi_port), STATUS, dict(dom=DOMID_SELF, port=PORT), EPERM,
      "xsm denies"),
    # bind_vcpu (evtchn_bind_vcpu)
    R("master", unbound_port, BIND_VCPU, dict(port=PORT, vcpu=1), OK, "unbound port"),
    R("master", interdomain_port, BIND_VCPU, dict(port=PORT, vcpu=1), OK, "interdomain port"),
    R("master", pirq_port, BIND_VCPU, dict(port=PORT, vcpu=1), OK, "pirq port"),
    R("master", argo_virq_port, BIND_VCPU, dict(port=PORT, vcpu=1), OK, "per-domain virq port"),
    R("master", dom0_console_virq_port, BIND_VCPU, dict(port=PORT, vcpu=1), OK, "global virq port"),
    R("master", ipi_port, BIND_VCPU, dict(port=PORT, vcpu=1), EINVAL, "ipi port"),
    R("master", timer_virq_port, BIND_VCPU, dict(port=PORT, vcpu=1), EINVAL, "per-vcpu virq port"),
    R("master", closed_port, BIND_VCPU, dict(port=PORT, vcpu=1), EINVAL, "closed port"),
    R("master", fresh_guest, BIND_VCPU, dict(port=0, vcpu=1), EINVAL, "port 0 reserved"),
    R("master", fresh_guest, BIND_VCPU, dict(port=UNALLOCATED_PORT, vcpu=1), EINVAL, "port not valid"),
    R("master", xen_consumer_port, BIND_VCPU, dict(port=PORT, vcpu=1), EINVAL, "xen consumer port"),
    R("master", unbound_port, BIND_VCPU, dict(port=PORT, vcpu=2), ENOENT, "no such vcpu"),
    # unmask (evtchn_unmask)
    R("master", ipi_port, UNMASK, dict(port=PORT), OK, "ipi port"),
    R("master", closed_port, UNMASK, dict(port=PORT), OK, "closed port is a no-op"),
    R("master", fresh_guest, UNMASK, dict(port=0), OK, "reserved port 0 is a no-op"),
    R("master", fresh_guest, UNMASK, dict(port=UNALLOCATED_PORT), EINVAL, "port not valid"),
    # reset and reset_cont (evtchn_reset)
    R("master", ipi_port, RESET, dict(dom=DOMID_SELF), OK, "self"),
    R("master", fresh_guest, RESET, dict(dom=NO_SUCH_DOMID), ESRCH, "dom not found"),
    R("master", guest_looking_at_dom0, RESET, dict(dom=TARGET), EPERM, "unprivileged resets another dom"),
    R("master", dom0_and_guest, RESET, dict(dom=TARGET), EINVAL, "target not paused"),
    R("master", dom0_and_paused_guest, RESET, dict(dom=TARGET), OK, "target paused by controller"),
    R("master", reset_in_progress, RESET, dict(dom=DOMID_SELF), EBUSY, "reset already running"),
    R("master", reset_in_progress, RESET_CONT, dict(dom=DOMID_SELF), OK, "continuation resumes"),
    R("master", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), EBUSY, "continuation without a reset"),
    R("master", xsm_denies(RESET, Errno.EPERM), RESET, dict(dom=DOMID_SELF), EPERM, "xsm denies"),
    R("4.8", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), ENOSYS, "op 14 unknown before XSA-344"),
    R("4.3", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), ENOSYS, "op 14 unknown"),
    R("4.8", ipi_port, RESET, dict(dom=DOMID_SELF), OK, "self"),
    R("4.15", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), EBUSY, "op 14 arrives with XSA-344"),
    R("4.15", reset_in_progress, RESET, dict(dom=DOMID_SELF), EBUSY, "reset already running"),
    R("4.15", reset_in_progress, RESET_CONT, dict(dom=DOMID_SELF), OK, "continuation resumes"),
    R("4.14-xsa", reset_in_progress, RESET_CONT, dict(dom=DOMID_SELF), OK, "backported continuation"),
    R("4.14-xsa", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), EBUSY, "backported op 14"),
    R("4.16", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), EBUSY, "continuation without a reset"),
    R("4.17", ipi_port, RESET, dict(dom=DOMID_SELF), OK, "self"),
    R("qemu", ipi_port, RESET_CONT, dict(dom=DOMID_SELF), ENOSYS, "op 14 not emulated"),
    # init_control (evtchn_fifo_init_control)
    R("master", fresh_guest, INIT, INIT_VCPU0, OK, "first call switches to fifo"),
    R("master", fresh_guest, INIT, dict(control_gfn=CONTROL_GFN, offset=PAGE_SIZE - 72, vcpu=0), OK, "last offset"),
    R("master", fresh_guest, INIT, dict(control_gfn=CONTROL_GFN, offset=0, vcpu=2), ENOENT, "no such vcpu"),
    R("master", fresh_guest, INIT, dict(control_gfn=CONTROL_GFN, offset=PAGE_SIZE - 71, vcpu=0), EINVAL,
      "offset crosses page"),
    R("master", fresh_guest, INIT, dict(control_gfn=CONTROL_GFN, offset=4, vcpu=0), EINVAL, "offset unaligned"),
    R("master", fresh_guest, INIT, dict(control_gfn=BEYOND_RAM, offset=0, vcpu=0), EINVAL, "gfn not ram"),
    R("master", guest_in_fifo, INIT, dict(control_gfn=CONTROL_GFN + 8, offset=0, vcpu=0), EINVAL, "twice for vcpu 0"),
    R("master", allocation_fails(AllocSite.FIFO_INIT), INIT, INIT_VCPU0, ENOMEM, "fifo structures not allocated"),
    R("master", xsm_denies(INIT, Errno.EPERM), INIT, INIT_VCPU0, EPERM, "xsm denies"),
    R("master", xsm_denies(INIT, Errno.EACCES), INIT, INIT_VCPU0, EACCES, "xsm (flask) denies"),
    # expand_array (evtchn_fifo_expand_array)
    R("master", guest_in_fifo, EXPAND, dict(array_gfn=ARRAY_GFN + 1), OK, "second page"),
    R("master", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), EOPNOTSUPP, "before init_control"),
    R("4.8", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), EOPNOTSUPP, "before init_control"),
    R("4.7", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "before init_control"),
    R("4.5", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "before init_control"),
    R("4.4", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "before init_control"),
    R("master", guest_in_fifo_with_128_pages, EXPAND, dict(array_gfn=ARRAY_GFN + 128), ENOSPC, "129th page"),
    R("master", guest_in_fifo, EXPAND, dict(array_gfn=BEYOND_RAM), EINVAL, "gfn not ram"),
    R("master", allocation_fails(AllocSite.EVENT_ARRAY_PAGE, guest_in_fifo), EXPAND, dict(array_gfn=ARRAY_GFN + 1),
      ENOMEM, "page not mapped"),
    # set_priority (evtchn_set_priority)
    R("master", fifo_ipi_port, PRIO, dict(port=PORT, priority=15), OK, "lowest priority"),
    R("master", fifo_ipi_port, PRIO, dict(port=PORT, priority=0), OK, "highest priority"),
    R("master", fifo_ipi_port, PRIO, dict(port=PORT, priority=16), EINVAL, "priority above 15"),
    R("master", ipi_port, PRIO, dict(port=PORT, priority=3), ENOSYS, "2-level has no hook"),
    R("master", guest_in_fifo, PRIO, dict(port=0, priority=3), EACCES, "reserved port 0"),
    R("master", fifo_closed_port, PRIO, dict(port=PORT, priority=3), EACCES, "closed port"),
    R("4.15", fifo_closed_port, PRIO, dict(port=PORT, priority=3), EACCES, "closed port (XSA-343 gate)"),
    R("4.8", fifo_closed_port, PRIO, dict(port=PORT, priority=3), OK, "closed port, no gate yet"),
    R("4.4", fifo_closed_port, PRIO, dict(port=PORT, priority=16), EINVAL, "priority above 15"),
    R("4.16", fifo_ipi_port, PRIO, dict(port=PORT, priority=15), OK, "lowest priority"),
    R("master", fifo_xen_consumer_port, PRIO, dict(port=PORT, priority=3), EACCES, "xen consumer port"),
    R("master", guest_in_fifo, PRIO, dict(port=UNALLOCATED_PORT, priority=3), EINVAL, "port not valid"),
    # ops 11-13 where FIFO does not exist or is refused (fact sheet 8.1, 8.2, 2.4, 6, 3)
    R("4.3", fresh_guest, INIT, INIT_VCPU0, ENOSYS, "op 11 unknown"),
    R("4.3", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "op 12 unknown"),
    R("4.3", ipi_port, PRIO, dict(port=PORT, priority=3), ENOSYS, "op 13 unknown"),
    R("qemu", fresh_guest, INIT, INIT_VCPU0, ENOSYS, "no fifo emulation"),
    R("qemu", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "no fifo emulation"),
    R("qemu", ipi_port, PRIO, dict(port=PORT, priority=3), ENOSYS, "no fifo emulation"),
    R("fifo-off", fresh_guest, INIT, INIT_VCPU0, EOPNOTSUPP, "CONFIG_EVTCHN_FIFO=n"),
    R("fifo-off", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), EOPNOTSUPP, "CONFIG_EVTCHN_FIFO=n"),
    R("fifo-off", ipi_port, PRIO, dict(port=PORT, priority=3), ENOSYS, "CONFIG_EVTCHN_FIFO=n"),
    R("patch-v4", with_disable_fifo, INIT, INIT_VCPU0, ENOSYS, "CDF_disable_fifo set"),
    R("patch-v4", with_disable_fifo, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "CDF_disable_fifo set"),
    R("patch-v4", with_disable_fifo, PRIO, dict(port=1, priority=3), ENOSYS, "CDF_disable_fifo set"),
    R("patch-v4", disable_fifo_answering_eperm, INIT, INIT_VCPU0, EPERM, "CDF_disable_fifo set, errno EPERM"),
    R("patch-v4", disable_fifo_answering_eperm, EXPAND, dict(array_gfn=ARRAY_GFN), EPERM,
      "CDF_disable_fifo set, errno EPERM"),
    R("patch-v4", disable_fifo_answering_eperm, PRIO, dict(port=1, priority=3), EPERM,
      "CDF_disable_fifo set, errno EPERM"),
    R("patch-v4", fresh_guest, INIT, INIT_VCPU0, OK, "CDF_disable_fifo clear"),
    R("patch-v5", fresh_guest, INIT, INIT_VCPU0, ENOSYS, "CDF_evtchn_fifo clear"),
    R("patch-v5", fresh_guest, EXPAND, dict(array_gfn=ARRAY_GFN), ENOSYS, "CDF_evtchn_fifo clear"),
    R("patch-v5", fresh_guest, PRIO, dict(port=1, priority=3), ENOSYS, "CDF_evtchn_fifo clear"),
    R("patch-v5", with_evtchn_fifo, INIT, INIT_VCPU0, OK, "CDF_evtchn_fifo set"),
    R("patch-v5", with_evtchn_fifo, EXPAND, dict(array_gfn=ARRAY_GFN), EOPNOTSUPP, "CDF_evtchn_fifo set, before init"),
    R("patch-v5", with_evtchn_fifo, PRIO, dict(port=1, priority=3), ENOSYS, "CDF_evtchn_fifo set, still 2-level"),
    # unknown sub-ops: the default case
    R("master", fresh_guest, 15, dict(), ENOSYS, "unknown sub-op"),
    R("master", fresh_guest, 99, dict(), ENOSYS, "unknown sub-op"),
    R("4.3", fresh_guest, 15, dict(), ENOSYS, "unknown sub-op"),
    # QEMU's Xen-on-KVM emulation where it differs from Xen (fact sheet 6)
    R("qemu", closed_port, CLOSE, dict(port=PORT), ENOENT, "closed port"),
    R("qemu", closed_port, UNMASK, dict(port=PORT), EINVAL, "closed port"),
    R("qemu", pirq_port, PIRQ, dict(pirq=5, flags=0), EBUSY, "pirq already bound"),
    R("qemu", fresh_guest, ALLOC, dict(dom=DOMID_SELF, remote_dom=7), EPERM, "foreign remote_dom"),
    R("qemu", fresh_guest, ALLOC, dict(dom=DOMID_SELF, remote_dom=0), OK, "DOMID_QEMU is dom0's stand-in"),
    R("qemu", fresh_guest, ALLOC, dict(dom=DOMID_SELF, remote_dom=DOMID_SELF), OK, "loopback offer"),
    R("qemu", fresh_guest, RESET, dict(dom=0), ESRCH, "reset of another dom"),
    R("qemu", ipi_port, RESET, dict(dom=DOMID_SELF), OK, "self"),
    # QEMU's valid_port() rejects port 0 and accepts any port below 4096 (fact sheet 6,
    # checked against hw/i386/kvm/xen_evtchn.c: close/unmask/status start with valid_port).
    R("qemu", fresh_guest, CLOSE, dict(port=0), EINVAL, "port 0 not valid"),
    R("qemu", fresh_guest, UNMASK, dict(port=0), EINVAL, "port 0 not valid"),
    R("qemu", fresh_guest, STATUS, dict(dom=DOMID_SELF, port=0), EINVAL, "port 0 not valid"),
    R("qemu", fresh_guest, CLOSE, dict(port=UNALLOCATED_PORT), ENOENT, "never-used port below 4096 is closed"),
    # QEMU (xen_evtchn_bind_interdomain_op): a peer other than QEMU (DOMID_QEMU = 0, dom0's
    # part) or the guest itself -> -ESRCH.
    R("qemu", offer_from_another_guest, INTERDOMAIN, dict(remote_dom=TARGET, remote_port=PORT), ESRCH,
      "foreign remote_dom"),
    R("qemu", offer_from_dom0, INTERDOMAIN, dict(remote_dom=TARGET, remote_port=PORT), OK, "QEMU's own port"),
    # QEMU emulates one guest: naming any other domain is -ESRCH (xen_evtchn_*_op), where Xen's
    # XSM policy says -EPERM.
    R("qemu", guest_looking_at_dom0, STATUS, dict(dom=TARGET, port=1), ESRCH, "another dom"),
    R("qemu", guest_looking_at_dom0, ALLOC, dict(dom=TARGET, remote_dom=DOMID_SELF), ESRCH, "another dom"),
    R("qemu", fresh_guest, VIRQ, dict(virq=GLOBAL_VIRQ, vcpu=0), OK, "no global virq owner"),
    R("qemu", fresh_guest, BIND_VCPU, dict(port=0, vcpu=2), EINVAL, "port checked before vcpu"),
    R("master", fresh_guest, BIND_VCPU, dict(port=0, vcpu=2), ENOENT, "vcpu checked before port"),
]


def _row_id(row: Row) -> str:
    name = row.cmd.name.removeprefix("EVTCHNOP_") if isinstance(row.cmd, EvtchnOp) else f"cmd{row.cmd}"
    return f"{row.version}:{name}:{row.case.replace(' ', '_')}:{errno_name(row.rc)}"


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(row) for row in ROWS])
def test_event_channel_op_returns_xens_errno(row: Row) -> None:
    """Models do_event_channel_op (xen/common/event_channel.c): one row of the error table."""
    xen = Xen(row.version, dom0_vcpus=2)
    ctx = row.setup(xen)
    arg_type = ARG_TYPES.get(row.cmd, ARG_TYPES[SEND])  # an unknown cmd never reads its argument
    arg = arg_type(**{name: _resolve(value, ctx) for name, value in row.fields.items()})
    assert errno_name(ctx.caller.evtchn_op(row.cmd, arg)) == errno_name(row.rc)


def test_table_covers_every_sub_op() -> None:
    """Every EVTCHNOP_* number 0-14 has at least one row, and so do unknown numbers."""
    covered = {int(row.cmd) for row in ROWS}
    assert set(range(15)) <= covered
    assert any(cmd >= 15 for cmd in covered)


def test_table_covers_every_modelled_xen() -> None:
    """Every row of evtsim.XEN_VERSIONS, released, patched or emulated, appears in the table."""
    assert set(XEN_VERSIONS) <= {row.version for row in ROWS}


def test_bucket_fault_fires_only_when_a_new_bucket_is_needed(xen: Xen, guest: Domain) -> None:
    """Models get_free_port (xen/common/event_channel.c): memory is allocated only for a new bucket.

    Ports 1-63 live in the bucket evtchn_init allocated, so binding them allocates nothing;
    the armed failure must wait for port 64, which needs a new bucket (fact sheet 1.4, 2.1).
    """
    xen.faults.fail(AllocSite.EVTCHN_BUCKET)
    for _ in range(63):
        assert op(guest, IPI, vcpu=0)[0] == OK
    assert errno_name(op(guest, IPI, vcpu=0)[0]) == errno_name(ENOMEM)
    assert op(guest, IPI, vcpu=0)[0] == OK  # one failure armed, one failure taken
