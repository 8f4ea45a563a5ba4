"""A Linux-like guest kernel: the ABI-independent half of its event channels (events_base.c).

Models drivers/xen/events/events_base.c: xen_init_IRQ (choose the ABI's ops once, mask
every port, bring the CPUs up), bind_virq_to_irq and find_virq, bind_ipi_to_irq,
bind_evtchn_to_irq with irq startup, bind_evtchn_to_cpu, xen_rebind_evtchn_to_cpu and
xen_irq_resume; arch/x86/xen/time.c's xen_setup_timer for the timer's priority. Everything
that differs between the ABIs goes through ``self.ops`` (``events_2l.TwoLevelOps`` or
``events_fifo.FifoOps``). A kernel only talks to Xen through ``Domain.evtchn_op``, and only
reads the memory of its own domain.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, replace

from ..abi import (
    DOMID_SELF,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_bind_virq,
    EVTCHNOP_reset_cont,
    EVTCHNOP_set_priority,
    EVTCHNOP_status,
    EVTCHNSTAT_virq,
    VIRQ_TIMER,
    Abi,
    DomId,
    Errno,
    EvtchnAllocUnbound,
    EvtchnBindIpi,
    EvtchnBindVcpu,
    EvtchnBindVirq,
    EvtchnSetPriority,
    EvtchnStatus,
    Gfn,
    Port,
    errno_name,
)
from ..memory import PAGE_SIZE
from ..xen import Domain
from .config import FallbackPolicy, KernelConfig
from .consumers import Consumer, Handler
from .events_2l import TwoLevelOps
from .events_fifo import FifoOps
from .evtchn_ops import EvtchnOps
from .irq_info import Channel, MaskReason, do_mask, do_unmask

__all__ = ["IPIS", "KERNEL_PAGES_GFN", "FallbackPolicy", "Kernel", "KernelConfig", "KernelLog"]

#: Where every kernel of the same binary allocates its event-channel pages (inside guest
#: RAM, so a hibernation image that is loaded later covers them).
KERNEL_PAGES_GFN: Gfn = 0x80
#: Linux's per-CPU IPIs that evtsim binds (XEN_RESCHEDULE_VECTOR, XEN_CALL_FUNCTION_VECTOR).
IPIS = ("resched", "callfunc")
XEN_IRQ_PRIORITY_MAX = 0  # the timer's FIFO priority (xen_setup_timer)


@dataclass
class KernelLog:
    """What the kernel did, one line per action, each naming the function it models."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.lines.append(text)


class Kernel:
    """A Linux-like kernel running in ``domain`` (its ``current->domain``).

    Its ABI (``ops``) is chosen once, at boot, and never re-chosen: that is the fact the
    hibernation bug hinges on. ``crashed`` holds the BUG/panic message once it has died.
    """

    def __init__(self, domain: Domain, config: KernelConfig = KernelConfig(), name: str = "linux",
                 pages_gfn: Gfn = KERNEL_PAGES_GFN) -> None:
        self.name = name
        self.config = config
        self.ops: EvtchnOps | None = None
        self.crashed: str | None = None
        self.channels: dict[str, Channel] = {}
        self.received: Counter[str] = Counter()
        self.online_cpus: list[int] = []
        self.timer_ports = [0] * len(domain.vcpus)  # per CPU: virq_to_irq[VIRQ_TIMER], as its port
        self.log = KernelLog()
        self._next_gfn = pages_gfn  # where this boot's page allocator hands out pages
        self.attach(domain)

    # --- plumbing -----------------------------------------------------------------------

    def attach(self, domain: Domain) -> None:
        """Run in ``domain`` (again, after a resume): the ABI's views of its memory."""
        self.domain = domain
        if self.ops is not None:
            self.ops.attach(domain)

    @property
    def abi(self) -> Abi | None:
        """The ABI xen_init_IRQ chose (None before boot, or if the kernel died choosing)."""
        return self.ops.abi if self.ops is not None else None

    @property
    def consumer(self) -> Consumer | None:
        """The ABI's upcall consumer (its handle_events), reading this domain's memory."""
        return self.ops.consumer if self.ops is not None else None

    @property
    def control_gfns(self) -> dict[int, Gfn]:
        """The FIFO control-block page of each CPU (none for 2-level)."""
        return self.ops.control_gfns if self.ops is not None else {}

    @property
    def array_gfns(self) -> list[Gfn]:
        """The FIFO event-array pages, in order (none for 2-level)."""
        return self.ops.array_gfns if self.ops is not None else []

    @property
    def nr_cpus(self) -> int:
        return len(self.domain.vcpus)

    def hypercall(self, cmd: int, arg: object) -> int:
        """Issue one event-channel hypercall, logging any failure with Xen's errno.

        A reset Xen preempted comes back as -ERESTART; the vCPU re-enters it as
        EVTCHNOP_reset_cont before the kernel runs on, as hardware re-executes a continued
        hypercall (evtsim.reset).
        """
        rc = self.domain.evtchn_op(cmd, arg)
        while rc == -Errno.ERESTART:
            rc = self.domain.evtchn_op(EVTCHNOP_reset_cont, arg)
        if rc < 0:
            self.log(f"{cmd.name} -> {errno_name(rc)}")
        return rc

    def panic(self, message: str) -> None:
        """BUG()/panic(): the kernel stops; nothing it does afterwards happens."""
        self._die(message, f"kernel panic: {message}")

    def lockup(self, message: str) -> None:
        """A CPU that spins for ever with interrupts off: as dead as a panic, for the model."""
        self._die(f"lockup: {message}", f"hard LOCKUP: {message}")

    def _die(self, crashed: str, line: str) -> None:
        if self.crashed is None:
            self.crashed = crashed
            self.log(line)

    def alloc_page(self) -> Gfn:
        """__get_free_page for event-channel pages: the next gfn, zeroed."""
        gfn, self._next_gfn = self._next_gfn, self._next_gfn + 1
        self.domain.memory.fill(gfn, bytes(PAGE_SIZE), f"{self.name}: event channels")
        return gfn

    def channel_of(self, port: Port) -> Channel | None:
        """The channel bound to ``port`` (Linux's evtchn_to_irq), if any."""
        return next((c for c in self.channels.values() if c.port == port), None)

    def cpu_from_evtchn(self, port: Port) -> int:
        """cpu_from_evtchn: the CPU ``port`` is bound to; 0 for a port with no channel."""
        channel = self.channel_of(port)
        return channel.cpu if channel is not None else 0

    # --- boot: xen_init_IRQ ----------------------------------------------------------------

    def boot(self) -> None:
        """xen_init_IRQ and CPU bring-up: choose the ABI's ops, mask every port, then set up
        every further CPU (xen_evtchn_cpu_prepare)."""
        ops = self._choose_ops()
        if ops is None:
            return  # the kernel died choosing
        self.ops = ops
        ops.mask_all()
        self.online_cpus = [0]
        for cpu in range(1, self.nr_cpus):
            self._bring_up(cpu)
        self.log(f"xen_init_IRQ: {self.abi} event channels")

    def _choose_ops(self) -> EvtchnOps | None:
        """FIFO if xen.fifo_events and evtchn_fifo_init succeeds, else 2-level (or a panic,
        if the fallback policy says so)."""
        if not self.config.fifo_events:
            self.log("xen_init_IRQ: xen.fifo_events=0, using 2-level")
            return self._new_ops(TwoLevelOps)
        fifo = self._new_ops(FifoOps)
        rc = fifo.init()
        if rc == 0:
            return fifo
        if not self.config.fallback.falls_back(rc):
            self.panic(f"EVTCHNOP_init_control failed with {errno_name(rc)} and fallback is "
                       f"'{self.config.fallback.value}'")
            return None
        self.log(f"xen_init_IRQ: FIFO unavailable ({errno_name(rc)}), using 2-level")
        return self._new_ops(TwoLevelOps)

    def _new_ops(self, cls: type[EvtchnOps]) -> EvtchnOps:
        ops = cls(self)
        ops.attach(self.domain)
        return ops

    def _bring_up(self, cpu: int) -> None:
        """xen_evtchn_cpu_prepare: a CPU whose percpu_init fails (FIFO: no control block)
        stays offline."""
        if self.ops.percpu_init(cpu) < 0:
            self.log(f"cpu{cpu}: init_control failed, CPU not brought up")
            return
        self.online_cpus.append(cpu)

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
        """xen_setup_timer: bind_virq_to_irq(VIRQ_TIMER), then ask for the highest priority.

        Linux asks whatever the ABI and ignores the answer: -ENOSYS on 2-level."""
        port = self._bind_virq_timer(cpu, find=True)
        if port:
            self.hypercall(EVTCHNOP_set_priority, EvtchnSetPriority(port=port, priority=XEN_IRQ_PRIORITY_MAX))

    def _bind_virq_timer(self, cpu: int, *, find: bool) -> Port:
        """bind_virq_to_irq (on -EEXIST, find_virq looks the port up by status) or, with
        ``find`` false, restore_cpu_virqs (any error is a BUG): the timer's port, or 0."""
        if self.crashed:
            return 0
        arg = EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=cpu)
        rc = self.hypercall(EVTCHNOP_bind_virq, arg)
        port = arg.port if rc == 0 else self._find_virq(VIRQ_TIMER, cpu) if find and rc == -Errno.EEXIST else 0
        if not port:
            self.panic(f"bind_virq(VIRQ_TIMER, cpu{cpu}) failed: {errno_name(rc)}")
            return 0
        name = f"timer{cpu}"
        self.bind_evtchn(name, port, cpu)
        if name not in self.channels:
            return 0
        self.timer_ports[cpu] = port
        return port

    def _find_virq(self, virq: int, cpu: int) -> Port:
        """find_virq: scan ports with EVTCHNOP_status for the VIRQ already bound on ``cpu``."""
        for port in range(1, self.ops.max_channels()):
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
        """bind_evtchn_to_irq + irq startup: the ABI's setup, bind to ``cpu``, then unmask.

        A port that already has an IRQ keeps it (bind_evtchn_to_irq reuses the mapping), so
        a driver handed a port that another channel now holds never gets its own events.
        """
        if self.crashed:
            return
        owner = self.channel_of(port)
        if owner is not None and owner.name != name:
            self.log(f"bind_evtchn_to_irq({name}): port {port} is already {owner.name}'s")
            return
        if self.ops.setup(port) < 0:
            return
        channel = self.channels[name] = Channel(name, port)
        self.consumer.handlers[port] = self._handler(name)
        self.bind_evtchn_to_cpu(channel, cpu)
        do_unmask(self.ops, channel, MaskReason.EXPLICIT, 0)  # irq startup: enable_dynirq

    def bind_evtchn_to_cpu(self, channel: Channel, cpu: int) -> None:
        """bind_evtchn_to_cpu: the ABI's bind_to_cpu, then the channel records its CPU."""
        self.ops.bind_to_cpu(channel.port, cpu, channel.cpu)
        channel.cpu = cpu

    def _handler(self, name: str) -> Handler:
        def handler(cpu: int, port: Port) -> None:
            self.received[name] += 1
        return handler

    # --- masking and moving: do_mask, do_unmask, xen_rebind_evtchn_to_cpu -------------------

    def mask(self, port: Port) -> None:
        """disable_dynirq: mask ``port`` (mask_evtchn, for a port with no channel)."""
        if self.crashed:
            return
        self._check_port(port)
        channel = self.channel_of(port)
        if channel is None:
            self.ops.mask(port)
        else:
            do_mask(self.ops, channel, MaskReason.EXPLICIT)

    def unmask(self, port: Port, cpu: int = 0) -> None:
        """enable_dynirq, run on ``cpu``: unmask ``port`` unless another reason keeps it
        masked (unmask_evtchn, for a port with no channel); the ABI decides whether Xen is asked."""
        if self.crashed:
            return
        self._check_port(port)
        self._check_cpu(cpu)
        channel = self.channel_of(port)
        if channel is None:
            self.ops.unmask(port, cpu)
        else:
            do_unmask(self.ops, channel, MaskReason.EXPLICIT, cpu)

    def rebind_evtchn_to_cpu(self, name: str, tcpu: int, *, cpu: int = 0) -> None:
        """xen_rebind_evtchn_to_cpu, run on ``cpu``: mask, EVTCHNOP_bind_vcpu, unmask.

        The temporary mask keeps an event off the wrong vCPU while the binding changes; a
        channel masked for another reason stays masked. If Xen refuses (an IPI or a per-vCPU
        VIRQ cannot move: -EINVAL), Linux ignores it and keeps its own binding. An event
        already pending is not moved: in FIFO it stays linked on the old vCPU's queue (Xen's
        unmask finds it LINKED and does not link it again) and the old CPU consumes it; in
        2-level bind_to_cpu moved the port's bit to the new CPU's mask, and the unmask (a
        hypercall when run on another CPU) raises the upcall on the new vCPU, which takes
        it. Every guest here is taken to have the vector callback, so xen_support_evtchn_rebind()
        holds.
        """
        if not isinstance(tcpu, int):
            raise TypeError(f"tcpu must be a vCPU number (int), not {type(tcpu).__name__}")
        channel = self.channels.get(name)
        if channel is None:
            raise ValueError(f"{self.name} has no channel {name!r}; it has {', '.join(self.channels) or 'none'}")
        if self.crashed:
            return
        self._check_cpu(cpu)
        do_mask(self.ops, channel, MaskReason.TEMPORARY)
        if self.hypercall(EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=channel.port, vcpu=tcpu)) >= 0:
            self.bind_evtchn_to_cpu(channel, tcpu)
        do_unmask(self.ops, channel, MaskReason.TEMPORARY, cpu)

    def _check_port(self, port: Port) -> None:
        """A port the kernel masks or unmasks must be one its ABI can name."""
        if not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        if not 0 <= port < self.ops.max_channels():
            raise ValueError(f"port {port} is not below the {self.abi} ABI's {self.ops.max_channels()} ports")

    def _check_cpu(self, cpu: int) -> None:
        """The CPU kernel code runs on must be one of its online CPUs."""
        if not isinstance(cpu, int):
            raise TypeError(f"cpu must be an int, not {type(cpu).__name__}")
        if cpu not in self.online_cpus:
            raise ValueError(f"cpu{cpu} is not one of {self.name}'s online CPUs {self.online_cpus}")

    # --- running ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run each online CPU once: Xen delivers its pending upcall (``Vcpu.run``: not while
        it is blocked, nor on PV while upcalls are masked) into the consumer's
        __xen_evtchn_do_upcall. Returns how many events the handlers saw."""
        if self.crashed or self.consumer is None:
            return 0
        before = self.consumer.events
        for cpu in self.online_cpus:
            self.domain.vcpus[cpu].run(self.consumer.upcall)
        return self.consumer.events - before

    # --- Xen save/restore: xen_irq_resume --------------------------------------------------

    def resume_after_restore(self, domain: Domain, store_port: Port, console_port: Port) -> None:
        """xen_irq_resume in a new domain: the ABI's resume, then rebind VIRQs and IPIs.

        FIFO (evtchn_fifo_resume) re-issues init_control on every CPU and BUGs if Xen says no;
        2-level (evtchn_2l_resume) only clears its per-CPU masks. restore_cpu_virqs binds
        the timers again but does not set their priority (xen_setup_timer does not run
        again), so a FIFO timer is back at the default priority 7. The xenstore and console
        drivers bind their new ports; other frontends reconnect after.
        """
        self.attach(domain)
        before = len(self.channels)
        self._forget_ports()
        self.ops.resume()
        for cpu in self.online_cpus:
            self._bind_virq_timer(cpu, find=False)
            for ipi in IPIS:
                self.bind_ipi(ipi, cpu)
        self.bind_evtchn("xenstore", store_port)
        self.bind_evtchn("console", console_port)
        if not self.crashed:
            self.log(f"xen_irq_resume: VIRQs and IPIs rebound, xenstore and console from the new params "
                     f"({len(self.channels)} of the {before} channels so far; frontends reconnect next)")

    def _forget_ports(self) -> None:
        """The new domain's ports mean nothing yet: no channel, handler or timer port."""
        self.channels = {}
        self.consumer.handlers = {}
        self.timer_ports[:] = [0] * len(self.timer_ports)

    # --- PM hibernation: the image and the resume kernel -----------------------------------

    def image(self) -> Kernel:
        """The kernel as a hibernation image keeps it: its own state, no live views of Xen."""
        clone = copy.copy(self)
        clone.channels = {name: replace(c) for name, c in self.channels.items()}
        clone.received = Counter(self.received)
        clone.online_cpus = list(self.online_cpus)
        clone.timer_ports = list(self.timer_ports)
        clone.log = KernelLog()  # this boot's messages stay behind with the old domain
        clone.ops = self.ops.image(clone) if self.ops is not None else None
        clone.domain = None
        return clone

    def resume_from_image(self, domain: Domain, store_port: Port, console_port: Port) -> None:
        """The resumed kernel in (possibly another host's) domain: same ABI as at its boot.

        Linux never re-chooses its ABI, and the PM resume path re-establishes channels
        without the ABI's resume hook (no init_control): timer VIRQs (find_virq on -EEXIST),
        IPIs, and the xenstore and console ports from the new HVM params.
        """
        self.attach(domain)
        self._forget_ports()
        self.log(f"resume: continuing with the {self.abi} ABI chosen at this kernel's own boot")
        self.bind_standard_channels(store_port, console_port)
