"""The ABI switch and a guest's life cycle: what happens to pending events, save/restore, kexec.

``abi_switch``: events pending under 2-level survive init_control (the code keeps them in
``evtchn->pending``; the public header says they are lost) and reappear once the page
covering them is added (fact sheet 1.3, 2.4, 8.8). ``save_restore``: the restored FIFO
kernel re-issues init_control in the new domain and BUGs if refused (4.5).
``kexec``: a soft reset closes every port and reverts to 2-level, so the next kernel can
choose again (2.6, 4.7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..abi import XEN_DOMCTL_CDF_disable_fifo, XEN_DOMCTL_CDF_hvm, Errno, errno_name
from ..guest.kernel import KERNEL_PAGES_GFN, Kernel, KernelConfig
from ..scenario import Step, World, run
from ..toolstack import plumb
from ..trace import Trace
from .common import boot, check_params, connect_vbd, consume, create_guest, send, traffic

NEXT_KERNEL_PAGES_GFN = KERNEL_PAGES_GFN + 0x40  # a later kernel lays out its pages elsewhere


@dataclass(frozen=True)
class SwitchParams:
    """Which Xen the guest runs on."""

    xen: str = "master"
    vcpus: int = 2

    def __post_init__(self) -> None:
        check_params(self)


def abi_switch(params: SwitchParams = SwitchParams()) -> Trace:
    """A 2-level kernel leaves events pending; a FIFO kernel switches; the events come back."""
    p = params
    g = "guest"
    steps = [
        Step("create the guest", lambda w: create_guest(w, g, "host", p.xen, vcpus=p.vcpus), "host"),
        Step("2-level kernel boots (xen.fifo_events=0)", lambda w: boot(w, w.shown[g], KernelConfig(fifo_events=False), "2-level kernel"), "host"),
        Step("dom0 notifies xenstore and console", lambda w: [send(w, w.shown[g], c) for c in ("xenstore", "console")], "host"),
        Step("FIFO kernel takes over: init_control", lambda w: _switch(w, w.shown[g]), "host"),
        Step("FIFO kernel binds: expand_array re-raises", lambda w: _rebind(w, w.shown[g]), "host"),
        Step("FIFO kernel consumes", lambda w: consume(w, w.shown[g]), "host"),
        Step("traffic in FIFO mode", lambda w: traffic(w, w.shown[g], 1), "host"),
    ]
    return run("abi-switch", steps, asdict(p))


def _switch(w: World, shown) -> None:
    """A new kernel in the same domain (no reset): its init_control switches the ABI."""
    kernel = Kernel(shown.guest.domain, KernelConfig(), "FIFO kernel", NEXT_KERNEL_PAGES_GFN)
    shown.kernel = kernel
    kernel.boot()
    kept = [chn.port for chn in shown.guest.domain.ports.bound() if chn.pending]
    ports = ", ".join(map(str, kept)) or "none"
    w.note(f"Xen is now {kernel.domain.abi}: setup_ports kept the 2-level pending bits of ports {ports} "
           "in evtchn->pending; the public header says they are lost")


def _rebind(w: World, shown) -> None:
    """Binding xenstore and console adds the first (all-MASKED) page: Xen re-raises their
    events as PENDING+MASKED, and the guest's unmask (pending: EVTCHNOP_unmask) links them."""
    kernel = shown.kernel
    kernel.bind_standard_channels(shown.guest.store_evtchn, shown.guest.console_evtchn)
    connect_vbd(shown)  # the block frontend reconnects with a fresh channel


@dataclass(frozen=True)
class RestoreParams:
    """Save on ``old_xen``, restore on ``xen``; ``disable_fifo`` sets the v4 flag on the new host."""

    old_xen: str = "master"
    xen: str = "master"
    fifo_events: bool = True
    disable_fifo: bool = False
    vcpus: int = 2
    rounds: int = 2

    def __post_init__(self) -> None:
        check_params(self)


def save_restore(params: RestoreParams = RestoreParams()) -> Trace:
    """Xen save/restore: a new domain; the kernel's ABI resume hook runs there (xen_irq_resume)."""
    p = params
    new_xen = "patch-v4" if p.disable_fifo else p.xen
    steps = [
        Step("create the guest", lambda w: create_guest(w, "guest@A", "A", p.old_xen, vcpus=p.vcpus), "A"),
        Step("kernel boots", lambda w: boot(w, w.shown["guest@A"], KernelConfig(fifo_events=p.fifo_events), "linux"), "A"),
        Step("traffic before the save", lambda w: traffic(w, w.shown["guest@A"], p.rounds), "A"),
        Step("xl save: memory and state to disk", _save, "A"),
        Step("xl restore: a new domain", lambda w: _restore_domain(w, new_xen, p), "B"),
        Step("kernel resumes: xen_irq_resume", _resume_after_restore, "B"),
        Step("traffic after the restore", lambda w: traffic(w, w.shown["guest@B"], p.rounds), "B"),
    ]
    return run("save-restore", steps, asdict(p))


def _save(w: World) -> None:
    shown = w.shown.pop("guest@A")
    memory = shown.guest.domain.memory
    w.data["ram"] = {gfn: bytes(f.data) for gfn, f in memory.frames.items() if gfn < 0x100}
    w.data["kernel"] = shown.kernel.image()
    w.hosts["A"].domain_destroy(shown.guest.domain)
    w.note(f"saved {len(w.data['ram'])} frames; the {shown.kernel.abi} kernel is suspended")


def _restore_domain(w: World, version: str, p: RestoreParams) -> None:
    flags = XEN_DOMCTL_CDF_hvm | (XEN_DOMCTL_CDF_disable_fifo if p.disable_fifo else 0)
    shown = create_guest(w, "guest@B", "B", version, vcpus=p.vcpus, flags=flags)
    for gfn, data in w.data["ram"].items():
        shown.guest.domain.memory.fill(gfn, data, "restored RAM")


def _resume_after_restore(w: World) -> None:
    shown = w.shown["guest@B"]
    kernel = w.data["kernel"]
    shown.kernel = kernel
    kernel.resume_after_restore(shown.guest.domain, shown.guest.store_evtchn, shown.guest.console_evtchn)
    connect_vbd(shown)
    w.note(f"the restored kernel runs {kernel.abi}; Xen: {shown.guest.domain.abi}"
           + (f"; {kernel.crashed}" if kernel.crashed else ""))


@dataclass(frozen=True)
class KexecParams:
    """kexec on ``xen``: soft reset exists from 4.7; before it the new kernel meets old state."""

    xen: str = "master"
    vcpus: int = 2
    rounds: int = 2

    def __post_init__(self) -> None:
        check_params(self)


def kexec(params: KexecParams = KexecParams()) -> Trace:
    """kexec: SHUTDOWN_soft_reset, XEN_DOMCTL_soft_reset, then a new kernel in the same domain."""
    p = params
    g = "guest"
    steps = [
        Step("create the guest", lambda w: create_guest(w, g, "host", p.xen, vcpus=p.vcpus), "host"),
        Step("first kernel boots", lambda w: boot(w, w.shown[g], KernelConfig(), "first kernel"), "host"),
        Step("traffic", lambda w: traffic(w, w.shown[g], p.rounds), "host"),
        Step("kexec: soft reset", _soft_reset, "host"),
        Step("second kernel boots", lambda w: boot(w, w.shown[g], KernelConfig(), "second kernel", NEXT_KERNEL_PAGES_GFN), "host"),
        Step("traffic under the second kernel", lambda w: traffic(w, w.shown[g], p.rounds), "host"),
    ]
    return run("kexec", steps, asdict(p))


def _soft_reset(w: World) -> None:
    """xen_hvm_shutdown -> SHUTDOWN_soft_reset; the toolstack resets, then re-plumbs xenstore."""
    shown = w.shown["guest"]
    xen = w.hosts["host"]
    rc = xen.domain_soft_reset(shown.guest.domain)
    while rc == -Errno.ERESTART:  # the domctl continued as XEN_DOMCTL_soft_reset_cont (XSA-344)
        rc = xen.domain_soft_reset(shown.guest.domain, resuming=True)
    w.note(f"XEN_DOMCTL_soft_reset -> {errno_name(rc)}; Xen runs the domain in {shown.guest.domain.abi}")
    if rc == 0:  # every port is closed: libxl plumbs xenstore and console again
        store, console = plumb(shown.guest.backend)
        shown.guest.store_evtchn, shown.guest.console_evtchn = store, console
        w.note(f"libxl: new xenstore port {store}, console port {console}")
    shown.kernel = None
