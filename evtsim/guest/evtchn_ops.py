"""``struct evtchn_ops``: the half of a Linux-like kernel that differs between the two ABIs.

Models drivers/xen/events/events_internal.h (struct evtchn_ops and its wrappers) as Linux
fills it in events_2l.c (``evtchn_ops_2l``) and events_fifo.c (``evtchn_ops_fifo``).
xen_init_IRQ picks one of them once, at boot, and nothing ever picks again; the rest of
the kernel (``kernel.Kernel``, events_base.c) calls only these ops, never asks which ABI
it runs. Each op's ``consumer`` is that ABI's handle_events and clear_pending, with the
per-CPU state they keep.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from ..abi import Abi, Gfn, Port
from ..memory import GuestMemory, SharedInfoLayout
from ..xen import SHARED_INFO_GFN, Domain
from .consumers import Consumer

if TYPE_CHECKING:
    from .kernel import Kernel


class EvtchnOps(ABC):
    """One ABI's ops for ``kernel``: bookkeeping that is the kernel's own, plus a consumer
    whose views point into the memory of the domain the kernel runs in (``attach``).

    ``control_gfns`` and ``array_gfns`` are the pages this ABI hands to Xen: FIFO control
    blocks by CPU and the event-array pages the kernel owns, in order; the 2-level ABI hands
    Xen none.
    """

    abi: ClassVar[Abi]
    consumer: Consumer

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.consumer = None  # type: ignore[assignment]  # until attach
        self.control_gfns: dict[int, Gfn] = {}
        self.array_gfns: list[Gfn] = []

    # --- the model's plumbing: which domain's memory the views point into ----------------

    def attach(self, domain: Domain) -> None:
        """Point the consumer's views into ``domain``'s memory, keeping its per-CPU state."""
        layout, nr_cpus = domain.shared_info.layout, len(domain.vcpus)
        if self.consumer is None:
            self.consumer = self.new_consumer(domain.memory, layout, nr_cpus)
        else:
            self.consumer.map_shared_info(domain.memory, SHARED_INFO_GFN, layout, nr_cpus)

    @abstractmethod
    def new_consumer(self, memory: GuestMemory, layout: SharedInfoLayout, nr_cpus: int) -> Consumer:
        """This ABI's handle_events over ``memory``, with fresh per-CPU state."""

    def image(self, kernel: Kernel) -> EvtchnOps:
        """The ops as a hibernation image keeps them (for ``kernel``, the image's kernel):
        the ABI's own bookkeeping, copied; no consumer, since it holds views of a domain."""
        clone = copy.copy(self)
        clone.kernel, clone.consumer = kernel, None  # type: ignore[assignment]
        clone.control_gfns, clone.array_gfns = dict(self.control_gfns), list(self.array_gfns)
        return clone

    # --- the ops, as struct evtchn_ops names them ------------------------------------------

    @abstractmethod
    def max_channels(self) -> int:
        """max_channels: the most ports this ABI can ever name."""

    @abstractmethod
    def nr_channels(self) -> int:
        """nr_channels: the ports usable now (xen_init_IRQ masks each of them at boot)."""

    def setup(self, port: Port) -> int:
        """setup: ABI work before ``port`` is unmasked and used; 0 or -errno.

        xen_evtchn_port_setup returns 0 when the ABI has no setup op (2-level)."""
        return 0

    @abstractmethod
    def bind_to_cpu(self, port: Port, cpu: int, old_cpu: int) -> None:
        """bind_to_cpu: the guest's side of moving ``port`` from ``old_cpu`` to ``cpu``."""

    @abstractmethod
    def is_pending(self, port: Port) -> bool:
        """is_pending (test_evtchn): the port's pending state in guest memory."""

    @abstractmethod
    def mask(self, port: Port) -> None:
        """mask (mask_evtchn): the guest sets the mask itself, no hypercall."""

    def mask_all(self) -> None:
        """xen_init_IRQ's "no event channels are 'live' right now": mask each of the
        nr_channels ports (in older kernels the helper xen_evtchn_mask_all)."""
        for port in range(self.nr_channels()):
            self.mask(port)

    @abstractmethod
    def unmask(self, port: Port, cpu: int) -> None:
        """unmask (unmask_evtchn), run on ``cpu``: clear the mask, asking Xen when needed."""

    @abstractmethod
    def resume(self) -> None:
        """resume (xen_evtchn_resume): first thing xen_irq_resume does in the new domain."""

    def percpu_init(self, cpu: int) -> int:
        """percpu_init (xen_evtchn_cpu_prepare): per-CPU set-up before ``cpu`` comes online.

        0 when the ABI has no such op (2-level)."""
        return 0
