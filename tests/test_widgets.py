"""The dashboards, driven without a kernel: set ``.value`` or click, observers run at once.

As in ecosystem.md section 2: Agg (set here, not through MPLBACKEND, which would leak into
notebook kernels), then the widgets' state, the artists and the pixels are checked.
"""

from __future__ import annotations

import html

import pytest

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("ipywidgets")
matplotlib.use("Agg")

import numpy as np  # noqa: E402

from evtsim import plots, widgets  # noqa: E402
from evtsim.fifo import L, M, P  # noqa: E402

DPI = 30  # enough pixels to see a change, few enough to keep the file fast


def pixels(dash) -> np.ndarray:
    """The dashboard's figure, rendered by Agg."""
    dash.figure.set_dpi(DPI)
    dash.figure.canvas.draw()
    return np.asarray(dash.figure.canvas.buffer_rgba()).copy()


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
    assert not np.array_equal(before, pixels(dash))


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


def test_the_fix_description_is_shown_beside_the_fix_dropdown(dash):
    dash.controls["fix"].value = "xsm"
    assert text(dash.controls["fix_description"]) == widgets.FIXES["xsm"]


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

    monkeypatch.setattr(widgets, "run_scenario", refuse)
    before = dash.trace
    dash.controls["old_xen"].value = "4.4"  # the observer must not raise
    assert "no such host" in dash.banner.value and "second line" not in dash.banner.value
    assert "\n" not in dash.banner.value
    assert dash.trace is before


def test_the_controls_offer_only_values_the_scenario_accepts(dash):
    c = dash.controls
    for xen in c["old_xen"].options:
        widgets.make_params("hibernation", old_xen=xen, xen=xen)
    assert set(c["fix"].options) == set(widgets.FIXES) and set(c["errno"].options) == set(widgets.ERRNOS)


def test_an_unknown_starting_parameter_is_refused_with_a_value_error():
    with pytest.raises(ValueError, match="no option"):
        widgets.hibernation_dashboard(colour="red")


# --- the hibernation dashboard: the slider only indexes -----------------------------------------


def test_moving_the_slider_highlights_that_step_without_rerunning(dash):
    before = dash.trace
    dash.slider.value = 2
    assert dash.trace is before
    assert {c.get_x() for c in dash.views["timeline"].cursors} == {1.5}


def test_moving_the_slider_changes_the_pixels(dash):
    before = pixels(dash)
    dash.slider.value = 5
    assert not np.array_equal(before, pixels(dash))


def test_the_domain_view_follows_xen_s_abi_at_each_step(dash):
    visible = {name: lambda n=name: dash.views[n].ax.get_visible() for name in ("fifo", "two_level", "none")}
    dash.slider.value = 1  # guest@A, 2-level
    assert visible["two_level"]() and not visible["fifo"]()
    dash.slider.value = 3  # hibernated: no domain at all
    assert visible["none"]() and not dash.views["frames"].ax.get_visible()
    dash.slider.value = 8  # guest@B, Xen in FIFO
    assert visible["fifo"]() and dash.snapshot.name == "guest@B"


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


def test_a_bare_dashboard_displays_as_its_root_widget(dash):
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id


def test_the_figure_is_not_left_in_pyplot_for_the_inline_backend_to_show_again(dash):
    import matplotlib.pyplot as plt

    assert all(plt.figure(n) is not dash.figure for n in plt.get_fignums())


def test_with_the_inline_backend_each_change_shows_the_figure_again_in_the_output(dash, monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "get_ipython", lambda: object())  # as if inside a kernel
    monkeypatch.setattr(widgets, "display", shown.append)
    dash.slider.value = 2
    assert shown == [dash.figure] and dash.holder in dash.widget.children


def test_a_redraw_with_a_text_shape_seen_before_reuses_its_layout(dash):
    for step in (7, 8):
        dash.slider.value = step
        pixels(dash)
    runs = dash.layout.runs
    dash.slider.value = 7
    pixels(dash)
    assert dash.layout.runs == runs >= 1


def test_a_reused_layout_puts_every_view_where_a_fresh_constrained_layout_would(dash):
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    for step in (*range(len(dash.trace)), 1, 5):  # 1 and 5 again: their layouts now come from the cache
        dash.slider.value = step
        pixels(dash)
    reused = [ax.get_position().bounds for ax in dash.figure.axes]
    ConstrainedLayoutEngine().execute(dash.figure)
    assert np.allclose(reused, [ax.get_position().bounds for ax in dash.figure.axes])


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
    assert not np.array_equal(before, pixels(fifo))


def test_two_level_send_to_a_masked_port_sets_pending_and_unmask_raises_the_upcall():
    d = widgets.two_level_playground()
    d.controls["port"].value = "xenstore"
    before = pixels(d)
    press(d, "mask", "send")
    port = next(p for p in d.snapshot.ports if p.label == "xenstore")
    assert (port.pending, port.masked, d.snapshot.vcpus[0].upcall_pending) == (True, True, 0)
    press(d, "unmask")
    assert d.snapshot.vcpus[0].upcall_pending == 1
    assert not np.array_equal(before, pixels(d))


def test_a_playground_has_no_trace_slider_or_banner(fifo):
    assert (fifo.trace, fifo.slider, fifo.banner) == (None, None, None)

