"""The explorer's search: the reduction keeps every quiescent state and every violation, the
declarations it trusts are true, and splitting the search gives the serial answer."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from evtsim.races import CONFIGS, build_model, explore, for_model
from evtsim.races.audit import audit
from evtsim.races.machine import Actor, Code, Gate, GateKind, Layout, Model, Program
from evtsim.races.search import Search

SMALL = ["two-senders", "resend", "unmask-send", "busy-tail", "one-word", "two-words"]


def _removals(config: str) -> list[tuple[str, ...]]:
    return [(), *((s.name,) for s in for_model(CONFIGS[config].model))]


def _model(config: str, without: tuple[str, ...] = ()) -> Model:
    return build_model(CONFIGS[config], without)


@pytest.mark.parametrize("config,without", [(c, w) for c in SMALL for w in _removals(c)])
def test_the_reduced_search_reaches_the_same_quiescent_states_and_violations_as_the_full_one(
        config: str, without: tuple[str, ...]) -> None:
    m = _model(config, without)
    full = Search(m, por=False).dfs([(m.initial, ())])
    reduced = Search(m).dfs([(m.initial, ())])
    assert reduced.terminals == full.terminals
    assert reduced.violations == full.violations
    assert len(reduced.states) < len(full.states)


@pytest.mark.parametrize("config", SMALL + ["set-priority"])
def test_breadth_first_and_depth_first_agree(config: str) -> None:
    m = _model(config)
    dfs, bfs = Search(m).dfs([(m.initial, ())]), Search(m).bfs(m.initial)
    assert (bfs.terminals, bfs.violations) == (dfs.terminals, dfs.violations)


def test_sleep_sets_visit_fewer_states_and_keep_every_quiescent_state() -> None:
    m = _model("resend")
    with_sleep = Search(m).dfs([(m.initial, ())])
    without = Search(m, sleep=False).dfs([(m.initial, ())])
    assert with_sleep.terminals == without.terminals
    assert len(with_sleep.states) < len(without.states) and with_sleep.transitions < without.transitions


@pytest.mark.parametrize("config,without", [(c, w) for c in ("two-senders", "unmask-send", "one-word", "two-words")
                                            for w in _removals(c)] + [("resend", ()), ("busy-tail", ()),
                                                                      ("busy-tail", ("busy",))])
def test_every_step_touches_only_what_it_declares(config: str, without: tuple[str, ...]) -> None:
    m = _model(config, without)
    search = Search(m, por=False)
    search.dfs([(m.initial, ())])
    assert audit(m, search.visited) == []


def _toy(layout: Layout, code: Code) -> Model:
    """A one-actor model over ``layout`` (whose last shared slot holds the violations)."""
    viol = layout.add("violations")
    memory = len(layout.names)
    base = layout.block("a", 1)
    return Model("fifo", "toy", frozenset(), layout, memory, SimpleNamespace(viol=viol),
                 (Actor("a", "toy", Program(code.steps), base, 1),))


def test_the_audit_catches_a_step_that_writes_what_it_does_not_declare() -> None:
    layout, code = Layout(), Code()
    x, y = layout.add("x"), layout.add("y")

    @code.step("sneak", "write y too", "nowhere", writes=[x], nexts=["done"])
    def sneak(s: list[int], a: int) -> str:
        s[x], s[y] = 1, 1
        return "done"
    m = _toy(layout, code)
    assert audit(m, [m.initial]) == ["a:sneak wrote y, which it does not declare"]


def test_the_audit_catches_a_bit_changed_outside_the_declared_field() -> None:
    layout, code = Layout(), Code()
    w = layout.add("w", 0, {"low": 1, "high": 2})

    @code.step("flip", "set both bits", "nowhere", writes=[(w, "low")], nexts=["done"])
    def flip(s: list[int], a: int) -> str:
        s[w] = 3
        return "done"
    m = _toy(layout, code)
    assert audit(m, [m.initial]) == ["a:flip changed bits 0x2 of w outside the fields it declares"]


def test_a_lock_gate_must_say_which_lock() -> None:
    layout, code = Layout(), Code()
    lock = layout.add("lock")
    gate = Gate(GateKind.LOCK, lambda s, a: s[lock] == 0, lambda s, a: lock, frozenset([lock]))
    code.step("take", "take it", "nowhere", reads=[lock], writes=[lock], gate=gate, nexts=["done"])(lambda s, a: "done")
    with pytest.raises(ValueError, match="waits for a lock but does not say which"):
        Search(_toy(layout, code))


def test_progress_is_reported_through_the_callback_with_growing_counts() -> None:
    seen: list[tuple[int, int]] = []
    from evtsim.races import search
    old = search.PROGRESS_EVERY
    search.PROGRESS_EVERY = 100
    try:
        explore("fifo", "resend", progress=lambda states, transitions: seen.append((states, transitions)))
    finally:
        search.PROGRESS_EVERY = old
    assert len(seen) > 10 and seen == sorted(seen)


def _same_answer(a, b) -> None:
    assert (a.verdict, a.violations, a.terminals, a.violation, a.schedule) == \
           (b.verdict, b.violations, b.terminals, b.violation, b.schedule)


@pytest.mark.parametrize("config,without", [("resend", ()), ("resend", ("linked",)), ("set-priority", ("old-tail",))])
def test_a_search_split_over_a_process_pool_gives_the_serial_answer(config: str, without: tuple[str, ...]) -> None:
    serial = explore("fifo", config, without)
    with ProcessPoolExecutor(max_workers=2) as pool:
        split = explore("fifo", config, without, executor=pool)
    _same_answer(split, serial)


@pytest.mark.parametrize("tasks", [1, 3, 16])
def test_any_number_of_parts_gives_the_serial_answer(tasks: int) -> None:
    serial = explore("two-level", "two-words", ["sel-xchg"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        _same_answer(explore("two-level", "two-words", ["sel-xchg"], executor=pool, tasks=tasks), serial)


def test_a_search_split_over_a_dask_cluster_gives_the_serial_answer() -> None:
    distributed = pytest.importorskip("distributed")
    serial = explore("fifo", "two-senders", ["clear-linked"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        split = explore("fifo", "two-senders", ["clear-linked"], executor=client.get_executor())
    _same_answer(split, serial)
