"""The upcall both ABIs share: what a Linux-like kernel runs when Xen raises an upcall.

Models drivers/xen/events/events_base.c: xen_evtchn_do_upcall (clear
``evtchn_upcall_pending``, run the ABI's handle_events, repeat while Xen set it again) and
handle_irq_for_port with the ack of the IRQ flow. Each ABI's handle_events half lives with
the rest of that ABI, as in Linux: ``events_2l.TwoLevelConsumer`` (evtchn_2l_handle_events)
and ``events_fifo.FifoConsumer`` (__evtchn_fifo_handle_events). A consumer never calls Xen;
it sees exactly what Xen wrote.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from ..abi import Abi, Gfn, Port
from ..memory import VCPU_INFO_SIZE, GuestMemory, SharedInfoLayout, SharedInfoView, VcpuInfoView

Handler = Callable[[int, Port], None]  # (cpu, port)


class Consumer(ABC):
    """What both ABIs share: the upcall loop, the ack, handlers and what each port received.

    ``received[port]`` counts dispatched events (None turns the per-port statistics off,
    like a kernel without /proc/interrupts); ``handlers[port]`` (optional) runs after the ack,
    like an IRQ handler. The shared_info and vcpu_info frames are the guest's own view.
    """

    abi: Abi

    def __init__(self, memory: GuestMemory, shared_info_gfn: Gfn, layout: SharedInfoLayout, nr_cpus: int) -> None:
        self.map_shared_info(memory, shared_info_gfn, layout, nr_cpus)
        self.handlers: dict[Port, Handler] = {}
        self.received: Counter[Port] | None = Counter()
        self.events = 0  # everything dispatched so far
        self.dispatched: list[tuple[int, Port]] = []  # (cpu, port) in order, when ``trace`` is on
        self.trace = False

    def map_shared_info(self, memory: GuestMemory, shared_info_gfn: Gfn, layout: SharedInfoLayout,
                        nr_cpus: int) -> None:
        """The guest's views of shared_info and each vCPU's vcpu_info (HYPERVISOR_shared_info,
        xen_vcpu), made again when the kernel runs in another domain after a restore."""
        frame = memory.frame(shared_info_gfn)
        self.shinfo = SharedInfoView(frame, layout)
        self.vcpu_info = [VcpuInfoView(frame, cpu * VCPU_INFO_SIZE, layout) for cpu in range(nr_cpus)]

    def run(self) -> int:
        """Take every upcall that is pending and not masked; return how many events ran."""
        before = self.events
        for cpu, info in enumerate(self.vcpu_info):
            if info.bytes[0] and not info.bytes[1]:
                self.upcall(cpu)
        return self.events - before

    def upcall(self, cpu: int) -> None:
        """__xen_evtchn_do_upcall: clear upcall_pending, handle events, repeat if re-set."""
        info = self.vcpu_info[cpu].bytes
        while True:
            info[0] = 0
            self.handle_events(cpu)
            if not info[0]:
                return

    @abstractmethod
    def handle_events(self, cpu: int) -> None:
        """The ABI's scan of what is pending (evtchn_ops->handle_events)."""

    def dispatch(self, cpu: int, port: Port) -> None:
        """handle_irq_for_port: ack (clear the pending bit), then the port's handler."""
        self.clear_pending(port)
        self.handle(cpu, port)

    def counting_only(self) -> bool:
        """Whether ``handle`` would only count: the hot loops then count locally instead."""
        return self.received is None and not self.trace and not self.handlers

    def handle(self, cpu: int, port: Port) -> None:
        """The IRQ handler's half of dispatch, after the ack: count, trace, call the handler."""
        self.events += 1
        if self.received is not None:
            self.received[port] += 1
        if self.trace:
            self.dispatched.append((cpu, port))
        if self.handlers:
            handler = self.handlers.get(port)
            if handler is not None:
                handler(cpu, port)

    @abstractmethod
    def clear_pending(self, port: Port) -> None:
        """The ack: the guest clears the port's pending state in its own memory."""
