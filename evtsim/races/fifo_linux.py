"""Linux's side of the FIFO ABI as atomic steps.

Mirrors drivers/xen/events/events_base.c (__xen_evtchn_do_upcall: clear
evtchn_upcall_pending, handle events, loop while it was set again; handle_irq_for_port's
ack, clear_evtchn) and events_fifo.c (__evtchn_fifo_handle_events: READY exchanged with 0,
then again after every event; consume_one_event: the local head, else HEAD from the
control block; clear_linked's compare-and-swap loop; the PENDING and MASKED tests;
evtchn_fifo_mask; evtchn_fifo_unmask with clear_masked_cond, which clears MASKED only if
the word is neither PENDING nor BUSY and otherwise asks Xen with EVTCHNOP_unmask).
The per-CPU local heads (cpu_queue.head) are the consumer's locals: only its vCPU uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..fifo import B, L, M, P
from .fifo_memory import LINK, WORD_FIELDS, FifoMemory
from .fifo_xen import SET_PENDING_SIZE, xen_unmask
from .invariants import Violation
from .machine import DONE, Code, Gate, GateKind, Scope

FIFO_C = "drivers/xen/events/events_fifo.c"
BASE_C = "drivers/xen/events/events_base.c"

# The consumer's locals after its program counter: its copy of READY, the queue (priority) it
# consumes, the port, the word as clear_linked read it, the LINK it found; then one local
# head per queue of its vCPU.
RDY, QP, PORT, OLD, NEXT = range(1, 6)
HEADS = 6


class Consumer:
    """One vCPU taking upcalls and consuming its FIFO queues, one event per step of the loop."""

    def __init__(self, mem: FifoMemory, vcpu: int, without: frozenset[str]) -> None:
        self.mem, self.vcpu = mem, vcpu
        self.prios = [prio for v, prio in mem.queues if v == vcpu]
        self.local = {prio: HEADS + i for i, prio in enumerate(self.prios)}
        self.qids = {prio: mem.qid[(vcpu, prio)] for prio in self.prios}
        self.upcall, self.ready = mem.upcall[vcpu], mem.ready[vcpu]
        self.recheck_ready = "ready-recheck" not in without
        self.recheck_upcall = "upcall-recheck" not in without
        self.cmpxchg = "clear-linked" not in without

    @property
    def size(self) -> int:
        return HEADS + len(self.prios)

    # --- __xen_evtchn_do_upcall -----------------------------------------------------------

    def take_upcall(self, s: list[int], a: int) -> str:
        s[self.upcall] = 0
        return "xchg_ready"

    def after_events(self) -> str:
        return "recheck_upcall" if self.recheck_upcall else "idle"

    def check_upcall(self, s: list[int], a: int) -> str:
        return "clear_upcall" if s[self.upcall] else "idle"

    # --- __evtchn_fifo_handle_events ----------------------------------------------------------

    def xchg_ready(self, s: list[int], a: int) -> str:
        s[a + RDY] = s[self.ready]
        s[self.ready] = 0
        return self.pick(s, a)

    def pick(self, s: list[int], a: int) -> str:
        """The highest-priority ready queue (lowest bit), from the local head or HEAD."""
        ready = s[a + RDY]
        if not ready:
            return self.after_events()
        s[a + QP] = prio = (ready & -ready).bit_length() - 1
        head = s[a + self.local[prio]]
        if not head:
            return "read_head"
        s[a + PORT] = head
        return "cl_read"

    def read_head(self, s: list[int], a: int) -> str:
        s[a + PORT] = s[self.mem.head[self.qids[s[a + QP]]]]
        return "cl_read"

    # --- consume_one_event ---------------------------------------------------------------------

    def cl_read(self, s: list[int], a: int) -> str:
        """clear_linked's first read; reaching a word that is not LINKED means a stale chain."""
        port = s[a + PORT]
        if port not in self.mem.word:  # HEAD 0 with READY set: a word nobody linked
            s[self.mem.viol] |= Violation.STALE_LINK.bit
            return "cl_cas"
        s[a + OLD] = word = s[self.mem.word[port]]
        if not word & L:
            s[self.mem.viol] |= Violation.STALE_LINK.bit
        return "cl_cas"

    def cl_cas(self, s: list[int], a: int) -> str:
        """Clear LINKED and LINK (compare-and-swap loop, or a plain store without ``clear-linked``)."""
        slot = self.mem.word.get(s[a + PORT])
        if slot is None:
            return "cl_cas"  # not reached: the state above is a violation and is not expanded
        old = s[a + OLD]
        if self.cmpxchg and s[slot] != old:
            s[a + OLD] = s[slot]
            return "cl_cas"
        s[slot] = old & ~(L | LINK)
        s[a + NEXT] = nxt = old & LINK
        if not nxt:
            s[a + RDY] &= ~(1 << s[a + QP])  # that was the tail: the queue looks empty
        return "is_pending"

    def is_pending(self, s: list[int], a: int) -> str:
        return "is_masked" if s[self.mem.word[s[a + PORT]]] & P else self.next_event(s, a)

    def is_masked(self, s: list[int], a: int) -> str:
        return self.next_event(s, a) if s[self.mem.word[s[a + PORT]]] & M else "ack"

    def ack(self, s: list[int], a: int) -> str:
        """handle_irq_for_port: the IRQ flow's ack clears PENDING, then the handler runs."""
        port = s[a + PORT]
        s[self.mem.word[port]] &= ~P
        s[self.mem.owed[port]] = 0
        return self.next_event(s, a)

    def next_event(self, s: list[int], a: int) -> str:
        """``q->head[priority] = head``; then READY again (or, without the re-check, the next bit)."""
        s[a + self.local[s[a + QP]]] = s[a + NEXT]
        return "merge_ready" if self.recheck_ready else self.pick(s, a)

    def merge_ready(self, s: list[int], a: int) -> str:
        s[a + RDY] |= s[self.ready]
        s[self.ready] = 0
        return self.pick(s, a)

    # --- the step table -------------------------------------------------------------------------

    def add_to(self, code: Code) -> None:
        m, v = self.mem, self.vcpu
        mine = m.ports_on(v)
        words = [m.word[p] for p in mine]
        up, hf = f"{BASE_C} __xen_evtchn_do_upcall", f"{FIFO_C} __evtchn_fifo_handle_events"
        c1 = f"{FIFO_C} consume_one_event"
        after = [self.after_events(), "cl_read", "read_head"]
        idle = Gate(GateKind.WAIT, lambda s, a: s[self.upcall] == 1, lambda s, a: self.upcall,
                    frozenset([self.upcall]), ahead=True, rest=True)
        code.step("idle", f"take the upcall (vCPU {v}); clear evtchn_upcall_pending", up, reads=[self.upcall],
                  writes=[self.upcall], gate=idle, nexts=["xchg_ready"])(self.take_upcall)
        code.step("xchg_ready", "exchange the control block's READY with 0", hf, reads=[self.ready],
                  writes=[self.ready], nexts=after)(self.xchg_ready)
        def word(s: Sequence[int], a: int) -> tuple:
            slot = m.word.get(s[a + PORT])
            return () if slot is None else (slot,)

        def field(name: str):
            return lambda s, a: ((), (), ()) if not word(s, a) else (((word(s, a)[0], name),), (), ())
        unlink_fields = ("L", "LINK") if self.cmpxchg else tuple(WORD_FIELDS)
        code.step("read_head", "local head is 0: read HEAD from the control block", c1,
                  reads=[m.head[q] for q in self.qids.values()], nexts=["cl_read"],
                  exact=lambda s, a: ((m.head[self.qids[s[a + QP]]],), (), ()))(self.read_head)
        code.step("cl_read", "clear_linked: read the event word", f"{FIFO_C} clear_linked", reads=words,
                  nexts=["cl_cas"], exact=lambda s, a: (word(s, a), (), ()))(self.cl_read)
        how = "compare-and-swap" if self.cmpxchg else "plain store"
        nexts = ["merge_ready"] if self.recheck_ready else after
        unlinks = [(x, f) for x in words for f in ("L", "LINK")] if self.cmpxchg else words
        code.step("cl_cas", f"clear_linked: clear LINKED and LINK ({how}); keep LINK as the next head",
                  f"{FIFO_C} clear_linked", reads=words, writes=unlinks, nexts=["cl_cas", "is_pending"],
                  exact=lambda s, a: (word(s, a), tuple((x, f) for x in word(s, a) for f in unlink_fields), ()),
                  )(self.cl_cas)
        code.step("is_pending", "test PENDING", c1, reads=[(x, "P") for x in words],
                  nexts=["is_masked", *nexts], exact=field("P"))(self.is_pending)
        code.step("is_masked", "test MASKED", c1, reads=[(x, "M") for x in words], nexts=["ack", *nexts],
                  exact=field("M"))(self.is_masked)
        code.step("ack", "handle_irq_for_port: ack (clear PENDING), then the handler", f"{BASE_C} handle_irq_for_port",
                  writes=[*((x, "P") for x in words), *(m.owed[p] for p in mine)], nexts=nexts,
                  exact=lambda s, a: ((), ((m.word[s[a + PORT]], "P"), m.owed[s[a + PORT]]), ()))(self.ack)
        if self.recheck_ready:
            code.step("merge_ready", "ready |= exchange READY with 0", hf, reads=[self.ready], writes=[self.ready],
                      nexts=after)(self.merge_ready)
        if self.recheck_upcall:
            code.step("recheck_upcall", "evtchn_upcall_pending set again meanwhile? then loop", up,
                      reads=[self.upcall], nexts=["clear_upcall", "idle"])(self.check_upcall)
            code.step("clear_upcall", "clear evtchn_upcall_pending", up, writes=[self.upcall],
                      nexts=["xchg_ready"])(self.take_upcall)


# The IRQ actor's locals: set_pending's (for the EVTCHNOP_unmask path), then the word as
# clear_masked_cond read it.
U_OLD = SET_PENDING_SIZE
IRQ_SIZE = SET_PENDING_SIZE + 1


class Unmask:
    """evtchn_fifo_unmask on one port, continuing at ``then`` (one copy per unmask a driver does)."""

    def __init__(self, mem: FifoMemory, port: int, then: str, without: frozenset[str]) -> None:
        self.mem, self.port, self.then, self.without = mem, port, then, without
        self.word = mem.word[port]
        self.cmpxchg = "clear-masked" not in without

    def u_read(self, s: list[int], a: int) -> str:
        s[a + U_OLD] = s[self.word]
        return self.decide(s, a)

    def decide(self, s: list[int], a: int) -> str:
        """clear_masked_cond: unmasked already -> done; PENDING -> ask Xen; else try to clear."""
        old = s[a + U_OLD]
        if not old & M:
            return self.then
        if old & P:
            return "x_notify"
        return "u_cas" if self.cmpxchg else "u_clear"

    def cas_can_run(self, s: Sequence[int], a: int) -> bool:
        """False while the compare-and-swap would only spin: the word is the expected one plus BUSY."""
        return s[self.word] != (s[a + U_OLD] & ~B) | B

    def u_cas(self, s: list[int], a: int) -> str:
        expected = s[a + U_OLD] & ~B
        if s[self.word] == expected:
            s[self.word] = expected & ~M
            return self.then
        s[a + U_OLD] = s[self.word]
        return self.decide(s, a)

    def u_clear(self, s: list[int], a: int) -> str:
        """Without ``clear-masked``: clear MASKED whatever happened since PENDING was tested."""
        if s[self.word] & B:
            s[self.mem.viol] |= Violation.MASK_WHILE_BUSY.bit
        s[self.word] &= ~M
        return self.then

    def add_to(self, code: Scope) -> None:
        w, p, then = self.word, self.port, self.then
        um = f"{FIFO_C} evtchn_fifo_unmask"
        clear = "u_cas" if self.cmpxchg else "u_clear"
        code.step("u_read", f"unmask port {p}: read its word", f"{FIFO_C} clear_masked_cond", reads=[w],
                  nexts=[then, "x_notify", clear])(self.u_read)
        if self.cmpxchg:
            gate = Gate(GateKind.WAIT, self.cas_can_run, lambda s, a: w, frozenset([w]))
            code.step("u_cas", "clear MASKED if neither PENDING nor BUSY (compare-and-swap; spins while BUSY)",
                      f"{FIFO_C} clear_masked_cond", reads=[w], writes=[(w, "M")], gate=gate,
                      nexts=[then, "x_notify", "u_cas"])(self.u_cas)
        else:
            code.step("u_clear", "clear MASKED (atomic bit clear, after testing PENDING)", um, reads=[(w, "B")],
                      writes=[(w, "M")], nexts=[then])(self.u_clear)
        xen_unmask(code, self.mem, p, self.without, lambda s, a: then, [then])


def irq_ops(code: Code, mem: FifoMemory, port: int, ops: Sequence[str], without: frozenset[str]) -> str:
    """A guest vCPU masking and unmasking ``port`` as disable_irq / enable_irq would
    (evtchn_fifo_mask, evtchn_fifo_unmask), in the order ``ops`` gives: the first label."""
    firsts = [f"{'mask' if op == 'mask' else 'u_read'}.{i + 1}" for i, op in enumerate(ops)] + [DONE]
    for i, op in enumerate(ops):
        then = firsts[i + 1]
        scope = code.scope(f".{i + 1}", exits=[then])
        if op == "unmask":
            Unmask(mem, port, then, without).add_to(scope)
            continue
        if op != "mask":
            raise ValueError(f"a driver can mask or unmask, not {op!r}")

        def mask(s: list[int], a: int, then: str = then) -> str:
            s[mem.word[port]] |= M
            return then
        scope.step("mask", f"mask port {port}: set MASKED", f"{FIFO_C} evtchn_fifo_mask",
                   sets=[(mem.word[port], "M")], nexts=[then])(mask)
    return firsts[0]
