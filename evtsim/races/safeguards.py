"""The safeguards: lines of Xen and Linux whose removal one can ask about, one at a time.

Each names the code it mirrors and what the explorer runs instead when it is removed
(``evtsim explore fifo --without cmpxchg``). The replacement is always the simplest code a
programmer could have written in its place, so a counterexample shows why the real line is
the way it is; and a removal that breaks nothing is a finding (docs/races.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Safeguard:
    """A removable line: which model, whose code, what it does, and what replaces it."""

    name: str
    model: str  # "fifo" or "two-level"
    side: str  # "Xen" or "Linux"
    mirrors: str
    keeps: str  # what the line guarantees
    without: str  # what the explorer runs when it is removed


SAFEGUARDS: dict[str, Safeguard] = {s.name: s for s in (
    Safeguard("linked", "fifo", "Xen", "xen/common/event_fifo.c evtchn_fifo_set_pending",
              "test-and-set of LINKED: an event already in a queue is not linked again",
              "Xen sets LINKED and links the event even when the word was LINKED already"),
    Safeguard("busy", "fifo", "Xen", "xen/common/event_fifo.c evtchn_fifo_set_link (dae2a1c5f9)",
              "after a failed compare-and-swap Xen marks the tail word BUSY, and the guest may not clear "
              "MASKED until Xen clears it: at most 4 retries can fail",
              "Xen never sets BUSY, so nothing stops the guest changing the tail word between retries"),
    Safeguard("old-tail", "fifo", "Xen",
              "xen/common/event_fifo.c evtchn_fifo_set_pending (fifo_lastq, e33d4257fc)",
              "Xen locks the queue the event was last on together with the new one, and clears the old "
              "queue's tail if it was this event",
              "Xen forgets the queue the event was last on: it locks and checks only the queue it links onto"),
    Safeguard("cmpxchg", "fifo", "Xen", "xen/common/event_fifo.c try_set_link",
              "the tail's LINK is set with a compare-and-swap that fails if the guest changed the word",
              "Xen stores the new LINK with a plain write of the word it read earlier"),
    Safeguard("ready-recheck", "fifo", "Linux",
              "drivers/xen/events/events_fifo.c __evtchn_fifo_handle_events",
              "after each event Linux takes READY again (ready |= xchg(ready, 0)), so a queue Xen "
              "refilled is seen in the same pass",
              "Linux takes READY once per pass and never looks at it again"),
    Safeguard("clear-linked", "fifo", "Linux", "drivers/xen/events/events_fifo.c clear_linked",
              "LINKED and LINK are cleared with a compare-and-swap loop, so a LINK Xen sets meanwhile is "
              "read, not erased",
              "Linux reads the word, then stores it back without LINKED and LINK"),
    Safeguard("clear-masked", "fifo", "Linux", "drivers/xen/events/events_fifo.c clear_masked_cond",
              "MASKED is cleared by a compare-and-swap that fails if the event became PENDING (or the word "
              "BUSY) meanwhile; a pending event is unmasked by Xen (EVTCHNOP_unmask), which links it",
              "Linux tests PENDING, then clears MASKED with an atomic bit clear"),
    Safeguard("upcall-recheck", "both", "Linux", "drivers/xen/events/events_base.c __xen_evtchn_do_upcall",
              "Linux runs the ABI's handler again while evtchn_upcall_pending was set meanwhile",
              "Linux runs the handler once per upcall"),
    Safeguard("upcall-clear-first", "two-level", "Linux", "drivers/xen/events/events_2l.c evtchn_2l_handle_events",
              "evtchn_upcall_pending is cleared before the selector is swapped (the \"master flag must be "
              "cleared before the selector\" rule)",
              "Linux clears evtchn_upcall_pending after swapping the selector"),
    Safeguard("sel-xchg", "two-level", "Linux", "drivers/xen/events/events_2l.c evtchn_2l_handle_events",
              "evtchn_pending_sel is swapped with 0 in one atomic exchange",
              "Linux reads evtchn_pending_sel, then stores 0 into it"),
)}


def for_model(model: str) -> list[Safeguard]:
    """The safeguards that apply to ``model`` ("fifo" or "two-level"), in registry order."""
    return [s for s in SAFEGUARDS.values() if s.model in (model, "both")]


def check_without(model: str, names: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """``names`` as a set, or ValueError naming the first that is not a safeguard of ``model``."""
    known = {s.name for s in for_model(model)}
    for name in names:
        if name not in known:
            raise ValueError(f"{name!r} is not a safeguard of model {model}; choose from {', '.join(sorted(known))}")
    return frozenset(names)
