"""At least 100,000 random steps over every row of ``XEN_VERSIONS``, replayable from a printed seed.

Each episode is one host running one row, with dom0 and two guests on it: a FIFO guest and a
2-level guest where the row has FIFO, two 2-level guests where it has not. Each guest is a
machine of ``event_channel_model``: binds, sends, masks, closes, vCPU moves, priorities, array
pages, resets and the next kernel's ABI set-up, XSM denials, failed allocations, and its
consumer, all checked after every step against the model's invariants (no event lost or
invented, pending and mask bits as the model says, sound FIFO queues, Xen's view of each port).

The walk draws from ``random.Random(seed)``. The seed is fresh each run (``EVTSIM_WALK_SEED``
fixes it) and printed; a failure names it with the row, episode and step, and the same seed
replays the same walk. ``EVTSIM_WALK_STEPS`` changes the number of steps (at least one episode
per row).
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from event_channel_model import ARGS, EventChannelMachine, FifoMachine, TwoLevelMachine
from hypothesis.stateful import INITIALIZE_RULE_MARKER, INVARIANT_MARKER, RULE_MARKER

from evtsim import XEN_VERSIONS, Xen

STEPS = int(os.environ.get("EVTSIM_WALK_STEPS", "100000"))
EPISODE_STEPS = 250  # then a fresh host: creation and boot are steps worth repeating
#: How often a rule is picked, against 1 for the others: more events, fewer resets (each reset
#: closes every port, so frequent ones would keep the walk near an empty table).
WEIGHTS = {"backend_sends": 3, "guest_sends_ipi": 2, "xen_timer_fires": 2, "guest_consumes": 2,
           "guest_resets": 0.25, "guest_pokes_a_free_port": 0.5, "xsm_denies_a_hypercall": 0.5,
           "a_port_bucket_allocation_fails": 0.5}
SEED_VARIABLE = "EVTSIM_WALK_SEED"


@dataclass(frozen=True)
class Action:
    """A rule of a machine class, read from its Hypothesis decorators: name, guards, arguments."""

    name: str
    function: Callable[..., None]
    preconditions: tuple[Callable[[object], bool], ...]
    arguments: tuple[str, ...]

    def enabled(self, machine: EventChannelMachine) -> bool:
        return all(check(machine) for check in self.preconditions)

    def play(self, machine: EventChannelMachine, rng: random.Random, log: list[str]) -> None:
        """Call the rule with arguments drawn as ``ARGS`` says, logging the call first."""
        drawn = {name: ARGS[name].draw(rng) for name in self.arguments}
        log.append(f"dom{machine.guest.domain_id} ({type(machine).__name__}) "
                   f"{self.name}({', '.join(f'{k}={v!r}' for k, v in drawn.items())})")
        self.function(machine, **drawn)


def decorated(cls: type, marker: str) -> list:
    """What Hypothesis attached to ``cls``'s methods under ``marker`` (rules, invariants...)."""
    found = [getattr(getattr(cls, name), marker) for name in dir(cls) if hasattr(getattr(cls, name), marker)]
    assert found, f"{cls.__name__} has no {marker}: has Hypothesis renamed its markers?"
    return found


def actions(cls: type) -> list[Action]:
    return [Action(r.function.__name__, r.function, tuple(r.preconditions), tuple(r.arguments))
            for r in decorated(cls, RULE_MARKER)]


def invariants(cls: type) -> list[Callable[[object], None]]:
    return [i.function for i in decorated(cls, INVARIANT_MARKER)]


def start(machine: EventChannelMachine, rng: random.Random) -> None:
    """The machine's @initialize rules, with drawn arguments, as Hypothesis runs them first."""
    for init in decorated(type(machine), INITIALIZE_RULE_MARKER):
        init.function(machine, **{name: ARGS[name].draw(rng) for name in init.arguments})


def guests_for(xen: Xen) -> list[EventChannelMachine]:
    """Two guests on one host: FIFO and 2-level where the row can run FIFO, else two 2-level."""
    kinds = (FifoMachine, TwoLevelMachine) if xen.version.fifo_available else (TwoLevelMachine, TwoLevelMachine)
    return [kind(xen) for kind in kinds]


def episode(row: str, rng: random.Random, steps: int, log: list[str]) -> None:
    """One host of ``row``: create and boot both guests, then ``steps`` random rules among them,
    every invariant of the guest that moved checked after each."""
    xen = Xen(row, recording="full")
    machines = guests_for(xen)
    for machine in machines:
        start(machine, rng)
        check(machine)
    plays = {type(m): actions(type(m)) for m in machines}
    for _ in range(steps):
        machine = rng.choice(machines)
        enabled = [a for a in plays[type(machine)] if a.enabled(machine)]
        action = rng.choices(enabled, [WEIGHTS.get(a.name, 1) for a in enabled])[0]
        action.play(machine, rng, log)
        check(machine)


def check(machine: EventChannelMachine) -> None:
    for invariant in invariants(type(machine)):
        invariant(machine)


def walk_seed() -> int:
    text = os.environ.get(SEED_VARIABLE)
    return int(text) if text else secrets.randbits(32)


def test_at_least_100000_random_steps_over_every_xen_row_keep_every_invariant():
    """Models the same Xen and Linux functions as tests/test_stateful.py, on every row."""
    seed = walk_seed()
    print(f"random walk: {STEPS} steps, seed {seed} (replay: {SEED_VARIABLE}={seed} pytest {__file__})")
    rng = random.Random(seed)
    per_row = max(EPISODE_STEPS, -(-STEPS // len(XEN_VERSIONS)))
    for row in XEN_VERSIONS:
        for number, start_step in enumerate(range(0, per_row, EPISODE_STEPS)):
            log: list[str] = []
            try:
                episode(row, rng, min(EPISODE_STEPS, per_row - start_step), log)
            except Exception as e:
                recent = "\n  ".join(log[-8:])
                pytest.fail(f"{SEED_VARIABLE}={seed}: Xen row {row}, episode {number}, step {len(log)}: "
                            f"{type(e).__name__}: {e}\nlast steps:\n  {recent}", pytrace=True)


def test_the_same_seed_replays_the_same_walk():
    """What makes a printed seed worth printing: the walk is a function of it."""
    logs = []
    for _ in range(2):
        log: list[str] = []
        episode("master", random.Random(20201124), EPISODE_STEPS, log)
        logs.append(log)
    assert len(logs[0]) == EPISODE_STEPS and logs[0] == logs[1]
