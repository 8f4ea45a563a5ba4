"""Check that every step does what it declares: the partial-order reduction trusts the declarations.

A step's ``reads``, ``writes`` and ``sets`` (and ``exact``, for a given state) say which slots and
fields it may touch; ``nexts`` where it may continue. ``audit`` runs each enabled step of each
given state on a list that records every index read and written, and reports any access outside
the declaration, any changed bit outside the declared fields, any label outside ``nexts``, and
any exact footprint wider than the static one. The tests audit every state of every canonical
configuration, with each safeguard removed in turn.
"""

from __future__ import annotations

from collections.abc import Iterable

from .machine import Actor, Loc, Model, State, Step


class RecordingList(list):
    """A list that remembers which indices were read and written."""

    def __init__(self, values: Iterable[int]) -> None:
        super().__init__(values)
        self.read: set[int] = set()
        self.written: set[int] = set()

    def __getitem__(self, index):  # type: ignore[override]
        self.read.add(index)
        return super().__getitem__(index)

    def __setitem__(self, index, value) -> None:  # type: ignore[override]
        self.written.add(index)
        super().__setitem__(index, value)


def audit(model: Model, states: Iterable[State]) -> list[str]:
    """Every breach of a declaration seen while running the enabled steps of ``states``."""
    problems: list[str] = []
    for s in states:
        for actor in model.actors:
            step = actor.step_at(s)
            if step is None or (step.gate and not step.gate.open(s, actor.base)):
                continue
            problems += _audit_step(model, actor, step, s)
    return problems


def _audit_step(model: Model, actor: Actor, step: Step, s: State) -> list[str]:
    where = f"{actor.name}:{step.label}"
    touch = step.exact(s, actor.base) if step.exact else (tuple(step.reads), tuple(step.writes), tuple(step.sets))
    problems = _wider(model, where, step, touch)
    m = RecordingList(s)
    label = step.run(m, actor.base)
    if label not in step.nexts:
        problems.append(f"{where} continued at {label!r}, not among {step.nexts}")
    shared = range(model.memory)
    allowed_reads = _slots(touch[0]) | _slots(touch[1]) | _slots(touch[2])
    for i in sorted(m.read):
        if isinstance(i, int) and i in shared and i != model.viol and i not in allowed_reads:
            problems.append(f"{where} read {model.layout.names[i]}, which it does not declare")
    for i in shared:
        if i == model.viol or m[i] == s[i]:
            continue
        bits = _declared_bits(model, i, (*touch[1], *touch[2]))
        if bits is None:
            problems.append(f"{where} wrote {model.layout.names[i]}, which it does not declare")
        elif (m[i] ^ s[i]) & ~bits:
            problems.append(f"{where} changed bits {(m[i] ^ s[i]) & ~bits:#x} of {model.layout.names[i]} "
                            f"outside the fields it declares")
    return problems


def _wider(model: Model, where: str, step: Step, touch: tuple) -> list[str]:
    """An exact footprint must stay within the static one (the futures are built from that)."""
    out = []
    for got, static, what in zip(touch, (step.reads, step.writes, step.sets), ("reads", "writes", "sets")):
        covered = {pair for loc in static for pair in model.layout.locations(loc)}
        for loc in got:
            if not set(model.layout.locations(loc)) <= covered:
                out.append(f"{where}: exact {what} {loc} is not in its static {what}")
    return out


def _slots(locs: Iterable[Loc]) -> set[int]:
    return {loc[0] if isinstance(loc, tuple) else loc for loc in locs}


def _declared_bits(model: Model, slot: int, locs: Iterable[Loc]) -> int | None:
    """The bits of ``slot`` that ``locs`` allow to change, or None if none of them is this slot."""
    bits = None
    for loc in locs:
        if (loc[0] if isinstance(loc, tuple) else loc) == slot:
            bits = (bits or 0) | model.layout.bits(loc)
    return bits
