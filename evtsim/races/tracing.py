"""A schedule as an evtsim ``Trace``: one record per atomic step, replayable from the file.

Each record names the actor and the step ("xen1: LINKED? then set the tail's LINK to 2
(compare-and-swap)"), and its notes say which Xen or Linux function the step mirrors, what it
read and what it wrote (slot, old value, new value; event words as their P/M/L/B flags and
LINK). Its snapshot is the guest as evtsim's views draw it (FIFO queues or 2-level bitmaps),
so ``evtsim show``, ``evtsim.plots`` and the widgets read it like any scenario's trace. The
trace's ``meta`` keeps the model, configuration, removed safeguards and schedule (actor names),
so ``replay`` can run it again and check that every record comes out the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..trace import Call, ChannelCount, Outcome, Record, Trace
from .configs import build_model, find_config, rest_violations
from .fifo_memory import word_text
from .invariants import Violation, by_title, lost_ports, violations
from .machine import Actor, Model, State, Step, waiting

EXPLORER = "evtsim.races"


@dataclass(frozen=True)
class Move:
    """One executed step: who, which step, and the states around it."""

    actor: Actor
    step: Step
    before: State
    after: State


def replay_schedule(m: Model, schedule: Sequence[int]) -> list[Move]:
    """Run ``schedule`` (actor indices) from the initial state; ValueError if a step cannot run."""
    s, moves = m.initial, []
    for n, i in enumerate(schedule):
        if not 0 <= i < len(m.actors):
            raise ValueError(f"step {n}: there is no actor {i}")
        actor = m.actors[i]
        step = actor.step_at(s)
        if step is None or (step.gate and not step.gate.open(s, actor.base)):
            raise ValueError(f"step {n}: {actor.name} cannot run here")
        nxt = list(s)
        nxt[actor.base] = actor.program.pcs[step.run(nxt, actor.base)]
        moves.append(Move(actor, step, s, tuple(nxt)))
        s = tuple(nxt)
    return moves


def to_trace(m: Model, schedule: Sequence[int], violation: str | None = None) -> Trace:
    """The trace of ``schedule`` on ``m``; ``violation`` (a title) is what it is meant to show."""
    moves = replay_schedule(m, schedule)
    counts = _Counts(m)
    records = []
    for index, move in enumerate(moves):
        events = counts.step(move)
        records.append(Record(index, f"{move.actor.name}: {move.step.text}", "", _calls(move), _notes(m, move),
                              counts.sent, counts.delivered, 0, (m.snapshot(move.after, counts.upcalls),), events))
    final = moves[-1].after if moves else m.initial
    bits = _bits_at(m, final)
    if records:
        last = records[-1]
        records[-1] = Record(last.index, last.step, last.host, last.calls, (*last.notes, *_verdict_notes(m, final, bits)),
                             last.sent, last.delivered, last.stray_writes, last.domains)
    shown = by_title(violation) if violation else (violations(bits) or [None])[0]
    return Trace(f"races/{m.abi}/{m.config}", (("model", m.abi), ("config", m.config),
                                                ("without", ",".join(sorted(m.without)) or "none")),
                 tuple(records), _outcome(m, final, shown, counts, len(records)),
                 (("explorer", EXPLORER), ("schedule", " ".join(m.actors[i].name for i in schedule)),
                  ("violation", shown.title if shown else "none")))


def replay(trace: Trace) -> Trace:
    """Run a saved counterexample again from its ``meta``; the result equals ``trace`` if it is genuine."""
    meta, params = dict(trace.meta), dict(trace.params)
    if meta.get("explorer") != EXPLORER:
        raise ValueError("not a trace the explorer wrote (no 'explorer' in its meta)")
    without = [] if params.get("without", "none") == "none" else params["without"].split(",")
    m = build_model(find_config(params.get("model", ""), params.get("config")), without)
    names = {a.name: i for i, a in enumerate(m.actors)}
    schedule = []
    for name in meta.get("schedule", "").split():
        if name not in names:
            raise ValueError(f"the schedule names {name!r}, which configuration {m.config} has no actor called")
        schedule.append(names[name])
    shown = meta.get("violation", "none")
    return to_trace(m, schedule, None if shown == "none" else shown)


# --- the pieces of a record ------------------------------------------------------------------

class _Counts:
    """Events sent and handled so far, and upcalls raised per vCPU, as the records report them."""

    def __init__(self, m: Model) -> None:
        self.m = m
        self.sent = self.delivered = 0
        self.upcalls = [0] * _vcpus(m)

    def step(self, move: Move) -> tuple[ChannelCount, ...]:
        """Count ``move``; the events it sent or had handled, as a record's ``channels``."""
        label = move.step.label.split(".")[0]
        owed = self.m.mem.owed
        if label == "notify":
            self.sent += 1
            port = next(p for p in self.m.ports if self.m.mem.notify[p] in move.step.reads)
            return (self._channel(port, sent=1),)
        if label == "ack":
            self.delivered += 1
            port = next(p for p in self.m.ports if move.before[owed[p]] and not move.after[owed[p]])
            return (self._channel(port, delivered=1),)
        if label == "mark":
            for v, slot in enumerate(self.m.mem.upcall):
                if not move.before[slot] and move.after[slot]:
                    self.upcalls[v] += 1
        return ()

    def _channel(self, port: int, sent: int = 0, delivered: int = 0) -> ChannelCount:
        label = self.m.mem.labels.get(port) or f"port {port}"
        return ChannelCount("guest", "", label, sent, 0, delivered)


def _calls(move: Move) -> tuple[Call, ...]:
    return (Call("guest", move.step.call, 0),) if move.step.call else ()


def _notes(m: Model, move: Move) -> tuple[str, ...]:
    """What the step mirrors, what it read, what it changed."""
    notes = [f"mirrors {move.step.mirrors}"]
    reads = _read_slots(m, move)
    if reads:
        notes.append("read " + ", ".join(f"{m.layout.names[i]} = {_show(m, i, move.before[i])}" for i in reads))
    changed = [i for i in range(m.memory) if i != m.viol and move.before[i] != move.after[i]]
    for i in changed:
        notes.append(f"wrote {m.layout.names[i]}: {_show(m, i, move.before[i])} -> {_show(m, i, move.after[i])}")
    return tuple(notes)


def _read_slots(m: Model, move: Move) -> list[int]:
    """The memory slots the step read (exactly, where the step can say), ghosts left out."""
    step = move.step
    reads = step.exact(move.before, move.actor.base)[0] if step.exact else step.reads
    slots = sorted({loc[0] if isinstance(loc, tuple) else loc for loc in reads})
    return [i for i in slots if not m.layout.names[i].startswith(("owed", "inq", "violations"))]


def _show(m: Model, slot: int, value: int) -> str:
    name = m.layout.names[slot]
    if name.startswith("word["):
        return word_text(value) or "0"
    if name.startswith(("ready", "evtchn_", "lock")):
        return hex(value)
    return str(value)


def _bits_at(m: Model, s: State) -> int:
    bits = s[m.viol] | m.check_state(s)
    if not _enabled(m, s):
        bits |= rest_violations(m, s)
    return bits


def _enabled(m: Model, s: State) -> bool:
    for actor in m.actors:
        step = actor.step_at(s)
        if step is not None and (step.gate is None or step.gate.open(s, actor.base)):
            return True
    return False


def _verdict_notes(m: Model, s: State, bits: int) -> list[str]:
    notes = [f"violation: {v.title}: {v.meaning}" for v in violations(bits)]
    notes += m.describe(s, bits)
    if bits & Violation.SPINS_FOREVER.bit:
        notes += waiting(m, s)
    return notes


def _outcome(m: Model, s: State, shown: Violation | None, counts: _Counts, steps: int) -> Outcome:
    """The trace's outcome, computed from the final state."""
    last = steps - 1 if steps else None
    if shown is None:
        return Outcome("works", counts.sent, counts.delivered, 0, None, 0, (), None, None, None)
    lost = len(lost_ports(m.mem, s))
    losing = shown.verdict == "events lost"
    crash = f"{shown.title}: " + "; ".join(waiting(m, s)) if shown.verdict == "guest crash" else None
    return Outcome(shown.verdict, counts.sent, counts.delivered, lost if losing else 0, last if losing else None, 0,
                   (), last if shown.verdict == "memory corrupted" else None, crash,
                   last if crash else None)


def _vcpus(m: Model) -> int:
    return m.mem.vcpus
