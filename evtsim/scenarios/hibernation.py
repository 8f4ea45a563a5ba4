"""The bug of the 2020 xen-devel thread, step by step, and every way out of it.

A Linux guest boots on a Xen <= 4.3 host (no FIFO: it settles on 2-level), hibernates,
and is resumed on a newer host. There a fresh *boot kernel* starts first, switches the
domain to FIFO, loads the image and jumps into it; the *resumed kernel* still speaks
2-level, so events go into FIFO queues in frames that now hold the image. Each ``fix``
replays the same steps with one alternative from the review (fact sheet 3, 4.6, 8.10).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..abi import (
    DOMID_SELF,
    EVTCHNOP_init_control,
    EVTCHNOP_reset,
    XEN_DOMCTL_CDF_disable_fifo,
    XEN_DOMCTL_CDF_hvm,
    Errno,
    EvtchnReset,
    errno_name,
)
from ..faults import AllocSite
from ..guest.kernel import KERNEL_PAGES_GFN, FallbackPolicy, KernelConfig
from ..scenario import Step, World, run
from ..trace import Trace
from .common import boot, check_params, connect_vbd, create_guest, traffic

IMAGE_FRAMES = 0x100  # guest RAM saved in the image (covers every kernel's event pages)
#: The boot kernel's page allocator hands out other frames than the original boot did.
BOOT_KERNEL_PAGES_GFN = KERNEL_PAGES_GFN + 0x40

#: Each alternative, what it changes, and where it comes from.
FIXES = {
    "none": "no fix: Xen >= 4.4 lets the boot kernel switch to FIFO",
    "disable-fifo": "[PATCH v4] XEN_DOMCTL_CDF_disable_fifo: the FIFO ops fail with the chosen errno",
    "evtchn-fifo": "[PATCH v5] XEN_DOMCTL_CDF_evtchn_fifo left clear: the FIFO ops return -ENOSYS",
    "fifo-events-0": "xen.fifo_events=0 on the boot kernel's command line (Jan Beulich)",
    "reset": "the boot kernel issues EVTCHNOP_reset before jumping (closes every channel)",
    "fifo-off": "Xen built with CONFIG_EVTCHN_FIFO=n (upstream since 4.21): -EOPNOTSUPP",
    "qemu": "the new host is QEMU's Xen emulation on KVM: no FIFO at all",
    "xsm": "an XSM policy denies EVTCHNOP_init_control with the chosen errno",
    "enomem": "Xen runs out of memory in the first init_control (-ENOMEM)",
}
ERRNOS = ("ENOSYS", "EPERM", "EACCES", "EOPNOTSUPP", "ENOMEM")
#: The fixes whose refusal returns the chosen errno (the v4 flag's and an XSM denial's).
ERRNO_FIXES = ("disable-fifo", "xsm")


@dataclass(frozen=True)
class HibernationParams:
    """The scenario's knobs; ``xen`` is the host the guest resumes on."""

    old_xen: str = "4.3"
    xen: str = "4.4"
    fix: str = "none"
    errno: str = "ENOSYS"
    guest_fallback: str = "any"
    vcpus: int = 2
    rounds: int = 2

    def __post_init__(self) -> None:
        if self.fix not in FIXES:
            raise ValueError(f"unknown fix {self.fix!r}; choose from {', '.join(FIXES)}")
        if self.errno not in ERRNOS:
            raise ValueError(f"unknown errno {self.errno!r}; choose from {', '.join(ERRNOS)}")
        fallbacks = [policy.value for policy in FallbackPolicy]
        if self.guest_fallback not in fallbacks:
            raise ValueError(f"unknown guest fallback {self.guest_fallback!r}; choose from {', '.join(fallbacks)}")
        check_params(self)

    @property
    def new_host_version(self) -> str:
        """The Xen the new host runs: the patch rows and build variants replace ``xen``."""
        return {"disable-fifo": "patch-v4", "evtchn-fifo": "patch-v5", "fifo-off": "fifo-off",
                "qemu": "qemu"}.get(self.fix, self.xen)

    def ignored(self) -> dict[str, str]:
        """The parameters this ``fix`` does not use, each with the reason (kept in the trace)."""
        out = {}
        if self.new_host_version != self.xen:
            out["xen"] = f"fix {self.fix} runs the new host on the {self.new_host_version} row"
        if self.fix not in ERRNO_FIXES:
            out["errno"] = f"fix {self.fix} returns no chosen errno (only {' and '.join(ERRNO_FIXES)} do)"
        return out


def hibernation(params: HibernationParams = HibernationParams()) -> Trace:
    """Run the hibernate-on-old-host, resume-on-new-host story with ``params``."""
    p = params
    fallback = FallbackPolicy(p.guest_fallback)
    steps = [
        Step("create the guest on the old host", lambda w: create_guest(w, "guest@A", "A", p.old_xen, vcpus=p.vcpus), "A"),
        Step("original kernel boots", lambda w: boot(w, w.shown["guest@A"], KernelConfig(fallback=fallback), "original kernel"), "A"),
        Step("traffic on the old host", lambda w: traffic(w, w.shown["guest@A"], p.rounds), "A"),
        Step("hibernate: the image is written", _hibernate, "A"),
        Step("create the guest on the new host", lambda w: _create_on_new_host(w, p), "B"),
        Step("boot kernel starts", lambda w: _boot_kernel(w, p, fallback), "B"),
    ]
    if p.fix == "reset":
        steps.append(Step("boot kernel issues EVTCHNOP_reset", _boot_kernel_resets, "B"))
    steps += [
        Step("image loaded over guest memory", _load_image, "B"),
        Step("resumed kernel re-establishes channels", _resume, "B"),
        Step("traffic on the new host", lambda w: traffic(w, w.shown["guest@B"], p.rounds), "B"),
    ]
    return run("hibernation", steps, asdict(p), ignored=p.ignored())


def _hibernate(w: World) -> None:
    """swsusp: the kernel and every RAM frame go to disk; the old domain is destroyed."""
    shown = w.shown["guest@A"]
    memory = shown.guest.domain.memory
    if shown.kernel.crashed:
        w.note("the guest died on the old host: there is no image to resume")
    else:
        w.data["image"] = {gfn: bytes(memory.frame(gfn).data) for gfn in range(IMAGE_FRAMES)}
        w.data["kernel"] = shown.kernel.image()
        w.note(f"image: {IMAGE_FRAMES} frames and the {shown.kernel.abi} kernel; the domain is destroyed")
    w.hosts["A"].domain_destroy(shown.guest.domain)
    del w.shown["guest@A"]


def _create_on_new_host(w: World, p: HibernationParams) -> None:
    flags = XEN_DOMCTL_CDF_hvm | (XEN_DOMCTL_CDF_disable_fifo if p.fix == "disable-fifo" else 0)
    xen = w.host("B", p.new_host_version)
    errno = -Errno[p.errno]
    if p.fix == "disable-fifo":
        xen.disable_fifo_errno = errno
    if p.fix == "xsm":
        xen.xsm.deny(EVTCHNOP_init_control, Errno[p.errno])
    if p.fix == "enomem":
        xen.faults.fail(AllocSite.FIFO_INIT)
    create_guest(w, "guest@B", "B", p.new_host_version, vcpus=p.vcpus, flags=flags)
    w.note(FIXES[p.fix])


def _boot_kernel(w: World, p: HibernationParams, fallback: FallbackPolicy) -> None:
    config = KernelConfig(fifo_events=p.fix != "fifo-events-0", fallback=fallback)
    kernel = boot(w, w.shown["guest@B"], config, "boot kernel", BOOT_KERNEL_PAGES_GFN)
    chose = "panicked before choosing an ABI" if kernel.abi is None else f"chose {kernel.abi}"
    w.note(f"the boot kernel {chose}; Xen now runs this domain in {kernel.domain.abi}")


def _boot_kernel_resets(w: World) -> None:
    """The boot kernel's own way back to 2-level: EVTCHNOP_reset, which closes every port."""
    shown = w.shown["guest@B"]
    kernel = shown.kernel
    if kernel.crashed:
        return
    rc = kernel.hypercall(EVTCHNOP_reset, EvtchnReset(dom=DOMID_SELF))  # re-enters a continuation
    w.note(f"EVTCHNOP_reset -> {errno_name(rc)}; Xen now runs this domain in {kernel.domain.abi} "
           "(evtchn_reset)" + ("; every port is closed, xenstore's and the console's too" if rc == 0 else ""))


def _load_image(w: World) -> None:
    """The boot kernel copies the image into place and jumps: its own pages are overwritten."""
    shown = w.shown["guest@B"]
    if shown.kernel.crashed or "image" not in w.data:
        w.note("no image is loaded: " + ("the boot kernel died" if shown.kernel.crashed else "there is none"))
        return
    memory = shown.guest.domain.memory
    frames = [memory.fill(gfn, data, "hibernation image") for gfn, data in w.data["image"].items()]
    w.hand_over(frames)
    mapped = [f.gfn for f in frames if f.xen_mapping is not None]
    w.note(f"{len(frames)} frames now hold the image; Xen still maps {len(mapped)} of them "
           f"as event-channel structures: {', '.join(hex(g) for g in mapped) or 'none'}")


def _resume(w: World) -> None:
    shown = w.shown["guest@B"]
    if shown.kernel.crashed or "kernel" not in w.data:
        w.note("nothing to resume")
        return
    resumed = w.data["kernel"]
    resumed.name = "resumed kernel"
    resumed.resume_from_image(shown.guest.domain, shown.guest.store_evtchn, shown.guest.console_evtchn)
    shown.kernel = resumed
    connect_vbd(shown)
    w.note(f"the resumed kernel speaks {resumed.abi}; Xen runs the domain in {shown.guest.domain.abi}")

