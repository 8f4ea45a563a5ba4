"""The interleaving explorer, as a specification: Xen's and Linux's real protocols hold in every
canonical configuration, and removing a safeguard breaks the invariant it protects, or, for the
two findings, nothing at all (docs/races.md says why)."""

from __future__ import annotations

import pytest

from evtsim import races
from evtsim.races import CONFIGS, SAFEGUARDS, build_model, explore, find_config, for_model
from evtsim.races.fifo_memory import word_text
from evtsim.races.invariants import Violation

CANONICAL = [(c.model, c.name) for c in CONFIGS.values()]
SMALL = [(m, c) for m, c in CANONICAL if c != "bind-vcpu"]  # bind-vcpu is the benchmark's big one


@pytest.mark.parametrize("model,config", CANONICAL)
def test_the_real_protocol_holds_in_every_canonical_configuration(model: str, config: str) -> None:
    result = explore(model, config)
    assert (result.verdict, result.violations, result.bound_hit) == ("holds", (), False)
    assert result.terminals > 0 and result.schedule is None


# (model, configuration, safeguard removed, the invariants that then break)
BREAKS = [
    ("fifo", "resend", "linked", {"event lost", "queue cycle", "stale link", "stranded link"}),
    ("fifo", "unmask-send", "linked", {"stale link"}),
    ("fifo", "busy-tail", "busy", {"link given up"}),
    ("fifo", "set-priority", "old-tail", {"linked into two queues"}),
    ("fifo", "two-senders", "cmpxchg", {"event lost", "stranded link"}),
    ("fifo", "two-senders", "clear-linked", {"event lost", "stranded link"}),
    ("fifo", "busy-tail", "clear-linked", {"event lost", "stranded link", "spins forever"}),
    ("fifo", "unmask-send", "clear-masked", {"event lost"}),
    ("fifo", "busy-tail", "clear-masked", {"MASKED cleared while BUSY"}),
    ("two-level", "one-word", "upcall-clear-first", {"stranded selector bit"}),
    ("two-level", "two-words", "upcall-clear-first", {"event lost", "stranded selector bit"}),
    ("two-level", "two-words", "sel-xchg", {"event lost"}),
]


@pytest.mark.parametrize("model,config,safeguard,broken", BREAKS)
def test_removing_a_safeguard_breaks_the_invariants_it_protects(model: str, config: str, safeguard: str,
                                                                  broken: set[str]) -> None:
    result = explore(model, config, [safeguard])
    assert result.verdict == "violated"
    assert set(result.violations) == broken
    assert result.violation == result.violations[0] and result.schedule


def test_moving_an_event_to_another_vcpu_without_the_old_tail_fix_links_into_two_queues() -> None:
    """bind-vcpu is too big to explore whole here; a shortest-first search finds the link."""
    m = build_model(find_config("fifo", "bind-vcpu"), ["old-tail"])
    assert races.shortest(m, Violation.TWO_QUEUES) is not None


# Removals the model shows to be harmless, and the reason, which the notebook and docs explain.
HARMLESS = [
    # Xen sets evtchn_upcall_pending whenever it sets a READY bit from 0, and Linux's upcall
    # loop (or the next upcall) takes READY again: the per-event merge buys priority, not safety.
    ("fifo", "ready-recheck"),
    # Xen raises a new upcall on every 0->1 change of evtchn_upcall_pending: the loop saves an
    # interrupt, it does not rescue an event.
    ("fifo", "upcall-recheck"),
    ("two-level", "upcall-recheck"),
]


@pytest.mark.parametrize("model,safeguard", HARMLESS)
def test_some_safeguards_protect_no_invariant_in_any_configuration(model: str, safeguard: str) -> None:
    for config in races.configs_of(model):
        if config.name != "bind-vcpu":
            assert explore(model, config.name, [safeguard]).verdict == "holds", config.name


def test_with_one_selector_word_a_plain_read_and_clear_of_the_selector_loses_nothing() -> None:
    """Xen's test-and-set of the same selector bit finds it set and stops: the race needs two words."""
    assert explore("two-level", "one-word", ["sel-xchg"]).verdict == "holds"
    assert explore("two-level", "two-words", ["sel-xchg"]).verdict == "violated"


def test_every_safeguard_names_the_code_it_mirrors_and_what_replaces_it() -> None:
    assert len(SAFEGUARDS) >= 6
    for s in SAFEGUARDS.values():
        assert s.mirrors.startswith(("xen/", "drivers/xen/")) and s.keeps and s.without
        assert s.model in ("fifo", "two-level", "both")


def test_every_safeguard_is_exercised_by_some_canonical_configuration() -> None:
    exercised = {s for c in CONFIGS.values() for s in c.exercises}
    assert exercised == set(SAFEGUARDS)


@pytest.mark.parametrize("model,names,message", [
    ("fifo", ["sel-xchg"], "'sel-xchg' is not a safeguard of model fifo"),
    ("two-level", ["busy"], "'busy' is not a safeguard of model two-level"),
    ("fifo", ["nonsense"], "'nonsense' is not a safeguard of model fifo"),
])
def test_an_unknown_safeguard_is_refused_with_the_choices(model: str, names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        explore(model, None, names)


@pytest.mark.parametrize("model,config,message", [
    ("fifo3", None, "unknown model 'fifo3'; choose from fifo, two-level"),
    ("fifo", "one-word", "unknown configuration 'one-word' of model fifo"),
])
def test_an_unknown_model_or_configuration_is_refused(model: str, config: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        explore(model, config)


@pytest.mark.parametrize("bound", [0, -1, races.MAX_STEPS_LIMIT + 1, 2.5, True])
def test_a_negative_zero_absurd_or_non_integer_step_bound_is_refused(bound: object) -> None:
    with pytest.raises(ValueError, match="the step bound must be an integer"):
        explore("fifo", "two-senders", max_steps=bound)


def test_a_step_bound_shorter_than_the_runs_makes_the_verdict_incomplete() -> None:
    result = explore("fifo", "two-senders", max_steps=10)
    assert (result.verdict, result.bound_hit) == ("incomplete", True)


def test_for_model_lists_the_safeguards_of_each_model_and_the_shared_ones() -> None:
    assert [s.name for s in for_model("two-level")] == ["upcall-recheck", "upcall-clear-first", "sel-xchg"]
    assert "upcall-recheck" in [s.name for s in for_model("fifo")]


def test_exploring_is_deterministic() -> None:
    first, second = explore("fifo", "resend", ["linked"]), explore("fifo", "resend", ["linked"])
    assert first == second


@pytest.mark.parametrize("word,text", [(0, ""), (1 << 31 | 1 << 29 | 2, "P-L- link 2"), (1 << 30 | 1 << 28, "-M-B")])
def test_an_event_word_is_shown_as_its_flags_and_link(word: int, text: str) -> None:
    assert word_text(word) == (text or "----")


def test_the_initial_fifo_state_puts_each_port_on_its_queue_and_queued_ports_in_their_chain() -> None:
    m = build_model(find_config("fifo", "busy-tail"))
    s, mem = m.initial, m.mem
    queue = mem.queue_of(0, 7)
    assert s[mem.word[1]] == 1 << 29  # LINKED, already acked (not PENDING)
    assert (s[mem.head[queue]], s[mem.tail[queue]], s[mem.ready[0]], s[mem.upcall[0]]) == (1, 1, 1 << 7, 1)
    assert s[mem.lastq[1]] == s[mem.lastq[2]] == queue


def test_a_pending_tail_masked_and_unmasked_three_times_makes_xen_give_up_the_link_despite_busy() -> None:
    """A finding about Xen itself (docs/races.md): BUSY stops the guest clearing MASKED, but with
    port 1 PENDING every unmask is EVTCHNOP_unmask, and evtchn_fifo_unmask clears MASKED for the
    guest without looking at BUSY. Masks, Xen's unmasks, the ack and clear_linked then change the
    tail word five times while Xen links port 2 behind it, and Xen gives up: port 2 is lost."""
    result = explore("fifo", "pending-tail", first=True)
    assert result.violation == "link given up" and result.schedule
    trace = races.counterexample(result)
    assert trace.records[-1].step == "xen0: 4 tries failed: clear BUSY, treat the event as linked"
    assert sum("EVTCHNOP_unmask" in r.step for r in trace.records) >= 2
    assert "pending-tail" not in CONFIGS and races.FINDINGS["pending-tail"].exercises == ("busy",)
