"""First contact with each ABI: a few events, masking, unmasking, priorities, vCPUs.

``two_level_basics`` shows the pending bit, the selector and the upcall (fact sheet 2.3,
4.4); ``fifo_basics`` shows linking, HEAD and READY, priorities and masking (2.4, 4.3).
Each step does one thing, so a reader can watch the bits change one at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..abi import EVTCHNOP_set_priority, EvtchnSetPriority
from ..guest.kernel import KernelConfig
from ..scenario import Shown, Step, World, run
from ..toolstack import xl_create
from ..trace import Trace
from .common import boot, check_params, consume, send


@dataclass(frozen=True)
class BasicsParams:
    """A 2-vCPU guest on ``xen``; ``compat`` makes it a 32-bit guest (1024 2-level ports)."""

    xen: str = "master"
    vcpus: int = 2
    compat: bool = False

    def __post_init__(self) -> None:
        check_params(self)


def two_level_basics(params: BasicsParams = BasicsParams()) -> Trace:
    """A 2-level guest (xen.fifo_events=0): pending, selector, upcall, mask and unmask."""
    p = params
    g = "guest"
    steps = [
        Step("create the guest", lambda w: _create(w, p), "host"),
        Step("kernel boots with xen.fifo_events=0", lambda w: boot(w, w.shown[g], KernelConfig(fifo_events=False), "linux"), "host"),
        Step("dom0 notifies xenstore", lambda w: send(w, w.shown[g], "xenstore"), "host"),
        Step("guest takes the upcall", lambda w: consume(w, w.shown[g]), "host"),
        Step("guest masks the console port", lambda w: _mask(w.shown[g], "console"), "host"),
        Step("dom0 notifies the masked console", lambda w: send(w, w.shown[g], "console"), "host"),
        Step("guest takes upcalls: nothing for console", lambda w: consume(w, w.shown[g]), "host"),
        Step("guest unmasks console: Xen re-delivers", lambda w: _unmask(w.shown[g], "console"), "host"),
        Step("guest takes the upcall", lambda w: consume(w, w.shown[g]), "host"),
        Step("timer fires on every vCPU, IPI to cpu1", lambda w: _timers_and_ipi(w, w.shown[g]), "host"),
        Step("guest takes the upcalls (timer first)", lambda w: consume(w, w.shown[g]), "host"),
    ]
    return run("two-level-basics", steps, asdict(p))


def fifo_basics(params: BasicsParams = BasicsParams()) -> Trace:
    """A FIFO guest: queues per vCPU and priority, HEAD/READY, masking, set_priority, bind_vcpu."""
    p = params
    g = "guest"
    steps = [
        Step("create the guest", lambda w: _create(w, p), "host"),
        Step("kernel boots: init_control switches to FIFO", lambda w: boot(w, w.shown[g], KernelConfig(), "linux"), "host"),
        Step("dom0 notifies xenstore, console and vbd", lambda w: [send(w, w.shown[g], c) for c in ("xenstore", "console", "vbd")], "host"),
        Step("timer fires on cpu0 (priority 0)", lambda w: send(w, w.shown[g], "timer0"), "host"),
        Step("guest consumes: highest priority first", lambda w: consume(w, w.shown[g]), "host"),
        Step("guest masks console; dom0 notifies it", lambda w: (_mask(w.shown[g], "console"), send(w, w.shown[g], "console")), "host"),
        Step("guest unmasks console: EVTCHNOP_unmask links it", lambda w: _unmask(w.shown[g], "console"), "host"),
        Step("guest consumes", lambda w: consume(w, w.shown[g]), "host"),
        Step("vbd to priority 3, then vbd and xenstore", lambda w: _priority_then_send(w, w.shown[g]), "host"),
        Step("guest consumes: queue 3 before queue 7", lambda w: consume(w, w.shown[g]), "host"),
        Step("vbd moved to cpu1 (bind_vcpu), notified", lambda w: _move_then_send(w, w.shown[g]), "host"),
        Step("guest consumes on cpu1", lambda w: consume(w, w.shown[g]), "host"),
    ]
    return run("fifo-basics", steps, asdict(p))


def _create(w: World, p: BasicsParams) -> None:
    xen = w.host("host", p.xen)
    guest = xl_create(xen, vcpus=p.vcpus, compat=p.compat)
    w.show("guest", "host", guest)
    w.note(f"xl create on Xen {xen.version.name}: xenstore port {guest.store_evtchn}, "
           f"console port {guest.console_evtchn}")


def _mask(shown: Shown, channel: str) -> None:
    """disable_dynirq: the guest sets the mask bit (2-level) or M (FIFO) itself, no hypercall."""
    shown.kernel.mask(shown.kernel.channels[channel].port)


def _unmask(shown: Shown, channel: str) -> None:
    shown.kernel.unmask(shown.kernel.channels[channel].port)


def _timers_and_ipi(w: World, shown: Shown) -> None:
    for v in shown.guest.domain.vcpus:
        send(w, shown, f"timer{v.vcpu_id}")
    send(w, shown, "resched1")


def _priority_then_send(w: World, shown: Shown) -> None:
    port = shown.kernel.channels["vbd"].port
    shown.guest.domain.evtchn_op(EVTCHNOP_set_priority, EvtchnSetPriority(port=port, priority=3))
    send(w, shown, "vbd")
    send(w, shown, "xenstore")


def _move_then_send(w: World, shown: Shown) -> None:
    """xen_rebind_evtchn_to_cpu (mask, bind_vcpu, unmask), then future events go to cpu1's queues."""
    shown.kernel.rebind_evtchn_to_cpu("vbd", min(1, len(shown.guest.domain.vcpus) - 1))
    send(w, shown, "vbd")
