"""Steps that several scenarios share: creating and booting a guest, and traffic."""

from __future__ import annotations

from collections import Counter

from ..abi import EVTCHNOP_send, VIRQ_TIMER, EvtchnSend
from ..guest.kernel import KERNEL_PAGES_GFN, Kernel, KernelConfig
from ..scenario import Shown, World
from ..toolstack import xl_create

DEVICES = ("xenstore", "console", "vbd")


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


def traffic(world: World, shown: Shown, rounds: int) -> None:
    """Each round: the timer fires on every vCPU, dom0 notifies each device, cpu0 IPIs cpu1;
    then the guest takes its upcalls. An event counts as delivered when the handler of the
    channel it was sent on ran for it (coalesced duplicates are never sent: one per round)."""
    xen = world.hosts[shown.host]
    kernel, guest = shown.kernel, shown.guest
    sent: Counter[str] = Counter()
    before = Counter(kernel.received)
    for _ in range(rounds):
        for v in guest.domain.vcpus:
            if v.virq_to_evtchn[VIRQ_TIMER]:
                xen.send_guest_vcpu_virq(v, VIRQ_TIMER)  # send_guest_vcpu_virq
                sent[f"timer{v.vcpu_id}"] += 1
        for device in DEVICES:
            if device in guest.backend.ports:
                guest.backend.notify(device)
                sent[device] += 1
        ipi = kernel.channels.get("resched1")
        if ipi and not kernel.crashed:
            guest.domain.evtchn_op(EVTCHNOP_send, EvtchnSend(port=ipi.port))
            sent["resched1"] += 1
        kernel.run()
    seen = {name: kernel.received[name] - before[name] for name in sent}
    delivered = sum(min(seen[name], count) for name, count in sent.items())
    world.sent += sum(sent.values())
    world.delivered += delivered
    lost = [name for name, count in sent.items() if seen[name] < count]
    world.note(f"{rounds} rounds of traffic: {delivered} of {sum(sent.values())} events reached the "
               f"{kernel.abi or 'dead'} kernel's handlers" + (f"; nothing on {', '.join(lost)}" if lost else ""))
