"""Trace files: versioned JSON that round-trips exactly and refuses damaged or foreign input.

Every refusal is a TraceFileError (a ValueError) whose message names what is wrong and where;
nothing in a file is ever executed (evtsim/tracefile.py).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import pickle
import re

import pytest

from evtsim import tracefile
from evtsim.scenarios import FIXES, SCENARIOS, run_scenario
from evtsim.trace import Trace
from evtsim.tracefile import MAX_DEPTH, TraceFileError, dumps, load, loads, save

VARIANTS = [
    *({"fix": fix} for fix in FIXES),
    {"fix": "disable-fifo", "errno": "EPERM", "guest_fallback": "enosys-only"},
    {"fix": "xsm", "errno": "EACCES", "guest_fallback": "never"},
    {"vcpus": 1, "rounds": 1},
]


@pytest.fixture(scope="module")
def trace() -> Trace:
    return run_scenario("hibernation")


@pytest.fixture
def doc(trace: Trace) -> dict:
    """The hibernation trace as plain JSON data, to damage."""
    return json.loads(dumps(trace))


def refused(data: object) -> str:
    """The message of the TraceFileError that loading ``data`` (JSON data or raw text) raises."""
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    with pytest.raises(TraceFileError) as info:
        loads(text)
    return str(info.value)


# Round trips and determinism -------------------------------------------------------------------

@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_round_trips_to_an_equal_trace(name: str) -> None:
    trace = run_scenario(name)
    assert loads(dumps(trace)) == trace


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: "-".join(map(str, p.values())))
def test_hibernation_variants_round_trip_to_equal_traces(params: dict) -> None:
    trace = run_scenario("hibernation", **params)
    assert loads(dumps(trace)) == trace


@pytest.mark.parametrize("name", SCENARIOS)
def test_dumps_gives_the_same_bytes_for_two_runs(name: str) -> None:
    assert dumps(run_scenario(name)).encode() == dumps(run_scenario(name)).encode()


def test_dumping_a_loaded_trace_gives_the_same_bytes(trace: Trace) -> None:
    text = dumps(trace)
    assert dumps(loads(text)) == text


def test_the_file_names_its_format_and_version(doc: dict) -> None:
    assert (doc["format"], doc["version"]) == ("evtsim-trace", 2)


def test_the_file_is_standard_json_with_sorted_keys(trace: Trace) -> None:
    orders = []
    json.loads(dumps(trace), object_pairs_hook=lambda pairs: orders.append([k for k, _ in pairs]) or dict(pairs))
    assert orders and all(keys == sorted(keys) for keys in orders)


def test_the_file_holds_no_floats(trace: Trace) -> None:
    floats = []
    json.loads(dumps(trace), parse_float=floats.append)
    assert floats == []


def test_saving_a_value_that_is_not_plain_data_is_refused(trace: Trace) -> None:
    bad = dataclasses.replace(trace, outcome=dataclasses.replace(trace.outcome, sent=1.5))
    with pytest.raises(TypeError, match=r"outcome\.sent: float is not plain data"):
        dumps(bad)


def test_save_and_load_go_through_a_file(trace: Trace, tmp_path) -> None:
    path = tmp_path / "hibernation.json"
    save(trace, path)
    assert load(path) == trace
    assert path.read_bytes() == dumps(trace).encode()


def test_loads_accepts_utf8_bytes(trace: Trace) -> None:
    assert loads(dumps(trace).encode()) == trace


def test_a_file_without_the_defaulted_meta_field_loads_with_its_default(doc: dict) -> None:
    del doc["meta"]
    assert loads(json.dumps(doc)).meta == ()


# Damaged and foreign files ---------------------------------------------------------------------

def test_truncated_json_is_refused_with_its_line_and_column(trace: Trace) -> None:
    text = dumps(trace)
    message = refused(text[: len(text) // 2])
    assert message.startswith("not JSON:") and re.search(r"\(line \d+ column \d+\)$", message)


def test_text_that_is_not_utf8_is_refused() -> None:
    assert refused(b'{"format": "\xff"}') == "not UTF-8 text (byte 12)"


def test_a_top_level_list_is_refused() -> None:
    assert refused([1, 2]) == "not an evtsim trace: the top level is a list, not an object"


def test_a_file_without_a_format_is_refused() -> None:
    assert refused({"version": 1}) == "not an evtsim trace: no 'format' field"


def test_a_foreign_format_is_refused(doc: dict) -> None:
    doc["format"] = "foo"
    assert refused(doc) == "not an evtsim trace: format is 'foo'"


def test_a_file_without_a_version_is_refused(doc: dict) -> None:
    del doc["version"]
    assert refused(doc) == "not an evtsim trace: no 'version' field"


def test_a_future_version_is_refused(doc: dict) -> None:
    doc["version"] = 7
    assert refused(doc) == "unsupported version 7 (this evtsim reads version 2)"


def test_a_version_written_as_a_string_is_refused(doc: dict) -> None:
    doc["version"] = "2"
    assert refused(doc) == "unsupported version '2' (this evtsim reads version 2)"


def test_a_version_1_file_is_refused_with_what_it_lacks(doc: dict) -> None:
    """Version 1 (before per-channel counts): its totals mixed hosts, and a crash did not end
    the story, so it cannot be turned into a version 2 trace; the scenario is run again."""
    for record in doc["records"]:
        del record["channels"]
    for name in ("ignored", "not_run"):
        del doc[name]
    del doc["outcome"]["hosts"]
    doc["version"] = 1
    assert refused(doc) == ("version 1 is an older evtsim's trace file: it has no per-channel event counts, and "
                            "a crashed guest's story went on; run the scenario again to save it as version 2")


def test_a_field_of_the_wrong_type_is_refused_with_its_path(doc: dict) -> None:
    doc["records"][5]["domains"][0]["ports"][2]["pending"] = "yes"
    assert refused(doc) == "records[5].domains[0].ports[2].pending: expected bool, got 'yes'"


def test_a_bool_where_an_int_is_expected_is_refused(doc: dict) -> None:
    doc["records"][2]["sent"] = True
    assert refused(doc) == "records[2].sent: expected int, got true"


def test_an_int_where_a_bool_is_expected_is_refused(doc: dict) -> None:
    doc["records"][1]["domains"][0]["ports"][0]["masked"] = 0
    assert refused(doc) == "records[1].domains[0].ports[0].masked: expected bool, got 0"


def test_a_float_where_an_int_is_expected_is_refused(doc: dict) -> None:
    doc["outcome"]["sent"] = 24.0
    assert refused(doc) == "outcome.sent: expected int, got 24.0"


def test_an_optional_field_names_both_types_it_accepts(doc: dict) -> None:
    doc["outcome"]["crash_step"] = "7"
    assert refused(doc) == "outcome.crash_step: expected int or null, got '7'"


def test_a_missing_field_is_refused(doc: dict) -> None:
    del doc["records"][1]["step"]
    assert refused(doc) == "missing field records[1].step"


def test_an_extra_field_is_refused(doc: dict) -> None:
    doc["records"][1]["colour"] = "red"
    assert refused(doc) == "unknown field records[1].colour (Record has no such field)"


def test_an_extra_top_level_field_is_refused(doc: dict) -> None:
    doc["script"] = "rm -rf /"
    assert refused(doc) == "unknown field script (Trace has no such field)"


def test_a_list_where_an_object_is_expected_is_refused(doc: dict) -> None:
    doc["outcome"] = ["works"]
    assert refused(doc) == "outcome: expected an object (Outcome), got a list"


def test_an_object_where_a_list_is_expected_is_refused(doc: dict) -> None:
    doc["records"][0]["domains"] = {"guest@A": {}}
    assert refused(doc) == "records[0].domains: expected a list, got an object"


def test_a_parameter_pair_of_the_wrong_length_is_refused(doc: dict) -> None:
    doc["params"][0] = ["old_xen", "4.3", "extra"]
    assert refused(doc) == "params[0]: expected 2 items, got 3"


def test_records_out_of_order_are_refused(doc: dict) -> None:
    doc["records"][2]["index"] = 5
    assert refused(doc) == "records[2].index: expected 2, got 5"


def test_an_unknown_verdict_is_refused(doc: dict) -> None:
    doc["outcome"]["verdict"] = "fine"
    assert refused(doc).startswith("outcome.verdict: expected one of works, events lost")


def test_a_duplicate_key_is_refused() -> None:
    assert refused('{"format": "evtsim-trace", "format": "evtsim-trace"}') == "not JSON: duplicate key 'format'"


def test_nan_is_refused(doc: dict) -> None:
    text = json.dumps(doc).replace('"sent": 24', '"sent": NaN', 1)
    assert refused(text) == "not JSON: NaN is not allowed"


def test_a_huge_nested_list_is_refused_without_recursing() -> None:
    depth = 1_000_000
    assert refused("[" * depth + "]" * depth) == (f"not an evtsim trace: nested deeper than {MAX_DEPTH} levels "
                                                   f"(at character {MAX_DEPTH})")


def test_a_huge_nested_structure_inside_a_trace_is_refused(doc: dict) -> None:
    depth = 100_000
    text = json.dumps(doc).replace('"notes": [', '"notes": [' + '{"a": [' * depth + "0" + "]}" * depth + ",", 1)
    assert refused(text).startswith(f"not an evtsim trace: nested deeper than {MAX_DEPTH} levels")


def test_brackets_inside_strings_do_not_count_as_nesting(doc: dict) -> None:
    doc["records"][0]["notes"] = ["[" * 1000 + '\\"{' * 1000]
    assert loads(json.dumps(doc)).records[0].notes == tuple(doc["records"][0]["notes"])


def test_the_parsers_own_recursion_limit_is_also_a_clean_refusal(monkeypatch) -> None:
    monkeypatch.setattr(tracefile, "MAX_DEPTH", 10**9)
    depth = 1_000_000
    assert refused("[" * depth + "]" * depth).startswith("not an evtsim trace: nested deeper than")


# Nothing is executed ---------------------------------------------------------------------------

def test_code_in_a_string_field_stays_a_string(doc: dict) -> None:
    doc["records"][0]["step"] = "__import__('os').system('false')"
    assert loads(json.dumps(doc)).records[0].step == "__import__('os').system('false')"


def test_loading_never_calls_eval_exec_or_pickle(trace: Trace, monkeypatch) -> None:
    """Type hints come from evtsim's own source, resolved once; after that nothing is evaluated."""
    text = dumps(trace)
    loads(text)

    def forbidden(*args, **kwargs):
        raise AssertionError("loading a trace file must not evaluate or unpickle anything")

    for owner, name in ((builtins, "eval"), (builtins, "exec"), (pickle, "loads"), (pickle, "load")):
        monkeypatch.setattr(owner, name, forbidden)
    assert loads(text) == trace


# Hostile files: bounded work, regular files only, strings that are text ------------------------

def many_keys(n: int, extra: str = "") -> str:
    """A JSON object with ``n`` distinct keys (100,000 make 1.2 MB), then ``extra`` pairs."""
    return "{" + ", ".join(f'"k{i}": 0' for i in range(n)) + extra + "}"


def test_an_object_with_100000_keys_is_refused_by_its_first_wrong_field() -> None:
    """The duplicate-key check is one set lookup per key; it used to compare every key with
    every other one, and a 1.2 MB file kept the loader busy for minutes."""
    assert refused(many_keys(100_000)) == "not an evtsim trace: no 'format' field"


def test_a_duplicate_key_after_100000_others_is_found() -> None:
    assert refused(many_keys(100_000, ', "k99999": 1')) == "not JSON: duplicate key 'k99999'"


def test_text_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    assert refused(" " * (tracefile.MAX_BYTES + 1)) == (f"too large for a trace file: {tracefile.MAX_BYTES + 1} "
                                                        f"bytes (at most {tracefile.MAX_BYTES})")


def test_a_file_over_the_size_limit_is_refused_from_its_size_before_anything_is_read(tmp_path) -> None:
    """A sparse 4 GiB file: read whole it would exhaust memory; its size alone refuses it."""
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(4 << 30)
    with pytest.raises(TraceFileError, match=rf"^too large for a trace file: {4 << 30} bytes \(at most"):
        load(path)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device"),
                                             (".", "a directory")])
def test_anything_but_a_regular_file_is_refused_before_it_is_read(path: str, kind: str) -> None:
    with pytest.raises(TraceFileError) as info:
        load(path)
    assert str(info.value) == f"not a regular file ({kind})"


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(TraceFileError) as info:
        load(pipe)
    assert str(info.value) == "not a regular file (a named pipe)"


def test_a_lone_surrogate_in_a_string_field_is_refused_with_its_path(doc: dict) -> None:
    text = json.dumps(doc).replace('"notes": [', '"notes": ["boot \\ud800 done", ', 1)
    assert refused(text) == "records[0].notes[0]: 'boot \\ud800 done' holds a lone surrogate, which is not text"


def test_a_surrogate_pair_written_as_escapes_is_text(doc: dict) -> None:
    text = json.dumps(doc).replace('"notes": [', '"notes": ["\\ud83d\\ude00", ', 1)
    assert loads(text).records[0].notes[0] == "\U0001f600"


def test_an_unknown_field_named_with_control_characters_is_named_escaped(doc: dict) -> None:
    doc["records"][0]["\x1b[2J\ud800"] = 1
    assert refused(doc) == "unknown field records[0].\\x1b[2J\\ud800 (Record has no such field)"


def test_saving_a_lone_surrogate_is_refused(trace: Trace) -> None:
    bad = dataclasses.replace(trace, scenario="bad\udfff")
    with pytest.raises(ValueError, match="cannot save scenario: 'bad\\\\udfff' holds a lone surrogate"):
        dumps(bad)


def test_control_characters_are_text_a_trace_may_hold(doc: dict) -> None:
    """They load (a note may hold anything); `evtsim show` escapes them (tests/test_cli.py)."""
    doc["records"][0]["step"] = "\x1b[31mred\x00\r"
    assert loads(json.dumps(doc)).records[0].step == "\x1b[31mred\x00\r"
