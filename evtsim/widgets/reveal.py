"""Predict, then reveal: the one check every exercise of the teaching series ends with.

An exercise is three cells (notebooks/README.md, "Exercises"): ``prediction = ...``, which the
learner fills in; a reveal cell that works the answer out with evtsim and ends with
``reveal(prediction, answer)``; and a folded ``<details>`` block that says why. Until the ``...``
is replaced, the reveal asks for a prediction and shows nothing of the answer, so a notebook run
top to bottom (a learner's Run All, the docs build) never gives an answer away or stops.

Presentation only: it prints one line for the learner and returns nothing.
"""

from __future__ import annotations

from collections.abc import Collection

ASK = "\u270e Predict first: replace the ... in the cell above, run it, then run this cell."  # fits 80 columns
RIGHT = "\u2713 Right: {answer!r}. Open \u201cWhy?\u201d below to check your reasoning."
WRONG = "\u2717 You predicted {prediction!r}; evtsim says {answer!r}. Open \u201cWhy?\u201d below."
NOT_A_CHOICE = "? {prediction!r} is not one of {choices}: change your prediction and run both cells again."


def reveal(prediction: object, answer: object, choices: Collection[object] | None = None) -> None:
    """Print whether ``prediction`` (``...`` until the learner writes one) matches ``answer``.

    With ``choices`` (the answers the question offers), a prediction outside them is sent back
    without a verdict: a typo such as ``"-ENOSYS "`` should not read as a wrong idea.
    """
    print(verdict_line(prediction, answer, choices))


def verdict_line(prediction: object, answer: object, choices: Collection[object] | None = None) -> str:
    """The line ``reveal`` prints: ask, send back, ✓ or ✗; only ✓ and ✗ show the answer."""
    if prediction is Ellipsis:
        return ASK
    prediction, answer = _plain(prediction), _plain(answer)
    if choices is not None and prediction not in [_plain(c) for c in choices]:
        return NOT_A_CHOICE.format(prediction=prediction, choices=", ".join(repr(_plain(c)) for c in choices))
    if prediction == answer and type(prediction) is type(answer):
        return RIGHT.format(answer=answer)
    return WRONG.format(prediction=prediction, answer=answer) + _kind_hint(prediction, answer)


def _plain(value: object) -> object:
    """``'2-level'`` for ``Abi.TWO_LEVEL``, ``-38`` for an errno IntEnum: what a learner would type."""
    for kind in (bool, int, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _kind_hint(prediction: object, answer: object) -> str:
    """A note when the two differ in kind (``"1"`` for ``1``), the mistake that is not about Xen."""
    kinds = {bool: "True or False", int: "a number", str: "text in quotes"}
    said, wanted = kinds.get(type(prediction)), kinds.get(type(answer))
    return f" (the answer is {wanted}, your prediction {said})" if said and wanted and said != wanted else ""


__all__ = ["reveal", "verdict_line"]
