"""The scenario registry as a learner meets it: errors that help, and help that lists everything.

``run_scenario("hibernaton")`` used to raise a bare KeyError; now a misspelt scenario or option
is a ValueError that names what exists and the closest match, and ``run_scenario?`` (its
docstring) lists every scenario with its parameters, written from the registry itself.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from evtsim import cli
from evtsim.scenarios import FIXES, SCENARIOS, get_scenario, make_params, run_scenario


@pytest.mark.parametrize("call", [run_scenario, make_params, get_scenario])
def test_a_misspelt_scenario_is_a_value_error_naming_the_closest_and_every_known_one(call):
    with pytest.raises(ValueError) as refused:
        call("hibernaton")
    message = str(refused.value)
    assert message.startswith("unknown scenario 'hibernaton'; did you mean 'hibernation'?")
    assert all(name in message for name in SCENARIOS)


def test_a_scenario_nothing_like_a_known_one_gets_the_list_without_a_guess():
    with pytest.raises(ValueError, match=r"^unknown scenario 'zzz' \(known scenarios: two-level-basics, "):
        run_scenario("zzz")


def test_a_misspelt_option_is_a_value_error_naming_the_closest_and_every_option():
    with pytest.raises(ValueError, match=r"^scenario 'hibernation' has no option fixx; did you mean 'fix'\? "
                                         r"\(options: old_xen, xen, fix, errno, guest_fallback, vcpus, rounds\)$"):
        run_scenario("hibernation", fixx="reset")


def test_run_scenario_help_lists_every_scenario_with_every_parameter_and_default():
    doc = inspect.getdoc(run_scenario)
    for scenario in SCENARIOS.values():
        assert f"{scenario.name:<18} {scenario.description}" in doc
        defaults = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(scenario.params))
        assert defaults in doc, scenario.name


def test_run_scenario_help_lists_every_fix_of_the_hibernation_scenario():
    doc = inspect.getdoc(run_scenario)
    assert all(f"{name:<14} {text}" in doc for name, text in FIXES.items())


def test_the_command_line_says_the_same_in_one_line_and_exits_2(capsys):
    assert cli.main(["run", "hibernaton"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evtsim: error: unknown scenario 'hibernaton'; did you mean 'hibernation'?")
    assert err.count("\n") == 1
