"""The explorer's machine: a state is one flat tuple of ints; actors are programs of atomic steps.

A state holds, in this order: the shared memory the protocol uses (guest memory such as event
words, HEAD, READY and the upcall flag, plus Xen's private queue state and locks), a few ghost
slots that only the invariants read (which events are owed to the guest, which invariant
broke), and each actor's locals, program counter first. Tuples of ints hash fast and
compare exactly, which is what state hashing needs.

A ``Step`` is one atomic operation of the real code (a load, a store, a test-and-set, a
compare-and-swap, a lock taken or dropped) together with the purely local work around it.
It names the Xen or Linux function it mirrors, declares the slots it may read and write
(the partial-order reduction relies on that; ``check_footprints`` verifies it by running
steps on a recording list) and the labels it may continue at. A step with a ``Gate`` waits:
for a lock, for an upcall, or while a word is BUSY. Spinning on a compare-and-swap that
cannot succeed changes nothing, so it is modelled as waiting, and "spins forever" becomes
"waits at a quiescent state".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

State = tuple[int, ...]
Loc = int | tuple[int, str]  # a whole slot, or one named field (bits) of a slot
Run = Callable[[list[int], int], str]  # (state as a list, actor base) -> the next label
Open = Callable[[Sequence[int], int], bool]  # (state, actor base) -> may the step run now?
Touch = tuple[tuple, tuple, tuple]  # (reads, writes, sets) locations
Exact = Callable[[Sequence[int], int], Touch]  # (state, actor base) -> what the step touches from there

DONE = "done"  # the label after an actor's last step
DONE_PC = -1


class GateKind(Enum):
    """Why a step may have to wait."""

    LOCK = "lock"  # spin_lock: the lock slot holds 0 (free) or the holder's actor number + 1
    WAIT = "wait"  # a value in memory: an upcall to take, BUSY to clear


@dataclass(frozen=True)
class Gate:
    """What a gated step waits for.

    ``open`` says whether it may run now; ``at`` which slot it waits on (a lock, an upcall
    flag, a word) and ``slots`` every slot that can be. ``ahead`` means ``open`` reads only
    shared memory, so it can be judged before the actor gets there (the partial-order
    reduction uses that). ``rest`` marks an idle vCPU waiting for an upcall: where a vCPU
    ends up, not a spin.
    """

    kind: GateKind
    open: Open
    at: Callable[[Sequence[int], int], int]
    slots: frozenset[int]
    ahead: bool = False
    rest: bool = False


@dataclass(frozen=True)
class Step:
    """One atomic step of an actor, as the real code does it."""

    label: str
    text: str  # what it does, in words: "test-and-set PENDING in port 1's word"
    mirrors: str  # the file and function it mirrors: "xen/common/event_fifo.c evtchn_fifo_set_pending"
    run: Run
    reads: frozenset[Loc]
    writes: frozenset[Loc]
    nexts: tuple[str, ...]
    gate: Gate | None = None
    call: str | None = None  # a hypercall the step issues, e.g. "unmask"
    sets: frozenset[Loc] = frozenset()  # written with a fixed value, whatever was there: two such commute
    exact: Exact | None = None  # the locations this step touches from a given state, when they vary


class Code:
    """A program under construction: ``code.step(...)(function)`` appends a step."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def step(self, label: str, text: str, mirrors: str, *, nexts: Sequence[str], reads: Sequence[Loc] = (),
             writes: Sequence[Loc] = (), sets: Sequence[Loc] = (), gate: Gate | None = None,
             call: str | None = None, exact: Exact | None = None) -> Callable[[Run], Run]:
        """Append a step whose behaviour is the decorated function. ``reads``, ``writes`` and
        ``sets`` cover every location it may touch; ``exact`` narrows that down for a state."""
        def add(run: Run) -> Run:
            self.steps.append(Step(label, text, mirrors, run, frozenset(reads), frozenset(writes), tuple(nexts),
                                   gate, call, frozenset(sets), exact))
            return run
        return add


    def scope(self, suffix: str, exits: Sequence[str] = ()) -> Scope:
        """Steps whose labels get ``suffix`` (except ``exits`` and DONE): one copy of an
        operation an actor repeats, so that each copy has its own program counters."""
        return Scope(self, suffix, frozenset(exits))


class Scope:
    """``Code.step`` for one copy of an operation: its labels are suffixed, its exits are not."""

    def __init__(self, code: Code, suffix: str, exits: frozenset[str]) -> None:
        self.code, self.suffix, self.exits = code, suffix, exits

    def name(self, label: str) -> str:
        return label if label in self.exits or label == DONE else label + self.suffix

    def step(self, label: str, text: str, mirrors: str, *, nexts: Sequence[str], **kwargs) -> Callable[[Run], Run]:
        def add(run: Run) -> Run:
            table = {n: self.name(n) for n in nexts}
            self.code.step(self.name(label), text, mirrors, nexts=list(table.values()), **kwargs)(
                lambda s, a: table[run(s, a)])
            return run
        return add


class Program:
    """An actor's steps, the first one first; labels resolve to program counters."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        self.pcs = {step.label: pc for pc, step in enumerate(self.steps)}
        if len(self.pcs) != len(self.steps):
            raise ValueError("two steps share a label")
        self.pcs[DONE] = DONE_PC
        for step in self.steps:
            unknown = [n for n in step.nexts if n not in self.pcs]
            if unknown:
                raise ValueError(f"step {step.label!r} continues at unknown labels {unknown}")


@dataclass(frozen=True)
class Actor:
    """A pCPU running Xen code or a vCPU running Linux code: its program and its locals."""

    name: str  # "xen0", "linux0"
    role: str  # "Xen on pCPU 0: sends port 1 once"
    program: Program
    base: int  # the state index of its program counter; its locals follow
    size: int  # program counter + locals

    def step_at(self, state: Sequence[int]) -> Step | None:
        """The step this actor runs next, or None once it is done."""
        pc = state[self.base]
        return None if pc == DONE_PC else self.program.steps[pc]


class Layout:
    """Named slots of the state tuple, allocated in order, with their initial values.

    A slot may be split into named fields (bit masks), such as an event word's P, M, L, B and
    LINK: steps then say which fields they touch, and touching different fields commutes.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.initial: list[int] = []
        self.fields: dict[int, dict[str, int]] = {}

    def add(self, name: str, value: int = 0, fields: dict[str, int] | None = None) -> int:
        """A new slot called ``name``: its index."""
        self.names.append(name)
        self.initial.append(value)
        if fields:
            self.fields[len(self.names) - 1] = dict(fields)
        return len(self.names) - 1

    def locations(self, loc: Loc) -> list[tuple[int, str | None]]:
        """The (slot, field) pairs ``loc`` covers: a whole slot covers all its fields."""
        if isinstance(loc, tuple):
            return [loc]
        return [(loc, f) for f in self.fields[loc]] if loc in self.fields else [(loc, None)]

    def bits(self, loc: Loc) -> int:
        """The bits of the slot's value that ``loc`` covers (all of them for a whole slot)."""
        if isinstance(loc, tuple):
            return self.fields[loc[0]][loc[1]]
        return -1

    def block(self, name: str, size: int) -> int:
        """``size`` slots for an actor (program counter first): the index of the first."""
        base = len(self.names)
        for i in range(size):
            self.add(f"{name}.{i}" if i else f"{name}.pc")
        return base


class Memory(Protocol):
    """What a model's shared state knows about itself: its slots and its invariants."""

    ports: tuple[int, ...]
    vcpus: int
    viol: int
    upcall: list[int]
    owed: dict[int, int]

    def check_state(self, s: State) -> int: ...

    def check_rest(self, s: State, waiting: bool) -> int: ...

    def describe(self, s: State, bits: int) -> list[str]: ...

    def snapshot(self, s: State, upcalls: Sequence[int] = ()) -> object: ...

    def is_masked(self, s: State, port: int) -> bool: ...


@dataclass
class Model:
    """A configuration compiled for the explorer: slots, actors, and the shared state's invariants."""

    abi: str  # "fifo" or "two-level"
    config: str
    without: frozenset[str]  # the safeguards removed
    layout: Layout
    memory: int  # slots before the first actor: shared memory and ghosts
    mem: Memory
    actors: tuple[Actor, ...]

    @property
    def initial(self) -> State:
        return tuple(self.layout.initial)

    @property
    def viol(self) -> int:
        """The ghost slot holding the violation bits."""
        return self.mem.viol

    @property
    def ports(self) -> tuple[int, ...]:
        return self.mem.ports

    def check_state(self, s: State) -> int:
        """Violation bits of any state (structural invariants)."""
        return self.mem.check_state(s)

    def check_rest(self, s: State, waiting: bool) -> int:
        """Violation bits of a quiescent state (``waiting``: some actor spins)."""
        return self.mem.check_rest(s, waiting)

    def describe(self, s: State, bits: int) -> list[str]:
        """What the violations in ``bits`` mean at ``s``, in words."""
        return self.mem.describe(s, bits)

    def snapshot(self, s: State, upcalls: Sequence[int] = ()) -> object:
        """A DomainSnapshot of the guest at ``s``, for traces and views."""
        return self.mem.snapshot(s, upcalls)


def waiting(model: Model, s: State) -> list[str]:
    """At a quiescent state, the actors neither done nor resting: each spins forever."""
    out = []
    for actor in model.actors:
        step = actor.step_at(s)
        if step is not None and not (step.gate and step.gate.rest):
            kind = step.gate.kind.value if step.gate else "step"
            out.append(f"{actor.name} waits ({kind}) at {step.label}: {step.text}")
    return out
