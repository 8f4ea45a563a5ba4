"""A guest's event channels against a model, one random step at a time, on any Xen row.

A Hypothesis ``RuleBasedStateMachine`` plays a Linux-like guest (2 vCPUs) with dom0 as
its backend. It binds interdomain, IPI and VIRQ_TIMER ports, sends, masks, unmasks,
closes, moves ports between vCPUs, sets priorities, grows the FIFO event array, resets,
meets XSM denials and failed allocations, and runs the consumer. A small model says what
must be pending, masked and delivered; invariants compare it with what Xen wrote into
guest memory. A machine runs on Xen master by default, or on a given ``Xen`` of any row of
``XEN_VERSIONS`` (where rows differ, the expectations read the row's fields), beside other
machines on the same host: tests/test_stateful.py drives them with Hypothesis,
tests/test_random_walk.py with a seeded ``random.Random`` (``walk``).

Models the event paths of xen/common/event_channel.c, event_2l.c and event_fifo.c against
drivers/xen/events/events_base.c, events_2l.c and events_fifo.c (fact sheet 2.2-2.6, 4.3,
4.4). Only the guest's own memory and hypercall results are read, plus Xen's private
queue TAIL (``d.fifo.vcpus[v].queues[q].tail``) for the queue invariant.
"""

from __future__ import annotations

import random
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from conftest import ARRAY_GFN, CONTROL_GFN, connect, fifo_consumer, op, to_fifo, two_level_consumer
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from evtsim import (
    DOMID_SELF,
    EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PRIORITY_MIN,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_bind_virq,
    EVTCHNOP_close,
    EVTCHNOP_expand_array,
    EVTCHNOP_reset,
    EVTCHNOP_send,
    EVTCHNOP_set_priority,
    EVTCHNOP_status,
    EVTCHNOP_unmask,
    EVTCHNSTAT_closed,
    EVTCHNSTAT_interdomain,
    EVTCHNSTAT_ipi,
    EVTCHNSTAT_unbound,
    EVTCHNSTAT_virq,
    VIRQ_TIMER,
    XEN_DOMCTL_CDF_evtchn_fifo,
    XEN_DOMCTL_CDF_hvm,
    AllocSite,
    Errno,
    EvtchnOp,
    Structure,
    Xen,
)
from evtsim.abi import FIFO_OPS
from evtsim.fifo import B, L, M, P
from evtsim.versions import Bit7, ResetRevert

WORDS = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
MAX_PAGES = 3  # enough to exercise expand_array; each page costs a scan per step
VCPUS = 2


@dataclass(frozen=True)
class Arg:
    """A rule argument: how Hypothesis draws it, and how the seeded walk draws it."""

    strategy: st.SearchStrategy
    draw: Callable[[random.Random], object]


def integers(low: int, high: int) -> Arg:
    return Arg(st.integers(low, high), lambda rng: rng.randint(low, high))


def one_of(*values: object) -> Arg:
    return Arg(st.sampled_from(values), lambda rng: rng.choice(values))


#: Every rule argument, by name: rules take theirs from here (``args``), and so does the walk.
ARGS = {
    "which": integers(0, 63),  # which of the eligible ports (modulo their number)
    "vcpu": integers(0, VCPUS - 1),
    "port": integers(1, 63),
    "priority": integers(0, EVTCHN_FIFO_PRIORITY_MIN + 1),
    "pages": integers(0, 1),
    "which_op": integers(0, 6),
    "errno": one_of(Errno.EPERM, Errno.EACCES),
    "reuse": one_of(False, True),
    "via_hypercall": one_of(False, True),
    "mask_first": one_of(False, True),
}


def args(*names: str) -> dict[str, st.SearchStrategy]:
    """``@rule(**args("which", "vcpu"))``: the Hypothesis strategies of those arguments."""
    return {name: ARGS[name].strategy for name in names}

STATUS = {"interdomain": EVTCHNSTAT_interdomain, "ipi": EVTCHNSTAT_ipi, "timer": EVTCHNSTAT_virq}


@dataclass
class Binding:
    """What the guest (and the model) believe about one bound guest port."""

    kind: str  # "interdomain", "ipi" or "timer"
    vcpu: int  # notify vCPU (bind_vcpu moves it for interdomain ports only)
    base: int  # consumer.received[port] when the port was bound
    backend_port: int = 0  # dom0's end of an interdomain channel
    masked: bool = True  # the guest's mask bit / M bit
    outstanding: bool = False  # raised and not yet delivered: the pending bit / P bit
    sends: int = 0  # EVTCHNOP_send and timer ticks aimed at this binding
    extra: int = 0  # raises Xen made by itself (bind_interdomain; FIFO stale re-raise)
    delivered: int = 0  # events the consumer must have run for this binding


class _AbstractMachineMeta(ABCMeta, type(RuleBasedStateMachine)):
    """Hypothesis's state-machine metaclass with ABCMeta's check: a machine that leaves out an
    ABI's guest behaviour cannot be built."""


class EventChannelMachine(RuleBasedStateMachine, metaclass=_AbstractMachineMeta):
    """The ABI-independent part: world, model, rules and the no-lost-event invariants.

    The model follows fact sheet 2.2-2.4: every raise sets the port pending (coalescing
    with one already pending); a consume delivers each pending, unmasked bound port exactly
    once; a masked port stays pending until it is unmasked; close and reset discard the
    pending state.
    """

    ABI = ""

    def __init__(self, xen: Xen | None = None) -> None:
        super().__init__()
        self.xen = Xen("master", recording="full") if xen is None else xen
        self.row = self.xen.version
        self.dom0 = self.xen.dom0
        self.guest = self.xen.domain_create(vcpus=VCPUS, flags=self.create_flags())
        self.ports: dict[int, Binding] = {}
        self.orphans: list[int] = []  # dom0 ports left UNBOUND for the guest by a close
        self.timer = [0] * VCPUS  # the guest's VIRQ_TIMER port per vCPU
        self.consumer = None

    def create_flags(self) -> int:
        """XEN_DOMCTL_createdomain's flags for the guest (the FIFO machine may need bit 7)."""
        return XEN_DOMCTL_CDF_hvm

    # --- ABI-specific guest behaviour -----------------------------------------------------

    @abstractmethod
    def boot(self) -> None:
        """The guest kernel's xen_init_IRQ: choose and set up the ABI, build the consumer."""

    @abstractmethod
    def guest_pending(self, port: int) -> bool:
        """Whether the guest's memory shows ``port`` pending."""

    @abstractmethod
    def guest_masked(self, port: int) -> bool:
        """Whether the guest's memory shows ``port`` masked."""

    @abstractmethod
    def mask(self, port: int) -> None:
        """The guest sets the mask itself (mask_evtchn)."""

    @abstractmethod
    def linux_unmask(self, port: int) -> None:
        """The guest's unmask_evtchn: local where allowed, else EVTCHNOP_unmask."""

    def routed(self, port: int, vcpu: int) -> None:
        """A port was bound or moved to ``vcpu``: the guest updates its consumer."""

    def beyond_array(self, port: int) -> bool:
        """Whether Xen has no event word for ``port`` yet (FIFO only)."""
        return False

    def prepare_port(self, port: int) -> None:
        """What the guest does for a freshly bound port before enabling it (FIFO: expand)."""

    # --- model helpers --------------------------------------------------------------------

    def eligible(self, *kinds: str) -> list[int]:
        return sorted(p for p, b in self.ports.items() if not kinds or b.kind in kinds)

    def pick(self, which: int, *kinds: str) -> int:
        ports = self.eligible(*kinds)
        return ports[which % len(ports)]

    def raised_by(self, port: int, action) -> None:
        """Run ``action`` (a send or a Xen VIRQ), check Xen's immediate effect, model it."""
        before = self.snapshot(port)
        action()
        self.check_raise(port, before)
        self.raise_event(port)

    def snapshot(self, port: int):
        """What a raise on ``port`` may or may not change (ABI-specific)."""

    def check_raise(self, port: int, before) -> None:
        """A raise on a masked or already-pending port changes nothing but the pending bit."""

    def raise_event(self, port: int, *, by_xen: bool = False) -> None:
        """Model of set_pending on a bound port: pending (coalesced), delivered later."""
        b = self.ports[port]
        if by_xen:
            b.extra += 1
        else:
            b.sends += 1
        b.outstanding = True

    def bound(self, port: int, kind: str, vcpu: int, backend_port: int = 0) -> Binding:
        b = Binding(kind, vcpu, self.consumer.received[port], backend_port)
        if self.freed_with_pending(port):
            b.outstanding, b.extra = True, 1  # Xen raised it while it was free
        self.ports[port] = b
        return b

    def freed_with_pending(self, port: int) -> bool:
        """Whether a free port's word was left pending by Xen (FIFO stale re-raise)."""
        return False

    def enable(self, port: int) -> None:
        """After a bind: route, prepare, then unmask, as Linux does when it starts the IRQ."""
        self.routed(port, self.ports[port].vcpu)
        self.prepare_port(port)
        self.unmask(port, via_hypercall=False)

    def unmask(self, port: int, via_hypercall: bool) -> None:
        if via_hypercall:
            assert op(self.guest, EVTCHNOP_unmask, port=port)[0] == 0
        else:
            self.linux_unmask(port)
        self.ports[port].masked = False

    # --- rules: binding -------------------------------------------------------------------

    @rule(**args("reuse", "which"))
    def bind_interdomain(self, reuse: bool, which: int) -> None:
        """connect(): alloc_unbound in dom0 + bind_interdomain; or re-bind an orphaned dom0 port.

        evtchn_bind_interdomain marks the new local port pending (fact sheet 1.3).
        """
        if reuse and self.orphans:
            backend_port = self.orphans.pop(which % len(self.orphans))
            rc, arg = op(self.guest, EVTCHNOP_bind_interdomain, remote_dom=self.dom0.domain_id,
                         remote_port=backend_port)
            assert rc == 0, rc
            port = arg.local_port
        else:
            backend_port, port = connect(self.dom0, self.guest)
        self.bound(port, "interdomain", 0, backend_port)
        if self.row.interdomain_sets_pending:  # QEMU's emulation does not (xen_evtchn.c)
            self.raise_event(port, by_xen=True)
        self.enable(port)

    @rule(**args("vcpu"))
    def bind_ipi(self, vcpu: int) -> None:
        """evtchn_bind_ipi: a port on ``vcpu`` the guest notifies itself with."""
        rc, arg = op(self.guest, EVTCHNOP_bind_ipi, vcpu=vcpu)
        assert rc == 0, rc
        self.bound(arg.port, "ipi", vcpu)
        self.enable(arg.port)

    @rule(**args("vcpu"))
    def bind_timer(self, vcpu: int) -> None:
        """evtchn_bind_virq(VIRQ_TIMER): once per vCPU, -EEXIST the second time."""
        rc, arg = op(self.guest, EVTCHNOP_bind_virq, virq=VIRQ_TIMER, vcpu=vcpu)
        if self.timer[vcpu]:
            assert rc == -Errno.EEXIST, rc
            return
        assert rc == 0, rc
        self.timer[vcpu] = arg.port
        self.bound(arg.port, "timer", vcpu)
        self.enable(arg.port)

    # --- rules: raising events ------------------------------------------------------------

    @precondition(lambda self: self.eligible("interdomain"))
    @rule(**args("which"))
    def backend_sends(self, which: int) -> None:
        """evtchn_send from dom0 on its end: set_pending on the guest's port."""
        port = self.pick(which, "interdomain")
        backend_port = self.ports[port].backend_port
        self.raised_by(port, lambda: self.sent(self.dom0, backend_port))

    @precondition(lambda self: self.orphans)
    @rule(**args("which"))
    def backend_sends_on_an_unbound_port(self, which: int) -> None:
        """evtchn_send on an UNBOUND port returns 0 and drops the event (fact sheet 2.2)."""
        assert op(self.dom0, EVTCHNOP_send, port=self.orphans[which % len(self.orphans)])[0] == 0

    @precondition(lambda self: self.orphans)
    @rule(**args("which"))
    def backend_closes_an_unbound_port(self, which: int) -> None:
        """dom0 tidies up a channel its frontend went away from."""
        port = self.orphans.pop(which % len(self.orphans))
        assert op(self.dom0, EVTCHNOP_close, port=port)[0] == 0

    @precondition(lambda self: self.eligible("ipi"))
    @rule(**args("which"))
    def guest_sends_ipi(self, which: int) -> None:
        """evtchn_send on an IPI port: set_pending on the port itself."""
        port = self.pick(which, "ipi")
        self.raised_by(port, lambda: self.sent(self.guest, port))

    @rule(**args("vcpu"))
    def xen_timer_fires(self, vcpu: int) -> None:
        """send_guest_vcpu_virq(VIRQ_TIMER): only a bound timer port is raised."""
        def fire() -> None:
            self.xen.send_guest_vcpu_virq(self.guest.vcpus[vcpu], VIRQ_TIMER)

        if self.timer[vcpu]:
            self.raised_by(self.timer[vcpu], fire)
        else:
            fire()  # nothing is bound: nothing may change (the invariants check)

    @staticmethod
    def sent(d, port: int) -> None:
        assert op(d, EVTCHNOP_send, port=port)[0] == 0

    # --- rules: the guest's own port management ---------------------------------------------

    @precondition(lambda self: self.ports)
    @rule(**args("which"))
    def guest_masks(self, which: int) -> None:
        """mask_evtchn: the guest sets the 2-level mask bit or the FIFO M bit itself."""
        port = self.pick(which)
        self.mask(port)
        self.ports[port].masked = True

    @precondition(lambda self: self.ports)
    @rule(**args("which", "via_hypercall"))
    def guest_unmasks(self, which: int, via_hypercall: bool) -> None:
        """EVTCHNOP_unmask, or Linux's unmask_evtchn (local when not pending)."""
        self.unmask(self.pick(which), via_hypercall)

    def closable(self, port: int) -> bool:
        """Whether the guest may close ``port`` now (see the FIFO machine's)."""
        return True

    @precondition(lambda self: any(map(self.closable, self.ports)))
    @rule(**args("which", "mask_first"))
    def guest_closes(self, which: int, mask_first: bool) -> None:
        """evtchn_close: pending state is cleared; dom0's end goes back to UNBOUND."""
        ports = [p for p in self.eligible() if self.closable(p)]
        port = ports[which % len(ports)]
        if mask_first:
            self.mask(port)
        assert op(self.guest, EVTCHNOP_close, port=port)[0] == 0
        b = self.ports.pop(port)
        if b.kind == "interdomain":
            self.orphans.append(b.backend_port)
        elif b.kind == "timer":
            self.timer[b.vcpu] = 0
        self.closed(port, b)

    def closed(self, port: int, b: Binding) -> None:
        """ABI-specific bookkeeping after a close."""

    @rule(**args("port"))
    def guest_pokes_a_free_port(self, port: int) -> None:
        """A valid but FREE port: status closed; close (QEMU: -ENOENT), send and bind_vcpu
        -EINVAL; unmask returns 0 and does nothing (QEMU: -EINVAL) (fact sheet 2.2, 8.4)."""
        if port in self.ports:
            return
        g, row = self.guest, self.row
        rc, s = op(g, EVTCHNOP_status, dom=DOMID_SELF, port=port)
        assert (rc, s.status) == (0, EVTCHNSTAT_closed), (rc, s)
        assert op(g, EVTCHNOP_close, port=port)[0] == -row.close_free_errno
        assert op(g, EVTCHNOP_send, port=port)[0] == -Errno.EINVAL
        assert op(g, EVTCHNOP_bind_vcpu, port=port, vcpu=VCPUS - 1)[0] == -Errno.EINVAL
        assert op(g, EVTCHNOP_unmask, port=port)[0] == (-row.unmask_free_errno if row.unmask_free_errno else 0)

    @precondition(lambda self: self.ports)
    @rule(**args("which", "priority"))
    def guest_sets_priority(self, which: int, priority: int) -> None:
        """EVTCHNOP_set_priority: -ENOSYS on 2-level, -EINVAL above 15 (fact sheet 8.4)."""
        rc = op(self.guest, EVTCHNOP_set_priority, port=self.pick(which), priority=priority)[0]
        if self.ABI == "2-level":
            assert rc == -Errno.ENOSYS, rc
        else:
            assert rc == (-Errno.EINVAL if priority > EVTCHN_FIFO_PRIORITY_MIN else 0), rc

    @precondition(lambda self: self.ports)
    @rule(**args("which", "vcpu"))
    def guest_moves_port_to_vcpu(self, which: int, vcpu: int) -> None:
        """xen_rebind_evtchn_to_cpu: mask, EVTCHNOP_bind_vcpu, re-route, unmask if it was.

        IPI and per-vCPU VIRQ ports cannot move: -EINVAL (fact sheet 2.2).
        """
        port = self.pick(which)
        b = self.ports[port]
        was_masked = b.masked
        self.mask(port)
        b.masked = True
        rc = op(self.guest, EVTCHNOP_bind_vcpu, port=port, vcpu=vcpu)[0]
        assert rc == (0 if b.kind == "interdomain" else -Errno.EINVAL), rc
        if rc == 0:
            b.vcpu = vcpu
            self.routed(port, vcpu)
        if not was_masked:
            self.unmask(port, via_hypercall=False)

    def can_reset(self) -> bool:
        """Whether a kernel after the reset can set its ABI up again (see the FIFO machine's)."""
        return True

    @precondition(lambda self: self.can_reset())
    @rule()
    def guest_resets(self) -> None:
        """EVTCHNOP_reset(DOMID_SELF): every port closed, FIFO reverts to 2-level (2.6).

        Then a fresh kernel boots on the domain (kexec) and sets up its ABI again.
        """
        assert op(self.guest, EVTCHNOP_reset, dom=DOMID_SELF)[0] == 0
        assert self.guest.abi == "2-level"
        self.orphans += [b.backend_port for b in self.ports.values() if b.kind == "interdomain"]
        self.ports.clear()
        self.timer = [0] * VCPUS
        self.reboot()

    def reboot(self) -> None:
        """The kernel that runs after the reset."""
        self.boot()

    # --- rules: faults --------------------------------------------------------------------

    def deniable(self, which: int) -> list[tuple[EvtchnOp, dict[str, int]]]:
        """Hypercalls this guest makes, with arguments Xen would accept, that an XSM policy
        may deny: binds, and the port ops on one of its ports (``which``) if it has any."""
        calls = [(EVTCHNOP_bind_ipi, {"vcpu": 0}), (EVTCHNOP_reset, {"dom": DOMID_SELF})]
        if self.ports:
            port = self.pick(which)
            calls += [(EVTCHNOP_send, {"port": port}), (EVTCHNOP_unmask, {"port": port}),
                      (EVTCHNOP_close, {"port": port}), (EVTCHNOP_bind_vcpu, {"port": port, "vcpu": 0}),
                      (EVTCHNOP_set_priority, {"port": port, "priority": 3})]
        refused = self.guest.fifo_refusal()  # the 2020 flag answers before XSM is asked
        return [(cmd, fields) for cmd, fields in calls
                if cmd in self.xen.hypercall_table and not (refused and cmd in FIFO_OPS)]

    def visible_state(self) -> tuple:
        """What a hypercall could change: the guest's shared_info and event-channel frames,
        its port table, and dom0's."""
        frames = [self.guest.shared_info.frame, *self.fifo_frames()]
        tables = (self.guest.ports, self.dom0.ports)
        return (tuple(bytes(f.data) for f in frames),
                tuple((t.active, t.valid_evtchns, tuple(t.state[:t.valid_evtchns])) for t in tables))

    def fifo_frames(self) -> list:
        """The control-block and event-array frames (FIFO machine)."""
        return []

    @rule(**args("which_op", "which", "errno"))
    def xsm_denies_a_hypercall(self, which_op: int, which: int, errno: Errno) -> None:
        """An XSM policy denies one sub-op to this guest: Xen answers the errno at the entry of
        do_event_channel_op, before the handler runs, so nothing the guest or dom0 can see
        changes (the review's question of an init_control that fails for another reason)."""
        calls = self.deniable(which)
        cmd, fields = calls[which_op % len(calls)]
        before = self.visible_state()
        self.xen.xsm.deny(cmd, errno, self.guest.domain_id)
        try:
            rc = op(self.guest, cmd, **fields)[0]
        finally:
            self.xen.xsm.allow(cmd, self.guest.domain_id)
        assert rc == -errno, (cmd.name, rc)
        assert self.visible_state() == before, cmd.name

    @rule(**args("vcpu"))
    def a_port_bucket_allocation_fails(self, vcpu: int) -> None:
        """-ENOMEM armed for the guest's next bucket of 64 ports (evtchn_allocate_port): a bind
        that needs a new bucket fails and changes nothing; one that finds a free port in the
        buckets it has succeeds without touching the fault."""
        ports = self.guest.ports
        valid, active = ports.valid_evtchns, ports.active
        self.xen.faults.fail(AllocSite.EVTCHN_BUCKET, self.guest.domain_id)
        try:
            rc, arg = op(self.guest, EVTCHNOP_bind_ipi, vcpu=vcpu)
            armed = bool(self.xen.faults.armed)
        finally:
            self.xen.faults.armed.clear()
        if rc == -Errno.ENOMEM:
            assert (ports.valid_evtchns, ports.active, armed) == (valid, active, False)
            return
        assert rc == 0 and arg.port < valid and armed, (rc, arg, valid, armed)
        self.bound(arg.port, "ipi", vcpu)
        self.enable(arg.port)

    @rule()
    def guest_consumes(self) -> None:
        """__xen_evtchn_do_upcall on every vCPU with an upcall pending.

        Each pending, unmasked bound port runs exactly once; masked ones wait.
        """
        due = [b for b in self.ports.values() if b.outstanding and not b.masked]
        ran = self.consumer.run()
        for b in due:
            b.outstanding = False
            b.delivered += 1
        assert ran == len(due), f"consumer ran {ran} events, model expected {len(due)}"

    # --- invariants shared by both ABIs ---------------------------------------------------

    @invariant()
    def no_event_is_lost_or_invented(self) -> None:
        """Every raise on a bound port is delivered once or coalesced with a pending one.

        received[port] counts since the bind. It equals the model's deliveries, so it is at
        least 1 after any consume that followed a raise on an unmasked port, and it never
        exceeds the sends plus the raises Xen made itself (bind_interdomain's pending, and
        in FIFO the stale ``evtchn->pending`` re-raise of fact sheet 2.4).
        """
        for port, b in self.ports.items():
            received = self.consumer.received[port] - b.base
            assert received == b.delivered, (port, b, received)
            assert received + b.outstanding <= b.sends + b.extra, (port, b)

    @invariant()
    def pending_and_mask_state_match_the_model(self) -> None:
        """A raised, undelivered event is visibly pending; masks are what the guest set."""
        for port, b in self.ports.items():
            assert self.guest_pending(port) == b.outstanding, (port, b)
            assert self.guest_masked(port) == b.masked, (port, b)

    @invariant()
    def xen_reports_every_port_as_bound(self) -> None:
        """evtchn_status agrees with the model on both ends of every channel."""
        for port, b in self.ports.items():
            rc, s = op(self.guest, EVTCHNOP_status, dom=DOMID_SELF, port=port)
            assert rc == 0 and s.status == STATUS[b.kind] and s.vcpu == b.vcpu, (port, b, s)
            if b.kind == "interdomain":
                assert (s.u_dom, s.u_port) == (self.dom0.domain_id, b.backend_port), (port, s)
        for port in self.orphans:
            rc, s = op(self.dom0, EVTCHNOP_status, dom=DOMID_SELF, port=port)
            assert rc == 0 and s.status == EVTCHNSTAT_unbound and s.u_dom == self.guest.domain_id, s


class TwoLevelMachine(EventChannelMachine):
    """A guest that stays on the 2-level ABI (e.g. booted with xen.fifo_events=0)."""

    ABI = "2-level"

    @initialize()
    def start(self) -> None:
        self.boot()

    def boot(self) -> None:
        """xen_init_IRQ on 2-level: xen_evtchn_mask_all, then a fresh consumer."""
        self.consumer = two_level_consumer(self.guest)
        self.shinfo = self.consumer.shinfo
        self.bits = self.shinfo.layout.bits_per_word
        ones = (1 << self.bits) - 1
        for word in range(len(self.shinfo.evtchn_mask)):
            self.shinfo.evtchn_mask[word] = ones

    def _bit(self, bitmap, port: int) -> bool:
        word, bit = divmod(port, self.bits)
        return bool(bitmap[word] >> bit & 1)

    def _set_bit(self, bitmap, port: int, on: bool) -> None:
        word, bit = divmod(port, self.bits)
        bitmap[word] = bitmap[word] | 1 << bit if on else bitmap[word] & ~(1 << bit)

    def guest_pending(self, port: int) -> bool:
        return self._bit(self.shinfo.evtchn_pending, port)

    def guest_masked(self, port: int) -> bool:
        return self._bit(self.shinfo.evtchn_mask, port)

    def mask(self, port: int) -> None:
        self._set_bit(self.shinfo.evtchn_mask, port, True)

    def linux_unmask(self, port: int) -> None:
        """evtchn_2l_unmask on HVM: clear the bit; if pending, re-mask and ask Xen (4.4)."""
        self._set_bit(self.shinfo.evtchn_mask, port, False)
        if self.guest_pending(port):
            self._set_bit(self.shinfo.evtchn_mask, port, True)
            assert op(self.guest, EVTCHNOP_unmask, port=port)[0] == 0

    def _vcpu_state(self) -> list[tuple[int, int]]:
        return [(v.vcpu_info.evtchn_pending_sel, v.vcpu_info.evtchn_upcall_pending) for v in self.guest.vcpus]

    def snapshot(self, port: int):
        return self.guest_pending(port), self.guest_masked(port), self._vcpu_state()

    def check_raise(self, port: int, before) -> None:
        """evtchn_2l_set_pending (2.3): an already-pending port changes nothing; a masked one
        only its pending bit; selector and upcall are left alone in both cases."""
        was_pending, was_masked, vcpus = before
        assert self.guest_pending(port)
        if was_pending or was_masked:
            assert self._vcpu_state() == vcpus, (port, was_pending, was_masked, vcpus, self._vcpu_state())

    def routed(self, port: int, vcpu: int) -> None:
        """evtchn_2l_bind_to_cpu, and the per-CPU timer port for the timer-first rule."""
        self.consumer.bind_to_cpu(port, vcpu)
        if self.ports[port].kind == "timer":
            self.consumer.timer_port[vcpu] = port

    def closed(self, port: int, b: Binding) -> None:
        if b.kind == "timer":
            self.consumer.timer_port[b.vcpu] = 0

    @invariant()
    def selector_and_upcall_cover_every_deliverable_port(self) -> None:
        """evtchn_2l_set_pending / unmask (fact sheet 2.3): a pending, unmasked port has its
        selector bit set on its notify vCPU, and a non-zero selector has the upcall pending.
        Only bound ports are pending (close clears the bit)."""
        infos = [v.vcpu_info for v in self.guest.vcpus]
        for info in infos:
            assert not info.evtchn_pending_sel or info.evtchn_upcall_pending
        pending = {w * self.bits + b for w, word in enumerate(self.shinfo.evtchn_pending)
                   if word for b in range(self.bits) if word >> b & 1}
        assert pending <= self.ports.keys(), pending - self.ports.keys()
        for port in pending:
            if not self.guest_masked(port):
                sel = infos[self.ports[port].vcpu].evtchn_pending_sel
                assert sel >> (port // self.bits) & 1, (port, self.ports[port])

    @invariant()
    def xen_writes_no_fifo_structures(self) -> None:
        """A 2-level domain has no control block or event array for Xen to write."""
        gid = self.guest.domain_id
        assert not any(w.domid == gid and w.structure in (Structure.CONTROL_BLOCK, Structure.EVENT_ARRAY)
                       for w in self.xen.log.writes)


class FifoMachine(EventChannelMachine):
    """A Linux guest on the FIFO ABI: init_control on every vCPU, masked array pages."""

    ABI = "fifo"

    def create_flags(self) -> int:
        """[PATCH v5 1/4]: a domain gets FIFO only with XEN_DOMCTL_CDF_evtchn_fifo set."""
        return XEN_DOMCTL_CDF_hvm | (XEN_DOMCTL_CDF_evtchn_fifo if self.row.bit7 is Bit7.EVTCHN_FIFO else 0)

    def can_reset(self) -> bool:
        """Xen 4.4's reset keeps the domain in FIFO mode with its control blocks registered,
        so the next kernel's init_control is -EINVAL (the kexec that soft reset fixed in
        4.7): the model has no kernel for that, so 4.4 walks do not reset a FIFO guest."""
        return self.row.reset_revert is not ResetRevert.NEVER

    def closable(self, port: int) -> bool:
        """Before 78e24c269b0a (4.7) get_free_port hands out a port whose word is still
        LINKED, and the next raise corrupts its old queue (Xen's bug, which test_fifo.py
        shows). On those rows this guest closes a port only once it is off every queue."""
        return self.row.busy_port_skipped or self.beyond_array(port) or not self._word(port) & L

    @initialize(**args("pages"))
    def start(self, pages: int) -> None:
        """``pages`` = 0 is Linux's lazy first expand_array; 1 pre-adds a page."""
        self.boot_pages = pages
        self.stale: set[int] = set()  # ports whose Xen-private evtchn->pending is set
        self.latent: set[int] = set()  # free ports whose word Xen left PENDING
        self.boot()
        self.log_cursor = len(self.xen.log.writes)

    def reboot(self) -> None:
        """A Linux kernel adds its first array page lazily, at its first bind (4.1 step 5)."""
        self.boot_pages = 0
        self.boot()

    def boot(self) -> None:
        """xen_init_IRQ with FIFO: fresh control blocks, init_control on every vCPU."""
        for v in range(VCPUS):
            self.guest.memory.frame(CONTROL_GFN + v).data[:] = bytes(4096)  # a zeroed page
        self.latent.clear()  # the new kernel re-initialises every array page
        to_fifo(self.guest, pages=self.boot_pages, masked=True)
        assert self.guest.abi == "fifo"
        self.consumer = fifo_consumer(self.guest)
        for page in range(self.boot_pages):
            self._reraise_stale(page)

    # --- the guest's FIFO port handling ---------------------------------------------------

    def _word(self, port: int) -> int:
        page, index = self.consumer.word_index(port)
        return page[index]

    def _update(self, port: int, set_bits: int = 0, clear_bits: int = 0) -> None:
        page, index = self.consumer.word_index(port)
        page[index] = (page[index] | set_bits) & ~clear_bits

    def guest_pending(self, port: int) -> bool:
        return bool(self._word(port) & P)

    def guest_masked(self, port: int) -> bool:
        return bool(self._word(port) & M)

    def mask(self, port: int) -> None:
        """evtchn_fifo_mask: set M, allowed on a LINKED word."""
        self._update(port, set_bits=M)

    def linux_unmask(self, port: int) -> None:
        """evtchn_fifo_unmask (modern): clear M only while P is clear, else ask Xen (4.3)."""
        if self._word(port) & P:
            assert op(self.guest, EVTCHNOP_unmask, port=port)[0] == 0
        else:
            self._update(port, clear_bits=M)

    def beyond_array(self, port: int) -> bool:
        return port >= len(self.consumer.pages) * WORDS

    def fifo_frames(self) -> list:
        pages = len(self.consumer.pages)
        return [self.guest.memory.frame(gfn) for gfn in (*(CONTROL_GFN + v for v in range(VCPUS)),
                                                         *(ARRAY_GFN + i for i in range(pages)))]

    def _queue_state(self) -> list[tuple[bytes, int]]:
        return [(cb.words.tobytes(), v.vcpu_info.evtchn_upcall_pending)
                for cb, v in zip(self.consumer.control_block, self.guest.vcpus)]

    def snapshot(self, port: int):
        return self._word(port), self._queue_state()

    def check_raise(self, port: int, before) -> None:
        """evtchn_fifo_set_pending (2.4): a MASKED or LINKED word only gains P, and HEAD,
        READY and the upcall stay as they were; otherwise the word is queued (P and L)."""
        word, queues = before
        now = self._word(port)
        if word & (M | L):
            assert now == word | P, (port, hex(word), hex(now))
            assert self._queue_state() == queues, port
        else:
            assert now & (P | L) == P | L, (port, hex(word), hex(now))

    def raise_event(self, port: int, *, by_xen: bool = False) -> None:
        """No array page yet: Xen stashes it in evtchn->pending, which it never clears (2.4)."""
        if self.beyond_array(port):
            self.stale.add(port)
        super().raise_event(port, by_xen=by_xen)

    def freed_with_pending(self, port: int) -> bool:
        if port in self.latent:
            self.latent.discard(port)
            return True
        return False

    def prepare_port(self, port: int) -> None:
        """evtchn_fifo_setup: expand the array until it covers the new port."""
        while self.beyond_array(port):
            self.add_array_page()

    def add_array_page(self) -> None:
        """init_array_page (every word MASKED), then EVTCHNOP_expand_array."""
        page = len(self.consumer.pages)
        frame = self.guest.memory.frame(ARRAY_GFN + page)
        frame.data[:] = M.to_bytes(4, "little") * WORDS
        assert op(self.guest, EVTCHNOP_expand_array, array_gfn=ARRAY_GFN + page)[0] == 0
        self.consumer.add_array_page(frame)
        self._reraise_stale(page)

    def _reraise_stale(self, page: int) -> None:
        """add_page_to_event_array calls set_pending on every valid port of the new page
        whose evtchn->pending is set, bound or not (fact sheet 2.4)."""
        for port in sorted(self.stale):
            if page * WORDS <= port < (page + 1) * WORDS:
                if port in self.ports:
                    self.raise_event(port, by_xen=True)
                else:
                    self.latent.add(port)

    @precondition(lambda self: len(self.consumer.pages) < MAX_PAGES)
    @rule()
    def guest_expands_array(self) -> None:
        self.add_array_page()

    # --- FIFO invariants ------------------------------------------------------------------

    @invariant()
    def queues_are_acyclic_and_ready_matches_head(self) -> None:
        """The FIFO queues as the guest will walk them (fact sheet 2.4 and 4.3).

        Between steps the consumer is never inside a queue (its local heads are 0), so it
        will find queue (v, q) only through READY bit q and then HEAD[q]. Xen writes HEAD[q]
        only when linking onto an empty queue, and then sets READY bit q; appending behind a
        LINKED tail touches neither. The consumer exchanges READY with 0 and walks the queue
        to its end, clearing LINKED (with LINK) on each word; only Xen sets LINKED and only
        the guest clears it. Hence, between steps:

        (a) READY bit q set => HEAD[q] != 0 and its word is LINKED; the chain from it
            through the LINK fields is finite (acyclic) and all LINKED, ending in LINK 0;
        (b) every LINKED word in the array lies on exactly one such chain from a READY
            HEAD (no event sits in a queue the guest will never look at);
        (c) READY bit q clear with HEAD[q] still LINKED happens only when HEAD[q] is
            stale: that port was consumed and has been re-linked on another queue (after
            set_priority or bind_vcpu), so it lies on another vCPU/queue's chain;
        (d) together: READY bit q is set iff queue (v, q) is non-empty;
        (e) Xen's private TAIL is the last port of its chain, or, for an empty queue, 0 or
            a word that is no longer LINKED (the e33d4257fc "old tail" rule keeps a
            relinked port from being any other queue's tail);
        (f) any READY bit set means evtchn_upcall_pending is set on that vCPU.
        """
        pages = self.consumer.pages
        linked = {i * WORDS + j for i, page in enumerate(pages) for j, w in enumerate(page) if w & L}
        owner: dict[int, tuple[int, int]] = {}
        stale_heads = []
        for v in range(VCPUS):
            cb = self.consumer.control_block[v]
            ready = cb.ready
            assert not ready or self.guest.vcpus[v].vcpu_info.evtchn_upcall_pending, (v, ready)
            for q in range(EVTCHN_FIFO_MAX_QUEUES):
                assert self.consumer.head[v][q] == 0, (v, q)
                head, tail = cb.head(q), self.guest.fifo.vcpus[v].queues[q].tail
                if ready >> q & 1:
                    chain = self._walk(head)
                    assert chain, f"READY bit {q} of vCPU {v} set but HEAD {head} is not LINKED"
                    for port in chain:
                        assert port not in owner, f"port {port} on queues {owner[port]} and {(v, q)}"
                        owner[port] = (v, q)
                    assert tail == chain[-1], (v, q, chain, tail)
                else:
                    assert tail == 0 or not self._word(tail) & L, f"empty queue {(v, q)} has LINKED tail {tail}"
                    if head and self._word(head) & L:
                        stale_heads.append((head, (v, q)))
        orphaned = linked - owner.keys()
        assert not orphaned, f"LINKED words on no READY queue: {sorted(orphaned)}"
        for head, vq in stale_heads:
            assert owner[head] != vq, (head, vq)

    def _walk(self, head: int) -> list[int]:
        chain: list[int] = []
        seen: set[int] = set()
        port = head
        while port:
            assert port not in seen, f"cycle through port {port}: {chain}"
            assert not self.beyond_array(port), f"LINK to port {port} outside the array"
            word = self._word(port)
            if not word & L:
                assert not chain, f"unlinked port {port} inside queue {chain}"
                return chain
            seen.add(port)
            chain.append(port)
            port = word & EVTCHN_FIFO_LINK_MASK
        return chain

    @invariant()
    def event_words_are_well_formed(self) -> None:
        """No BUSY without concurrency; LINK only while LINKED; pending+unmasked => queued."""
        for i, page in enumerate(self.consumer.pages):
            for j, w in enumerate(page):
                if w & (B | EVTCHN_FIFO_LINK_MASK) and not w & L or w & B:
                    raise AssertionError(f"port {i * WORDS + j}: word {w:#010x}")
                if w & P and not w & M:
                    assert w & L, f"port {i * WORDS + j} pending, unmasked, not queued: {w:#010x}"

    @invariant()
    def xen_leaves_two_level_state_alone(self) -> None:
        """After init_control Xen ignores shared_info's bitmaps and the selector (2.4, 8.8)."""
        gid = self.guest.domain_id
        sel_offset = self.guest.shared_info.layout.pending_sel_offset
        writes = self.xen.log.writes
        for w in writes[self.log_cursor:]:
            if w.domid != gid:
                continue
            assert w.structure is not Structure.SHARED_INFO, w
            assert not (w.structure is Structure.VCPU_INFO and w.offset % 64 == sel_offset), w
        self.log_cursor = len(writes)
        assert all(v.vcpu_info.evtchn_pending_sel == 0 for v in self.guest.vcpus)
        assert not any(self.guest.shared_info.evtchn_pending)
