"""The canonical configurations: who runs what, on which ports, and the state they start from.

A configuration names its ports (vCPU, priority, initial bits), its actors (Xen pCPUs that
send or change a queue, guest vCPUs that consume, mask or unmask) and, for FIFO, events
already queued. ``build_model`` compiles one, with some safeguards removed, into the
explorer's ``Model``. Each canonical configuration is small enough to run exhaustively in a
second or two, and each is there for a reason given in its ``summary``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..fifo import L, M, P
from .fifo_linux import IRQ_SIZE, Consumer, irq_ops
from .fifo_memory import FifoMemory
from .fifo_xen import SET_PENDING_SIZE, bind_vcpu, sender, set_priority
from .machine import Actor, Code, Layout, Model, Program, State, waiting
from .safeguards import check_without
from .two_level import HANDLER_SIZE, SENDER_SIZE, Handler, TwoLevelMemory
from .two_level import sender as sender_2l

MODELS = ("fifo", "two-level")


@dataclass(frozen=True)
class PortSpec:
    """A bound port: its notify vCPU, FIFO priority, initial bits and what it is for."""

    port: int
    vcpu: int = 0
    priority: int = 7
    masked: bool = False
    pending: bool = False
    label: str = ""

    @property
    def word(self) -> int:
        """The FIFO event word it starts with (LINKED is added for queued ports)."""
        return (M if self.masked else 0) | (P if self.pending else 0)


@dataclass(frozen=True)
class ActorSpec:
    """One actor: ``kind`` is send, set_priority, bind_vcpu, consume or irq (mask/unmask ops)."""

    name: str
    kind: str
    port: int = 0
    events: int = 1
    value: int = 0  # set_priority's priority, bind_vcpu's vCPU, consume's vCPU
    ops: tuple[str, ...] = ()

    def role(self) -> str:
        """One line for listings and traces."""
        roles = {
            "send": f"Xen, a pCPU sending port {self.port} ({self.events}x)",
            "set_priority": f"EVTCHNOP_set_priority: port {self.port} to priority {self.value}",
            "bind_vcpu": f"EVTCHNOP_bind_vcpu: port {self.port} to vCPU {self.value}",
            "consume": f"Linux on vCPU {self.value}: takes upcalls, consumes events",
            "irq": f"Linux driver: {', '.join(self.ops)} port {self.port}",
        }
        return roles[self.kind]


@dataclass(frozen=True)
class Config:
    """A canonical configuration of one model."""

    name: str
    model: str
    summary: str
    ports: tuple[PortSpec, ...]
    actors: tuple[ActorSpec, ...]
    vcpus: int = 1
    priorities: tuple[int, ...] = (7,)
    queued: tuple[tuple[int, int, tuple[int, ...]], ...] = ()  # (vcpu, priority, ports head first)
    exercises: tuple[str, ...] = field(default=())  # safeguards this configuration is about


CONFIGS: dict[str, Config] = {c.name: c for c in (
    Config("two-senders", "fifo",
           "two Xen pCPUs send ports 1 and 2 to one queue while vCPU 0 consumes it",
           (PortSpec(1, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 1), ActorSpec("xen1", "send", 2), ActorSpec("vcpu0", "consume", value=0)),
           exercises=("cmpxchg", "clear-linked", "ready-recheck", "upcall-recheck")),
    Config("resend", "fifo",
           "port 1 is sent again while it may still be queued, port 2 in between",
           (PortSpec(1, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 1, events=2), ActorSpec("xen1", "send", 2), ActorSpec("vcpu0", "consume")),
           exercises=("linked",)),
    Config("set-priority", "fifo",
           "port 1 moves from queue 7 to queue 3 (set_priority) between two sends; port 2 stays on 7",
           (PortSpec(1, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 1, events=2), ActorSpec("prio", "set_priority", 1, value=3),
            ActorSpec("xen1", "send", 2), ActorSpec("vcpu0", "consume")),
           priorities=(3, 7), exercises=("old-tail",)),
    Config("bind-vcpu", "fifo",
           "port 1 moves from vCPU 0 to vCPU 1 (bind_vcpu) between two sends; ports 2 and 3 stay on vCPUs 0 and 1",
           (PortSpec(1, label="net"), PortSpec(2, label="blk"), PortSpec(3, vcpu=1, label="con")),
           (ActorSpec("xen0", "send", 1, events=2), ActorSpec("bind", "bind_vcpu", 1, value=1),
            ActorSpec("xen1", "send", 2), ActorSpec("xen2", "send", 3), ActorSpec("vcpu0", "consume", value=0),
            ActorSpec("vcpu1", "consume", value=1)),
           vcpus=2, exercises=("old-tail",)),
    Config("unmask-send", "fifo",
           "a driver on vCPU 1 unmasks port 1 while Xen sends it; vCPU 0 consumes",
           (PortSpec(1, masked=True, label="net"),),
           (ActorSpec("xen0", "send", 1), ActorSpec("irq", "irq", 1, ops=("unmask",)),
            ActorSpec("vcpu0", "consume")),
           vcpus=2, exercises=("clear-masked",)),
    Config("busy-tail", "fifo",
           "Xen links port 2 behind port 1 (queued, already acked) while a driver masks and unmasks port 1",
           (PortSpec(1, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 2), ActorSpec("irq", "irq", 1, ops=("mask", "unmask") * 2),
            ActorSpec("vcpu0", "consume")),
           vcpus=2, queued=((0, 7, (1,)),), exercises=("busy",)),
    Config("one-word", "two-level",
           "two Xen pCPUs send ports 1 and 2, bits of the same evtchn_pending word, to vCPU 0",
           (PortSpec(1, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 1), ActorSpec("xen1", "send", 2), ActorSpec("vcpu0", "consume")),
           exercises=("upcall-clear-first", "sel-xchg", "upcall-recheck")),
    Config("two-words", "two-level",
           "two Xen pCPUs send ports 1 and 65, in two evtchn_pending words, to vCPU 0",
           (PortSpec(1, label="net"), PortSpec(65, label="blk")),
           (ActorSpec("xen0", "send", 1), ActorSpec("xen1", "send", 65), ActorSpec("vcpu0", "consume")),
           exercises=("upcall-clear-first", "sel-xchg", "upcall-recheck")),
)}


#: Configurations kept for a finding rather than as a canonical check: Xen's real protocol
#: breaks in them (docs/races.md), and they are too big to explore whole in seconds, so
#: ``evtsim explore fifo --config pending-tail --first`` stops at the first violation.
FINDINGS: dict[str, Config] = {c.name: c for c in (
    Config("pending-tail", "fifo",
           "as busy-tail, but port 1 is still PENDING: each unmask goes through EVTCHNOP_unmask, "
           "and Xen clears MASKED whatever BUSY says",
           (PortSpec(1, pending=True, label="net"), PortSpec(2, label="blk")),
           (ActorSpec("xen0", "send", 2), ActorSpec("irq", "irq", 1, ops=("mask", "unmask") * 3),
            ActorSpec("vcpu0", "consume")),
           vcpus=2, queued=((0, 7, (1,)),), exercises=("busy",)),
)}


def configs_of(model: str, findings: bool = False) -> list[Config]:
    """The canonical configurations of ``model`` (and the findings' too), in registry order."""
    pool = [*CONFIGS.values(), *(FINDINGS.values() if findings else ())]
    return [c for c in pool if c.model == model]


def find_config(model: str, name: str | None) -> Config:
    """``name`` of ``model`` (the first configuration if None), or ValueError naming the choices."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    choices = configs_of(model, findings=True)
    if name is None:
        return choices[0]
    for c in choices:
        if c.name == name:
            return c
    raise ValueError(f"unknown configuration {name!r} of model {model}; choose from "
                     f"{', '.join(c.name for c in choices)}")


# --- compiling a configuration ---------------------------------------------------------------

Built = tuple[str, int, dict[int, int]]  # (first label, size, initial locals by offset)


def _fifo_actor(code: Code, mem: FifoMemory, spec: ActorSpec, without: frozenset[str]) -> Built:
    if spec.kind == "send":
        return sender(code, mem, spec.port, spec.events, without), SET_PENDING_SIZE, {}
    if spec.kind == "set_priority":
        set_priority(code, mem, spec.port, spec.value)
        return "set_priority", 1, {}
    if spec.kind == "bind_vcpu":
        bind_vcpu(code, mem, spec.port, spec.value)
        return "bind_vcpu", 1, {}
    if spec.kind == "consume":
        consumer = Consumer(mem, spec.value, without)
        consumer.add_to(code)
        return "idle", consumer.size, {}
    if spec.kind == "irq":
        return irq_ops(code, mem, spec.port, spec.ops, without), IRQ_SIZE, {}
    raise ValueError(f"unknown FIFO actor kind {spec.kind!r}")


def _two_level_actor(code: Code, mem: TwoLevelMemory, spec: ActorSpec, without: frozenset[str]) -> Built:
    if spec.kind == "send":
        return sender_2l(code, mem, spec.port, spec.events), SENDER_SIZE, {}
    if spec.kind == "consume":
        Handler(mem, spec.value, without).add_to(code)
        return "idle", HANDLER_SIZE, {}
    raise ValueError(f"unknown 2-level actor kind {spec.kind!r}")


def _queue_initial(layout: Layout, mem: FifoMemory, queued: Iterable[tuple[int, int, tuple[int, ...]]]) -> None:
    """Events already queued: LINKED words chained by LINK, HEAD, TAIL, READY and an upcall due."""
    init = layout.initial
    for vcpu, priority, ports in queued:
        q = mem.queue_of(vcpu, priority)
        for port, nxt in zip(ports, (*ports[1:], 0)):
            init[mem.word[port]] |= L | nxt
            init[mem.lastq[port]] = init[mem.inq[port]] = q
            init[mem.owed[port]] = 1 if init[mem.word[port]] & P else 0
        init[mem.head[q]], init[mem.tail[q]] = ports[0], ports[-1]
        init[mem.ready[vcpu]] |= 1 << priority
        init[mem.upcall[vcpu]] = 1


def build_model(config: Config, without: Iterable[str] = ()) -> Model:
    """Compile ``config`` with the safeguards in ``without`` removed."""
    removed = check_without(config.model, tuple(without))
    layout = Layout()
    if config.model == "fifo":
        priorities = (*config.priorities, *(a.value for a in config.actors if a.kind == "set_priority"))
        moves = [(a.port, "priority" if a.kind == "set_priority" else "vcpu", a.value) for a in config.actors
                 if a.kind in ("set_priority", "bind_vcpu")]
        mem: FifoMemory | TwoLevelMemory = FifoMemory(layout, config.ports, config.vcpus, priorities, moves)
        _queue_initial(layout, mem, config.queued)
        make: Callable[..., Built] = _fifo_actor
    else:
        mem = TwoLevelMemory(layout, config.ports, config.vcpus)
        make = _two_level_actor
    memory = len(layout.names)
    actors = []
    for spec in config.actors:
        code = Code()
        first, size, init = make(code, mem, spec, removed)
        program = Program(code.steps)
        base = layout.block(spec.name, size)
        layout.initial[base] = program.pcs[first]
        for offset, value in init.items():
            layout.initial[base + offset] = value
        actors.append(Actor(spec.name, spec.role(), program, base, size))
    return Model(config.model, config.name, removed, layout, memory, mem, tuple(actors))


def rest_violations(model: Model, s: State) -> int:
    """The violation bits of the quiescent state ``s``."""
    return model.check_rest(s, bool(waiting(model, s)))
