"""Counterexamples on screen: the views and the trace player read them like any scenario's trace."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("ipywidgets")

from evtsim import plots, races  # noqa: E402
from evtsim.widgets import trace_player  # noqa: E402


@pytest.fixture(scope="module")
def lost_link():
    """Two senders without cmpxchg: port 2 linked behind a port 1 the guest already unlinked."""
    return races.counterexample(races.explore("fifo", "two-senders", ["cmpxchg"]))


def test_the_last_record_shows_the_stranded_chain_head_1_then_2(lost_link) -> None:
    guest = lost_link.records[-1].domain("guest")
    queue = next(q for q in guest.queues if q.priority == 7)
    assert (queue.head, queue.ports, queue.tail, queue.ready) == (1, (1, 2), 2, False)
    assert guest.vcpus[0].upcall_pending == 0


def test_the_fifo_view_draws_every_record_of_a_counterexample(lost_link) -> None:
    artists = plots.draw_fifo_queues(lost_link.records[0].domain("guest"))
    for record in lost_link.records:
        plots.update_fifo_queues(artists, record.domain("guest"))
    assert len(artists.nodes.get_paths()) == 2  # the two LINKED words of the last record


def test_the_two_level_view_draws_a_two_level_counterexample() -> None:
    trace = races.counterexample(races.explore("two-level", "two-words", ["sel-xchg"]))
    guest = trace.records[-1].domain("guest")
    assert guest.abi == "2-level" and guest.evtchn_pending == (1 << 1, 0)  # port 1 pending, port 65 handled
    assert plots.two_level(guest) is not None


def test_the_player_walks_the_steps_and_shows_the_guests_abi(lost_link) -> None:
    player = trace_player(lost_link)
    assert player.view_name == "fifo" and player.slider.max == len(lost_link) - 1
    player.slider.value = player.slider.max
    assert player.snapshot == lost_link.records[-1].domain("guest")
    assert "violation: event lost" in player.controls["notes"].value
    player.step_by(-100)
    assert player.slider.value == 0 and player.controls["previous"].disabled
    assert "events lost" in player.banner.value
    assert repr(player).startswith(f"trace player for {lost_link.scenario}, step 0 of {player.slider.max}: events lost")


def test_the_player_refuses_a_trace_without_snapshots(lost_link) -> None:
    from dataclasses import replace
    empty = replace(lost_link, records=tuple(replace(r, domains=()) for r in lost_link.records))
    with pytest.raises(ValueError, match="has no domain snapshot to show"):
        trace_player(empty)
