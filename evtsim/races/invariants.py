"""What must always hold, named: each violation is one bit in the state's ghost ``viol`` slot.

Three kinds of check find them (see ``docs/races.md``):

* **step assertions**, made by the step that observes the problem (Xen linking behind a tail
  that is on another queue; Linux reaching an unlinked word through HEAD or LINK; Xen giving
  up a link or a queue change, which Xen's own comments and warnings say loses the event);
* **structural invariants**, checked at every state the search visits (no queue cycle, no
  event reachable from two queues' HEADs);
* **quiescent invariants**, checked once nothing can run (no event lost, nothing stranded
  where Xen will not signal it again, no actor left spinning).

Each violation maps to the evtsim ``Outcome`` verdict its trace is given.
"""

from __future__ import annotations

from enum import Enum


class Violation(Enum):
    """An invariant that can break: its bit, a short name, what it means, the trace verdict."""

    EVENT_LOST = (1 << 0, "event lost",
                  "an event made pending while unmasked was never handled, and nothing will signal it again",
                  "events lost")
    QUEUE_CYCLE = (1 << 1, "queue cycle", "following LINK from a HEAD comes back to a port already visited",
                   "memory corrupted")
    TWO_QUEUES = (1 << 2, "linked into two queues",
                  "an event is in one queue's chain while Xen holds it as another queue's tail",
                  "memory corrupted")
    STALE_LINK = (1 << 3, "stale link",
                  "Linux reached, through HEAD or a LINK, a word that is no longer LINKED",
                  "memory corrupted")
    LINK_GIVEN_UP = (1 << 4, "link given up",
                     "Xen's evtchn_fifo_set_link failed five times and treated the event as linked "
                     "(\"port N not linked\"): it is in no queue",
                     "events lost")
    QUEUE_CHANGE_LOST = (1 << 5, "queue change lost",
                         "evtchn_fifo_set_pending could not lock the event's queues in 3 tries "
                         "(\"lost event (too many queue changes)\")",
                         "events lost")
    STRANDED_SELECTOR = (1 << 6, "stranded selector bit",
                         "at rest, a bit of evtchn_pending_sel is set while evtchn_upcall_pending is clear: "
                         "Xen raises no upcall for the next event in that word",
                         "events lost")
    STRANDED_READY = (1 << 7, "stranded READY bit",
                      "at rest, a READY bit is set while evtchn_upcall_pending is clear: "
                      "Xen raises no upcall for the next event on that queue",
                      "events lost")
    STRANDED_LINK = (1 << 8, "stranded link",
                     "at rest, a word is still LINKED: no HEAD the guest will read leads to it",
                     "events lost")
    SPINS_FOREVER = (1 << 9, "spins forever", "at rest, an actor still waits for a lock or a bit nobody will change",
                     "guest crash")
    MASK_WHILE_BUSY = (1 << 10, "MASKED cleared while BUSY",
                       "the guest cleared MASKED while Xen held the word BUSY, which Xen forbids "
                       "(the rule that bounds set_link's retries)",
                       "memory corrupted")

    def __init__(self, bit: int, title: str, meaning: str, verdict: str) -> None:
        self.bit = bit
        self.title = title
        self.meaning = meaning
        self.verdict = verdict


def violations(bits: int) -> list[Violation]:
    """The violations set in ``bits``, in declaration order."""
    return [v for v in Violation if bits & v.bit]


def by_title(title: str) -> Violation:
    """The violation called ``title`` (as ``Violation.title`` spells it)."""
    for v in Violation:
        if v.title == title:
            return v
    raise ValueError(f"no invariant called {title!r}; known: {', '.join(v.title for v in Violation)}")


def lost_ports(mem, s: tuple[int, ...]) -> list[int]:
    """Ports with an event owed to the guest and not masked (lost, once nothing can run);
    ``mem`` is a model's FifoMemory or TwoLevelMemory."""
    return [p for p in mem.ports if s[mem.owed[p]] and not mem.is_masked(s, p)]


def lost_text(ports: list[int]) -> str:
    return "events owed to the guest and never handled: " + ", ".join(f"port {p}" for p in ports)
