"""One truth: run serially, the explorer's steps leave the bytes evtsim's sequential engines leave.

For any sequence of operations (Xen sends, upcalls taken, set_priority, bind_vcpu, the guest
masking and unmasking), the explorer runs each operation's actor to completion before the next
(a serial schedule) and evtsim runs the same operations through ``Domain.evtchn_op``, the
FIFO or 2-level engine and the guest's consumers. Every event word, READY, HEAD, selector,
bitmap word and upcall flag must then hold the same value, and so must Xen's private TAILs,
fifo_lastq, priorities and notify vCPUs, and the consumer's local heads or fairness cursor.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BIND_VCPU, PRIO, SEND, UNMASK, connect, fifo_consumer, op, setup_op, shinfo_mask, \
    two_level_consumer
from evtsim import Xen
from evtsim.fifo import M
from evtsim.guest.events_fifo import clear_masked_cond
from evtsim.ports import lastq_raw
from evtsim.races import ActorSpec, Config, PortSpec, build_model
from evtsim.races.fifo_linux import HEADS
from evtsim.races.machine import DONE_PC, Model, State
from evtsim.races.two_level import CB, CW
from evtsim.testing import to_fifo

FIFO_PORTS = (1, 2, 3)
PRIORITIES = (3, 7)

fifo_ops = st.lists(st.one_of(
    st.tuples(st.just("send"), st.sampled_from(FIFO_PORTS)),
    st.tuples(st.just("consume"), st.sampled_from((0, 1))),
    st.tuples(st.just("set_priority"), st.sampled_from(FIFO_PORTS), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("bind_vcpu"), st.sampled_from(FIFO_PORTS), st.sampled_from((0, 1))),
    st.tuples(st.just("mask"), st.sampled_from(FIFO_PORTS)),
    st.tuples(st.just("unmask"), st.sampled_from(FIFO_PORTS)),
), max_size=12)


# --- the explorer, serially -------------------------------------------------------------------

def _actor(i: int, op: tuple) -> ActorSpec | None:
    kind = op[0]
    if kind == "send":
        return ActorSpec(f"op{i}", "send", op[1])
    if kind in ("set_priority", "bind_vcpu"):
        return ActorSpec(f"op{i}", kind, op[1], value=op[2])
    if kind in ("mask", "unmask"):
        return ActorSpec(f"op{i}", "irq", op[1], ops=(kind,))
    return None  # consume: the vCPU's own actor, which persists


def serially(model: str, ports: tuple[PortSpec, ...], vcpus: int, ops: list[tuple]) -> tuple[Model, State, int]:
    """Each operation's actor run to completion, in order: (model, final state, events handled)."""
    specs = [ActorSpec(f"vcpu{v}", "consume", value=v) for v in range(vcpus)]
    specs += [a for i, o in enumerate(ops) if (a := _actor(i, o)) is not None]
    m = build_model(Config("serial", model, "", ports, tuple(specs), vcpus=vcpus, priorities=PRIORITIES), ())
    names = {a.name: i for i, a in enumerate(m.actors)}
    s, handled = m.initial, 0
    for i, o in enumerate(ops):
        actor = m.actors[names[f"vcpu{o[1]}" if o[0] == "consume" else f"op{i}"]]
        idle = actor.program.pcs["idle"] if o[0] == "consume" else None
        while True:
            step = actor.step_at(s)
            if step is None or (step.gate and not step.gate.open(s, actor.base)):
                break
            nxt = list(s)
            nxt[actor.base] = actor.program.pcs[step.run(nxt, actor.base)]
            s, handled = tuple(nxt), handled + step.label.startswith("ack")
            if s[actor.base] in (idle, DONE_PC):
                break
    assert not s[m.viol]
    return m, s, handled


# --- evtsim's engines ------------------------------------------------------------------------

def _channels(xen: Xen, d, count: int) -> dict[int, int]:
    """``count`` channels from dom0 to ``d``: {guest port: dom0 port}. The guest allocates the
    unbound ports and dom0 binds them, so the notification bind_interdomain always raises
    lands on dom0's side, and the guest's ports start quiet, as the explorer's do."""
    return dict(connect(d, xen.dom0) for _ in range(count))


def fifo_engine(ops: list[tuple]):
    xen = Xen("master")
    d = xen.domain_create(vcpus=2)
    to_fifo(d)
    backends = _channels(xen, d, len(FIFO_PORTS))
    consumer = fifo_consumer(d)
    for o in ops:
        if o[0] == "send":
            setup_op(xen.dom0, SEND, port=backends[o[1]])
        elif o[0] == "consume" and d.vcpus[o[1]].vcpu_info.bytes[0]:
            consumer.upcall(o[1])
        elif o[0] == "set_priority":
            assert op(d, PRIO, port=o[1], priority=o[2])[0] == 0
        elif o[0] == "bind_vcpu":
            assert op(d, BIND_VCPU, port=o[1], vcpu=o[2])[0] == 0
        elif o[0] == "mask":
            page, index = consumer.word_index(o[1])
            page[index] |= M  # evtchn_fifo_mask
        elif o[0] == "unmask" and clear_masked_cond(*consumer.word_index(o[1])) is False:
            assert op(d, UNMASK, port=o[1])[0] == 0  # evtchn_fifo_unmask: masked and pending
    return d, consumer


@settings(max_examples=300, deadline=None)
@given(fifo_ops)
def test_fifo_serial_schedules_leave_the_bytes_the_sequential_engine_leaves(ops: list[tuple]) -> None:
    m, s, handled = serially("fifo", tuple(PortSpec(p) for p in FIFO_PORTS), 2, ops)
    d, consumer = fifo_engine(ops)
    mem = m.mem
    for p in FIFO_PORTS:
        assert s[mem.word[p]] == d.fifo.word(p), f"event word of port {p}"
        assert s[mem.priority[p]] == d.ports.priority[p] and s[mem.notify[p]] == d.ports.notify_vcpu_id[p]
        assert lastq_raw(*mem.queues[s[mem.lastq[p]]]) == d.ports.fifo_lastq[p], f"fifo_lastq of port {p}"
    for v in range(2):
        cb = d.fifo.vcpus[v].control_block
        assert s[mem.ready[v]] == cb.ready and s[mem.upcall[v]] == d.vcpus[v].vcpu_info.bytes[0]
        local = m.actors[v]
        for i, prio in enumerate(PRIORITIES):
            q = mem.queue_of(v, prio)
            assert s[mem.head[q]] == cb.head(prio), f"HEAD of vcpu{v} q{prio}"
            assert s[mem.tail[q]] == d.fifo.vcpus[v].queues[prio].tail, f"TAIL of vcpu{v} q{prio}"
            assert s[local.base + HEADS + i] == consumer.head[v][prio], f"local head of vcpu{v} q{prio}"
    assert handled == consumer.events


TWO_LEVEL_PORTS = (1, 2, 65)

two_level_runs = st.tuples(
    st.sets(st.sampled_from(TWO_LEVEL_PORTS)),  # masked from the start
    st.lists(st.one_of(st.tuples(st.just("send"), st.sampled_from(TWO_LEVEL_PORTS)),
                       st.tuples(st.just("consume"), st.just(0))), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(two_level_runs)
def test_two_level_serial_schedules_leave_the_bytes_the_sequential_engine_leaves(run: tuple) -> None:
    masked, ops = run
    ports = tuple(PortSpec(p, masked=p in masked) for p in TWO_LEVEL_PORTS)
    m, s, handled = serially("two-level", ports, 1, ops)
    xen = Xen("master")
    d = xen.domain_create(vcpus=1)
    backends = _channels(xen, d, max(TWO_LEVEL_PORTS))
    for p in masked:
        shinfo_mask(d, p)
    consumer = two_level_consumer(d)
    for o in ops:
        if o[0] == "send":
            setup_op(xen.dom0, SEND, port=backends[o[1]])
        elif d.vcpus[0].vcpu_info.bytes[0]:
            consumer.upcall(0)
    mem, shinfo = m.mem, d.shared_info
    assert [s[w] for w in mem.pending] == list(shinfo.evtchn_pending[:len(mem.pending)])
    assert [s[w] for w in mem.mask] == list(shinfo.evtchn_mask[:len(mem.mask)])
    assert s[mem.sel[0]] == d.vcpus[0].vcpu_info.sel[0] and s[mem.upcall[0]] == d.vcpus[0].vcpu_info.bytes[0]
    base = m.actors[0].base
    assert (s[base + CW], s[base + CB]) == (consumer.current_word_idx[0], consumer.current_bit_idx[0])
    assert handled == consumer.events
