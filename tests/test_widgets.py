"""The dashboards, driven without a kernel: set ``.value`` or click, observers run at once.

As in ecosystem.md section 2: Agg (set here, not through MPLBACKEND, which would leak into
notebook kernels), then the widgets' state, the artists and the pixels are checked. The pixels
are those a learner sees: each shown pane's PNG, as its Image widget holds it.
"""

from __future__ import annotations

import html
import io

import pytest

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("ipywidgets")
matplotlib.use("Agg")

import numpy as np  # noqa: E402

from PIL import Image  # noqa: E402

from evtsim import plots, widgets  # noqa: E402
from evtsim.fifo import L, M, P  # noqa: E402
from evtsim.widgets import hibernation  # noqa: E402
from evtsim.widgets.canvas import CachedTextCanvas, PngStream, adler32_combine, encode_png  # noqa: E402


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def pixels(dash) -> dict[str, np.ndarray]:
    """What the dashboard shows: each shown pane's picture, decoded."""
    return {name: decode(pane.widget.value) for name, pane in dash.panes.items() if pane.visible}


def differ(before: dict, after: dict) -> bool:
    return before.keys() != after.keys() or any(not np.array_equal(before[k], after[k]) for k in before)


def text(widget) -> str:
    return html.unescape(widget.value)


@pytest.fixture
def dash():
    return widgets.hibernation_dashboard()


@pytest.fixture
def fifo():
    d = widgets.fifo_playground()
    d.controls["port"].value = "console"
    return d


def word(dash, channel: str) -> int:
    return next(p.word for p in dash.snapshot.ports if p.label == channel)


def queued(dash) -> list[int]:
    return [port for q in dash.snapshot.queues for port in q.ports]


def press(dash, *buttons: str) -> None:
    for name in buttons:
        dash.controls[name].click()


# --- the hibernation dashboard: parameters re-run the scenario ----------------------------------


def test_toggling_disable_fifo_reruns_the_scenario_and_the_guest_then_works(dash):
    before = dash.trace
    dash.controls["disable_fifo"].value = True
    assert dash.trace is not before
    assert (before.outcome.verdict, dash.trace.outcome.verdict) == ("memory corrupted", "works")
    assert dict(dash.trace.params)["fix"] == "disable-fifo"


def test_toggling_disable_fifo_changes_the_banner_text_and_colour(dash):
    assert html.escape(dash.trace.outcome.summary) in dash.banner.value
    assert dash.banner.style.background == plots.VERDICT_COLOURS["memory corrupted"]
    dash.controls["disable_fifo"].value = True
    assert html.escape(dash.trace.outcome.summary) in dash.banner.value
    assert dash.banner.style.background == plots.VERDICT_COLOURS["works"]


def test_toggling_disable_fifo_changes_the_figure_pixels(dash):
    before = pixels(dash)
    dash.controls["disable_fifo"].value = True
    assert differ(before, pixels(dash))


def test_the_disable_fifo_toggle_and_the_fix_dropdown_always_agree(dash):
    dash.controls["fix"].value = "disable-fifo"
    assert dash.controls["disable_fifo"].value is True
    dash.controls["fix"].value = "reset"
    assert (dash.controls["disable_fifo"].value, dash.controls["reset"].value) == (False, True)
    dash.controls["disable_fifo"].value = True
    assert (dash.controls["fix"].value, dash.controls["reset"].value) == ("disable-fifo", False)
    dash.controls["disable_fifo"].value = False
    assert dash.controls["fix"].value == "none"


def test_unticking_xen_fifo_events_chooses_fix_fifo_events_0_and_the_guest_works(dash):
    dash.controls["fifo_events"].value = False
    assert dash.controls["fix"].value == "fifo-events-0"
    assert dash.trace.outcome.verdict == "works"


def test_the_banner_says_under_the_outcome_what_the_fix_run_was(dash):
    dash.controls["fix"].value = "xsm"
    assert text(dash.banner).endswith("fix xsm: " + hibernation.FIXES["xsm"])
    assert text(dash.banner).startswith(f"<b>{dash.trace.outcome.summary}</b><br>")


def test_the_errno_dropdown_is_disabled_with_the_reason_when_the_fix_ignores_it(dash):
    errno = dash.controls["errno"]
    assert errno.disabled and "ignores the errno" in errno.tooltip
    dash.controls["disable_fifo"].value = True
    assert not errno.disabled
    errno.value = "EPERM"
    assert dict(dash.trace.params)["errno"] == "EPERM"


def test_the_new_host_dropdown_is_disabled_when_the_fix_chooses_the_host(dash):
    dash.controls["fix"].value = "qemu"
    assert dash.controls["xen"].disabled and "qemu" in dash.controls["xen"].tooltip
    dash.controls["fix"].value = "none"
    assert not dash.controls["xen"].disabled


def test_after_a_rerun_with_one_more_step_the_slider_reaches_the_new_last_step(dash):
    steps = len(dash.trace)
    dash.controls["reset"].value = True
    assert len(dash.trace) == steps + 1
    assert dash.slider.max == len(dash.trace) - 1 == dash.controls["play"].max
    assert dash.slider.value == dash.slider.max  # it was at the end, so it stays there


def test_a_failed_scenario_build_says_so_in_one_banner_line_and_keeps_the_last_run(dash, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("no such host\nsecond line")

    monkeypatch.setattr(hibernation, "run_scenario", refuse)
    before = dash.trace
    dash.controls["old_xen"].value = "4.4"  # the observer must not raise
    assert "no such host" in dash.banner.value and "second line" not in dash.banner.value
    assert "\n" not in dash.banner.value
    assert dash.trace is before


def test_the_controls_offer_only_values_the_scenario_accepts(dash):
    c = dash.controls
    for xen in c["old_xen"].options:
        hibernation.make_params("hibernation", old_xen=xen, xen=xen)
    assert set(c["fix"].options) == set(hibernation.FIXES) and set(c["errno"].options) == set(hibernation.ERRNOS)


def test_an_unknown_starting_parameter_is_refused_with_a_value_error():
    with pytest.raises(ValueError, match="no option"):
        widgets.hibernation_dashboard(colour="red")


def test_the_banner_text_reads_at_4_5_to_1_or_better_on_every_verdict_and_on_a_refusal(dash, monkeypatch):
    """WCAG 2.x level AA for normal text, computed from the colours the banner is given."""
    seen = set()
    for old, fix, fallback in (("4.3", "none", "any"), ("4.3", "disable-fifo", "any"), ("4.4", "disable-fifo", "any"),
                               ("4.4", "disable-fifo", "never")):
        dash.controls["old_xen"].value = old
        dash.controls["guest_fallback"].value = fallback
        dash.controls["fix"].value = fix
        seen.add(dash.trace.outcome.verdict)
        style = dash.banner.style
        assert plots.contrast_ratio(style.text_color, style.background) >= plots.MIN_CONTRAST, fix
    assert seen == set(plots.VERDICT_COLOURS)

    def refuse(*args, **kwargs):
        raise ValueError("no")

    monkeypatch.setattr(hibernation, "run_scenario", refuse)
    dash.controls["old_xen"].value = "4.4"
    assert plots.contrast_ratio(dash.banner.style.text_color, dash.banner.style.background) >= plots.MIN_CONTRAST


def test_disable_fifo_on_is_not_dressed_as_a_verdict(dash):
    """ipywidgets' warning, danger, success and info styles are the orange, red and greens of
    the verdicts (the browser tests compare the colours as painted)."""
    toggle = dash.controls["disable_fifo"]
    toggle.value = True
    assert toggle.button_style == hibernation.ON_STYLE == "primary" and toggle.icon == "check"
    toggle.value = False
    assert toggle.button_style == "" and toggle.icon == "ban"


def test_reset_dashboard_puts_every_control_back_and_shows_the_first_run_again(dash):
    first = dash.trace.lines()
    dash.controls["fix"].value = "xsm"
    dash.controls["errno"].value = "EACCES"
    dash.controls["guest_fallback"].value = "enosys-only"
    dash.controls["all_ports"].value = True
    dash.slider.value = 2
    dash.controls["reset_dashboard"].click()
    c = dash.controls
    assert (c["fix"].value, c["errno"].value, c["guest_fallback"].value, c["disable_fifo"].value) == \
        ("none", "ENOSYS", "any", False)
    assert c["errno"].disabled and not c["all_ports"].value and dash.views["two_level"].zoom
    assert dash.trace.lines() == first and dash.slider.value == dash.slider.max


def test_a_dashboard_started_with_parameters_resets_to_those_parameters():
    d = widgets.hibernation_dashboard(fix="disable-fifo", errno="EPERM")
    d.controls["fix"].value = "none"
    d.reset()
    assert (d.controls["fix"].value, d.controls["errno"].value, d.controls["disable_fifo"].value) == \
        ("disable-fifo", "EPERM", True)


def test_all_ports_shows_the_whole_2_level_grid_and_off_zooms_back_to_the_bound_ports(dash):
    dash.slider.value = 1  # guest@A, 2-level
    grid = dash.views["two_level"]
    assert grid.codes.shape == (1, 16)
    before = dash.panes["two_level"].widget.value
    dash.controls["all_ports"].value = True
    assert grid.codes.shape == (64, 64) and dash.panes["two_level"].widget.value != before
    dash.controls["all_ports"].value = False
    assert grid.codes.shape == (1, 16)


# --- the hibernation dashboard: the slider only indexes -----------------------------------------


def test_moving_the_slider_frames_that_step_over_the_timeline_without_rerunning_or_redrawing_it(dash):
    before, timeline = dash.trace, dash.panes["timeline"].widget.value
    dash.slider.value = 2
    assert dash.trace is before and dash.panes["timeline"].widget.value == timeline
    a = dash.views["timeline"]
    left, top, width, height = dash.frame.box
    x0, x1 = (a.events_ax.transData.transform([(x, 0)])[0, 0] / a.figure.bbox.width for x in (1.5, 2.5))
    assert (left, width) == pytest.approx((x0, x1 - x0))
    assert f"left: {100 * left:.3f}%" in dash.frame.layer.value


def test_moving_the_slider_changes_the_pixels(dash):
    before = pixels(dash)
    dash.slider.value = 5
    assert differ(before, pixels(dash))


def test_the_domain_view_follows_xen_s_abi_at_each_step(dash):
    def shown() -> set[str]:
        return {name for name, pane in dash.panes.items() if pane.visible} | (
            {"no domain"} if dash.no_domain.layout.display != "none" else set())

    dash.slider.value = 1  # guest@A, 2-level
    assert shown() == {"timeline", "two_level", "frames"}
    dash.slider.value = 3  # hibernated: no domain at all
    assert shown() == {"timeline", "no domain"}
    dash.slider.value = 8  # guest@B, Xen in FIFO
    assert shown() == {"timeline", "fifo", "frames"} and dash.snapshot.name == "guest@B"


def test_a_slider_value_past_the_last_step_is_clamped_not_an_error(dash):
    dash.slider.value = 10_000
    assert dash.slider.value == len(dash.trace) - 1


def test_play_drives_the_slider(dash):
    dash.controls["play"].value = 2
    assert dash.slider.value == 2


def test_previous_and_next_step_within_the_trace(dash):
    dash.slider.value = 0
    assert dash.controls["previous"].disabled
    press(dash, "previous", "next", "next")
    assert dash.slider.value == 2
    dash.slider.value = dash.slider.max
    assert dash.controls["next"].disabled


def test_the_notes_name_the_step_shown(dash):
    dash.slider.value = 1
    assert dash.trace[1].step in text(dash.controls["notes"])


def test_every_note_is_shown_whole_in_a_box_that_scrolls_and_a_panic_stands_out():
    d = widgets.hibernation_dashboard(fix="xsm", errno="EACCES", guest_fallback="enosys-only")
    d.slider.value = 5  # the boot kernel panics
    notes = d.controls["notes"]
    shown = text(notes)
    assert all(note in shown for note in d.trace[5].notes)
    panic = next(n for n in d.trace[5].notes if "panic" in n)
    assert f'<span class="evtsim-panic">{html.escape(panic)}</span>' in notes.value
    assert notes.layout.overflow == "auto"  # more lines than room: a scrollbar, never a cut
    assert "overflow-wrap: anywhere" in d.style.value  # a long line wraps instead of running out of the box


def test_no_text_a_learner_reads_shows_python():
    """A crashed kernel's ABI is None in Python; the learner reads words."""
    import re

    python = re.compile(r"\b(None|True|False)\b|\[\d+, |Error\(|<\w+ object|\{'")
    for params in ({"fix": "xsm", "errno": "EACCES", "guest_fallback": "enosys-only"},
                   {"fix": "disable-fifo", "errno": "EPERM", "guest_fallback": "enosys-only"},
                   {"guest_fallback": "never"}, {"fix": "reset"}, {}):
        d = widgets.hibernation_dashboard(**params)
        for step in range(len(d.trace)):
            d.slider.value = step
            titles = [ax.get_title() for name, pane in d.panes.items() if pane.visible for ax in pane.figure.axes]
            for shown in (text(d.controls["notes"]), text(d.banner), *titles, d.describe()):
                assert not python.search(shown), (params, step, shown)


def test_a_bare_dashboard_displays_as_its_root_widget(dash):
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id


def test_its_display_carries_a_still_picture_of_the_current_state_for_readers_without_a_kernel(dash):
    """nbconvert and GitHub show the image where nothing runs the widgets, not a VBox(...) repr."""
    bundle = dash._repr_mimebundle_()
    still = decode(bundle["image/png"])
    assert "VBox(" not in bundle["text/plain"] and dash.trace.outcome.summary in bundle["text/plain"]
    banner = np.array(matplotlib.colors.to_rgba(plots.VERDICT_COLOURS["memory corrupted"])) * 255
    assert np.abs(still[2, 2].astype(int) - banner.astype(int)).max() <= 1  # the banner's colour, top left
    width = dash.look.size(hibernation.ABI_W + hibernation.GAP + hibernation.SIDE_W)
    assert still.shape[1] == width  # one pixel per CSS pixel, as laid out
    dash.controls["disable_fifo"].value = True
    assert not np.array_equal(decode(dash._repr_mimebundle_()["image/png"])[:40], still[:40])


def test_nbconvert_without_the_widget_state_shows_the_still_not_the_widgets_text(dash):
    """A notebook saved without its widget state (JupyterLab's default) converted to HTML."""
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    bundle = dash._repr_mimebundle_()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("hibernation_dashboard()", outputs=[
        nbformat.v4.new_output("display_data", data={k: v for k, v in bundle.items() if k != "image/png"}
                               | {"image/png": __import__("base64").b64encode(bundle["image/png"]).decode()})])]
    page, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert "data:image/png;base64," in page and "VBox(children" not in page


def test_the_still_frames_the_step_shown_as_the_page_does(dash):
    dash.slider.value = 2
    timeline = dash.panes["timeline"].still()
    framed = dash.frame.draw_on(timeline, 2)
    left, top, width, height = dash.frame.box
    h, w = timeline.shape[:2]
    assert np.array_equal(framed[round(top * h) + 1, round(left * w) + 5], [0x22, 0x22, 0x22, 0xFF])
    centre = round((top + height / 2) * h), round((left + width / 2) * w)
    assert np.array_equal(framed[centre], timeline[centre])  # inside the frame: the cell's own colour


def test_pixel_ratio_1_draws_the_same_panes_with_a_quarter_of_the_pixels():
    sharp, plain = widgets.hibernation_dashboard(), widgets.hibernation_dashboard(pixel_ratio=1)
    for name, pane in plain.panes.items():
        assert pane.widget.width == sharp.panes[name].widget.width  # shown at the same size
        assert 2 * pane.pixels().shape[0] == sharp.panes[name].pixels().shape[0]


def test_the_pictures_follow_the_pixel_ratio_the_browser_reports(dash):
    """A 1366 x 768 laptop reports 1: a quarter of the pixels, shown at the same size; what
    they show is unchanged, and later changes are drawn at that ratio too."""
    assert dash.screen in dash.widget.children and dash.screen.layout.display == "none"
    shown = {name: pane.widget.width for name, pane in dash.panes.items()}
    sharp = {name: decode(pane.widget.value).shape for name, pane in dash.panes.items()}
    dash.screen.pixel_ratio = 1.0  # what the browser's window.devicePixelRatio says
    for name, pane in dash.panes.items():
        assert pane.widget.width == shown[name]
        assert decode(pane.widget.value).shape[:2] == (sharp[name][0] // 2, sharp[name][1] // 2)
    assert dash.look.pixel_ratio == 1.0
    dash.controls["disable_fifo"].value = True
    assert text(dash.banner).startswith("<b>works") and decode(dash.panes["timeline"].widget.value).shape[0] == sharp[
        "timeline"][0] // 2
    dash.screen.pixel_ratio = 9.0  # clamped
    assert dash.panes["timeline"].figure.dpi == 96 * 4


def test_a_dashboard_in_a_repl_reads_as_its_one_line_description(dash, fifo):
    assert repr(dash) == dash.describe() and repr(dash).startswith("hibernation dashboard, step 8 of 8: memory corrupted")
    assert repr(fifo) == "FIFO playground, guest on Xen master: ready: pick a channel and press a button"


def test_a_pixel_ratio_given_is_kept_whatever_the_screen_says():
    d = widgets.hibernation_dashboard(pixel_ratio=1)
    assert d.screen is None and all(p.figure.dpi == 96 for p in d.panes.values())


def test_pages_of_saved_widget_state_get_no_screen_widget(monkeypatch):
    """docs/conf.py sets EVTSIM_STATIC_WIDGETS: the docs site draws saved state with ipywidgets' JS alone."""
    monkeypatch.setenv("EVTSIM_STATIC_WIDGETS", "1")
    d = widgets.hibernation_dashboard()
    assert d.screen is None and not any("Screen" in type(c).__name__ for c in d.widget.children)


def test_a_still_at_a_fractional_pixel_ratio_is_one_pixel_per_css_pixel(dash):
    dash.screen.pixel_ratio = 1.5
    pane = dash.panes["frames"]
    assert pane.still().shape[:2] == (int(pane.widget.height), int(pane.widget.width))


def test_the_presenter_look_draws_everything_half_as_large_again():
    d = widgets.hibernation_dashboard(presenter=True)
    notebook = widgets.hibernation_dashboard()
    for name, pane in d.panes.items():
        assert int(pane.widget.width) == round(1.5 * int(notebook.panes[name].widget.width))
        assert pane.figure.dpi == 1.5 * notebook.panes[name].figure.dpi
    assert "evtsim-presenter" in d.widget._dom_classes and "--jp-widgets-font-size: 20px" in d.style.value


def test_the_figures_are_not_left_in_pyplot_for_the_inline_backend_to_show_again(dash):
    import matplotlib.pyplot as plt

    figures = {id(pane.figure) for pane in dash.panes.values()}
    assert not figures & {id(plt.figure(n)) for n in plt.get_fignums()}


def test_each_change_puts_new_pictures_in_the_panes_it_touches_and_no_others(dash):
    dash.slider.value = 8
    before = {name: pane.widget.value for name, pane in dash.panes.items()}
    dash.slider.value = 7  # guest@B in FIFO at both steps: the 2-level pane stays hidden and untouched
    after = {name: pane.widget.value for name, pane in dash.panes.items()}
    assert {name for name in before if before[name] != after[name]} == {"fifo", "frames"}  # the timeline: its frame
    dash.controls["disable_fifo"].value = True  # a new trace: a new timeline
    assert dash.panes["timeline"].widget.value != after["timeline"]


def changes(dash):
    """Every step, some again, and parameter changes (new traces at the step shown)."""
    for step in (*range(len(dash.trace)), 4, 1, 7):
        dash.slider.value = step
        yield f"step {step}"
    for fix in ("disable-fifo", "none", "reset", "xsm", "none"):
        dash.controls["fix"].value = fix
        yield f"fix {fix}"
    dash.controls["guest_fallback"].value = "never"
    yield "guest_fallback never"


def test_a_redraw_from_the_background_shows_exactly_what_a_whole_redraw_shows(dash):
    """Blitting is right only if every change outside ``changing()`` marks the figure stale."""
    for change in changes(dash):
        for name, pane in dash.panes.items():
            if pane.visible:
                quick = decode(pane.widget.value)
                pane.background = None  # the next draw is a whole one
                pane.draw()
                assert np.array_equal(quick, pane.pixels()), (change, name)
    assert sum(pane.quick_draws for pane in dash.panes.values()) > len(dash.trace)


def test_a_redraw_with_a_text_shape_seen_before_reuses_its_layout(dash):
    for step in (7, 8):
        dash.slider.value = step
    runs = {name: pane.layout.runs for name, pane in dash.panes.items()}
    dash.slider.value = 7
    assert {name: pane.layout.runs for name, pane in dash.panes.items()} == runs
    assert min(runs[name] for name in ("timeline", "fifo", "frames")) >= 1  # the 2-level pane was never shown


def test_a_reused_layout_puts_every_view_where_a_fresh_constrained_layout_would(dash):
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    for change in changes(dash):  # steps seen again and new traces: their layouts come from the cache
        for name, pane in dash.panes.items():
            if pane.visible:
                reused = [ax.get_position(original=True).bounds for ax in pane.figure.axes]
                ConstrainedLayoutEngine().execute(pane.figure)
                fresh = [ax.get_position(original=True).bounds for ax in pane.figure.axes]
                assert np.allclose(reused, fresh, atol=1e-3), (change, name)
                pane.layout.execute(pane.figure)  # back to the frozen positions


def test_a_cached_text_has_the_pixels_a_fresh_rendering_has():
    """CachedTextRenderer pastes a text rendered once; it must look as Agg draws it directly."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def render(canvas_class, draws: int) -> np.ndarray:
        fig = Figure(figsize=(4, 2), dpi=100)
        canvas_class(fig)
        for i, (x, angle) in enumerate(((0.1, 0), (0.333, 30), (0.61, 90))):
            fig.text(x, 0.2 + 0.2 * i, f"vCPU{i} HEAD 5 \u2190 TAIL", rotation=angle, color="#D55E00")
        for _ in range(draws):  # the second draw pastes every text from the cache
            fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).astype(int)

    cached, direct = render(CachedTextCanvas, 2), render(FigureCanvasAgg, 1)
    # identical upright; a turned text's glyphs overlap, and blending them on their own first
    # rounds a few edge pixels by a few levels out of 255
    assert np.abs(cached - direct).max() <= 8 and np.mean(np.abs(cached - direct) > 2) < 0.002


def test_encode_png_round_trips_the_pixels():
    rgba = np.random.default_rng(0).integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    assert np.array_equal(decode(encode_png(rgba)), rgba)


def test_adler32_of_two_strings_joined_combines_from_their_own_checksums():
    import zlib

    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.bytes(int(rng.integers(0, 2000))), rng.bytes(int(rng.integers(0, 70_000)))
        assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_a_png_stream_recompresses_only_the_bands_that_changed_and_every_picture_decodes_exactly():
    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, size=(5 * PngStream.BAND_ROWS, 40, 4), dtype=np.uint8)
    stream = PngStream()
    assert np.array_equal(decode(stream.encode(picture)), picture) and stream.compressed == 5
    picture = picture.copy()
    picture[PngStream.BAND_ROWS + 3, 7] = (1, 2, 3, 255)  # one pixel of the second band
    assert np.array_equal(decode(stream.encode(picture)), picture) and stream.compressed == 6
    smaller = picture[:50]
    assert np.array_equal(decode(stream.encode(smaller)), smaller)  # a new size starts afresh


# --- the playgrounds -----------------------------------------------------------------------------


def test_fifo_masking_then_sending_sets_p_and_m_and_queues_nothing(fifo):
    press(fifo, "mask", "send")
    assert word(fifo, "console") & (P | M | L) == P | M
    assert 2 not in queued(fifo)
    assert "EVTCHNOP_send -> 0" in text(fifo.controls["status"])


def test_fifo_unmask_of_a_pending_event_asks_xen_which_links_it(fifo):
    press(fifo, "mask", "send", "unmask")
    assert [(c.op, c.rc) for c in fifo.calls] == [("unmask", 0)]
    assert "EVTCHNOP_unmask -> 0" in text(fifo.controls["status"])
    assert queued(fifo) == [fifo.kernel.channels["console"].port]


def test_fifo_consume_empties_the_queue(fifo):
    press(fifo, "send")
    assert queued(fifo)
    press(fifo, "consume")
    assert queued(fifo) == [] and fifo.kernel.received["console"] == 1


def test_fifo_set_priority_queues_the_next_event_at_that_priority(fifo):
    fifo.controls["priority"].value = 3
    press(fifo, "set_priority", "send")
    assert [(q.priority, q.ports) for q in fifo.snapshot.queues if q.ports] == [(3, (2,))]


def test_fifo_bind_vcpu_of_a_per_vcpu_timer_shows_xen_s_einval(fifo):
    fifo.controls["port"].value = "timer0"
    fifo.controls["vcpu"].value = 1
    press(fifo, "bind_vcpu")
    assert fifo.calls[-1].rc < 0 and "-EINVAL" in text(fifo.controls["status"])


def test_fifo_actions_change_the_queue_view_pixels(fifo):
    before = pixels(fifo)
    press(fifo, "send")
    assert differ(before, pixels(fifo))


def test_two_level_send_to_a_masked_port_sets_pending_and_unmask_raises_the_upcall():
    d = widgets.two_level_playground()
    d.controls["port"].value = "xenstore"
    before = pixels(d)
    press(d, "mask", "send")
    port = next(p for p in d.snapshot.ports if p.label == "xenstore")
    assert (port.pending, port.masked, d.snapshot.vcpus[0].upcall_pending) == (True, True, 0)
    press(d, "unmask")
    assert d.snapshot.vcpus[0].upcall_pending == 1
    assert differ(before, pixels(d))


def test_a_playground_has_no_trace_slider_or_banner(fifo):
    assert (fifo.trace, fifo.slider, fifo.banner) == (None, None, None)



# --- under ipympl (%matplotlib widget) ----------------------------------------------------------

IPYMPL_SCRIPT = """
from evtsim import widgets
dash = widgets.hibernation_dashboard()
assert all(type(pane.widget).__name__ == "Canvas" and pane.widget is pane.figure.canvas for pane in dash.panes.values())
drawn = []
for name, pane in dash.panes.items():
    pane.figure.canvas.draw_idle = lambda name=name: drawn.append(name)
dash.controls["disable_fifo"].value = True
assert dash.trace.outcome.verdict == "works", dash.trace.outcome.verdict
assert sorted(drawn) == ["frames", "timeline", "two_level"], drawn  # disable_fifo: Xen stays 2-level
assert not any(artist.get_animated() for view in dash.views.values() for artist in view.changing())
print("ok")
"""


def test_under_ipympl_each_pane_is_its_canvas_and_a_change_asks_ipympl_to_draw_the_touched_ones():
    """ipympl works in plain Python (ecosystem.md section 2): its canvases are the widgets, and
    ipympl draws them whole, so nothing is made animated for blitting."""
    import os
    import subprocess
    import sys

    pytest.importorskip("ipympl")
    env = {**os.environ, "MPLBACKEND": "module://ipympl.backend_nbagg"}
    done = subprocess.run([sys.executable, "-c", IPYMPL_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
