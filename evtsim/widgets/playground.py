"""Playgrounds: one live guest on one host, a button per thing a kernel or backend does.

Unlike the hibernation dashboard, which shows the frozen records of a finished run, a playground
acts on a live guest, as a learner's own kernel code would, and shows a fresh snapshot after
each action: the FIFO queues (fifo_playground) or the 2-level bitmaps (two_level_playground).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as W

from .. import plots
from ..abi import (
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHNOP_set_priority,
    EvtchnSetPriority,
    errno_name,
)
from ..guest.kernel import Kernel, KernelConfig
from ..scenario import Shown, World
from ..scenarios.common import connect_vbd, consume, send
from ..snapshot import DomainSnapshot, snapshot_domain
from ..toolstack import xl_create
from ..trace import Call
from .canvas import Pane
from .controls import WIDE, button, dropdown, row
from .dashboard import Dashboard
from .look import CSS_DPI


class Playground(Dashboard):
    """A booted guest on one host; each button is one thing a kernel or backend does."""

    def __init__(self, fifo: bool, xen: str = "master", vcpus: int = 2) -> None:
        self.world = World()
        self.shown = _boot_guest(self.world, xen, vcpus, fifo)
        self.calls: tuple[Call, ...] = ()
        self.view = "fifo" if fifo else "two_level"  # the one view, and its pane
        inches = plots.queues.full_height(vcpus) if fifo else 8.0
        super().__init__({self.view: Pane(plots.WIDTH * CSS_DPI, inches * CSS_DPI)})
        self.snapshot = self.take_snapshot()
        draw = plots.draw_fifo_queues if fifo else plots.draw_two_level
        self.views = {self.view: draw(self.snapshot, self.panes[self.view].figure.add_subplot())}
        self.panes[self.view].changing = self.views[self.view].changing
        self.controls = _playground_controls(self.kernel, vcpus, fifo)
        self._wire(fifo)
        self.widget = self._assemble(fifo)
        self.refresh()

    @property
    def kernel(self) -> Kernel:
        return self.shown.kernel

    def _assemble(self, fifo: bool) -> W.VBox:
        c = self.controls
        rows = [row(c["port"], c["send"], c["mask"], c["unmask"], c["consume"])]
        if fifo:
            rows.append(row(c["priority"], c["set_priority"], c["vcpu"], c["bind_vcpu"]))
        return self.root(rows + [c["status"], self.panes[self.view].widget])

    def _wire(self, fifo: bool) -> None:
        actions = {"send": self.send, "mask": self.mask, "unmask": self.unmask, "consume": self.consume}
        if fifo:
            actions |= {"set_priority": self.set_priority, "bind_vcpu": self.bind_vcpu}
        for name, action in actions.items():
            self.controls[name].on_click(lambda _, name=name, action=action: self.act(name, action))

    def take_snapshot(self) -> DomainSnapshot:
        """The guest's domain, frozen, with the kernel's names for its ports."""
        labels = {c.port: c.name for c in self.kernel.channels.values()}
        return snapshot_domain(self.shown.guest.domain, name=self.shown.name, host=self.shown.host, labels=labels,
                               kernel_abi=self.kernel.abi, crashed=self.kernel.crashed)

    def act(self, name: str, action: Callable[[str], str]) -> None:
        """Run one action on the chosen channel; show the new snapshot and the last return code."""
        channel = self.controls["port"].value
        self.world.calls = []
        try:
            what = action(channel)
        except Exception as error:  # a widget callback: one line, never a traceback
            what = f"refused: {type(error).__name__}: {error}".splitlines()[0]
        self.calls = tuple(self.world.calls)
        self.controls["status"].value = html.escape(f"{name} {channel}: {_last_call(self.calls, what)}")
        self.snapshot = self.take_snapshot()
        update = plots.update_fifo_queues if self.view == "fifo" else plots.update_two_level
        update(self.views[self.view], self.snapshot)
        self.refresh()

    def describe(self) -> str:
        abi = "FIFO" if self.view == "fifo" else "2-level"
        status = html.unescape(self.controls["status"].value)
        return f"{abi} playground, {self.shown.name} on Xen {self.shown.guest.domain.xen.version.name}: {status}"

    def port(self, channel: str) -> int:
        return self.kernel.channels[channel].port

    def send(self, channel: str) -> str:
        """An event on ``channel`` from whoever raises it: Xen (timers), dom0 (devices), the guest (IPIs)."""
        send(self.world, self.shown, channel)
        return "Xen raised VIRQ_TIMER itself (send_guest_vcpu_virq)" if channel.startswith("timer") else "sent"

    def mask(self, channel: str) -> str:
        """Kernel.mask (disable_dynirq, mask_evtchn): the guest sets M in the event word (FIFO)
        or the port's evtchn_mask bit (2-level) itself."""
        self.kernel.mask(self.port(channel))
        if self.kernel.abi == "fifo":
            return "the guest set M in the event word"
        word, bit = divmod(self.port(channel), self.shown.guest.domain.shared_info.layout.bits_per_word)
        return f"the guest set bit {bit} of evtchn_mask[{word}]"

    def unmask(self, channel: str) -> str:
        """unmask_evtchn: the kernel clears the mask itself, or asks Xen when the event is pending."""
        self.kernel.unmask(self.port(channel))
        return "the guest cleared the mask itself"

    def consume(self, channel: str) -> str:
        """The guest takes its pending upcalls (every channel, not only the chosen one)."""
        before = sum(self.kernel.received.values())
        consume(self.world, self.shown)
        return f"the guest's handlers ran {sum(self.kernel.received.values()) - before} time(s)"

    def set_priority(self, channel: str) -> str:
        """EVTCHNOP_set_priority: later events on the channel go to that priority's queue."""
        arg = EvtchnSetPriority(port=self.port(channel), priority=self.controls["priority"].value)
        self.shown.guest.domain.evtchn_op(EVTCHNOP_set_priority, arg)
        return "set_priority"

    def bind_vcpu(self, channel: str) -> str:
        """Kernel.rebind_evtchn_to_cpu (xen_rebind_evtchn_to_cpu): mask, EVTCHNOP_bind_vcpu,
        unmask; on success the kernel routes the channel to that vCPU."""
        self.kernel.rebind_evtchn_to_cpu(channel, self.controls["vcpu"].value)
        return "bind_vcpu"


def _last_call(calls: tuple[Call, ...], what: str) -> str:
    """``guest: EVTCHNOP_bind_vcpu -> -EINVAL, EVTCHNOP_unmask -> 0``: the action's hypercalls,
    else what the guest did."""
    if not calls:
        return f"{what} (no hypercall)"
    return f"{calls[0].domain}: " + ", ".join(f"EVTCHNOP_{c.op} -> {errno_name(c.rc)}" for c in calls)


def _boot_guest(world: World, xen: str, vcpus: int, fifo: bool) -> Shown:
    """xl create, then a kernel boots and binds its usual channels (as scenarios/common.boot)."""
    handle = xl_create(world.host("host", xen), vcpus=vcpus)
    shown = world.show("guest", "host", handle)
    shown.kernel = Kernel(handle.domain, KernelConfig(fifo_events=fifo), "linux")
    shown.kernel.boot()
    shown.kernel.bind_standard_channels(handle.store_evtchn, handle.console_evtchn)
    connect_vbd(shown)
    return shown


def _playground_controls(kernel: Kernel, vcpus: int, fifo: bool) -> dict[str, W.Widget]:
    ports = [(f"{name} (port {c.port})", name) for name, c in kernel.channels.items()]
    controls = {"port": dropdown("channel", ports, ports[0][1], "the channel the buttons act on", "240px"),
                "send": button("send", "an event on the channel (Xen, dom0 or the guest sends it)"),
                "mask": button("mask", "the guest masks the channel (no hypercall)"),
                "unmask": button("unmask", "the guest unmasks; Xen's EVTCHNOP_unmask if it is pending"),
                "consume": button("consume", "the guest takes its upcalls, as Linux's handler does"),
                "status": W.HTML("ready: pick a channel and press a button")}
    if fifo:
        controls |= {"priority": W.IntSlider(EVTCHN_FIFO_PRIORITY_DEFAULT, min=0, max=EVTCHN_FIFO_MAX_QUEUES - 1,
                                             description="priority", style=WIDE),
                     "set_priority": button("set_priority", "EVTCHNOP_set_priority with the slider's priority"),
                     "vcpu": dropdown("vCPU", list(range(vcpus)), 0, "the vCPU for bind_vcpu", "110px"),
                     "bind_vcpu": button("bind_vcpu", "EVTCHNOP_bind_vcpu: later events go to that vCPU's queues")}
    return controls


def fifo_playground(xen: str = "master", vcpus: int = 2) -> Dashboard:
    """A live FIFO guest: send, mask, unmask, consume, set_priority and bind_vcpu, one click each."""
    return Playground(True, xen, vcpus)


def two_level_playground(xen: str = "master", vcpus: int = 2) -> Dashboard:
    """A live 2-level guest (xen.fifo_events=0): send, mask, unmask and consume, one click each."""
    return Playground(False, xen, vcpus)


__all__ = ["Playground", "fifo_playground", "two_level_playground"]
