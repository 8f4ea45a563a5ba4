"""``evtsim explore``: exit 0 when the invariants hold, 1 with a counterexample, 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evtsim import races, tracefile
from evtsim.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_real_protocol_exits_0_with_one_line_per_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explore", "two-level")
    assert status == 0 and err == ""
    assert out.splitlines() == [races.explore("two-level", c.name).summary() for c in races.configs_of("two-level")]


def test_a_counterexample_exits_1_prints_its_steps_and_is_saved_whole(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "ce.json"
    status, out, _ = run(capsys, "explore", "fifo", "--config", "two-senders", "--without", "cmpxchg",
                         "--json", str(path))
    assert status == 1
    assert "counterexample: event lost" in out and out.rstrip().endswith(f"counterexample saved to {path}")
    saved = tracefile.load(path)
    assert saved == races.counterexample(races.explore("fifo", "two-senders", ["cmpxchg"]))
    assert races.replay(saved) == saved


def test_evtsim_show_prints_a_saved_counterexample_step_by_step(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    path = tmp_path / "ce.json"
    run(capsys, "explore", "two-level", "--config", "two-words", "--without", "sel-xchg", "--json", str(path))
    status, out, _ = run(capsys, "show", str(path), "-v")
    assert status == 0
    assert "vcpu0: read evtchn_pending_sel" in out and "mirrors drivers/xen/events/events_2l.c" in out
    assert "violation: event lost" in out


def test_list_names_every_model_configuration_and_safeguard(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explore", "--list")
    assert status == 0
    for name in [*races.MODELS, *races.CONFIGS, *races.SAFEGUARDS]:
        assert name in out


def test_several_safeguards_can_be_removed_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explore", "fifo", "--config", "two-senders", "--without", "ready-recheck",
                         "upcall-recheck")
    assert status == 0 and "without ready-recheck, upcall-recheck: holds" in out


def test_two_jobs_give_the_verdict_of_one(capsys: pytest.CaptureFixture[str]) -> None:
    one = run(capsys, "explore", "fifo", "--config", "resend", "--without", "linked")
    two = run(capsys, "explore", "fifo", "--config", "resend", "--without", "linked", "--jobs", "2")
    assert one[0] == two[0] == 1 and one[1].splitlines()[2:] == two[1].splitlines()[2:]


@pytest.mark.parametrize("argv,message", [
    (["explore"], "explore needs a MODEL (or --list)"),
    (["explore", "fifo3"], "unknown model 'fifo3'; choose from fifo, two-level"),
    (["explore", "fifo", "--config", "one-word"], "unknown configuration 'one-word' of model fifo"),
    (["explore", "fifo", "--without", "sel-xchg"], "'sel-xchg' is not a safeguard of model fifo"),
    (["explore", "two-level", "--without", "busy"], "'busy' is not a safeguard of model two-level"),
    (["explore", "fifo", "--max-steps", "-3"], "the step bound must be an integer from 1 to 100000, not -3"),
    (["explore", "fifo", "--max-steps", "0"], "the step bound must be an integer from 1 to 100000, not 0"),
    (["explore", "fifo", "--max-steps", "10000000"], "the step bound must be an integer from 1 to 100000"),
    (["explore", "fifo", "--max-steps", "many"], "argument --max-steps: invalid int value: 'many'"),
    (["explore", "fifo", "--jobs", "0"], "argument --jobs: must be 1 to"),
    (["explore", "fifo", "--json", ""], "--json needs a file name"),
])
def test_a_usage_error_is_one_line_exit_2_and_writes_nothing(argv: list[str], message: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "never.json"
    status, out, err = run(capsys, *argv, *([] if "--json" in argv else ["--json", str(path)]))
    assert status == 2 and out == ""
    assert err.startswith("evtsim: error: ") and message in err and err.count("\n") == 1
    assert not path.exists()


def test_a_damaged_counterexample_file_is_refused_with_one_line(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    path = tmp_path / "ce.json"
    run(capsys, "explore", "two-level", "--config", "two-words", "--without", "sel-xchg", "--json", str(path))
    path.write_text(path.read_text(encoding="utf-8")[:-200], encoding="utf-8")
    status, out, err = run(capsys, "show", str(path))
    assert status == 2 and out == "" and err.count("\n") == 1 and "not JSON" in err


def test_a_step_bound_too_short_is_reported_as_incomplete(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explore", "fifo", "--config", "two-senders", "--max-steps", "10")
    assert status == 3 and "incomplete" in out and "--max-steps" in out
