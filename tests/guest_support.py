"""A guest kernel on a host, for the tests of evtsim.guest: test_kernel.py (events_base),
test_events_2l.py and test_events_fifo.py.

``machine()`` creates a guest with ``xl_create``, boots a ``Kernel`` in it and binds its
standard channels; every hypercall the guest makes is recorded as (sub-op, rc), so that a
test can say exactly which hypercalls an action made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from evtsim import EVTCHNOP_init_control, EVTCHNOP_send, VIRQ_TIMER, XEN_DOMCTL_CDF_hvm, AllocSite, Errno, EvtchnOp
from evtsim import EvtchnSend, Xen
from evtsim.guest.kernel import FallbackPolicy, Kernel, KernelConfig
from evtsim.memory import event_words
from evtsim.toolstack import GuestHandle, xl_create

FIFO_OPS = ("init_control", "expand_array", "set_priority")
ANY, ENOSYS_ONLY, NEVER = FallbackPolicy.ANY_ERROR, FallbackPolicy.ENOSYS_ONLY, FallbackPolicy.NEVER
FIFO = KernelConfig()
TWO_LEVEL = KernelConfig(fifo_events=False)
BOTH_ABIS = pytest.mark.parametrize("config", [FIFO, TWO_LEVEL], ids=["fifo", "2-level"])


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

    def port(self, channel: str) -> int:
        return self.kernel.channels[channel].port

    def since(self, mark: int) -> list[tuple[str, int]]:
        """The hypercalls made after the first ``mark`` ones."""
        return self.calls[mark:]


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


def peek_wrap(evtchn_op, peek: Callable[[], None]):
    """``evtchn_op`` that first runs ``peek()``: what guest memory held when a hypercall was made."""
    def wrapped(cmd, arg):
        peek()
        return evtchn_op(cmd, arg)
    return wrapped


def machine(version: str = "master", config: KernelConfig = FIFO, *, vcpus: int = 2,
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


def restore(kernel: Kernel, version: str = "master", flags: int = XEN_DOMCTL_CDF_hvm,
            prepare: Callable[[Xen, GuestHandle], None] | None = None) -> tuple[GuestHandle, list[tuple[str, int]]]:
    """Xen save/restore of ``kernel`` onto a new 2-vCPU domain on Xen ``version``: the new
    domain and the hypercalls the resume made there."""
    xen = Xen(version)
    target = xl_create(xen, vcpus=2, flags=flags)
    if prepare is not None:
        prepare(xen, target)
    calls = record(target.domain)
    kernel.resume_after_restore(target.domain, target.store_evtchn, target.console_evtchn)
    return target, calls


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


def page(m: Machine, index: int = 0):
    """The kernel's ``index``th event-array page as Linux reads it: 1024 event words."""
    return event_words(m.domain.memory.frame(m.kernel.array_gfns[index]))


def send_one_event_per_channel(m: Machine) -> None:
    """A timer tick on every vCPU, dom0 notifies xenstore and console, cpu0 IPIs cpu1."""
    for v in m.domain.vcpus:
        m.xen.send_guest_vcpu_virq(v, VIRQ_TIMER)
    m.guest.backend.notify("xenstore")
    m.guest.backend.notify("console")
    m.domain.evtchn_op(EVTCHNOP_send, EvtchnSend(port=m.kernel.channels["resched1"].port))
