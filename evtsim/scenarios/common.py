"""Steps that several scenarios share: creating and booting a guest, and traffic."""

from __future__ import annotations

from collections import Counter

from ..abi import EVTCHNOP_send, VIRQ_TIMER, EvtchnSend
from ..guest.kernel import KERNEL_PAGES_GFN, Kernel, KernelConfig
from ..scenario import Shown, World
from ..versions import xen_version
from ..toolstack import xl_create

DEVICES = ("xenstore", "console", "vbd")


def check_params(params: object) -> None:
    """The checks every scenario's parameters share: known Xen versions, sane sizes."""
    for name in ("xen", "old_xen"):
        if hasattr(params, name):
            xen_version(getattr(params, name))  # ValueError names the choices
    if not 1 <= getattr(params, "vcpus", 1) <= 8:
        raise ValueError("vcpus must be 1..8")
    if not 1 <= getattr(params, "rounds", 1) <= 100:
        raise ValueError("rounds must be 1..100")


def create_guest(world: World, name: str, host: str, version: str, *, vcpus: int, flags: int | None = None) -> Shown:
    """xl create on ``host``: the domain plus its xenstore and console channels."""
    xen = world.host(host, version)
    kwargs = {} if flags is None else {"flags": flags}
    guest = xl_create(xen, vcpus=vcpus, **kwargs)
    world.note(f"xl create on Xen {xen.version.name}: dom{guest.domain.domain_id}, xenstore port "
               f"{guest.store_evtchn}, console port {guest.console_evtchn} (libxl, alloc_unbound)")
    return world.show(name, host, guest)


def boot(world: World, shown: Shown, config: KernelConfig, kernel_name: str,
         pages_gfn: int = KERNEL_PAGES_GFN) -> Kernel:
    """A kernel boots in ``shown``'s domain: xen_init_IRQ, then its usual channels."""
    kernel = Kernel(shown.guest.domain, config, kernel_name, pages_gfn)
    shown.kernel = kernel
    kernel.boot()
    kernel.bind_standard_channels(shown.guest.store_evtchn, shown.guest.console_evtchn)
    connect_vbd(shown)
    return kernel


def connect_vbd(shown: Shown) -> None:
    """A PV block frontend: alloc_unbound towards dom0, which binds its backend end."""
    port = shown.kernel.alloc_unbound("vbd", 0)
    if port:
        shown.guest.backend.bind("vbd", port)


def send(world: World, shown: Shown, channel: str) -> None:
    """One event on ``channel`` from whoever sends it: Xen (timers), dom0 (devices), or the
    guest itself (IPIs); counted as sent whether or not anything is listening, and as unbound
    when no port of the guest was there to take it (Xen dropped it)."""
    guest, kernel = shown.guest, shown.kernel
    if channel.startswith("timer"):
        v = guest.domain.vcpus[int(channel.removeprefix("timer"))]
        bound = v.virq_to_evtchn[VIRQ_TIMER] != 0
        world.hosts[shown.host].send_guest_vcpu_virq(v, VIRQ_TIMER)  # send_guest_vcpu_virq
    elif channel in DEVICES:
        bound = _backend_connected(shown, channel)
        guest.backend.notify(channel)
    else:  # an IPI the guest sends itself, on its own bound port
        ipi = kernel.channels.get(channel) if kernel and not kernel.crashed else None
        if ipi is None:
            return
        bound = True
        guest.domain.evtchn_op(EVTCHNOP_send, EvtchnSend(port=ipi.port))
    world.count_sent(shown.name, channel, bound)


def _backend_connected(shown: Shown, channel: str) -> bool:
    """Whether dom0's end of ``channel`` is still interdomain-bound to a port of the guest
    (evtchn_send on an UNBOUND port returns 0 and raises nothing: fact sheet 2.2)."""
    port = shown.guest.backend.ports.get(channel)
    dom0 = shown.guest.backend.xen.dom0
    return port is not None and dom0.ports.remote_dom(port) is shown.guest.domain


def consume(world: World, shown: Shown) -> None:
    """The guest takes its pending upcalls; each handler run counts for its channel."""
    kernel = shown.kernel
    if kernel is None:
        return
    before = Counter(kernel.received)
    kernel.run()
    for channel, count in (kernel.received - before).items():
        world.count_received(shown.name, channel, count)


def traffic(world: World, shown: Shown, rounds: int) -> None:
    """Each round: the timer fires on every vCPU, dom0 notifies each device, cpu0 IPIs cpu1;
    then the guest takes its upcalls. One event per channel per round, so nothing coalesces."""
    sent, delivered = world.sent, world.delivered
    channels = [f"timer{v.vcpu_id}" for v in shown.guest.domain.vcpus] + [*DEVICES, "resched1"]
    for _ in range(rounds):
        for channel in channels:
            send(world, shown, channel)
        consume(world, shown)
    abi = shown.kernel.abi if shown.kernel and not shown.kernel.crashed else "dead"
    world.note(f"{rounds} rounds of traffic: {world.delivered - delivered} of {world.sent - sent} events "
               f"reached the {abi} kernel's handlers")
