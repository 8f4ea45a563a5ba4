"""The 2-level ABI as atomic steps: Xen's evtchn_2l_set_pending and Linux's upcall handler.

Xen (xen/common/event_2l.c, evtchn_2l_set_pending, in strict order): test-and-set the
pending bit (stop if it was set), test the mask bit, test-and-set the selector bit
``port / BITS_PER_EVTCHN_WORD`` in the target vCPU's evtchn_pending_sel, and if that was
clear, vcpu_mark_events_pending (xen/arch/x86/domain.c): set evtchn_upcall_pending.
Linux (drivers/xen/events/events_base.c __xen_evtchn_do_upcall; events_2l.c
evtchn_2l_handle_events): clear evtchn_upcall_pending, exchange the selector with 0, scan
the selected words from the saved cursor (each word: evtchn_pending, then evtchn_mask,
read once), acking each port (clear its pending bit) before its handler; loop while
evtchn_upcall_pending was set again. The fairness cursor (current_word_idx/bit_idx) is
per-CPU, so it is the handler's local and survives from one upcall to the next. Linux
dispatches VIRQ_TIMER first; no configuration here binds a timer, so that branch never runs.
A 64-bit guest: BITS_PER_EVTCHN_WORD is 64.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..snapshot import DomainSnapshot, PortSnapshot, VcpuSnapshot
from .invariants import Violation, lost_ports, lost_text
from .machine import DONE, Code, Gate, GateKind, Layout, Scope, State

XEN_2L = "xen/common/event_2l.c evtchn_2l_set_pending"
LINUX_2L = "drivers/xen/events/events_2l.c evtchn_2l_handle_events"
BASE_C = "drivers/xen/events/events_base.c"
BITS = 64
ALL = (1 << BITS) - 1


class TwoLevelMemory:
    """shared_info's evtchn_pending / evtchn_mask words, each vCPU's selector and upcall flag,
    Xen's notify_vcpu_id per port, and the ghosts."""

    def __init__(self, layout: Layout, ports: Sequence, vcpus: int) -> None:
        self.ports = tuple(p.port for p in ports)
        self.vcpus = vcpus
        nwords = max(p.port for p in ports) // BITS + 1
        masked = [sum(1 << p.port % BITS for p in ports if p.masked and p.port // BITS == w) for w in range(nwords)]
        bits = [{f"port {p.port}": 1 << p.port % BITS for p in ports if p.port // BITS == w} for w in range(nwords)]
        self.pending = [layout.add(f"evtchn_pending[{w}]", 0, bits[w]) for w in range(nwords)]
        self.mask = [layout.add(f"evtchn_mask[{w}]", masked[w], bits[w]) for w in range(nwords)]
        words = {f"word {w}": 1 << w for w in range(nwords)}
        self.sel = [layout.add(f"evtchn_pending_sel[vcpu{v}]", 0, words) for v in range(vcpus)]
        self.upcall = [layout.add(f"upcall_pending[vcpu{v}]") for v in range(vcpus)]
        self.notify = {p.port: layout.add(f"notify_vcpu_id[{p.port}]", p.vcpu) for p in ports}
        self.owed = {p.port: layout.add(f"owed[{p.port}]") for p in ports}
        self.viol = layout.add("violations")
        self.labels = {p.port: p.label for p in ports}
        self.bound = {v: [sum(1 << p.port % BITS for p in ports if p.vcpu == v and p.port // BITS == w)
                          for w in range(nwords)] for v in range(vcpus)}  # Linux's cpu_evtchn_mask

    def is_masked(self, s: State, port: int) -> bool:
        return bool(s[self.mask[port // BITS]] >> port % BITS & 1)

    def is_pending(self, s: State, port: int) -> bool:
        return bool(s[self.pending[port // BITS]] >> port % BITS & 1)

    def check_state(self, s: State) -> int:
        return 0  # no structure that can break in the middle: the quiescent checks say it all

    def check_rest(self, s: State, waiting: bool) -> int:
        """Nothing owed and unmasked, no selector bit left without an upcall, nobody spinning."""
        bits = Violation.SPINS_FOREVER.bit if waiting else 0
        if lost_ports(self, s):
            bits |= Violation.EVENT_LOST.bit
        if any(s[sel] for sel in self.sel):
            bits |= Violation.STRANDED_SELECTOR.bit
        return bits

    def describe(self, s: State, bits: int) -> list[str]:
        out = []
        if bits & Violation.EVENT_LOST.bit:
            out.append(lost_text(lost_ports(self, s)))
        if bits & Violation.STRANDED_SELECTOR.bit:
            out.append("selector bits left set: " + ", ".join(f"vcpu{v} {s[x]:#x}" for v, x in enumerate(self.sel) if s[x]))
        return out

    def snapshot(self, s: State, upcalls: Sequence[int] = ()) -> DomainSnapshot:
        ports = tuple(PortSnapshot(p, "interdomain", s[self.notify[p]], self.labels[p], "dom0", self.is_pending(s, p),
                                   self.is_masked(s, p), 0, None) for p in self.ports)
        vcpus = tuple(VcpuSnapshot(s[self.upcall[v]], 0, s[self.sel[v]], upcalls[v] if upcalls else 0)
                      for v in range(self.vcpus))
        return DomainSnapshot("guest", "", "master", 1, "2-level", "2-level", None, ports, BITS,
                              tuple(s[w] for w in self.pending), tuple(s[w] for w in self.mask), vcpus, (), ())


# A Xen sender's locals: the target vCPU.
X_V = 1
SENDER_SIZE = 2


def sender(code: Code, mem: TwoLevelMemory, port: int, events: int) -> str:
    """A Xen pCPU sending ``port`` ``events`` times (evtchn_send -> evtchn_2l_set_pending), one
    copy of the steps per send: the first label."""
    names = [f"notify.{k + 1}" if events > 1 else "notify" for k in range(events)] + [DONE]
    for k in range(events):
        _send(code.scope(f".{k + 1}" if events > 1 else "", exits=[names[k + 1]]), mem, port, names[k + 1])
    return names[0]


def _send(code: Scope, mem: TwoLevelMemory, port: int, then: str) -> None:
    word, bit = mem.pending[port // BITS], 1 << port % BITS
    mask, sel_bit = mem.mask[port // BITS], 1 << port // BITS

    def notify(s: list[int], a: int) -> str:
        s[a + X_V] = s[mem.notify[port]]
        return "tas_pending"

    def tas_pending(s: list[int], a: int) -> str:
        was = s[word] & bit
        s[word] |= bit
        s[mem.owed[port]] = 1
        return then if was else "test_mask"

    def test_mask(s: list[int], a: int) -> str:
        return then if s[mask] & bit else "tas_sel"

    def tas_sel(s: list[int], a: int) -> str:
        slot = mem.sel[s[a + X_V]]
        was = s[slot] & sel_bit
        s[slot] |= sel_bit
        return then if was else "mark"

    def mark(s: list[int], a: int) -> str:
        s[mem.upcall[s[a + X_V]]] = 1
        return then

    code.step("notify", f"evtchn_send: read port {port}'s notify_vcpu_id", "xen/common/event_channel.c evtchn_send",
              reads=[mem.notify[port]], nexts=["tas_pending"])(notify)
    mine, sels = f"port {port}", [(sel, f"word {port // BITS}") for sel in mem.sel]
    code.step("tas_pending", f"test-and-set port {port}'s bit in evtchn_pending", XEN_2L, reads=[(word, mine)],
              writes=[(word, mine)], sets=[mem.owed[port]], nexts=["test_mask", then])(tas_pending)
    code.step("test_mask", f"test port {port}'s bit in evtchn_mask", XEN_2L, reads=[(mask, mine)],
              nexts=["tas_sel", then])(test_mask)
    sel_of = (lambda s, a: ((mem.sel[s[a + X_V]], f"word {port // BITS}"),))  # noqa: E731
    code.step("tas_sel", f"test-and-set selector bit {port // BITS} in evtchn_pending_sel", XEN_2L, reads=sels,
              writes=sels, nexts=["mark", then], exact=lambda s, a: (sel_of(s, a), sel_of(s, a), ()))(tas_sel)
    code.step("mark", "vcpu_mark_events_pending: set evtchn_upcall_pending",
              "xen/arch/x86/domain.c vcpu_mark_events_pending", sets=mem.upcall, nexts=[then],
              exact=lambda s, a: ((), (), (mem.upcall[s[a + X_V]],)))(mark)


# The handler's locals: pending_words, word_idx, bit_idx, start_word_idx, start_bit_idx, i,
# pending_bits, the evtchn_pending word as read, then the per-CPU cursor.
PW, WI, BI, SW, SB, I, PB, PEND, CW, CB = range(1, 11)
HANDLER_SIZE = 11


class Handler:
    """Linux's 2-level upcall handler on one vCPU."""

    def __init__(self, mem: TwoLevelMemory, vcpu: int, without: frozenset[str]) -> None:
        self.mem, self.vcpu = mem, vcpu
        self.upcall, self.sel = mem.upcall[vcpu], mem.sel[vcpu]
        self.bound = mem.bound[vcpu]
        self.clear_first = "upcall-clear-first" not in without
        self.xchg = "sel-xchg" not in without
        self.recheck = "upcall-recheck" not in without

    def take_upcall(self, s: list[int], a: int) -> str:
        if self.clear_first:
            s[self.upcall] = 0
        return "xchg_sel" if self.xchg else "read_sel"

    def xchg_sel(self, s: list[int], a: int) -> str:
        s[a + PW] = s[self.sel]
        s[self.sel] = 0
        return self.selected(s, a)

    def read_sel(self, s: list[int], a: int) -> str:
        s[a + PW] = s[self.sel]
        return "zero_sel"

    def zero_sel(self, s: list[int], a: int) -> str:
        s[self.sel] = 0
        return self.selected(s, a)

    def selected(self, s: list[int], a: int) -> str:
        return self.start_scan(s, a) if self.clear_first else "clear_late"

    def clear_late(self, s: list[int], a: int) -> str:
        s[self.upcall] = 0
        return self.start_scan(s, a)

    def start_scan(self, s: list[int], a: int) -> str:
        s[a + SW], s[a + SB] = s[a + CW], s[a + CB]
        s[a + WI], s[a + I] = s[a + CW], 0
        return self.next_word(s, a)

    def next_word(self, s: list[int], a: int) -> str:
        """The next selected word from the cursor, wrapping to word 0 once."""
        while s[a + PW]:
            words = s[a + PW] & (ALL << s[a + WI]) & ALL
            if words:
                s[a + WI] = (words & -words).bit_length() - 1
                return "read_pending"
            s[a + WI], s[a + BI] = 0, 0
            s[a + I] += 1
        return "recheck_upcall" if self.recheck else "idle"

    def read_pending(self, s: list[int], a: int) -> str:
        s[a + PEND] = s[self.mem.pending[s[a + WI]]]
        return "read_mask"

    def read_mask(self, s: list[int], a: int) -> str:
        w = s[a + WI]
        s[a + PB] = s[a + PEND] & self.bound[w] & ~s[self.mem.mask[w]]
        s[a + BI] = s[a + SB] if w == s[a + SW] and s[a + I] == 0 else 0
        return self.next_bit(s, a)

    def next_bit(self, s: list[int], a: int) -> str:
        bits = s[a + PB] & (ALL << s[a + BI]) & ALL
        if not bits:
            return self.end_word(s, a)
        s[a + BI] = (bits & -bits).bit_length() - 1
        return "ack"

    def ack(self, s: list[int], a: int) -> str:
        """handle_irq_for_port: ack (clear the pending bit), the handler; the cursor moves on."""
        w, b = s[a + WI], s[a + BI]
        s[self.mem.pending[w]] &= ~(1 << b)
        s[self.mem.owed[w * BITS + b]] = 0
        s[a + BI] = b = (b + 1) % BITS
        s[a + CW], s[a + CB] = (w if b else (w + 1) % BITS), b
        return self.next_bit(s, a) if b else self.end_word(s, a)

    def acked(self, s: Sequence[int], a: int) -> tuple:
        """What the next ack touches: one pending bit and its port's ghost."""
        port = s[a + WI] * BITS + s[a + BI]
        return (), ((self.mem.pending[s[a + WI]], f"port {port}"), self.mem.owed[port]), ()

    def end_word(self, s: list[int], a: int) -> str:
        """Drop the word from pending_words, except the starting word on the first pass."""
        w = s[a + WI]
        if w != s[a + SW] or s[a + I] != 0:
            s[a + PW] &= ~(1 << w)
        s[a + WI] = (w + 1) % BITS
        s[a + I] += 1
        return self.next_word(s, a)

    def check_upcall(self, s: list[int], a: int) -> str:
        return "clear_upcall" if s[self.upcall] else "idle"

    def add_to(self, code: Code) -> None:
        m, v = self.mem, self.vcpu
        up = f"{BASE_C} __xen_evtchn_do_upcall"
        scan = ["read_pending", "recheck_upcall" if self.recheck else "idle"]
        first = "xchg_sel" if self.xchg else "read_sel"
        after_sel = scan if self.clear_first else ["clear_late"]
        owed = [m.owed[p] for p in m.ports]
        idle = Gate(GateKind.WAIT, lambda s, a: s[self.upcall] == 1, lambda s, a: self.upcall,
                    frozenset([self.upcall]), ahead=True, rest=True)
        what = "; clear evtchn_upcall_pending" if self.clear_first else ""
        code.step("idle", f"take the upcall (vCPU {v}){what}", up, reads=[self.upcall],
                  writes=[self.upcall] if self.clear_first else [], gate=idle, nexts=[first])(self.take_upcall)
        if self.xchg:
            code.step("xchg_sel", "exchange evtchn_pending_sel with 0", LINUX_2L, reads=[self.sel],
                      writes=[self.sel], nexts=after_sel)(self.xchg_sel)
        else:
            code.step("read_sel", "read evtchn_pending_sel", LINUX_2L, reads=[self.sel],
                      nexts=["zero_sel"])(self.read_sel)
            code.step("zero_sel", "store 0 into evtchn_pending_sel", LINUX_2L, writes=[self.sel],
                      nexts=after_sel)(self.zero_sel)
        if not self.clear_first:
            code.step("clear_late", "clear evtchn_upcall_pending (after the selector)", up, writes=[self.upcall],
                      nexts=scan)(self.clear_late)
        code.step("read_pending", "read the selected evtchn_pending word", LINUX_2L, reads=m.pending,
                  nexts=["read_mask"], exact=lambda s, a: ((m.pending[s[a + WI]],), (), ()))(self.read_pending)
        code.step("read_mask", "read the evtchn_mask word: the active bits", LINUX_2L, reads=m.mask,
                  nexts=["ack", *scan], exact=lambda s, a: ((m.mask[s[a + WI]],), (), ()))(self.read_mask)
        acks = [(m.pending[p // BITS], f"port {p}") for p in m.ports if self.bound[p // BITS] >> p % BITS & 1]
        code.step("ack", "handle_irq_for_port: ack (clear the pending bit), then the handler",
                  f"{BASE_C} handle_irq_for_port", writes=[*acks, *owed], exact=self.acked,
                  nexts=["ack", *scan])(self.ack)
        if self.recheck:
            code.step("recheck_upcall", "evtchn_upcall_pending set again meanwhile? then loop", up,
                      reads=[self.upcall], nexts=["clear_upcall", "idle"])(self.check_upcall)
            code.step("clear_upcall", f"loop{what}", up, writes=[self.upcall] if self.clear_first else [],
                      nexts=[first])(self.take_upcall)
