"""Sweeps: parameter grids, input order on any executor, the hibernation alternatives matrix."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from evtsim.scenarios import ERRNOS, FIXES
from evtsim.sweep import CHUNKS_PER_WORKER, ERRNO_FIXES, Row, alternatives_matrix, grid, run_one, sweep, to_dataframe

SMALL = grid(fix=("none", "disable-fifo", "reset"), guest_fallback=("any", "never"))


@pytest.fixture(scope="module")
def serial_rows() -> list[Row]:
    return sweep("hibernation", SMALL)


@pytest.fixture(scope="module")
def matrix_rows() -> list[Row]:
    return sweep("hibernation", alternatives_matrix())


class ReversingExecutor(Executor):
    """Runs nothing until all ``total`` runs are submitted, then finishes them last first."""

    def __init__(self, total: int) -> None:
        self.total, self.pending, self.order = total, [], []

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self.pending.append((future, fn, args))
        if len(self.pending) == self.total:
            threading.Thread(target=self._finish_in_reverse).start()
        return future

    def _finish_in_reverse(self) -> None:
        for index, (future, fn, args) in reversed(list(enumerate(self.pending))):
            time.sleep(0.005)  # let the sweep collect each one before the next completes
            self.order.append(index)
            future.set_result(fn(*args))


def test_grid_is_the_cartesian_product_with_the_last_axis_varying_fastest():
    assert grid(xen=("4.4", "master"), fix=("none", "xsm")) == [
        {"xen": "4.4", "fix": "none"}, {"xen": "4.4", "fix": "xsm"},
        {"xen": "master", "fix": "none"}, {"xen": "master", "fix": "xsm"}]


def test_grid_takes_a_string_or_a_number_as_a_single_value():
    assert grid(xen="master", vcpus=3, fix=["none", "xsm"]) == [
        {"xen": "master", "vcpus": 3, "fix": "none"}, {"xen": "master", "vcpus": 3, "fix": "xsm"}]


def test_serial_sweep_gives_one_row_per_parameter_set_in_input_order(serial_rows):
    assert [dict(row.params) for row in serial_rows] == SMALL


def test_sweep_on_a_thread_pool_equals_the_serial_sweep(serial_rows):
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert sweep("hibernation", SMALL, executor=pool) == serial_rows


def test_sweep_on_a_process_pool_equals_the_serial_sweep(serial_rows):
    with ProcessPoolExecutor(max_workers=2) as pool:
        assert sweep("hibernation", SMALL, executor=pool) == serial_rows


def test_sweep_returns_rows_in_input_order_when_runs_finish_in_reverse(serial_rows):
    executor = ReversingExecutor(len(SMALL))
    rows = sweep("hibernation", SMALL, executor=executor, chunk_size=1)
    assert executor.order == list(reversed(range(len(SMALL))))
    assert rows == serial_rows


def test_chunks_finishing_in_reverse_still_give_rows_in_input_order(serial_rows):
    executor = ReversingExecutor(3)  # 6 runs in chunks of 2
    assert sweep("hibernation", SMALL, executor=executor, chunk_size=2) == serial_rows
    assert executor.order == [2, 1, 0]


def test_a_pool_gets_the_runs_in_a_few_chunks_per_worker_not_one_task_per_run():
    """One run takes a few milliseconds, about what shipping it to a process costs."""
    runs = alternatives_matrix()
    executor = ReversingExecutor(2 * CHUNKS_PER_WORKER)
    executor._max_workers = 2  # what ProcessPoolExecutor(max_workers=2) keeps
    rows = sweep("hibernation", runs, executor=executor)
    assert len(executor.pending) == 2 * CHUNKS_PER_WORKER
    assert [dict(row.params) for row in rows] == runs


@pytest.mark.parametrize("size", [0, -1])
def test_a_chunk_size_below_one_is_refused(size):
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="chunk_size must be at least 1"):
        sweep("hibernation", SMALL, executor=pool, chunk_size=size)


def test_the_work_function_and_its_rows_survive_pickling(serial_rows):
    """What a process pool, Dask or Ray ship between processes."""
    assert pickle.loads(pickle.dumps(run_one)) is run_one
    assert pickle.loads(pickle.dumps(serial_rows)) == serial_rows


def test_a_row_reads_parameters_and_outcome_fields_by_name(serial_rows):
    row = serial_rows[0]
    assert (row["fix"], row["guest_fallback"], row["verdict"]) == ("none", "any", row.verdict)
    assert row["delivered"] + row["lost"] == row["sent"]


def test_a_bad_parameter_raises_value_error_with_make_params_message():
    with pytest.raises(ValueError, match="unknown fix 'bogus'"):
        sweep("hibernation", [{"fix": "none"}, {"fix": "bogus"}])


def test_progress_callable_is_called_with_done_and_total_after_each_run():
    calls = []
    sweep("hibernation", SMALL[:3], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_progress_true_draws_a_tqdm_bar_counting_runs_on_stderr_outside_a_notebook(capsys):
    pytest.importorskip("tqdm")
    sweep("hibernation", SMALL, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rsweep:") and f"{len(SMALL)}/{len(SMALL)}" in err.splitlines()[-1] and "run/s" in err


def test_progress_true_without_tqdm_is_an_import_error_saying_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm.auto` now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install tqdm \(it comes with evtsim\[notebooks\]\)"):
        sweep("hibernation", SMALL, progress=True)


def test_the_sweep_module_imports_neither_tqdm_nor_pandas_until_asked():
    probe = "import sys, evtsim.sweep, evtsim.cli; print(sorted(m for m in ('tqdm', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_alternatives_matrix_has_at_least_200_runs():
    assert len(alternatives_matrix()) >= 200


def test_alternatives_matrix_tries_every_errno_only_for_the_fixes_that_use_one():
    errnos = {fix: {p["errno"] for p in alternatives_matrix() if p["fix"] == fix} for fix in FIXES}
    assert errnos == {fix: set(ERRNOS) if fix in ERRNO_FIXES else {"ENOSYS"} for fix in FIXES}


def test_alternatives_matrix_reaches_all_four_verdicts(matrix_rows):
    assert {row.verdict for row in matrix_rows} == {"works", "events lost", "memory corrupted", "guest crash"}


def test_alternatives_matrix_controls_2_level_to_2_level_once_per_bootable_fallback():
    """A guest that never falls back cannot boot on 4.3 (init_control is -ENOSYS there)."""
    controls = [p for p in alternatives_matrix() if p["xen"] == "4.3"]
    assert sorted(p["guest_fallback"] for p in controls) == ["any", "enosys-only"]


def test_alternatives_matrix_has_no_never_falling_back_guest_on_a_4_3_host():
    assert not [p for p in alternatives_matrix() if p["old_xen"] == "4.3" and p["guest_fallback"] == "never"]


def test_to_dataframe_without_pandas_says_how_to_install_it(serial_rows, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        to_dataframe(serial_rows)


def test_to_dataframe_has_one_row_per_run_and_a_column_per_field(serial_rows):
    pytest.importorskip("pandas")
    frame = to_dataframe(serial_rows)
    assert len(frame) == len(serial_rows)
    assert {"fix", "guest_fallback", "verdict", "delivered", "sent"} <= set(frame.columns)
