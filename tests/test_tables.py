"""A run shown in a REPL or a notebook: one line for repr, a small table for _repr_html_.

A displayed ``run_scenario(...)`` used to dump every snapshot of every step (about 89,000
characters); what a learner sees now must fit on a screen and still say what happened.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from evtsim.scenarios import run_scenario
from evtsim.trace import Outcome

REPR_MAX = 300  # characters: one line of a REPL, give or take a wrap
HTML_MAX = 8_000  # characters of markup (it is tags and inline styles, mostly)


@pytest.fixture(scope="module")
def bug():
    return run_scenario("hibernation")


class Cells(HTMLParser):
    """The text of each table row, and whether every tag that opened was closed."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.open: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        if tag != "br":
            self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        assert self.open.pop() == tag, f"</{tag}> closes something else"

    def handle_data(self, data):
        if self.rows and ("td" in self.open or "th" in self.open):
            self.rows[-1][-1] += data


def test_a_trace_repr_is_one_short_line_naming_the_scenario_its_parameters_and_outcome(bug):
    text = repr(bug)
    assert len(text) < REPR_MAX and "\n" not in text
    assert text == ("<Trace hibernation (old_xen=4.3 xen=4.4 fix=none errno=ENOSYS guest_fallback=any vcpus=2 "
                    f"rounds=2): {len(bug)} steps; {bug.outcome.summary}>")


def test_a_record_repr_names_the_step_and_counts_what_it_holds(bug):
    record = bug[5]
    assert repr(record) == (f"<Record [5] B {record.step}: {len(record.calls)} hypercalls, "
                            f"{len(record.notes)} notes, domains guest@B>")


def test_an_outcome_repr_is_its_summary(bug):
    assert repr(bug.outcome) == f"<Outcome {bug.outcome.summary}>"


def test_a_domain_snapshot_repr_says_where_it_runs_and_both_abis_where_they_differ(bug):
    assert repr(bug[7].domain("guest@B")) == ("<DomainSnapshot guest@B on B (Xen 4.4): fifo, kernel 2-level, "
                                              f"{len(bug[7].domain('guest@B').ports)} ports, 2 vCPUs>")


def test_an_abi_shows_as_its_plain_name_as_a_learner_reads_it(bug):
    resumed = bug[7].domain("guest@B")
    assert repr((resumed.abi, resumed.kernel_abi)) == "('fifo', '2-level')"


def test_every_repr_of_every_scenario_is_short():
    from evtsim.scenarios import SCENARIOS

    for name in SCENARIOS:
        trace = run_scenario(name)
        shown = [trace, trace.outcome, *trace.records, *(d for r in trace.records for d in r.domains)]
        assert max(len(repr(x)) for x in shown) < REPR_MAX, name


def test_a_trace_table_has_one_row_per_step_and_the_outcome_under_it(bug):
    markup = bug._repr_html_()
    assert len(markup) < HTML_MAX
    cells = Cells(markup)
    assert cells.open == []
    assert cells.rows[0] == ["#", "host", "step", "hypercalls = return code"]
    assert [row[0] for row in cells.rows[1:]] == [str(r.index) for r in bug.records]
    assert "guest@A:init_control=-ENOSYS" in cells.rows[2][3]
    assert markup.endswith(f"<b>outcome:</b> {bug.outcome.summary}</div>")


def test_a_long_trace_table_keeps_its_first_and_last_steps_around_one_elided_row(bug):
    from dataclasses import replace

    from evtsim import tables

    long = replace(bug, records=bug.records * 3)  # 27 steps
    rows = Cells(long._repr_html_()).rows[1:]
    assert len(rows) == tables.MAX_STEP_ROWS
    assert rows[tables.MAX_STEP_ROWS // 2][2] == f"{len(long) - tables.MAX_STEP_ROWS + 1} more steps: trace[i] shows one"
    assert rows[-1][0] == str(long.records[-1].index)


def test_a_record_table_shows_its_calls_notes_counts_and_domains(bug):
    rows = dict(Cells(bug[7]._repr_html_()).rows)
    assert list(rows) == ["hypercalls", "what happened", "so far", "domains"]
    assert "guest@B:bind_virq=-EEXIST x2" in rows["hypercalls"]
    assert rows["domains"] == "guest@B (fifo, kernel 2-level)"
    assert rows["so far"] == f"{bug[7].delivered}/{bug[7].sent} events delivered, {bug[7].stray_writes} Xen writes into handed-over frames"


def test_an_outcome_table_shows_only_the_figures_that_say_something(bug):
    o = bug.outcome
    rows = dict(Cells(o._repr_html_()).rows)
    assert rows == {"verdict": "memory corrupted", "delivered": f"12/24 events (first lost at step {o.first_loss_step})",
                    "per host": "A 12/12, B 0/12",
                    "Xen writes into handed-over frames":
                        f"{o.stray_writes} into 0xc0, 0xc1, 0xc2 (first at step {o.first_corruption_step})"}


def test_an_outcome_table_names_a_crash_and_closed_channels():
    crash = Outcome("guest crash", 22, 12, 10, 6, 0, (), None, "BUG() in evtchn_fifo_resume", 5, ("xenstore",))
    rows = dict(Cells(crash._repr_html_()).rows)
    assert rows["crash"] == "BUG() in evtchn_fifo_resume (at step 5)"
    assert rows["channels closed"] == "xenstore"
    assert "Xen writes into handed-over frames" not in rows


def test_the_tables_escape_what_they_show():
    odd = Outcome("works", 1, 1, 0, None, 0, (), None, "<script>", 1)
    assert "<script>" not in odd._repr_html_() and "&lt;script&gt;" in odd._repr_html_()


def test_a_trace_still_prints_as_its_lines_and_compares_by_value(bug):
    assert run_scenario("hibernation") == bug
    assert re.match(r"\[ 0\] A ", bug.lines()[1])
