"""The teaching series: stored stripped, shaped like the series, and run top to bottom in a kernel.

Every notebook under notebooks/ is executed once per session with nbclient, the way CI and a
learner's "Run All" do (ecosystem.md section 2): a fresh python3 kernel started in notebooks/,
``MPLBACKEND`` removed from the environment (a kernel that inherits ``Agg`` shows no figures),
shutdown "immediate" (the graceful one sometimes hangs 3.5 s in ipykernel 7), and the kernel's
replies polled in one-second slices (tools/sliced_kernel.py).

The "Predict, then reveal" exercises are stored blank (``prediction = ...``), as a learner gets
them. Before a run, each prediction cell is given the answer from tests/notebook_answers.toml
(which only the tests read), and every reveal must then print a check mark: running is testing.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from sliced_kernel import SlicedKernelManager  # noqa: E402  (tools/ is not a package)

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SERIES = [p for p in NOTEBOOKS if re.match(r"\d\d-", p.name)]  # the numbered teaching series
TIMEOUT = 120  # seconds per cell
MAX_CODE_LINES = 8  # longer than this is a function that belongs in evtsim (style.md, habit 10)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#+)\s+(.*)$", re.MULTILINE)
EXERCISE = re.compile(r"^### \d+\. (.+)$", re.MULTILINE)  # "### 1. Two sends, one look"
BLANK_PREDICTION = "prediction = ..."
REVEAL = re.compile(r"reveal\(prediction, answer(, choices=.+)?\)")  # the last line of a reveal cell
FOLDED_WHY = "<details><summary>Why?</summary>\n\n"
ANSWERS = tomllib.loads((ROOT / "tests" / "notebook_answers.toml").read_text(encoding="utf-8"))

def by_name(paths: list[Path]):
    """One test per notebook, named by its file."""
    return pytest.mark.parametrize("path", paths, ids=lambda p: p.name)


def raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb) -> list:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def markdown_cells(nb) -> list:
    return [c for c in nb["cells"] if c["cell_type"] == "markdown"]


def source(cell) -> str:
    text = cell["source"]
    return "".join(text) if isinstance(text, list) else text


def headings(nb, level: int) -> list[str]:
    """The titles of every heading of exactly ``level`` in the notebook's markdown, in order."""
    return [title.strip() for cell in markdown_cells(nb) for hashes, title in HEADING.findall(source(cell))
            if len(hashes) == level]


# ---------------------------------------------------------------------------------------------
# Stored form: what git sees


def test_the_series_has_eight_notebooks_in_reading_order():
    assert [p.name[:3] for p in SERIES] == [f"{n:02d}-" for n in range(1, 9)]


@by_name(NOTEBOOKS)
def test_notebook_is_stored_without_outputs_or_execution_counts(path):
    for cell in code_cells(raw(path)):
        assert cell["outputs"] == [] and cell["execution_count"] is None, \
            f"{path.name}: a code cell was saved with outputs; run: nbstripout notebooks/*.ipynb"


@by_name(NOTEBOOKS)
def test_notebook_metadata_names_the_python3_kernel_and_holds_no_widget_state(path):
    metadata = raw(path)["metadata"]
    assert metadata.get("kernelspec", {}).get("name") == "python3"  # else Lab asks "Select Kernel"
    assert "widgets" not in metadata


@by_name(NOTEBOOKS)
def test_cell_ids_are_the_cells_positions(path):
    """Deterministic ids, as nbstripout writes them, so a re-save does not churn the diff."""
    assert [cell.get("id") for cell in raw(path)["cells"]] == [str(i) for i in range(len(raw(path)["cells"]))]


# ---------------------------------------------------------------------------------------------
# Shape of the series


@by_name(SERIES)
def test_first_code_cell_selects_the_inline_backend(path):
    assert source(code_cells(raw(path))[0]).strip() == "%matplotlib inline"


@by_name(SERIES)
def test_first_markdown_cell_has_a_what_you_will_learn_heading(path):
    first = source(markdown_cells(raw(path))[0])
    assert any(title == "What you will learn" for _, title in HEADING.findall(first))


@by_name(SERIES)
def test_notebook_closes_with_predict_then_reveal(path):
    assert headings(raw(path), 2)[-1] == "Predict, then reveal"


def exercises(nb) -> dict[str, int]:
    """Each exercise's title (from its "### N. title" heading) -> the index of its prediction cell."""
    found, title = {}, None
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            title = (EXERCISE.findall(source(cell)) or [title])[-1]
        elif source(cell).startswith("prediction = "):
            assert title not in found, f"two predictions under {title!r}"
            found[title] = i
    return found


def with_answers(nb, answers: dict[str, object]):
    """``nb`` with each blank prediction replaced by its answer, as a learner who knows would write it."""
    for title, i in exercises(nb).items():
        nb["cells"][i]["source"] = f"prediction = {answers[title]!r}"
    return nb


@by_name(SERIES)
def test_every_prediction_starts_blank(path):
    """The answer never sits above its reveal: a learner writes over the ``...``."""
    cells = raw(path)["cells"]
    found = exercises(raw(path))
    assert found, f"{path.name} has no exercise"
    assert {title: source(cells[i]) for title, i in found.items()} == dict.fromkeys(found, BLANK_PREDICTION)


@by_name(SERIES)
def test_each_prediction_is_followed_by_a_reveal_and_a_folded_why(path):
    cells = raw(path)["cells"]
    for title, i in exercises(raw(path)).items():
        assert REVEAL.fullmatch(source(cells[i + 1]).splitlines()[-1]), f"{path.name}, {title!r}: no reveal after it"
        assert cells[i + 2]["cell_type"] == "markdown" and source(cells[i + 2]).startswith(FOLDED_WHY), \
            f"{path.name}, {title!r}: the explanation after the reveal is not folded in <details>"
        assert "</details>" in source(cells[i + 2])


@by_name(SERIES)
def test_only_the_reveals_read_the_prediction(path):
    """So a notebook left blank still runs top to bottom (a learner's Run All, the docs build)."""
    readers = [source(c) for c in code_cells(raw(path)) if re.search(r"\bprediction\b", source(c))]
    assert all(text == BLANK_PREDICTION or REVEAL.fullmatch(text.splitlines()[-1]) for text in readers)


def test_the_answers_file_has_one_answer_for_each_exercise_of_each_notebook():
    assert {p.stem: list(exercises(raw(p))) for p in SERIES} == {stem: list(a) for stem, a in ANSWERS.items()}


@by_name(SERIES)
def test_code_cells_other_than_imports_stay_short(path):
    for cell in code_cells(raw(path)):
        lines = source(cell).splitlines()
        if not all(line.startswith(("from ", "import ", " ", ")")) or not line for line in lines):
            assert len(lines) <= MAX_CODE_LINES, f"{path.name}: move this into evtsim:\n{source(cell)}"


@by_name(SERIES)
def test_imports_are_explicit(path):
    assert not any("import *" in source(cell) for cell in code_cells(raw(path)))


@by_name(SERIES)
def test_every_image_the_markdown_shows_exists_in_the_repository(path):
    for cell in markdown_cells(raw(path)):
        for link in IMAGE_LINK.findall(source(cell)):
            assert (NOTEBOOK_DIR / link).resolve().is_file(), f"{path.name}: missing image {link}"


def test_readme_lists_every_notebook_of_the_series():
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    assert [p.name for p in SERIES] == re.findall(r"\]\((\d\d-[^)]+\.ipynb)\)", readme)


# ---------------------------------------------------------------------------------------------
# Running a notebook headless (benchmarks/notebooks.py runs them with this too)


def run_headless(nb) -> None:
    """Execute ``nb`` in place as CI does: a fresh python3 kernel in notebooks/, no MPLBACKEND."""
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", shutdown_kernel="immediate",
                                     kernel_manager_class=SlicedKernelManager,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    backend = os.environ.pop("MPLBACKEND", None)  # a kernel that inherits Agg shows no figures
    try:
        client.execute()
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend


# ---------------------------------------------------------------------------------------------
# Executed: each notebook once per session


@pytest.fixture(scope="session")
def execute():
    """``execute(path)``: the notebook, its predictions answered, run top to bottom in a fresh kernel
    (cached per path)."""
    done: dict[Path, object] = {}  # the executed notebook, or the error that stopped it

    def run(path: Path):
        if path not in done:
            nb = nbformat.read(path, as_version=4)
            if path.stem in ANSWERS:
                nb = with_answers(nb, ANSWERS[path.stem])
            try:
                run_headless(nb)
                done[path] = nb
            except Exception as error:  # CellExecutionError, a timeout, a dead kernel: fail every user once
                done[path] = error
        if isinstance(done[path], Exception):
            raise done[path]
        return done[path]

    return run


def outputs(cell) -> list:
    return cell.get("outputs", [])


@by_name(NOTEBOOKS)
def test_notebook_runs_top_to_bottom_without_error(path, execute):
    nb = execute(path)  # a failing cell raises CellExecutionError, naming the cell
    assert all(cell.get("execution_count") for cell in code_cells(nb))


@by_name(SERIES)
def test_every_figure_cell_shows_an_image(path, execute):
    """A cell ending in ``.figure`` must show a PNG: none means the kernel inherited a non-inline
    backend, or the figure was not displayed."""
    for cell in code_cells(execute(path)):
        if source(cell).rstrip().endswith(".figure"):
            assert any("image/png" in o.get("data", {}) for o in outputs(cell)), source(cell)


@by_name(SERIES)
def test_every_reveal_agrees_with_the_answers_file(path, execute):
    """Each reveal, given the answer from tests/notebook_answers.toml, prints a check mark."""
    cells = execute(path)["cells"]
    for title, i in exercises(raw(path)).items():
        printed = "".join(o.get("text", "") for o in outputs(cells[i + 1]) if o.get("output_type") == "stream")
        assert printed.startswith("\u2713"), f"{path.name}, {title!r}: {printed.strip()}"


@by_name([p for p in NOTEBOOKS if re.search(r"\w_(dashboard|playground)\(", p.read_text(encoding="utf-8"))])
def test_every_dashboard_renders_as_a_widget_view(path, execute):
    """A dashboard shown as the last expression gives a widget view, not a text repr."""
    shown = [o for cell in code_cells(execute(path)) for o in outputs(cell) if WIDGET_VIEW in o.get("data", {})]
    assert shown, f"{path.name} displays no widget"
