"""The ``evtsim`` command, run as a learner runs it: ``python -m evtsim ...`` in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evtsim.cli import main, max_jobs
from evtsim.scenarios import FIXES, SCENARIOS, run_scenario

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
HIBERNATION_STEPS = 9  # the default hibernation scenario (no reset step)


def evtsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evtsim", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=60)


def test_run_prints_the_header_one_line_per_step_and_the_outcome():
    done = evtsim("run", "hibernation", "--xen", "4.7", "--fix", "xsm", "--errno", "EPERM")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scenario hibernation") and "errno=EPERM" in lines[0]
    assert [line[:4] for line in lines[1:1 + HIBERNATION_STEPS]] == [f"[{i:2d}]" for i in range(HIBERNATION_STEPS)]
    assert lines[1 + HIBERNATION_STEPS].startswith("outcome: works")
    assert "guest@B:init_control=-EPERM" in done.stdout


def test_a_crash_ends_the_story_and_the_output_says_which_steps_were_not_run():
    done = evtsim("run", "hibernation", "--fix", "disable-fifo", "--errno", "EPERM", "--guest-fallback", "enosys-only")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-3].startswith("outcome: guest crash") and lines[-2] == "  guest crashed at step [5]"
    assert lines[-1] == ("  the story ends there; not run: image loaded over guest memory, "
                         "resumed kernel re-establishes channels, traffic on the new host")


@pytest.mark.parametrize(("args", "said"), [
    (("--fix", "disable-fifo", "--errno", "EPERM"), ["  xen=4.4 is not used: fix disable-fifo runs the new host on "
                                                     "the patch-v4 row"]),
    (("--fix", "qemu", "--xen", "master"), ["  xen=master is not used: fix qemu runs the new host on the qemu row",
                                            "  errno=ENOSYS is not used: fix qemu returns no chosen errno "
                                            "(only disable-fifo and xsm do)"]),
    (("--fix", "xsm", "--errno", "EACCES"), []),
], ids=["xen-replaced", "both", "none"])
def test_a_parameter_the_fix_does_not_use_is_named_under_the_header(args, said):
    lines = evtsim("run", "hibernation", *args).stdout.splitlines()
    assert lines[1:1 + len(said)] == said and lines[1 + len(said)].startswith("[ 0]")


def test_verbose_prints_each_steps_events_per_channel():
    lines = evtsim("run", "hibernation", "--fix", "reset", "--xen", "master", "-v").stdout.splitlines()
    events = [line.strip() for line in lines if line.strip().startswith("events:")]
    assert events[-1] == ("events: guest@B: timer0 sent 2 delivered 2, timer1 sent 2 delivered 2, xenstore sent 2 "
                          "unbound 2, console sent 2 unbound 2, vbd sent 2 delivered 2, resched1 sent 2 delivered 2")


@pytest.mark.parametrize(("expect", "status"), [("memory-corrupted", 0), ("memory corrupted", 0), ("works", 1),
                                                ("guest-crash", 1)])
def test_expect_exits_1_when_the_verdict_differs(expect, status):
    done = evtsim("run", "hibernation", "--expect", expect)
    assert done.returncode == status and done.stdout.startswith("scenario hibernation")
    if status:
        assert done.stderr == f"evtsim: verdict 'memory corrupted', not the expected {expect.replace('-', ' ')!r}\n"


def test_expect_lets_a_script_assert_that_a_fix_works(capsys):
    assert main(["run", "hibernation", "--fix", "disable-fifo", "--expect", "works"]) == 0


def test_json_to_an_empty_name_is_refused_before_the_run():
    assert refusal(evtsim("run", "hibernation", "--json", "")) == "--json needs a file name, not an empty string"


def test_json_to_a_full_device_names_the_file():
    done = evtsim("run", "hibernation", "--json", "/dev/full")
    assert done.returncode == 2 and done.stderr == "evtsim: error: /dev/full: No space left on device\n"


def test_there_is_no_seed_to_choose_nothing_in_a_scenario_is_random():
    assert refusal(evtsim("run", "hibernation", "--seed", "3")) == "unrecognized arguments: --seed 3"


def test_quiz_hides_every_return_code_and_the_outcome():
    done = evtsim("run", "hibernation", "--quiz")
    assert done.returncode == 0, done.stderr
    assert "=?" in done.stdout and "=0" not in done.stdout and "=-E" not in done.stdout
    assert done.stdout.splitlines()[-1].startswith("outcome: ?")


def test_verbose_prints_each_steps_notes_indented_under_its_line():
    lines = evtsim("run", "hibernation", "--verbose").stdout.splitlines()
    boot = next(i for i, line in enumerate(lines) if "original kernel boots" in line)
    assert lines[boot + 1].startswith(" " * 8) and "init_control" in lines[boot + 1]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_runs_with_its_defaults(name, capsys):
    assert main(["run", name]) == 0
    assert capsys.readouterr().out.startswith(f"scenario {name}")


def test_a_scenarios_own_options_are_converted_to_their_defaults_type(capsys):
    assert main(["run", "two-level-basics", "--vcpus", "3", "--compat", "yes"]) == 0
    assert "vcpus=3 compat=True" in capsys.readouterr().out.splitlines()[0]


def test_json_saves_a_trace_that_show_prints_the_same(tmp_path):
    pytest.importorskip("evtsim.tracefile")
    path = tmp_path / "trace.json"
    ran = evtsim("run", "hibernation", "--fix", "reset", "--json", str(path))
    shown = evtsim("show", str(path))
    assert shown.returncode == 0, shown.stderr
    assert ran.stdout.startswith(shown.stdout)


def test_show_of_a_damaged_file_is_one_error_line_and_exit_2(tmp_path):
    pytest.importorskip("evtsim.tracefile")
    path = tmp_path / "trace.json"
    evtsim("run", "hibernation", "--json", str(path))
    path.write_text(path.read_text()[:200])
    done = evtsim("show", str(path))
    assert (done.returncode, len(done.stderr.splitlines())) == (2, 1)
    assert done.stderr.startswith("evtsim: error:")


@pytest.mark.parametrize("args", [
    ("run", "no-such-scenario"),
    ("run", "hibernation", "--no-such-option", "1"),
    ("run", "hibernation", "--fix", "xsm", "--errno", "EWHATEVER"),
    ("run", "hibernation", "--fix", "no-such-fix"),
    ("run", "hibernation", "--xen", "banana"),
    ("run", "hibernation", "--vcpus", "many"),
    ("show", "/no/such/trace.json"),
    ("frobnicate",),
    (),
], ids=["scenario", "option", "errno", "fix", "xen-version", "int-value", "missing-file", "command", "nothing"])
def test_bad_input_is_one_error_line_on_stderr_and_exit_2(args):
    done = evtsim(*args)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("evtsim: error:"), done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_refuses_out_of_range_sizes_with_one_line(name):
    """check_params runs for every scenario's parameters, not only some: 100 vCPUs is refused."""
    done = evtsim("run", name, "--vcpus", "100")
    assert done.returncode == 2 and done.stderr.startswith("evtsim: error:") and "vcpus" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_list_mentions_every_scenario_and_every_fix():
    done = evtsim("list")
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in SCENARIOS)
    assert all(fix in done.stdout for fix in FIXES)


def test_matrix_csv_has_a_header_and_a_row_per_run():
    done = evtsim("matrix", "--csv", "--jobs", str(min(2, max_jobs())))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) >= 200
    assert {"fix", "errno", "guest_fallback", "verdict", "delivered", "sent"} <= set(rows[0])


# show on hostile files -------------------------------------------------------------------------

def saved_trace(tmp_path: Path, **fields: str) -> Path:
    """The default hibernation trace saved to a file, with string ``fields`` of record 1 replaced."""
    from evtsim import tracefile  # noqa: PLC0415  (optional module)

    doc = json.loads(tracefile.dumps(run_scenario("hibernation")))
    doc["records"][1].update(fields)
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(doc))
    return path


def refusal(done: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (exit 2, nothing on stdout)."""
    assert (done.returncode, done.stdout, len(done.stderr.splitlines())) == (2, "", 1), done
    return done.stderr.removeprefix("evtsim: error: ").rstrip("\n")


def test_show_refuses_an_object_of_100000_keys_at_once(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{" + ", ".join(f'"k{i}": 0' for i in range(100_000)) + "}")
    assert refusal(evtsim("show", str(path))) == f"{path}: not an evtsim trace: no 'format' field"


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")])
def test_show_refuses_a_device_or_directory_without_reading_it(path, kind):
    assert refusal(evtsim("show", path)) == f"{path}: not a regular file ({kind})"


def test_show_refuses_a_named_pipe_without_blocking(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert refusal(evtsim("show", str(pipe))) == f"{pipe}: not a regular file (a named pipe)"


def test_show_refuses_a_lone_surrogate_naming_the_file_and_field(tmp_path):
    path = saved_trace(tmp_path, step="boot \ud800")
    assert refusal(evtsim("show", str(path))) == (
        f"{path}: records[1].step: 'boot \\ud800' holds a lone surrogate, which is not text")


def test_show_escapes_ansi_escapes_nul_and_cr_in_every_string_it_prints(tmp_path):
    """Step names, hosts, parameters, notes (-v), call names: nothing reaches the terminal raw."""
    hostile = "\x1b[2J\x1b]0;pwned\x07\x00\r\u202e"
    path = saved_trace(tmp_path, step=f"boot{hostile}", host=hostile, notes=[f"note{hostile}"])
    done = evtsim("show", "-v", str(path))
    assert done.returncode == 0, done.stderr
    assert all(c.isprintable() for c in done.stdout.replace("\n", "")), repr(done.stdout)
    escaped = "\\x1b[2J\\x1b]0;pwned\\x07\\x00\\r\\u202e"
    lines = done.stdout.splitlines()
    step = lines.index(next(line for line in lines if "boot" in line))
    assert lines[step].startswith(f"[ 1] {escaped} boot{escaped}")
    assert lines[step + 1] == f"        note{escaped}"  # CR and ESC kept it on its own line


@pytest.mark.parametrize("jobs", ["0", "-1", "MAX+1", "100000", "99999999999999999999999"])
def test_matrix_refuses_a_number_of_jobs_beyond_the_cpus_before_any_work(jobs):
    jobs = jobs.replace("MAX+1", str(max_jobs() + 1))
    said = refusal(evtsim("matrix", "--jobs", jobs))
    shown = jobs if len(jobs) <= 20 else f"a number of {len(jobs)} digits"
    assert said == f"argument --jobs: must be 1 to {max_jobs()} (the CPUs evtsim may use here), not {shown}"
