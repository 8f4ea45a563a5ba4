"""Named scenarios: each a documented function of a frozen parameter set, returning a Trace.

``SCENARIOS`` maps a name to its ``Scenario``; ``run_scenario(name, seed=0, **params)``
builds the parameters (refusing unknown names and values with ValueError) and runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..trace import Trace
from .basics import BasicsParams, fifo_basics, two_level_basics
from .hibernation import ERRNO_FIXES, ERRNOS, FIXES, HibernationParams, hibernation
from .lifecycle import KexecParams, RestoreParams, SwitchParams, abi_switch, kexec, save_restore


@dataclass(frozen=True)
class Scenario:
    """A runnable story: its parameters' type and the function that tells it."""

    name: str
    description: str
    params: type
    run: Callable[..., Trace]

    def options(self) -> dict[str, object]:
        """Each parameter with its default."""
        return {f.name: f.default for f in dataclasses.fields(self.params)}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("two-level-basics", "pending bits, selector, upcall, mask and unmask", BasicsParams,
                 two_level_basics),
        Scenario("fifo-basics", "queues, HEAD and READY, priorities, masking, bind_vcpu", BasicsParams, fifo_basics),
        Scenario("abi-switch", "init_control with events pending: kept, not lost", SwitchParams, abi_switch),
        Scenario("save-restore", "xl save/restore: the FIFO kernel re-issues init_control", RestoreParams,
                 save_restore),
        Scenario("kexec", "soft reset closes every port and reverts to 2-level", KexecParams, kexec),
        Scenario("hibernation", "hibernate on an old host, resume on a new one (the 2020 thread)",
                 HibernationParams, hibernation),
    )
}


def make_params(name: str, **params: object) -> object:
    """The parameter set of scenario ``name``; unknown names or bad values raise ValueError."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    scenario = SCENARIOS[name]
    unknown = set(params) - set(scenario.options())
    if unknown:
        raise ValueError(f"scenario {name!r} has no option {', '.join(sorted(unknown))}; "
                         f"options: {', '.join(scenario.options())}")
    return scenario.params(**params)


def run_scenario(name: str, seed: int = 0, **params: object) -> Trace:
    """Run scenario ``name`` with ``params`` (defaults for the rest)."""
    return SCENARIOS[name].run(make_params(name, **params), seed)


__all__ = ["ERRNO_FIXES", "ERRNOS", "FIXES", "SCENARIOS", "HibernationParams", "Scenario", "hibernation", "make_params",
           "run_scenario"]
