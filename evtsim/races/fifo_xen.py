"""Xen's side of the FIFO ABI as atomic steps.

Mirrors xen/common/event_fifo.c as of current master: evtchn_fifo_set_pending (the queue
locks taken for the event's queue and the queue in ``fifo_lastq``, in address order and
re-checked, at most 3 tries; test-and-set of PENDING; the MASKED test; test-and-set of LINKED;
the old queue's tail cleared; ``fifo_lastq`` updated; evtchn_fifo_set_link and try_set_link:
a compare-and-swap of the tail word, then BUSY and up to 4 more; HEAD; TAIL; READY; then
vcpu_mark_events_pending in xen/arch/x86/domain.c), evtchn_fifo_unmask (EVTCHNOP_unmask),
evtchn_fifo_set_priority and the notify_vcpu_id store of evtchn_bind_vcpu
(xen/common/event_channel.c). Senders run concurrently: since the per-channel lock became a
read/write lock, evtchn_send, EVTCHNOP_unmask and set_priority all take it for reading, so
only the queue locks order them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..fifo import B, L, M, P
from .fifo_memory import LINK, WORD_FIELDS, FifoMemory
from .invariants import Violation
from .machine import DONE, Code, Gate, GateKind, Scope

FIFO_C = "xen/common/event_fifo.c"
CHANNEL_C = "xen/common/event_channel.c"
DOMAIN_C = "xen/arch/x86/domain.c"

# A set_pending's locals, after the program counter: target vCPU, queue and old queue (queue
# ids), tries at the locks, linked, the tail word as read, the tail port, tries at set_link,
# lastq as re-read under the locks.
V, Q, OQ, TRY, LINKED, W, TAIL, TRIES, SEEN = range(1, 10)
SET_PENDING_SIZE = 10

Finish = Callable[[list[int], int], str]


class SetPending:
    """evtchn_fifo_set_pending for one port, as steps that ``add_to`` appends to a program.

    ``finish`` says where the actor goes once the event is done (``finish_labels`` lists
    where that can be). ``without`` holds the removed safeguards (see safeguards.py).
    """

    def __init__(self, mem: FifoMemory, port: int, without: frozenset[str], finish: Finish,
                 finish_labels: Sequence[str]) -> None:
        self.mem, self.port, self.finish, self.finish_labels = mem, port, finish, tuple(finish_labels)
        self.word, self.owed, self.inq = mem.word[port], mem.owed[port], mem.inq[port]
        self.lastq, self.prio, self.notify_slot = mem.lastq[port], mem.priority[port], mem.notify[port]
        self.old_tail = "old-tail" not in without
        self.linked_test = "linked" not in without
        self.busy = "busy" not in without
        self.cmpxchg = "cmpxchg" not in without
        self.qid = [[mem.qid.get((v, prio), -1) for prio in range(16)] for v in range(mem.vcpus)]
        self.words = mem.word  # by port: the tail word can be any port's
        self.start = "read_lastq" if self.old_tail else "read_priority"

    # --- the lock loop ----------------------------------------------------------------------

    def notify(self, s: list[int], a: int) -> str:
        s[a + V] = s[self.notify_slot]
        return self.begin(s, a)

    def begin(self, s: list[int], a: int) -> str:
        """``linked = true`` and ``try = 0``, then the lock loop."""
        s[a + LINKED], s[a + TRY] = 1, 0
        return self.start

    def read_lastq(self, s: list[int], a: int) -> str:
        s[a + OQ] = s[self.lastq]
        return "read_priority"

    def read_priority(self, s: list[int], a: int) -> str:
        s[a + Q] = q = self.qid[s[a + V]][s[self.prio]]
        if not self.old_tail:
            s[a + OQ] = q
        return "lock_first"

    def first_lock(self, s: Sequence[int], a: int) -> int:
        """The lock of the lower queue first, as Xen orders them by address."""
        return self.mem.lock[min(s[a + Q], s[a + OQ])]

    def second_lock(self, s: Sequence[int], a: int) -> int:
        return self.mem.lock[max(s[a + Q], s[a + OQ])]

    def lock_first(self, s: list[int], a: int) -> str:
        s[self.first_lock(s, a)] = a
        return "lock_second" if s[a + Q] != s[a + OQ] else self.recheck()

    def lock_second(self, s: list[int], a: int) -> str:
        s[self.second_lock(s, a)] = a
        return self.recheck()

    def recheck(self) -> str:
        return "recheck_lastq" if self.old_tail else "recheck_priority"

    def recheck_lastq(self, s: list[int], a: int) -> str:
        s[a + SEEN] = s[self.lastq]
        return "recheck_priority"

    def recheck_priority(self, s: list[int], a: int) -> str:
        """Locked the right queues? Only if neither the priority nor lastq moved meanwhile."""
        same = self.qid[s[a + V]][s[self.prio]] == s[a + Q] and (not self.old_tail or s[a + SEEN] == s[a + OQ])
        return "tas_pending" if same else "unlock_retry"

    def unlock_retry(self, s: list[int], a: int) -> str:
        self.release(s, a)
        s[a + TRY] += 1
        return "tas_pending" if s[a + TRY] == 3 else self.start

    def release(self, s: list[int], a: int) -> None:
        s[self.mem.lock[s[a + Q]]] = 0
        if s[a + OQ] != s[a + Q]:
            s[self.mem.lock[s[a + OQ]]] = 0

    # --- pending, masked, linked --------------------------------------------------------------

    def tas_pending(self, s: list[int], a: int) -> str:
        """Set PENDING. (Xen keeps whether it was set only to wake pollers, which are not modelled.)"""
        s[self.word] |= P
        s[self.owed] = 1
        if s[a + TRY] == 3:  # "lost event (too many queue changes)": pending, but in no queue
            s[self.mem.viol] |= Violation.QUEUE_CHANGE_LOST.bit
            return self.finish(s, a)
        return "test_masked"

    def test_masked(self, s: list[int], a: int) -> str:
        return "unlock" if s[self.word] & M else "tas_linked"

    def tas_linked(self, s: list[int], a: int) -> str:
        word = s[self.word]
        s[self.word] = word | L
        if word & L and self.linked_test:
            return "unlock"  # already in a queue: nothing to link
        return "old_tail"

    def old_tail_step(self, s: list[int], a: int) -> str:
        """e33d4257fc: if this event was the old queue's tail, that queue is empty now. (Without
        ``old-tail`` the old queue is the new one: Xen has forgotten where the event was.)"""
        tail = self.mem.tail[s[a + OQ]]
        if s[tail] == self.port:
            s[tail] = 0
        return "move" if s[a + OQ] != s[a + Q] else "read_tail"

    def move(self, s: list[int], a: int) -> str:
        """Record the new queue in fifo_lastq and drop the old queue's lock."""
        s[self.lastq] = s[a + Q]
        s[self.mem.lock[s[a + OQ]]] = 0
        s[a + OQ] = s[a + Q]
        return "read_tail"

    # --- evtchn_fifo_set_link ----------------------------------------------------------------

    def read_tail(self, s: list[int], a: int) -> str:
        s[a + TAIL] = tail = s[self.mem.tail[s[a + Q]]]
        s[a + LINKED] = 0
        return "sl_read" if tail else "write_head"

    def sl_read(self, s: list[int], a: int) -> str:
        s[a + W] = s[self.words[s[a + TAIL]]]
        return "sl_try"

    def sl_try(self, s: list[int], a: int) -> str:
        if not s[a + W] & L:
            return "write_head"  # the tail was consumed: the queue is empty
        if self.link(s, a):
            return "write_tail"
        return "sl_busy" if self.busy else "sl_reread"

    def link(self, s: list[int], a: int) -> bool:
        """try_set_link: LINK := port unless the word changed since it was read (True if linked)."""
        tail = s[a + TAIL]
        slot, seen = self.words[tail], s[a + W]
        if self.cmpxchg and s[slot] != seen:
            s[a + W] = s[slot]  # cmpxchg returns what it found
            return False
        s[slot] = (seen & ~(B | LINK)) | self.port
        if s[self.mem.inq[tail]] != s[a + Q]:
            s[self.mem.viol] |= Violation.TWO_QUEUES.bit
        s[a + LINKED] = 1
        return True

    def sl_busy(self, s: list[int], a: int) -> str:
        s[self.words[s[a + TAIL]]] |= B
        return "sl_reread"

    def sl_reread(self, s: list[int], a: int) -> str:
        s[a + W] = s[self.words[s[a + TAIL]]]
        s[a + TRIES] = 0
        return "sl_retry"

    def sl_retry(self, s: list[int], a: int) -> str:
        if not s[a + W] & L:
            return "sl_unbusy" if self.busy else "write_head"
        if self.link(s, a):
            return "write_tail"
        s[a + TRIES] += 1
        if s[a + TRIES] < 4:
            return "sl_retry"
        if self.busy:
            return "sl_give_up"
        s[self.mem.viol] |= Violation.LINK_GIVEN_UP.bit
        s[a + LINKED] = 1
        return "write_tail"

    def sl_unbusy(self, s: list[int], a: int) -> str:
        s[self.words[s[a + TAIL]]] &= ~B
        return "write_head"

    def sl_give_up(self, s: list[int], a: int) -> str:
        """"port N not linked": clear BUSY and carry on as if linked; the event is in no queue."""
        s[self.words[s[a + TAIL]]] &= ~B
        s[self.mem.viol] |= Violation.LINK_GIVEN_UP.bit
        s[a + LINKED] = 1
        return "write_tail"

    # --- HEAD, TAIL, READY, upcall -------------------------------------------------------------

    def write_head(self, s: list[int], a: int) -> str:
        s[self.mem.head[s[a + Q]]] = self.port
        return "write_tail"

    def write_tail(self, s: list[int], a: int) -> str:
        s[self.mem.tail[s[a + Q]]] = self.port
        s[self.inq] = s[a + Q]
        return "unlock"

    def unlock(self, s: list[int], a: int) -> str:
        self.release(s, a)
        return self.finish(s, a) if s[a + LINKED] else "ready"

    def ready(self, s: list[int], a: int) -> str:
        v, prio = self.mem.queues[s[a + Q]]
        slot = self.mem.ready[v]
        was = s[slot] >> prio & 1
        s[slot] |= 1 << prio
        return self.finish(s, a) if was else "mark"

    def mark(self, s: list[int], a: int) -> str:
        s[self.mem.upcall[s[a + V]]] = 1
        return self.finish(s, a)

    # --- the step table -----------------------------------------------------------------------

    def add_to(self, code: Code | Scope) -> None:
        """Append every step, each with what it mirrors, touches and may continue at."""
        m, p, fin = self.mem, self.port, self.finish_labels
        reach = sorted(m.reach[p])
        near = m.near(p)
        words = [m.word[q] for q in near]
        locks, tails, heads = [m.lock[q] for q in reach], [m.tail[q] for q in reach], [m.head[q] for q in reach]
        readys, upcalls = [m.ready[v] for v in m.vcpus_of(p)], [m.upcall[v] for v in m.vcpus_of(p)]
        inqs = [m.inq[q] for q in near]
        sp = f"{FIFO_C} evtchn_fifo_set_pending"
        sl = f"{FIFO_C} evtchn_fifo_set_link"
        tail_of = (lambda s, a: self.words[s[a + TAIL]])  # noqa: E731
        both = lambda s, a: (m.lock[s[a + Q]], m.lock[s[a + OQ]])  # noqa: E731
        link_fields = ("B", "LINK") if self.cmpxchg else tuple(WORD_FIELDS)
        lock_gate = Gate(GateKind.LOCK, lambda s, a: s[self.first_lock(s, a)] == 0, self.first_lock, frozenset(locks))
        lock_gate2 = Gate(GateKind.LOCK, lambda s, a: s[self.second_lock(s, a)] == 0, self.second_lock,
                          frozenset(locks))
        recheck = (self.recheck(),)
        if self.old_tail:
            code.step("read_lastq", f"read port {p}'s fifo_lastq (the queue it was last linked on)", sp,
                      reads=[self.lastq], nexts=["read_priority"])(self.read_lastq)
        code.step("read_priority", f"read port {p}'s priority: which queue to lock", sp,
                  reads=[self.prio], nexts=["lock_first"])(self.read_priority)
        code.step("lock_first", "take the lower of the two queue locks", sp, reads=locks, writes=locks,
                  gate=lock_gate, nexts=["lock_second", *recheck],
                  exact=lambda s, a: ((self.first_lock(s, a),), (self.first_lock(s, a),), ()))(self.lock_first)
        code.step("lock_second", "take the other queue lock", sp, reads=locks, writes=locks, gate=lock_gate2,
                  nexts=recheck,
                  exact=lambda s, a: ((self.second_lock(s, a),), (self.second_lock(s, a),), ()))(self.lock_second)
        if self.old_tail:
            code.step("recheck_lastq", f"re-read port {p}'s fifo_lastq under the locks", sp,
                      reads=[self.lastq], nexts=["recheck_priority"])(self.recheck_lastq)
        code.step("recheck_priority", f"re-read port {p}'s priority under the locks", sp,
                  reads=[self.prio], nexts=["tas_pending", "unlock_retry"])(self.recheck_priority)
        code.step("unlock_retry", "queue changed meanwhile: drop the locks and try again", sp, writes=locks,
                  nexts=["tas_pending", self.start], exact=lambda s, a: ((), both(s, a), ()))(self.unlock_retry)
        w, linked = self.word, (self.word, "L")
        code.step("tas_pending", f"test-and-set PENDING in port {p}'s word", sp, sets=[(w, "P"), self.owed],
                  nexts=["test_masked", *fin])(self.tas_pending)
        code.step("test_masked", f"test MASKED in port {p}'s word", sp, reads=[(w, "M")],
                  nexts=["unlock", "tas_linked"])(self.test_masked)
        verb = "test-and-set" if self.linked_test else "set (no test)"
        code.step("tas_linked", f"{verb} LINKED in port {p}'s word", sp, reads=[linked] if self.linked_test else [],
                  writes=[linked] if self.linked_test else [], sets=[] if self.linked_test else [linked],
                  nexts=["unlock", "old_tail"])(self.tas_linked)
        which = "the queue it was last linked on" if self.old_tail else "this queue"
        code.step("old_tail", f"if port {p} is the tail of {which}, clear that tail", sp, reads=tails,
                  writes=tails, nexts=["move", "read_tail"] if self.old_tail else ["read_tail"],
                  exact=lambda s, a: ((m.tail[s[a + OQ]],), (m.tail[s[a + OQ]],), ()))(self.old_tail_step)
        if self.old_tail:
            code.step("move", f"record the new queue in port {p}'s fifo_lastq; drop the old queue's lock", sp,
                      writes=[self.lastq, *locks], nexts=["read_tail"],
                      exact=lambda s, a: ((), (self.lastq, m.lock[s[a + OQ]]), ()))(self.move)
        code.step("read_tail", "read the queue's tail (Xen's private TAIL)", sp, reads=tails,
                  nexts=["sl_read", "write_head"], exact=lambda s, a: ((m.tail[s[a + Q]],), (), ()))(self.read_tail)
        code.step("sl_read", "read the tail's event word", sl, reads=words, nexts=["sl_try"],
                  exact=lambda s, a: ((tail_of(s, a),), (), ()))(self.sl_read)
        how = "compare-and-swap" if self.cmpxchg else "plain store of the word read earlier"
        # a successful compare-and-swap changes B and LINK; a plain store rewrites every field
        links = [(x, f) for x in words for f in ("B", "LINK")] if self.cmpxchg else words
        busies = [(x, "B") for x in words]
        def cas(s: Sequence[int], a: int) -> tuple:
            w = tail_of(s, a)
            return (w, m.inq[s[a + TAIL]]), tuple((w, f) for f in link_fields), ()

        def bit_b(s: Sequence[int], a: int) -> tuple:
            return ((tail_of(s, a), "B"),)
        code.step("sl_try", f"LINKED? then set the tail's LINK to {p} ({how})", f"{FIFO_C} try_set_link",
                  exact=cas, reads=[*words, *inqs], writes=links,
                  nexts=["write_head", "write_tail", "sl_busy" if self.busy else "sl_reread"])(self.sl_try)
        if self.busy:
            code.step("sl_busy", "set BUSY on the tail word: the guest must not unmask it now", sl, sets=busies,
                      nexts=["sl_reread"], exact=lambda s, a: ((), (), bit_b(s, a)))(self.sl_busy)
        code.step("sl_reread", "read the tail's event word again", sl, reads=words,
                  nexts=["sl_retry"], exact=lambda s, a: ((tail_of(s, a),), (), ()))(self.sl_reread)
        code.step("sl_retry", f"LINKED? then set the tail's LINK to {p} ({how}), up to 4 tries",
                  f"{FIFO_C} try_set_link", reads=[*words, *inqs], writes=links, exact=cas,
                  nexts=["sl_unbusy" if self.busy else "write_head", "write_tail", "sl_retry",
                         "sl_give_up" if self.busy else "write_tail"])(self.sl_retry)
        if self.busy:
            code.step("sl_unbusy", "the tail was consumed: clear BUSY, the queue is empty", sl, writes=busies,
                      nexts=["write_head"], exact=lambda s, a: ((), bit_b(s, a), ()))(self.sl_unbusy)
            code.step("sl_give_up", "4 tries failed: clear BUSY, treat the event as linked", sl, writes=busies,
                      nexts=["write_tail"], exact=lambda s, a: ((), bit_b(s, a), ()))(self.sl_give_up)
        code.step("write_head", f"write HEAD = {p} in the control block", sp, writes=heads,
                  nexts=["write_tail"], exact=lambda s, a: ((), (m.head[s[a + Q]],), ()))(self.write_head)
        code.step("write_tail", f"set the queue's TAIL = {p}", sp, writes=[*tails, self.inq],
                  nexts=["unlock"], exact=lambda s, a: ((), (m.tail[s[a + Q]], self.inq), ()))(self.write_tail)
        code.step("unlock", "drop the queue locks", sp, writes=locks, nexts=["ready", *fin],
                  exact=lambda s, a: ((), both(s, a), ()))(self.unlock)
        ready_of = (lambda s, a: (m.ready[m.queues[s[a + Q]][0]],))
        code.step("ready", "test-and-set the queue's READY bit", sp, reads=readys, writes=readys,
                  nexts=["mark", *fin], exact=lambda s, a: (ready_of(s, a), ready_of(s, a), ()))(self.ready)
        code.step("mark", "vcpu_mark_events_pending: set evtchn_upcall_pending", f"{DOMAIN_C} vcpu_mark_events_pending",
                  sets=upcalls, nexts=list(fin), exact=lambda s, a: ((), (), (m.upcall[s[a + V]],)))(self.mark)


def sender(code: Code, mem: FifoMemory, port: int, events: int, without: frozenset[str]) -> str:
    """A Xen pCPU sending ``port`` ``events`` times (evtchn_send -> evtchn_fifo_set_pending).

    Each send is its own copy of the steps (labels ``notify.1``, ``notify.2``...), so what the
    sender may still do shrinks as it goes. Returns the first label.
    """
    names = [f"notify.{k + 1}" if events > 1 else "notify" for k in range(events)] + [DONE]
    for k in range(events):
        nxt = names[k + 1]
        scope = code.scope(f".{k + 1}" if events > 1 else "", exits=[nxt])
        sp = SetPending(mem, port, without, lambda s, a, nxt=nxt: nxt, (nxt,))
        scope.step("notify", f"evtchn_send: read port {port}'s notify_vcpu_id", f"{CHANNEL_C} evtchn_send",
                   reads=[mem.notify[port]], nexts=[sp.start])(sp.notify)
        sp.add_to(scope)
    return names[0]


def set_priority(code: Code, mem: FifoMemory, port: int, priority: int) -> None:
    """EVTCHNOP_set_priority: one store; a queued event stays where it is (future links only)."""
    _store(code, "set_priority", f"set port {port}'s priority to {priority}", f"{FIFO_C} evtchn_fifo_set_priority",
           mem.priority[port], priority)


def bind_vcpu(code: Code, mem: FifoMemory, port: int, vcpu: int) -> None:
    """EVTCHNOP_bind_vcpu: store the new notify_vcpu_id; the next send targets that vCPU."""
    _store(code, "bind_vcpu", f"set port {port}'s notify_vcpu_id to {vcpu}", f"{CHANNEL_C} evtchn_bind_vcpu",
           mem.notify[port], vcpu)


def _store(code: Code, label: str, text: str, mirrors: str, slot: int, value: int) -> None:
    """A hypercall whose whole effect is one store into Xen's ``struct evtchn``."""
    def run(s: list[int], a: int) -> str:
        s[slot] = value
        return DONE
    code.step(label, text, mirrors, writes=[slot], nexts=[DONE])(run)


def xen_unmask(code: Code | Scope, mem: FifoMemory, port: int, without: frozenset[str], finish: Finish,
               finish_labels: Sequence[str]) -> None:
    """EVTCHNOP_unmask -> evtchn_fifo_unmask, run on the guest's vCPU: clear MASKED, and if
    PENDING, set_pending again (which links the event). Starts at ``x_notify``."""
    sp = SetPending(mem, port, without, finish, finish_labels)
    word = mem.word[port]
    um = f"{FIFO_C} evtchn_fifo_unmask"

    def x_notify(s: list[int], a: int) -> str:
        s[a + V] = s[mem.notify[port]]
        return "x_clear_masked"

    def x_clear_masked(s: list[int], a: int) -> str:
        s[word] &= ~M
        return "x_test_pending"

    def x_test_pending(s: list[int], a: int) -> str:
        return sp.begin(s, a) if s[word] & P else finish(s, a)

    code.step("x_notify", f"EVTCHNOP_unmask: read port {port}'s notify_vcpu_id", um, reads=[mem.notify[port]],
              nexts=["x_clear_masked"], call="unmask")(x_notify)
    code.step("x_clear_masked", f"clear MASKED in port {port}'s word", um, writes=[(word, "M")],
              nexts=["x_test_pending"])(x_clear_masked)
    code.step("x_test_pending", f"test PENDING in port {port}'s word: relink it if set", um, reads=[(word, "P")],
              nexts=[sp.start, *finish_labels])(x_test_pending)
    sp.add_to(code)
