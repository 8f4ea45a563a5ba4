"""The views draw what the frozen snapshots and traces say, and update in place."""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import cache

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # not MPLBACKEND: it would leak into notebook kernels (ecosystem.md section 2)

import numpy as np  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from evtsim import plots  # noqa: E402
from evtsim.scenarios import SCENARIOS, run_scenario  # noqa: E402
from evtsim.trace import VERDICTS  # noqa: E402

DPI = 40  # enough pixels to compare, few enough to keep the file fast


@cache
def trace(name: str, **params):
    return run_scenario(name, **params)


def hibernation_step(step: str = "traffic on the new host"):
    t = trace("hibernation")
    return next(r for r in t.records if r.step == step).domain("guest@B")


def render(ax) -> np.ndarray:
    """Draw the figure with warnings as errors; its pixels."""
    fig = ax.figure
    fig.set_dpi(DPI)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def snapshot_views(snapshot):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return [plots.draw_two_level(snapshot), plots.draw_fifo_queues(snapshot), plots.draw_frame_map(snapshot)]


def popcount(words) -> int:
    return sum(bin(w).count("1") for w in words)


def grid_codes(artists) -> np.ndarray:
    """The codes the grid shows, checked against the colours the image really has."""
    colours = np.round(255 * plots.bitmaps.STATE_RGBA).astype(np.uint8)
    assert np.array_equal(np.asarray(artists.grid.get_array()), colours[artists.codes.astype(int)])
    return artists.codes


def paths(collection) -> int:
    return len(collection.get_paths())


# --- every scenario, every view --------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_view_renders_the_middle_and_last_step_of_every_scenario_with_the_snapshots_bits(name):
    t = trace(name)
    for record in (t[len(t) // 2], t[-1]):
        for s in record.domains:
            two, fifo, frames = snapshot_views(s)
            for artists in (two, fifo, frames):
                render(artists.ax)
            assert np.count_nonzero(grid_codes(two) % 2 == 1) == popcount(s.evtchn_pending)
            assert paths(fifo.nodes) == sum(len(q.ports) for q in s.queues)
            assert paths(frames.cells) == len(s.frames)
    lines = plots.draw_timeline(t, step=len(t) - 1)
    render(lines.ax)
    assert (lines.sent.get_ydata()[-1], lines.delivered.get_ydata()[-1]) == (t.outcome.sent, t.outcome.delivered)


# --- the 2-level grid ------------------------------------------------------------------------


def test_pending_cells_equal_the_popcount_of_evtchn_pending_at_every_step():
    for record in trace("two-level-basics"):
        for s in record.domains:
            codes = grid_codes(plots.draw_two_level(s))
            assert np.count_nonzero((codes == 1) | (codes == 3)) == popcount(s.evtchn_pending)
            assert np.count_nonzero(codes >= 2) == popcount(s.evtchn_mask)


def test_a_pending_and_masked_port_gets_its_own_colour():
    t = trace("two-level-basics")
    s = next(r for r in t.records if r.step == "dom0 notifies the masked console").domain("guest")
    console = next(p.port for p in s.ports if p.label == "console")
    word, bit = divmod(console, s.bits_per_word)
    assert grid_codes(plots.draw_two_level(s))[word, bit] == plots.EVENT_STATES.index("pending+masked")


def test_a_64_bit_guest_gets_a_64_by_64_grid_and_a_32_bit_guest_a_32_by_32_grid():
    assert grid_codes(plots.draw_two_level(trace("two-level-basics")[-1].domains[0])).shape == (64, 64)
    compat = trace("two-level-basics", compat=True)[-1].domains[0]
    assert grid_codes(plots.draw_two_level(compat)).shape == (32, 32)


@pytest.mark.parametrize("vcpus", [2, 8])
def test_port_labels_legend_and_tick_labels_keep_clear_of_each_other(vcpus):
    a = plots.draw_two_level(run_scenario("two-level-basics", vcpus=vcpus)[-1].domains[0])
    fig = a.ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = a.ax.get_legend().get_window_extent(renderer)
    labels = [t.get_window_extent(renderer) for t in a.labels.active]
    assert len(labels) >= 9 and not any(legend.overlaps(box) for box in labels)
    ticks = sorted((t.get_window_extent(renderer) for t in a.ax.get_xticklabels() if t.get_text()), key=lambda b: b.x0)
    assert all(left.x1 <= right.x0 for left, right in zip(ticks, ticks[1:]))


def test_zoomed_the_grid_shows_the_words_and_bits_from_port_0_past_the_last_bound_port():
    s = trace("hibernation")[1].domain("guest@A")  # ports 1..9 bound, all in word 0
    a = plots.draw_two_level(s, zoom=True)
    assert grid_codes(a).shape == (1, 16)
    assert "zoomed to the bound ports: word 0, bits 0-15 of 4096 ports" in a.ax.get_xlabel()
    assert {t.get_text() for t in a.labels.active} == {f"{p.port} {p.label}" for p in s.ports}
    a.zoom = False
    plots.update_two_level(a, s)
    assert grid_codes(a).shape == (64, 64) and "zoomed" not in a.ax.get_xlabel()


def test_zoomed_with_a_port_past_the_first_word_the_grid_shows_whole_words():
    s = trace("two-level-basics", vcpus=8)[-1].domains[0]
    last = max(p.port for p in s.ports)
    a = plots.draw_two_level(s, zoom=True)
    words = last // 64 + 1
    assert grid_codes(a).shape == ((words, 64) if words > 1 else (1, 16 * (last % 64 // 16 + 1)))
    assert len(a.labels.active) == len(s.ports)


def test_selector_strip_and_upcall_cells_show_each_vcpu():
    t = trace("two-level-basics")
    s = next(r for r in t.records if r.step.startswith("timer fires")).domain("guest")
    a = plots.draw_two_level(s)
    sel, up = a.selector_bits, a.upcall_bits
    set_colour = to_rgba(plots.COLOURS["pending"])
    shown = [tuple(face) == set_colour for face in a.selector.get_facecolor()]  # vCPU by vCPU, word by word
    assert shown == [bool(sel[w, 2 * v]) for v in range(len(s.vcpus)) for w in range(len(s.evtchn_pending))]
    assert [tuple(face) == set_colour for face in a.upcall.get_facecolor()] == [v.upcall_pending for v in s.vcpus]
    for v, vcpu in enumerate(s.vcpus):
        assert [int(b) for b in sel[:, 2 * v]] == [vcpu.pending_sel >> w & 1 for w in range(len(s.evtchn_pending))]
        assert up[0, 2 * v] == (1 if vcpu.upcall_pending else 0)
    assert any(vcpu.pending_sel for vcpu in s.vcpus)


def test_every_bound_port_is_outlined_and_labelled_with_what_it_is_for():
    s = trace("two-level-basics")[-1].domains[0]
    a = plots.draw_two_level(s)
    labels = [t.get_text() for t in a.labels.active]
    assert paths(a.bound) == len(labels) == len(s.ports)
    assert {"1 xenstore", "2 console", "3 timer0", "6 timer1"} <= set(labels)


# --- the FIFO queues -------------------------------------------------------------------------


def test_queue_nodes_equal_the_linked_words_reachable_from_each_head_of_a_queue_xen_holds_non_empty():
    """Xen's TAIL 0 means an empty queue (evtchn_fifo_set_pending's old-tail rule): whatever a
    stale HEAD still leads to is linked in another queue, and is drawn there."""
    for name in ("fifo-basics", "hibernation"):
        for record in trace(name):
            for s in record.domains:
                for compact in (False, True):
                    a = plots.draw_fifo_queues(s, compact=compact)
                    held = sum(len(q.ports) for q in s.queues if q.tail)
                    assert paths(a.nodes) == len(a.node_labels.active) == held


def test_each_node_shows_its_port_label_and_its_word_flag_bits():
    a = plots.draw_fifo_queues(hibernation_step())
    assert "3 timer0\nP . L ." in [t.get_text() for t in a.node_labels.active]


def test_a_queue_whose_control_block_frame_now_holds_the_image_is_hatched_with_its_note():
    s = hibernation_step()
    a = plots.draw_fifo_queues(s)
    broken = [q for q in s.queues if q.note]
    assert broken and paths(a.broken) == len(broken)
    notes = [t for t in a.texts.active if "now holds: hibernation image" in t.get_text()]
    assert notes and all(to_rgba(t.get_color()) == to_rgba(plots.COLOURS["hazard"]) for t in notes)


def test_ready_cells_are_coloured_only_where_ready_is_set():
    s = hibernation_step()
    faces = plots.draw_fifo_queues(s).ready.get_facecolor()
    ready = {(q.vcpu, q.priority) for q in s.queues if q.ready}
    expected = [plots.COLOURS["ready"] if (v, p) in ready else "white"
                for v in range(len(s.vcpus)) for p in range(16)]
    assert [tuple(f) for f in faces] == [to_rgba(c) for c in expected]
    assert plots.COLOURS["ready"] != plots.COLOURS["pending"]  # a READY bit is not a pending event


def test_compact_shows_only_the_queues_in_use_and_says_how_many_of_16():
    s = hibernation_step()
    a = plots.draw_fifo_queues(s, compact=True)
    assert paths(a.ready) == len(s.queues) == 4  # q0 and q7 of each vCPU
    headers = [t.get_text() for t in a.frame_texts.active]
    assert headers.count("2 of 16 queues in use; the others are empty") == 2


def footnote_texts(a) -> str:
    return "\n".join(t.get_text() for t in a.texts.active)


def test_a_consumed_queue_says_its_head_and_tail_are_stale_and_why():
    """Linux's consume_one_event keeps its own head and never writes HEAD back; Xen moves its
    private TAIL only when it links the next event (evtchn_fifo_set_pending)."""
    s = trace("fifo-basics")[4].domain("guest")  # "guest consumes": queues 0 and 7 drained
    texts = footnote_texts(plots.draw_fifo_queues(s))
    assert "empty: HEAD 1 and TAIL 9 are stale*" in texts
    assert "* stale: the guest consumed this queue" in texts.replace("\n", " ")


def test_a_queue_whose_event_moved_vcpu_says_xen_holds_it_empty_and_where_the_event_is_now():
    """bind_vcpu moved vbd (port 9) to vCPU1: Xen's old-tail rule set vCPU0 q3's TAIL to 0."""
    s = trace("fifo-basics")[10].domain("guest")
    texts = footnote_texts(plots.draw_fifo_queues(s))
    assert "empty for Xen (TAIL 0\u2020); HEAD 9 is stale: port 9 is queued on vCPU1 q3 now" in texts
    assert "\u2020 TAIL 0: Xen holds this queue empty" in texts
    assert "not reached" not in texts


def test_the_event_array_pages_xen_maps_are_named_with_what_they_hold():
    texts = [t.get_text() for t in plots.draw_fifo_queues(hibernation_step()).texts.active]
    assert "event-array pages Xen maps: 0xc2 (holds: hibernation image)" in texts


def test_a_2_level_domain_says_it_has_no_fifo_queues():
    a = plots.draw_fifo_queues(trace("two-level-basics")[-1].domains[0])
    assert paths(a.nodes) == 0
    assert any("no FIFO queues" in t.get_text() for t in a.texts.active)


# --- the frame map ---------------------------------------------------------------------------


def test_frame_map_has_one_cell_per_frame_with_a_role():
    s = hibernation_step()
    assert paths(plots.draw_frame_map(s).cells) == len(s.frames)


def test_frames_xen_maps_but_that_hold_the_image_are_hatched_and_their_writes_add_up_to_the_stray_writes():
    t = trace("hibernation")
    record = t[-1]
    a = plots.draw_frame_map(record.domain("guest@B"))
    assert paths(a.hazards) == len(t.outcome.corrupted_frames) == 3
    hazard_counts = [int(c.get_text()) for c in a.counts.active if c.get_position()[1] < 7]  # rows 0x00-0xdf
    assert sum(hazard_counts) == record.stray_writes == 22
    line = "Xen maps 0xc2 as event_array; it holds hibernation image  \u2190 Xen's writes corrupt it"
    assert line in a.mappings.get_text()
    handed_over = [f.xen_writes for f in record.domain("guest@B").frames if f.gfn in (0xc0, 0xc1, 0xc2)]
    assert sorted(hazard_counts) == sorted(handed_over)


def test_a_healthy_fifo_guest_has_no_hazard_and_outlines_what_xen_maps():
    s = trace("fifo-basics")[-1].domains[0]
    a = plots.draw_frame_map(s)
    assert paths(a.hazards) == 0
    assert paths(a.mapped) == sum(1 for f in s.frames if f.xen_mapping) == 4


# --- the timeline ----------------------------------------------------------------------------


def test_sent_and_delivered_lines_end_at_the_traces_totals():
    t = trace("hibernation")
    a = plots.draw_timeline(t)
    assert a.sent.get_ydata()[-1] == t.outcome.sent == 24
    assert a.delivered.get_ydata()[-1] == t.outcome.delivered == 12
    assert a.undelivered.get_ydata()[-1] == t.outcome.lost
    assert len(a.sent.get_xdata()) == len(t)


def test_the_line_of_events_sent_but_not_delivered_is_called_what_it_is():
    """It rises in runs that work, while events wait in a queue: not "lost"."""
    legend = [t.get_text() for t in plots.draw_timeline(trace("hibernation")).ax.get_legend().get_texts()]
    assert "not (yet) delivered" in legend and "lost" not in legend


@pytest.mark.parametrize(("fix", "shown"), [("none", False), ("reset", False), ("xsm", True), ("disable-fifo", True)])
def test_the_title_names_the_errno_only_for_the_fixes_that_return_it(fix, shown):
    title = plots.draw_timeline(run_scenario("hibernation", fix=fix, errno="EPERM")).ax.get_title()
    assert ("errno=EPERM" in title) is shown


def test_the_step_frame_is_an_outline_that_leaves_the_colour_of_the_cells_inside_it_alone():
    t = trace("hibernation")
    framed, bare = plots.draw_timeline(t, step=1), plots.draw_timeline(t)
    assert all(c.get_facecolor()[3] == 0 for c in framed.cursors)
    a, b = render(framed.ax), render(bare.ax)
    x, y = framed.abi_ax.transData.transform((1, 0.5))  # the middle of guest@A's Xen cell at step 1
    row = a.shape[0] - int(y)
    assert np.array_equal(a[row, int(x)], b[row, int(x)])
    assert not np.array_equal(a, b)


def test_failed_hypercalls_are_named_by_op_and_errno():
    a = plots.draw_timeline(trace("hibernation"))
    errors = "\n".join(t.get_text() for t in a.errors.active)
    assert "init_control\n-ENOSYS" in errors and "bind_virq\n-EEXIST x2" in errors


def test_hypercall_bars_count_each_steps_calls_with_failures_on_top():
    t = trace("hibernation")
    a = plots.draw_timeline(t)
    heights = [np.ptp(p.vertices[:, 1]) for p in a.ok_calls.get_paths()]
    failed = [np.ptp(p.vertices[:, 1]) for p in a.failed_calls.get_paths()]
    assert heights == [sum(c.rc >= 0 for c in r.calls) for r in t]
    assert failed == [sum(c.rc < 0 for c in r.calls) for r in t]


def test_the_abi_mismatch_between_xen_and_the_kernel_is_hatched_at_each_step_it_holds():
    t = trace("hibernation")
    mismatches = sum(1 for r in t for d in r.domains if d.kernel_abi and d.kernel_abi != d.abi)
    assert mismatches and paths(plots.draw_timeline(t).mismatch) == mismatches


def test_the_cursor_marks_the_chosen_step_only_when_one_is_chosen():
    t = trace("hibernation")
    assert not any(c.get_visible() for c in plots.draw_timeline(t).cursors)
    cursors = plots.draw_timeline(t, step=4).cursors
    assert all(c.get_visible() and c.get_x() == 3.5 for c in cursors)


@pytest.mark.parametrize(("fix", "row"), [("disable-fifo", "patch-v4"), ("evtchn-fifo", "patch-v5"),
                                          ("qemu", "qemu"), ("fifo-off", "fifo-off")])
def test_the_title_names_the_xen_row_a_fix_runs_the_new_host_on(fix, row):
    """Some fixes run host B on a patched or rebuilt Xen whatever ``xen`` asks for (4.4 here)."""
    t = run_scenario("hibernation", fix=fix)
    assert {d.xen for r in t for d in r.domains if d.host == "B"} == {row}
    assert f"host B ran {row}" in plots.draw_timeline(t).ax.get_title().replace("\n", " ")
    assert "ran" not in plots.draw_timeline(trace("hibernation")).ax.get_title()


# --- the alternatives matrix -----------------------------------------------------------------


@cache
def matrix_rows():
    from evtsim.sweep import grid, sweep

    return tuple(sweep("hibernation", grid(fix=["none", "disable-fifo", "fifo-events-0", "reset"],
                                           guest_fallback=["any", "never"], xen=["4.4", "master"])))


def test_matrix_has_one_cell_per_row_coloured_by_its_verdict():
    rows = matrix_rows()
    a = plots.draw_alternatives_matrix(rows)
    grid = np.asarray(a.image.get_array().filled(np.nan))
    assert np.count_nonzero(~np.isnan(grid)) == len(rows) == len(a.texts.active)
    for row in rows:
        value = grid[a.row_labels.index(row["fix"]), a.col_labels.index(f"{row['xen']}\n{row['guest_fallback']}")]
        assert a.image.cmap(a.image.norm(value)) == to_rgba(plots.VERDICT_COLOURS[row["verdict"]])


def test_matrix_takes_plain_dicts_and_names_the_errno_only_where_a_fix_used_several():
    rows = [{"fix": "none", "errno": "ENOSYS", "xen": "4.4", "verdict": "memory corrupted"},
            {"fix": "xsm", "errno": "EPERM", "xen": "4.4", "verdict": "guest crash"},
            {"fix": "xsm", "errno": "ENOSYS", "xen": "4.4", "verdict": "works"},
            {"fix": "xsm", "errno": "ENOSYS", "xen": "master", "verdict": "works"}]
    row_labels, col_labels, cells, _, _ = plots.matrix_cells(rows)
    assert row_labels == ["none", "xsm / ENOSYS", "xsm / EPERM"]
    assert col_labels == ["4.4", "master"]
    assert cells[("xsm / EPERM", "4.4")] == "guest crash"


def test_matrix_takes_whole_traces_as_rows():
    traces = [run_scenario("hibernation", fix=fix) for fix in ("none", "fifo-events-0")]
    row_labels, col_labels, cells, _, _ = plots.matrix_cells(traces)
    assert cells == {("none", "all"): "memory corrupted", ("fifo-events-0", "all"): traces[1].outcome.verdict}


def test_matrix_refuses_a_row_without_a_known_verdict():
    with pytest.raises(ValueError, match="verdict"):
        plots.matrix_cells([{"fix": "none", "verdict": "fine"}])


def test_matrix_legend_names_every_verdict():
    legend = plots.draw_alternatives_matrix(matrix_rows()).ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert all(any(t.startswith(v) for t in texts) for v in VERDICTS)


# --- updating in place, and the house style --------------------------------------------------


VIEWS = ("two_level", "fifo_queues", "frame_map", "timeline", "alternatives_matrix")


def view_pairs():
    """(draw, update, first data, second data) for each view."""
    hib, basics = trace("hibernation"), trace("two-level-basics")
    mid, last = hib[5].domain("guest@B"), hib[-1].domain("guest@B")
    rows = matrix_rows()
    return {
        "two_level": (plots.draw_two_level, plots.update_two_level, basics[1].domains[0], basics[-2].domains[0]),
        "fifo_queues": (plots.draw_fifo_queues, plots.update_fifo_queues, mid, last),
        "frame_map": (plots.draw_frame_map, plots.update_frame_map, mid, last),
        "timeline": (plots.draw_timeline, plots.update_timeline, hib, trace("fifo-basics")),
        "alternatives_matrix": (plots.draw_alternatives_matrix, plots.update_alternatives_matrix, rows[:8], rows),
    }


def same_size_axes(fig):
    """A new Agg figure as large as ``fig``, laid out the same way."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fresh = Figure(figsize=fig.get_size_inches(), layout="constrained")
    FigureCanvasAgg(fresh)
    return fresh.add_subplot()


@pytest.mark.parametrize("view", VIEWS)
def test_update_redraws_the_same_figure_into_exactly_what_a_fresh_drawing_shows(view, monkeypatch):
    draw, update, first, second = view_pairs()[view]
    artists = draw(first)
    fig, axes = artists.ax.figure, list(artists.ax.figure.axes)
    before = render(artists.ax)
    fresh = draw(second, same_size_axes(fig))
    for module in (plots.style, plots.bitmaps, plots.queues, plots.frames, plots.timelines, plots.matrix):
        monkeypatch.setattr(module, "_new_axes", lambda *a: pytest.fail("update made a new figure"))
    update(artists, second)
    after = render(artists.ax)
    assert artists.ax.figure is fig and fig.axes == axes
    assert not np.array_equal(before, after)
    expected = render(fresh.ax)
    # Constrained layout starts from the previous positions, so allow its sub-pixel rounding.
    assert np.allclose(artists.ax.get_position().bounds, fresh.ax.get_position().bounds, atol=1e-3)
    assert np.mean(np.any(after != expected, axis=2)) < 0.03


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_has_one_legend_and_no_text_under_8_points(view):
    draw, _, data, _ = view_pairs()[view]
    fig = draw(data).ax.figure
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    assert texts and min(t.get_fontsize() for t in texts) >= 8


def test_the_palette_is_okabe_ito_and_each_verdict_has_a_distinct_colour():
    assert set(plots.VERDICT_COLOURS) == set(VERDICTS)
    assert set(plots.VERDICT_COLOURS.values()) <= set(plots.OKABE_ITO.values())
    assert len(set(plots.VERDICT_COLOURS.values())) == len(VERDICTS)


def test_wcag_contrast_of_black_on_white_is_21_and_of_a_colour_on_itself_1():
    assert plots.contrast_ratio("black", "white") == pytest.approx(21)
    assert plots.contrast_ratio("#0072B2", "#0072B2") == pytest.approx(1)
    assert plots.contrast_ratio("white", "#767676") == pytest.approx(4.54, abs=0.01)  # WCAG's AA grey


def test_verdict_letters_in_the_matrix_read_at_4_5_to_1_or_better():
    a = plots.draw_alternatives_matrix(matrix_rows())
    for text in a.texts.active:
        verdict = next(v for v, short in plots.style.VERDICT_SHORT.items() if short == text.get_text())
        assert plots.contrast_ratio(text.get_color(), plots.VERDICT_COLOURS[verdict]) >= 4.5


def test_a_plot_function_returns_something_that_displays_as_its_figure():
    shown = plots.timeline(trace("hibernation"))
    png = shown._repr_png_()
    assert png.startswith(b"\x89PNG") and shown.figure is shown.ax.figure
    assert repr(shown).startswith("<TimelineArtists: hibernation (") and len(repr(shown)) < 200


def test_a_view_drawn_into_a_pyplot_figure_leaves_its_display_to_pyplot():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert plots.two_level(hibernation_step(), ax)._repr_png_() is None
    finally:
        plt.close(fig)


def test_importing_plots_does_not_import_pyplot():
    code = "import sys, evtsim.plots; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
