"""The reveal that ends each "Predict, then reveal" exercise: it asks, sends back, or judges.

A blank prediction (``...``) must never show the answer, and must never raise: a notebook run
top to bottom with blank predictions (a learner's Run All, the docs build) has to finish.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")

from evtsim.widgets import reveal  # noqa: E402
from evtsim.widgets.reveal import verdict_line  # noqa: E402


def test_a_blank_prediction_asks_for_one_and_shows_nothing_of_the_answer():
    line = verdict_line(..., "memory corrupted")
    assert line.startswith("\u270e Predict first")
    assert "memory corrupted" not in line


def test_a_right_prediction_gets_a_check_mark_and_the_answer():
    assert verdict_line("-ENOSYS", "-ENOSYS") == "\u2713 Right: '-ENOSYS'. Open \u201cWhy?\u201d below to check your reasoning."


def test_a_wrong_prediction_gets_a_cross_and_what_evtsim_says():
    assert verdict_line(2, 1).startswith("\u2717 You predicted 2; evtsim says 1.")


@pytest.mark.parametrize("prediction, answer, hint", [
    ("1", 1, "(the answer is a number, your prediction text in quotes)"),
    (1, True, "(the answer is True or False, your prediction a number)"),
    (0, False, "(the answer is True or False, your prediction a number)"),
])
def test_a_prediction_of_another_kind_is_wrong_and_says_which_kind_is_wanted(prediction, answer, hint):
    line = verdict_line(prediction, answer)
    assert line.startswith("\u2717") and line.endswith(hint)


def test_a_prediction_outside_the_choices_is_sent_back_without_a_verdict():
    line = verdict_line("work", "works", choices=("works", "events lost"))
    assert line == "? 'work' is not one of 'works', 'events lost': change your prediction and run both cells again."


def test_enum_answers_are_shown_and_compared_as_the_plain_values_a_learner_types():
    from evtsim.abi import Abi, Errno

    assert verdict_line("2-level", Abi.TWO_LEVEL) == verdict_line("2-level", "2-level")
    assert verdict_line(38, Errno.ENOSYS).startswith("\u2713 Right: 38.")


def test_reveal_prints_the_line_and_returns_nothing(capsys):
    assert reveal(..., 3) is None
    assert capsys.readouterr().out == verdict_line(..., 3) + "\n"
