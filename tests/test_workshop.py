"""docs/workshop.md, the instructors' page: its answers are the tests' answers, and the site lists it.

The page gives the answer to every "Predict, then reveal" exercise, one table row each
(``| notebook | N. title | `answer` | why |``). The notebooks' tests check
tests/notebook_answers.toml against evtsim, and this checks the page against that file, so an
instructor's answer can never differ from what the reveal says.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "workshop.md").read_text(encoding="utf-8")
ANSWERS = tomllib.loads((ROOT / "tests" / "notebook_answers.toml").read_text(encoding="utf-8"))
ROW = re.compile(r"^\| (\d) \| \d+\. (.+?) \| `(.+?)` \| .+ \|$", re.MULTILINE)


def page_answers() -> dict[tuple[int, str], object]:
    """(notebook number, exercise title) -> the answer the page gives, as a Python value."""
    return {(int(nb), title): typed(ast.literal_eval(answer)) for nb, title, answer in ROW.findall(PAGE)}


def typed(value: object) -> tuple[str, object]:
    """The value with its type's name, so that ``0`` and ``False`` differ."""
    return type(value).__name__, value


def test_the_page_answers_every_exercise_exactly_as_the_tests_do():
    expected = {(int(stem[:2]), title): typed(answer) for stem, exercises in ANSWERS.items()
                for title, answer in exercises.items()}
    assert page_answers() == expected


def test_the_page_is_in_the_documentation_site_table_of_contents():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.search(r"```\{toctree\}[^`]*^workshop$", index, re.MULTILINE)
