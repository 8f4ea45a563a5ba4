"""Golden traces: every named scenario with its default parameters, byte for byte.

For each scenario in ``SCENARIOS``, ``tests/golden/<name>.txt`` holds its printed trace
(``trace.lines()``, one line each) and ``tests/golden/<name>.json`` its trace file
(``evtsim.tracefile.dumps``). A new scenario is covered as soon as it is registered.

When a change in behaviour is intended (or a scenario is added, renamed or removed),
regenerate the files and review the diff before committing it::

    .venv/bin/python tools/update_golden.py          # rewrite tests/golden/
    .venv/bin/python tools/update_golden.py --check  # only report what differs
    git diff tests/golden
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evtsim.abi import errno_name
from evtsim.scenarios import SCENARIOS, run_scenario
from evtsim.trace import Trace
from evtsim.tracefile import dumps, load

GOLDEN = Path(__file__).parent / "golden"
UPDATE = "run `.venv/bin/python tools/update_golden.py`, then review `git diff tests/golden`"


def rendered(trace: Trace) -> dict[str, str]:
    """The golden files' contents for ``trace``, by suffix (tools/update_golden.py writes these)."""
    return {".txt": "\n".join(trace.lines()) + "\n", ".json": dumps(trace)}


def golden_text(name: str, suffix: str) -> str:
    path = GOLDEN / f"{name}{suffix}"
    if not path.exists():
        pytest.fail(f"no golden file {path.relative_to(GOLDEN.parent.parent)}; {UPDATE}")
    return path.read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {name: run_scenario(name) for name in SCENARIOS}


@pytest.mark.parametrize("suffix", [".txt", ".json"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_matches_its_golden_file_byte_for_byte(name: str, suffix: str, traces: dict[str, Trace]) -> None:
    expected = golden_text(name, suffix)
    assert rendered(traces[name])[suffix] == expected, f"{name}{suffix} differs from the golden file; {UPDATE}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden_trace_file_loads_back_to_the_scenarios_trace(name: str, traces: dict[str, Trace]) -> None:
    golden_text(name, ".json")
    assert load(GOLDEN / f"{name}.json") == traces[name]


def test_every_golden_file_belongs_to_a_scenario() -> None:
    stale = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".txt", ".json") and p.stem not in SCENARIOS)
    assert not stale, f"golden files for no scenario: {', '.join(stale)}; {UPDATE}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_running_a_scenario_twice_gives_equal_traces(name: str, traces: dict[str, Trace]) -> None:
    assert run_scenario(name) == traces[name]


@pytest.mark.parametrize("name", SCENARIOS)
def test_quiz_lines_hide_return_codes_and_outcome_but_not_steps(name: str, traces: dict[str, Trace]) -> None:
    trace = traces[name]
    shown, quiz = trace.lines(), trace.lines(quiz=True)
    assert len(quiz) == len(shown)
    assert quiz[0] == shown[0]  # the scenario and its parameters
    for line, hidden in zip(shown[1:-1], quiz[1:-1]):
        assert hidden == re.sub(r"(\S+:\w+)=\S+", r"\1=?", line)  # each domain:op=rc
    assert trace.outcome.verdict not in quiz[-1] and trace.outcome.summary not in "\n".join(quiz)


@pytest.mark.parametrize("name", SCENARIOS)
def test_quiz_lines_show_no_return_code_of_any_call(name: str, traces: dict[str, Trace]) -> None:
    trace = traces[name]
    for record, line in zip(trace.records, trace.lines(quiz=True)[1:]):
        for call in record.calls:
            assert f"{call.domain}:{call.op}={errno_name(call.rc)}" not in line
            assert f"{call.domain}:{call.op}=?" in line
