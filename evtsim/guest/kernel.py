"""A Linux-like guest kernel: its ABI choice at boot, fallback policy, lazy event-array
growth, unmask rules, the channels it binds and the handlers that count what arrived.

Models drivers/xen/events/events_base.c (xen_init_IRQ, bind_virq_to_irq and find_virq,
bind_ipi_to_irq, bind_evtchn_to_irq, xen_irq_resume), events_fifo.c (evtchn_fifo_init,
evtchn_fifo_percpu_init, evtchn_fifo_setup / expand_array with MASKED pages,
evtchn_fifo_unmask, evtchn_fifo_resume) and events_2l.c (evtchn_2l_unmask,
evtchn_2l_resume). A kernel only ever talks to Xen through ``Domain.evtchn_op``, and only
ever reads the memory of its own domain.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import Enum

from ..abi import (
    DOMID_SELF,
    EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_virq,
    EVTCHNOP_expand_array,
    EVTCHNOP_init_control,
    EVTCHNOP_set_priority,
    EVTCHNOP_status,
    EVTCHNOP_unmask,
    EVTCHNSTAT_virq,
    VIRQ_TIMER,
    Abi,
    DomId,
    Errno,
    EvtchnAllocUnbound,
    EvtchnBindIpi,
    EvtchnBindVirq,
    EvtchnExpandArray,
    EvtchnInitControl,
    EvtchnSetPriority,
    EvtchnStatus,
    EvtchnUnmask,
    Gfn,
    Port,
    errno_name,
)
from ..fifo import M, P
from ..memory import PAGE_SIZE
from ..xen import SHARED_INFO_GFN, Domain
from .consumers import Consumer, FifoConsumer, TwoLevelConsumer

#: Where every kernel of the same binary allocates its event-channel pages (inside guest
#: RAM, so a hibernation image that is loaded later covers them).
KERNEL_PAGES_GFN: Gfn = 0x80
#: Linux's per-CPU IPIs that evtsim binds (XEN_RESCHEDULE_VECTOR, XEN_CALL_FUNCTION_VECTOR).
IPIS = ("resched", "callfunc")
XEN_IRQ_PRIORITY_MAX = 0  # the timer's FIFO priority (xen_setup_timer)
MASKED_PAGE = M.to_bytes(4, "little") * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE  # init_array_page


class FallbackPolicy(str, Enum):
    """What the kernel does when EVTCHNOP_init_control fails at boot."""

    ANY_ERROR = "any"  # Linux: any negative result -> 2-level
    ENOSYS_ONLY = "enosys-only"  # a guest that trusts only "not implemented" (the review's worry)
    NEVER = "never"  # a guest that insists on FIFO

    def falls_back(self, rc: int) -> bool:
        """Whether a failed init_control returning ``rc`` leads to 2-level (else a panic)."""
        return self is FallbackPolicy.ANY_ERROR or (self is FallbackPolicy.ENOSYS_ONLY and rc == -Errno.ENOSYS)


@dataclass(frozen=True)
class KernelConfig:
    """Boot-time choices: the ``xen.fifo_events`` parameter and the fallback policy."""

    fifo_events: bool = True
    fallback: FallbackPolicy = FallbackPolicy.ANY_ERROR


@dataclass
class Channel:
    """One bound channel as the kernel knows it: what it is for and where it is."""

    name: str
    port: Port
    cpu: int = 0


@dataclass
class KernelLog:
    """What the kernel did, one line per action, each naming the function it models."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.lines.append(text)


class Kernel:
    """A Linux-like kernel running in ``domain`` (its ``current->domain``).

    ``abi`` is chosen once, at boot, and never re-chosen: that is the fact the hibernation
    bug hinges on. ``crashed`` holds the BUG/panic message once the kernel has died.
    """

    def __init__(self, domain: Domain, config: KernelConfig = KernelConfig(), name: str = "linux",
                 pages_gfn: Gfn = KERNEL_PAGES_GFN) -> None:
        self.name = name
        self.config = config
        self.abi: Abi | None = None
        self.crashed: str | None = None
        self.channels: dict[str, Channel] = {}
        self.received: Counter[str] = Counter()
        self.control_gfns: dict[int, Gfn] = {}
        self.array_gfns: list[Gfn] = []
        self.online_cpus: list[int] = []
        self.log = KernelLog()
        self._next_gfn = pages_gfn  # where this boot's page allocator hands out pages
        self.attach(domain)

    # --- plumbing -----------------------------------------------------------------------

    def attach(self, domain: Domain) -> None:
        """Run in ``domain`` (again, after a resume): fresh views of its memory."""
        self.domain = domain
        self.consumer: Consumer | None = None
        if self.abi is not None:
            self._build_consumer()

    @property
    def nr_cpus(self) -> int:
        return len(self.domain.vcpus)

    def hypercall(self, cmd: int, arg: object) -> int:
        """Issue one event-channel hypercall, logging any failure with Xen's errno."""
        rc = self.domain.evtchn_op(cmd, arg)
        if rc < 0:
            self.log(f"{cmd.name} -> {errno_name(rc)}")
        return rc

    def panic(self, message: str) -> None:
        """BUG()/panic(): the kernel stops; nothing it does afterwards happens."""
        if self.crashed is None:
            self.crashed = message
            self.log(f"kernel panic: {message}")

    def _alloc_page(self, contents: bytes | None = None) -> Gfn:
        gfn, self._next_gfn = self._next_gfn, self._next_gfn + 1
        self.domain.memory.fill(gfn, contents or bytes(PAGE_SIZE), f"{self.name}: event channels")
        return gfn

    # --- boot: xen_init_IRQ ----------------------------------------------------------------

    def boot(self) -> None:
        """xen_init_IRQ and CPU bring-up: choose the ABI, then set up every CPU."""
        abi = Abi.TWO_LEVEL
        if self.config.fifo_events:
            rc = self._init_control(0)
            if rc == 0:
                abi = Abi.FIFO
            elif not self.config.fallback.falls_back(rc):
                self.panic(f"EVTCHNOP_init_control failed with {errno_name(rc)} and fallback is "
                           f"'{self.config.fallback.value}'")
                return  # the ABI was never chosen
            else:
                self.log(f"xen_init_IRQ: FIFO unavailable ({errno_name(rc)}), using 2-level")
        else:
            self.log("xen_init_IRQ: xen.fifo_events=0, using 2-level")
        self.abi = abi
        self._build_consumer()
        if self.abi is Abi.TWO_LEVEL:
            self._mask_all_2l()
        self.online_cpus = [0]
        for cpu in range(1, self.nr_cpus):
            self._bring_up(cpu)
        self.log(f"xen_init_IRQ: {self.abi} event channels")

    def _init_control(self, cpu: int) -> int:
        """evtchn_fifo_percpu_init / init_control_block: a fresh page for this CPU's block."""
        gfn = self.control_gfns.get(cpu) or self._alloc_page()
        self.domain.memory.fill(gfn, bytes(PAGE_SIZE), f"{self.name}: FIFO control block cpu{cpu}")
        rc = self.hypercall(EVTCHNOP_init_control, EvtchnInitControl(control_gfn=gfn, offset=0, vcpu=cpu))
        if rc == 0:
            self.control_gfns[cpu] = gfn
            if self.consumer is not None:
                self.consumer.attach_control_block(cpu, self.domain.memory.frame(gfn), 0)
        return rc

    def _bring_up(self, cpu: int) -> None:
        """xen_evtchn_cpu_prepare: a FIFO CPU needs its own control block or stays offline."""
        if self.abi is Abi.FIFO and self._init_control(cpu) < 0:
            self.log(f"cpu{cpu}: init_control failed, CPU not brought up")
            return
        self.online_cpus.append(cpu)

    def _build_consumer(self) -> None:
        cls = FifoConsumer if self.abi is Abi.FIFO else TwoLevelConsumer
        memory, layout = self.domain.memory, self.domain.shared_info.layout
        self.consumer = cls(memory, SHARED_INFO_GFN, layout, self.nr_cpus)
        if self.abi is Abi.FIFO:
            for cpu, gfn in self.control_gfns.items():
                self.consumer.attach_control_block(cpu, memory.frame(gfn), 0)
            for gfn in self.array_gfns:
                self.consumer.add_array_page(memory.frame(gfn))
        for channel in self.channels.values():
            self._route(channel)
        self.consumer.handlers = {}
        for channel in self.channels.values():
            self.consumer.handlers[channel.port] = self._handler(channel.name)

    def _mask_all_2l(self) -> None:
        """xen_evtchn_mask_all: every 2-level port starts masked (guest writes, not Xen's)."""
        mask = self.domain.shared_info.evtchn_mask
        for word in range(len(mask)):
            mask[word] = (1 << self.domain.shared_info.layout.bits_per_word) - 1

    # --- binding ---------------------------------------------------------------------------

    def bind_standard_channels(self, store_port: Port, console_port: Port) -> None:
        """What a booting guest binds: timer VIRQ and IPIs per CPU, xenstore, console."""
        for cpu in self.online_cpus:
            self.bind_virq_timer(cpu)
            for ipi in IPIS:
                self.bind_ipi(ipi, cpu)
        self.bind_evtchn("xenstore", store_port)
        self.bind_evtchn("console", console_port)

    def bind_virq_timer(self, cpu: int) -> None:
        """bind_virq_to_irq(VIRQ_TIMER): on -EEXIST, find_virq looks the port up by status."""
        if self.crashed:
            return
        arg = EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=cpu)
        rc = self.hypercall(EVTCHNOP_bind_virq, arg)
        port = arg.port if rc == 0 else self._find_virq(VIRQ_TIMER, cpu) if rc == -Errno.EEXIST else 0
        if not port:
            self.panic(f"bind_virq(VIRQ_TIMER, cpu{cpu}) failed: {errno_name(rc)}")
            return
        self.bind_evtchn(f"timer{cpu}", port, cpu)
        if self.abi is Abi.FIFO and not self.crashed:  # xen_setup_timer asks for the highest priority
            self.hypercall(EVTCHNOP_set_priority, EvtchnSetPriority(port=port, priority=XEN_IRQ_PRIORITY_MAX))

    def _find_virq(self, virq: int, cpu: int) -> Port:
        """find_virq: scan ports with EVTCHNOP_status for the VIRQ already bound on ``cpu``."""
        for port in range(1, self.domain.max_evtchns()):
            status = EvtchnStatus(dom=DOMID_SELF, port=port)
            if self.domain.evtchn_op(EVTCHNOP_status, status) < 0:
                break
            if status.status == EVTCHNSTAT_virq and status.u_virq == virq and status.vcpu == cpu:
                self.log(f"find_virq: VIRQ {virq} on cpu{cpu} is already port {port}")
                return port
        return 0

    def bind_ipi(self, name: str, cpu: int) -> None:
        """bind_ipi_to_irq: a port for one IPI vector on ``cpu``."""
        if self.crashed:
            return
        arg = EvtchnBindIpi(vcpu=cpu)
        rc = self.hypercall(EVTCHNOP_bind_ipi, arg)
        if rc < 0:
            self.panic(f"bind_ipi({name}, cpu{cpu}) failed: {errno_name(rc)}")
            return
        self.bind_evtchn(f"{name}{cpu}", arg.port, cpu)

    def alloc_unbound(self, name: str, remote_dom: DomId) -> Port:
        """xenbus_alloc_evtchn: a port a backend in ``remote_dom`` will bind to (0 on failure)."""
        if self.crashed:
            return 0
        arg = EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=remote_dom)
        if self.hypercall(EVTCHNOP_alloc_unbound, arg) < 0:
            return 0
        self.bind_evtchn(name, arg.port)
        return arg.port

    def bind_evtchn(self, name: str, port: Port, cpu: int = 0) -> None:
        """bind_evtchn_to_irq + irq startup: set the port up for the ABI, then unmask it.

        A port that already has an IRQ keeps it (bind_evtchn_to_irq reuses the mapping), so
        a driver handed a port that another channel now holds never gets its own events.
        """
        if self.crashed:
            return
        owner = next((c.name for c in self.channels.values() if c.port == port and c.name != name), None)
        if owner is not None:
            self.log(f"bind_evtchn_to_irq({name}): port {port} is already {owner}'s")
            return
        if self.abi is Abi.FIFO and not self._fifo_setup(port):
            return
        channel = self.channels[name] = Channel(name, port, cpu)
        self._route(channel)
        self.consumer.handlers[port] = self._handler(name)
        self.unmask(port)

    def _fifo_setup(self, port: Port) -> bool:
        """evtchn_fifo_setup: expand_array with all-MASKED pages until ``port`` has a word."""
        while port >= len(self.array_gfns) * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE:
            gfn = self._alloc_page(MASKED_PAGE)
            rc = self.hypercall(EVTCHNOP_expand_array, EvtchnExpandArray(array_gfn=gfn))
            if rc < 0:
                if not self.array_gfns:
                    self.panic(f"unable to expand event array with initial page ({errno_name(rc)})")
                return False
            self.array_gfns.append(gfn)
            self.consumer.add_array_page(self.domain.memory.frame(gfn))
        return True

    def _route(self, channel: Channel) -> None:
        if isinstance(self.consumer, TwoLevelConsumer):
            self.consumer.bind_to_cpu(channel.port, channel.cpu)
            if channel.name.startswith("timer"):
                self.consumer.timer_port[channel.cpu] = channel.port

    def _handler(self, name: str):
        def handler(cpu: int, port: Port) -> None:
            self.received[name] += 1
        return handler

    # --- unmask: the guest's rules ---------------------------------------------------------

    def unmask(self, port: Port) -> None:
        """unmask_evtchn for this kernel's ABI (it runs on cpu 0)."""
        if self.abi is Abi.FIFO:
            self._fifo_unmask(port)
        else:
            self._2l_unmask(port)

    def _fifo_unmask(self, port: Port) -> None:
        """evtchn_fifo_unmask: clear M only if not pending; else ask Xen (EVTCHNOP_unmask)."""
        where = self.consumer.word_index(port)
        if where is None:
            return
        page, index = where
        if page[index] & P:
            self.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
        else:
            page[index] &= ~M

    def _2l_unmask(self, port: Port) -> None:
        """evtchn_2l_unmask: another CPU's port, or a pending one on HVM, needs Xen's help."""
        shinfo = self.domain.shared_info
        bits = shinfo.layout.bits_per_word
        word, bit = divmod(port, bits)
        channel_cpu = next((c.cpu for c in self.channels.values() if c.port == port), 0)
        if channel_cpu != 0:
            self.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
            return
        shinfo.evtchn_mask[word] &= ~(1 << bit)
        if not shinfo.evtchn_pending[word] >> bit & 1:
            return
        if self.domain.is_hvm:  # re-mask and let Xen raise the upcall
            shinfo.evtchn_mask[word] |= 1 << bit
            self.hypercall(EVTCHNOP_unmask, EvtchnUnmask(port=port))
        else:  # PV: re-inject the edge by hand
            info = self.domain.vcpus[0].vcpu_info
            info.sel[0] |= 1 << word
            info.bytes[0] = 1

    # --- running ---------------------------------------------------------------------------

    def run(self) -> int:
        """Take pending upcalls; return how many events the handlers saw."""
        if self.crashed or self.consumer is None:
            return 0
        return self.consumer.run()

    # --- Xen save/restore: xen_irq_resume --------------------------------------------------

    def resume_after_restore(self, domain: Domain, store_port: Port, console_port: Port) -> None:
        """xen_irq_resume in a new domain: the ABI's resume, then rebind VIRQs and IPIs.

        FIFO (evtchn_fifo_resume) re-issues init_control on every CPU and BUGs if Xen says no;
        2-level (evtchn_2l_resume) only clears its per-CPU masks. Frontends reconnect after.
        """
        self.attach(domain)
        old = self.channels
        self.channels = {}
        if self.abi is Abi.FIFO:
            self.array_gfns = []
            self._build_consumer()
            for cpu in self.online_cpus:
                rc = self._init_control(cpu)
                if rc < 0:
                    self.panic(f"evtchn_fifo_resume: init_control(cpu{cpu}) -> {errno_name(rc)}")
                    return
        else:
            self._build_consumer()
        self.bind_standard_channels(store_port, console_port)
        self.log(f"xen_irq_resume: VIRQs and IPIs rebound, xenstore and console from the new params "
                 f"({len(self.channels)} of the {len(old)} channels so far; frontends reconnect next)")

    # --- PM hibernation: the image and the resume kernel -----------------------------------

    def image(self) -> Kernel:
        """The kernel as a hibernation image keeps it: its own state, no live views of Xen."""
        clone = copy.copy(self)
        clone.channels = {name: replace(c) for name, c in self.channels.items()}
        clone.received = Counter(self.received)
        clone.control_gfns = dict(self.control_gfns)
        clone.array_gfns = list(self.array_gfns)
        clone.online_cpus = list(self.online_cpus)
        clone.log = KernelLog()  # this boot's messages stay behind with the old domain
        clone.domain, clone.consumer = None, None
        return clone

    def resume_from_image(self, domain: Domain, store_port: Port, console_port: Port) -> None:
        """The resumed kernel in (possibly another host's) domain: same ABI as at its boot.

        Linux never re-chooses its ABI, and the PM resume path re-establishes channels
        without the ABI's resume hook (no init_control): timer VIRQs (find_virq on -EEXIST),
        IPIs, and the xenstore and console ports from the new HVM params.
        """
        self.attach(domain)
        self.channels = {}
        self._build_consumer()
        self.log(f"resume: continuing with the {self.abi} ABI chosen at this kernel's own boot")
        self.bind_standard_channels(store_port, console_port)
