"""The hibernation dashboard: the scenario's parameters, a step slider, the outcome, three views.

Changing a parameter re-runs the scenario (a few milliseconds); moving the slider only indexes
the trace. One screen holds cause and effect (1366 x 768 in JupyterLab, file browser closed):
the controls, the outcome banner and the step slider on top, then side by side the domain's
ABI view (its FIFO queues, or its 2-level grid zoomed to the bound ports, whichever Xen runs it
in) and its frame map over the step's notes; the timeline of the whole run is below. Each view
is a pane of its own, drawn at the size shown; a step that leaves a view's data alone leaves
its pane alone, and the timeline's current step is a frame the browser draws over it.
"""

from __future__ import annotations

import html
from dataclasses import replace

import ipywidgets as W

from .. import plots
from ..guest.kernel import FallbackPolicy
from ..plots.style import ink_on
from ..scenarios import ERRNO_FIXES, ERRNOS, FIXES, HibernationParams, make_params, run_scenario
from ..snapshot import DomainSnapshot
from ..trace import Record, summarise_calls
from ..versions import XEN_VERSIONS, xen_version
from . import stills
from .canvas import Pane
from .controls import button, checkbox, dropdown, row
from .dashboard import Dashboard
from .look import NOTEBOOK, PRESENTER, Look
from .step_frame import StepFrame

#: Xen rows a host can run; the patch and build variants come with the fix that needs them.
RELEASES = tuple(name for name in XEN_VERSIONS if name not in ("patch-v4", "patch-v5", "fifo-off", "qemu"))
PLAY_INTERVAL_MS = 800
DOMAIN_VIEWS = ("fifo", "two_level")
NO_DOMAIN = "no domain exists at this step (see the notes)"
#: The notebook layout, in CSS pixels: the ABI view, the column beside it, the timeline below.
ABI_W, ABI_H, SIDE_W, FRAMES_H, GAP, TIMELINE_H = 600, 480, 570, 300, 8, 330
#: The ABI view grows with vCPUs beyond two (the FIFO view has a row per queue in use).
ABI_H_PER_VCPU = 80
#: The colour of a shortcut toggle that is on: a fix is applied, which says nothing of the
#: outcome, so none of the verdicts' colours (ipywidgets' warning and danger are their orange and
#: red, success and info their green): ipywidgets' "primary" blue.
ON_STYLE = "primary"


def _domain_of(record: Record) -> DomainSnapshot | None:
    """The domain a record is about: the newest one it shows (guest@B once it exists)."""
    return record.domains[-1] if record.domains else None


def _host_override(fix: str) -> str | None:
    """The Xen row ``fix`` runs the new host on whatever host is chosen, if any."""
    host = HibernationParams(xen="master", fix=fix).new_host_version
    return None if host == "master" else host


def _hibernation_controls(p: HibernationParams, look: Look) -> dict[str, W.Widget]:
    """Every parameter control, set to ``p``; consistency between them is the dashboard's job."""
    hosts = list(RELEASES) + [v for v in (p.old_xen, p.xen) if v not in RELEASES]
    px = look.px
    return {
        "old_xen": dropdown("old host Xen", hosts, p.old_xen, "where the guest boots and hibernates", px(185)),
        "xen": dropdown("new host Xen", hosts, p.xen, "where the guest resumes", px(185)),
        "guest_fallback": dropdown("guest falls back", [f.value for f in FallbackPolicy], p.guest_fallback,
                                   "which failed init_control makes the kernel use 2-level", px(240)),
        "fix": dropdown("fix", list(FIXES), p.fix, FIXES[p.fix], px(175)),
        "reset_dashboard": button("reset dashboard", "every control back to how this dashboard started, last step",
                                  "undo", px(150)),
        "disable_fifo": W.ToggleButton(p.fix == "disable-fifo", description="disable_fifo", icon="ban",
                                       tooltip="XEN_DOMCTL_CDF_disable_fifo ([PATCH v4]): on = fix disable-fifo",
                                       layout=W.Layout(width=px(130))),
        "errno": dropdown("errno", list(ERRNOS), p.errno, width=px(165)),
        "fifo_events": checkbox(p.fix != "fifo-events-0", "xen.fifo_events",
                                "off = fix fifo-events-0: the boot kernel never tries FIFO"),
        "reset": checkbox(p.fix == "reset", "boot kernel issues EVTCHNOP_reset",
                          "fix reset: back to 2-level, but every channel is closed"),
    }


def _step_controls(last: int, step: int, look: Look) -> dict[str, W.Widget]:
    slider = W.IntSlider(step, min=0, max=last, description="step", continuous_update=False,
                         layout=W.Layout(width=look.px(400)))
    play = W.Play(step, min=0, max=last, interval=PLAY_INTERVAL_MS, show_repeat=False, tooltip="play the steps")
    W.link((play, "value"), (slider, "value"))
    W.link((slider, "max"), (play, "max"))
    notes = W.HTML(layout=W.Layout(width=look.px(SIDE_W), height=look.px(ABI_H - FRAMES_H - GAP),
                                   overflow="auto", border="1px solid #DDDDDD"))
    notes.add_class("evtsim-notes")
    return {"play": play, "previous": button("previous", "one step back", "step-backward", look.px(105)),
            "step": slider, "next": button("next", "one step on", "step-forward", look.px(90)),
            "all_ports": W.ToggleButton(False, description="all ports", icon="expand",
                                        tooltip="the whole 2-level grid, not only the corner with the bound ports",
                                        layout=W.Layout(width=look.px(110))),
            "notes": notes}


def _sizes(vcpus: int) -> dict[str, tuple[int, int]]:
    """Each pane's size in CSS pixels of the notebook layout; both domain views are as large,
    so nothing moves when one replaces the other."""
    abi = (ABI_W, ABI_H + ABI_H_PER_VCPU * max(0, vcpus - 2))
    return {"fifo": abi, "two_level": abi, "frames": (SIDE_W, FRAMES_H), "timeline": (ABI_W + GAP + SIDE_W, TIMELINE_H)}


class HibernationDashboard(Dashboard):
    """Parameters of the hibernation scenario on top, a step slider, the outcome, the views."""

    def __init__(self, params: HibernationParams, look: Look = NOTEBOOK) -> None:
        self.fixed = {"vcpus": params.vcpus, "rounds": params.rounds}  # not controls
        self.start = params
        trace = run_scenario("hibernation", **vars(params))
        sizes = _sizes(params.vcpus)
        super().__init__({name: Pane(*sizes[name], look) for name in ("timeline", "fifo", "two_level", "frames")},
                         look)
        self.trace = trace
        self.controls = {**_hibernation_controls(params, look), **_step_controls(len(trace) - 1, len(trace) - 1, look)}
        self.slider = self.controls["step"]
        self.banner = W.HTML()
        self.no_domain = W.HTML(f"<i>{NO_DOMAIN}</i>", layout=W.Layout(width=look.px(ABI_W), padding="2em 8px"))
        self.frame = StepFrame(self.panes["timeline"])
        self.drawn_trace = None  # the trace whose timeline the timeline pane shows
        self.views = self._draw()
        self._size_frames()
        self.widget = self._assemble()
        self._wire()
        self._enable_for(params.fix)
        self.show_outcome()
        self._rehearse()
        self.show(self.slider.value)
        # the hidden panes get a picture too: no empty image in the page
        self.refresh(*(name for name, pane in self.panes.items() if not pane.visible))

    def _rehearse(self) -> None:
        """Draw the views of every step's domain once, sending nothing: each text shape is laid
        out and each text rendered now, so the learner's first pass through the steps is as
        quick as the next ones (about a fifth of a second more before the dashboard appears).
        The views then show the last domain drawn, so the next ``show`` draws its own. Not
        under ipympl, whose canvases draw whole anyway."""
        if self.panes["frames"].ipympl:
            return
        for snapshot in dict.fromkeys(filter(None, map(_domain_of, self.trace))):
            name = "fifo" if snapshot.abi == "fifo" else "two_level"
            (plots.update_fifo_queues if name == "fifo" else plots.update_two_level)(self.views[name], snapshot)
            plots.update_frame_map(self.views["frames"], snapshot)
            self.panes[name].draw()
            self.panes["frames"].draw()
        self.snapshot = None

    def redraw(self, names: list[str]) -> None:
        """After a new pixel ratio: the steps rehearsed at it (texts are rendered per ratio),
        the current step's domain put back in the views, each pane drawn and sent once."""
        self._rehearse()
        self._show_domain(_domain_of(self.trace[self.slider.value]))
        self.refresh(*names)

    def _draw(self) -> dict[str, object]:
        """Every view, once, each in its own pane."""
        first = next(d for r in self.trace.records for d in r.domains)
        draw = {"timeline": lambda ax: plots.draw_timeline(self.trace, ax),
                "fifo": lambda ax: plots.draw_fifo_queues(first, ax, compact=True),
                "two_level": lambda ax: plots.draw_two_level(first, ax, zoom=True),
                "frames": lambda ax: plots.draw_frame_map(first, ax)}
        views = {name: draw[name](pane.figure.add_subplot()) for name, pane in self.panes.items()}
        for name, pane in self.panes.items():
            pane.changing = views[name].changing
        return views

    def _assemble(self) -> W.VBox:
        c, look, panes = self.controls, self.look, self.panes
        abi_h = panes["fifo"].figure.get_figheight() * 96
        abi = W.Box([panes["fifo"].widget, panes["two_level"].widget, self.no_domain],
                    layout=W.Layout(width=look.px(ABI_W), height=look.px(abi_h), flex="0 0 auto"))
        frames = W.Box([panes["frames"].widget], layout=W.Layout(height=look.px(FRAMES_H)))
        side = W.VBox([frames, c["notes"]], layout=W.Layout(width=look.px(SIDE_W), flex="0 0 auto"))
        timeline = self.frame.widget if not panes["timeline"].ipympl else panes["timeline"].widget
        parts = {"controls": row(c["old_xen"], c["xen"], c["guest_fallback"], c["fix"], c["reset_dashboard"]),
                 "shortcuts": row(c["disable_fifo"], c["errno"], c["fifo_events"], c["reset"]),
                 "banner": self.banner, "steps": row(c["play"], c["previous"], c["step"], c["next"], c["all_ports"]),
                 "abi": abi, "frames": frames, "timeline": timeline}
        for name, part in parts.items():  # named for the browser tests and benchmark
            part.add_class(f"evtsim-{name}")
        views = W.HBox([abi, side], layout=W.Layout(grid_gap=look.px(GAP), align_items="flex-start"))
        return self.root([parts["controls"], parts["shortcuts"], self.banner, parts["steps"], views, timeline],
                         width=look.px(ABI_W + GAP + SIDE_W + 8))

    def _wire(self) -> None:
        for name in ("old_xen", "xen", "errno", "guest_fallback"):
            self.observe(name, lambda _: self.rerun())
        self.observe("fix", self.choose_fix)
        self.observe("disable_fifo", lambda on: self.choose_fix(self._fix_for("disable-fifo", on)))
        self.observe("fifo_events", lambda on: self.choose_fix(self._fix_for("fifo-events-0", not on)))
        self.observe("reset", lambda on: self.choose_fix(self._fix_for("reset", on)))
        self.observe("step", self.show)
        self.observe("all_ports", self.show_all_ports)
        self.controls["previous"].on_click(lambda _: self.step_by(-1))
        self.controls["next"].on_click(lambda _: self.step_by(1))
        self.controls["reset_dashboard"].on_click(lambda _: self.reset())

    def _fix_for(self, fix: str, on: bool) -> str:
        """The fix a shortcut control asks for: ``fix`` when on; when off, none if it was ``fix``."""
        current = self.controls["fix"].value
        return fix if on else ("none" if current == fix else current)

    def params(self) -> dict[str, object]:
        """The scenario's parameters as the controls now say."""
        names = ("old_xen", "xen", "fix", "errno", "guest_fallback")
        return {**{name: self.controls[name].value for name in names}, **self.fixed}

    def reset(self) -> None:
        """Every control back to how the dashboard started; the last step of that run."""
        c, p = self.controls, self.start
        with self.quiet():
            for name in ("old_xen", "xen", "errno", "guest_fallback"):
                c[name].value = getattr(p, name)
            c["all_ports"].value = False
            self.slider.value = self.slider.max  # a re-run keeps a slider at its end at the end
        self.views["two_level"].zoom = True
        self.choose_fix(p.fix)

    def choose_fix(self, fix: str) -> None:
        """Set every control that encodes the fix to agree with ``fix``, then run once."""
        c = self.controls
        with self.quiet():
            c["fix"].value = fix
            c["disable_fifo"].value = fix == "disable-fifo"
            c["fifo_events"].value = fix != "fifo-events-0"
            c["reset"].value = fix == "reset"
        self._enable_for(fix)
        self.rerun()

    def _enable_for(self, fix: str) -> None:
        """Disable the controls ``fix`` ignores, saying why; describe the fix."""
        c = self.controls
        c["fix"].tooltip = FIXES[fix]
        c["disable_fifo"].button_style = ON_STYLE if fix == "disable-fifo" else ""
        c["disable_fifo"].icon = "check" if fix == "disable-fifo" else "ban"
        c["errno"].disabled = fix not in ERRNO_FIXES
        c["errno"].tooltip = (f"what the refused FIFO op returns under fix {fix}" if fix in ERRNO_FIXES else
                              f"fix {fix} ignores the errno: only {' and '.join(ERRNO_FIXES)} use it")
        host = _host_override(fix)
        c["xen"].disabled = host is not None
        c["xen"].tooltip = (f"fix {fix} runs the new host on the {host} row: this choice is ignored" if host
                            else "where the guest resumes")

    def rerun(self) -> None:
        """Run the scenario with the controls' parameters; the slider keeps its step (or the end)."""
        try:
            trace = run_scenario("hibernation", **self.params())
        except Exception as error:  # a widget callback: say it in one line, never a traceback
            self._refuse(error)
            return
        at_end = self.slider.value == self.slider.max
        self.trace = trace
        with self.quiet():
            self.slider.max = len(trace) - 1
            if at_end:
                self.slider.value = self.slider.max
        self.show_outcome()
        self._size_frames()
        self.show(self.slider.value)

    def _size_frames(self) -> None:
        """Room in the frame map for the most rows any step of the trace needs, and for as many
        mapping lines as Xen can map frames (shared_info, a control block per vCPU, an event-array
        page or two): it neither stretches nor jumps from step to step or run to run."""
        frames = self.views["frames"]
        frames.rows_shown = max(plots.frames.frame_rows(d) for r in self.trace for d in r.domains)
        frames.lines_shown = self.fixed["vcpus"] + 3

    def _refuse(self, error: Exception) -> None:
        message = (str(error) or type(error).__name__).splitlines()[0]  # the reason, not Python's name for it
        self.banner.style.background, self.banner.style.text_color = plots.GREY, ink_on(plots.GREY)
        self.banner.value = (f"<b>could not run these parameters: {html.escape(message)}</b><br>"
                             f"still showing the last run: {html.escape(self.trace.outcome.summary)}")

    def show_outcome(self) -> None:
        """The outcome, and under it what the fix run was (always two lines: nothing below moves)."""
        colour = plots.VERDICT_COLOURS[self.trace.outcome.verdict]
        self.banner.style.background, self.banner.style.text_color = colour, ink_on(colour)
        fix = dict(self.trace.params)["fix"]
        said = FIXES[fix] if fix == "none" else f"fix {fix}: {FIXES[fix]}"  # "no fix: ..." says it already
        self.banner.value = f"<b>{html.escape(self.trace.outcome.summary)}</b><br>{html.escape(said)}"

    def show_all_ports(self, on: bool) -> None:
        """The whole 2-level grid (on) or its corner with the bound ports (off)."""
        self.views["two_level"].zoom = not on
        if self.snapshot is not None:
            plots.update_two_level(self.views["two_level"], self.snapshot)
            if self.panes["two_level"].visible:
                self.refresh("two_level")

    def show(self, step: int) -> None:
        """Show record ``step`` of the current trace: only indexing, never a re-run."""
        record = self.trace[step]
        timeline = self.views["timeline"]
        new_trace, self.drawn_trace = self.drawn_trace is not self.trace, self.trace
        changed = self._show_domain(_domain_of(record))
        self.controls["notes"].value = _notes_html(record)
        self.controls["previous"].disabled = step <= self.slider.min
        self.controls["next"].disabled = step >= self.slider.max
        if self.panes["timeline"].ipympl:  # its canvas draws the figure whole: the cursor is in it
            plots.update_timeline(timeline, self.trace, step)
            self.refresh("timeline", *changed)
            return
        plots.update_timeline(timeline, self.trace)
        self.refresh(*(("timeline",) if new_trace else ()), *changed)
        self.frame.show(timeline, step)

    def _show_domain(self, snapshot: DomainSnapshot | None) -> tuple[str, ...]:
        """Show the FIFO queues or the 2-level grid (by Xen's ABI) and the frame map, or the note
        that there is no domain; the panes whose pictures must change."""
        if snapshot == self.snapshot and self.snapshot is not None:
            return ()
        self.snapshot = snapshot
        shown = () if snapshot is None else ("fifo" if snapshot.abi == "fifo" else "two_level", "frames")
        for name in (*DOMAIN_VIEWS, "frames"):
            self.panes[name].visible = name in shown
        self.no_domain.layout.display = "none" if shown else ""
        if snapshot is not None:
            (plots.update_fifo_queues if shown[0] == "fifo" else plots.update_two_level)(self.views[shown[0]], snapshot)
            plots.update_frame_map(self.views["frames"], snapshot)
        return shown

    def describe(self) -> str:
        return (f"hibernation dashboard, step {self.slider.value} of {self.slider.max}: "
                f"{self.trace.outcome.summary} (live widgets: run the notebook to use them)")

    def picture(self) -> stills.Pixels:
        """The banner, the domain's views side by side, and the timeline with its step framed."""
        p = self.panes
        width = self.look.size(ABI_W + GAP + SIDE_W)
        colour = plots.VERDICT_COLOURS[self.trace.outcome.verdict]
        banner = stills.text_strip(self.trace.outcome.summary, width, colour, ink_on(colour), 10 * self.look.scale)
        domain = [p[name].still() for name in (*DOMAIN_VIEWS, "frames") if p[name].visible]
        if not domain:
            domain = [stills.text_strip(NO_DOMAIN, width, "white", "black", 10 * self.look.scale)]
        timeline = p["timeline"].still()
        if not p["timeline"].ipympl:
            timeline = self.frame.draw_on(timeline, max(1, round(2 * self.look.scale)))
        return stills.stacked([banner, stills.side_by_side(domain), timeline])


def _notes_html(record: Record) -> str:
    """The step, its hypercalls and what Xen and the kernels did, for the box beside the views:
    every line whole (wrapped, never cut), a kernel panic in bold."""
    head = f"[{record.index}] host {record.host or '-'}: {record.step}"
    calls = summarise_calls(record.calls) if record.calls else "no hypercalls"
    lines = [f"<b>{html.escape(head)}</b><br><code>{html.escape(calls)}</code>"]
    for note in record.notes:
        panic = "panic" in note or "BUG" in note
        lines.append(f'<span class="evtsim-panic">{html.escape(note)}</span>' if panic else html.escape(note))
    return "<br>".join(lines)


def hibernation_dashboard(**params: object) -> HibernationDashboard:
    """The hibernation scenario's dashboard; ``params`` start it, as in run_scenario;
    ``presenter=True`` lays it out half as large again, for Voila on a 1920 x 1080 projector (a
    number is the scale itself: ``presenter=1.2`` on a smaller one). The pictures have as many
    device pixels per CSS pixel as the browser's screen (2 on a high-DPI one, 1 on most others:
    a quarter of the pixels to draw and send), once the browser says (2 until then); a
    ``pixel_ratio`` fixes it instead.

    Controls (``dash.controls``): old_xen, xen, guest_fallback, fix, reset_dashboard,
    disable_fifo, errno, fifo_events, reset (the EVTCHNOP_reset fix); play, previous, step, next,
    all_ports; notes. ``dash.reset()`` (the reset_dashboard button) puts
    every control back as the dashboard started. Panes (``dash.panes``, one view each, in
    ``dash.views``): timeline, fifo, two_level, frames.
    """
    presenter = params.pop("presenter", False)
    look = NOTEBOOK if not presenter else PRESENTER if presenter is True else replace(PRESENTER, scale=float(presenter))
    if "pixel_ratio" in params:  # the caller's choice, kept whatever the screen
        look = replace(look, pixel_ratio=float(params.pop("pixel_ratio")), follow_screen=False)
    p = make_params("hibernation", **params)  # ValueError for an unknown name or value
    p = HibernationParams(**{**vars(p), "old_xen": xen_version(p.old_xen).name, "xen": xen_version(p.xen).name})
    return HibernationDashboard(p, look)


__all__ = ["ERRNO_FIXES", "RELEASES", "HibernationDashboard", "hibernation_dashboard"]
