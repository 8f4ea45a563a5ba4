"""Races: an interleaving explorer for Xen's and Linux's event-channel protocols.

evtsim's engines run each hypercall and each consumer step to completion; here the same
protocols are cut into the atomic steps of the real code (test-and-set, compare-and-swap, plain
loads and stores, locks) run by concurrent actors: Xen pCPUs sending, guest vCPUs consuming,
masking and unmasking. ``explore`` visits every interleaving of a configuration (with
partial-order reduction), checks the invariants, and returns the shortest counterexample,
which ``to_trace`` turns into an evtsim ``Trace``::

    from evtsim import races
    result = races.explore("fifo", "two-senders", without=["cmpxchg"])
    result.verdict, result.violations            # 'violated', ('event lost', 'stranded link')
    trace = races.counterexample(result)         # one record per atomic step

``MODELS``, ``configs_of(model)`` and ``for_model(model)`` list what there is to explore; the
safeguards are in ``SAFEGUARDS``. Standard library only, deterministic, never prints.
"""

from __future__ import annotations

from ..trace import Trace
from .configs import CONFIGS, FINDINGS, MODELS, ActorSpec, Config, PortSpec, build_model, configs_of, find_config
from .tracing import replay, to_trace
from .exploring import MAX_STEPS_LIMIT, Result, check_bound, explore, explore_part, shortest
from .invariants import Violation
from .safeguards import SAFEGUARDS, Safeguard, check_without, for_model
from .search import DEFAULT_MAX_STEPS


def counterexample(result: Result) -> Trace:
    """The counterexample of ``result`` as an evtsim Trace; ValueError if it has none."""
    if result.schedule is None:
        raise ValueError(f"{result.model}/{result.config} has no counterexample: {result.verdict}")
    m = build_model(find_config(result.model, result.config), result.without)
    return to_trace(m, result.schedule, result.violation)


__all__ = ["CONFIGS", "DEFAULT_MAX_STEPS", "FINDINGS", "MAX_STEPS_LIMIT", "MODELS", "SAFEGUARDS", "ActorSpec", "Config",
           "PortSpec", "Result", "Safeguard", "Violation", "build_model", "check_bound", "check_without", "configs_of",
           "counterexample", "explore", "explore_part", "find_config", "for_model", "replay", "shortest", "to_trace"]
