"""Named scenarios: each a documented function of a frozen parameter set, returning a Trace.

``SCENARIOS`` maps a name to its ``Scenario``; ``run_scenario(name, **params)``
builds the parameters (refusing unknown names and values with ValueError, naming the closest
known one) and runs it. ``run_scenario``'s docstring (``run_scenario?``) lists every scenario
with its parameters and their defaults, written from the registry so it cannot fall behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import textwrap
from collections.abc import Callable, Iterable
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


def closest(word: str, known: Iterable[str]) -> str:
    """``; did you mean 'hibernation'?`` for a near miss, else nothing."""
    near = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; ValueError naming the known ones (and the closest) if none is."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}{closest(str(name), SCENARIOS)} "
                         f"(known scenarios: {', '.join(SCENARIOS)})")
    return SCENARIOS[name]


def make_params(name: str, **params: object) -> object:
    """The parameter set of scenario ``name``; unknown names or bad values raise ValueError."""
    scenario = get_scenario(name)
    unknown = sorted(set(params) - set(scenario.options()))
    if unknown:
        raise ValueError(f"scenario {name!r} has no option {', '.join(unknown)}{closest(unknown[0], scenario.options())} "
                         f"(options: {', '.join(scenario.options())})")
    return scenario.params(**params)


def run_scenario(name: str, **params: object) -> Trace:
    """Run scenario ``name`` with ``params`` (defaults for the rest) and return its Trace."""
    params = make_params(name, **params)  # before the lookup below: a bad name is a ValueError
    return SCENARIOS[name].run(params)


def scenarios_help() -> str:
    """Every scenario with its description and its parameters' defaults, and the fixes, as text."""
    lines = ["Scenarios and their parameters (defaults shown)::", ""]
    for s in SCENARIOS.values():
        lines.append(f"    {s.name:<18} {s.description}")
        lines.append("        " + ", ".join(f"{k}={v!r}" for k, v in s.options().items()))
    lines += ["", "hibernation's ``fix`` (``errno`` matters for disable-fifo and xsm)::", ""]
    lines += [f"    {name:<14} {text}" for name, text in FIXES.items()]
    lines += ["", f"``errno``: {', '.join(ERRNOS)}.",
              "Xen versions (``xen``, ``old_xen``): the rows of ``evtsim.XEN_VERSIONS``, or a release such as ``'4.6'``."]
    return "\n".join(lines)


run_scenario.__doc__ = f"""{run_scenario.__doc__}

    ``run_scenario("hibernation", xen="4.7", fix="reset")``; an unknown scenario, option or
    value raises ValueError. The same runs from a shell: ``evtsim run NAME --option VALUE``.

{textwrap.indent(scenarios_help(), "    ")}
    """


__all__ = ["ERRNO_FIXES", "ERRNOS", "FIXES", "SCENARIOS", "HibernationParams", "Scenario", "get_scenario",
           "hibernation", "make_params", "run_scenario", "scenarios_help"]
