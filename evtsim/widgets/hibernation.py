"""The hibernation dashboard: the scenario's parameters, a step slider, the outcome, three views.

Changing a parameter re-runs the scenario (a few milliseconds); moving the slider only indexes
the trace. Each view is a pane of its own: the timeline, the domain's FIFO queues or its 2-level
bitmaps (whichever ABI Xen runs the domain in is shown, the other hidden) and its frame map. A
step that leaves a view's data alone leaves its pane alone, and switching ABI only swaps which
pane is shown, so neither view has to be drawn again from scratch.
"""

from __future__ import annotations

import html

import ipywidgets as W

from .. import plots
from ..guest.kernel import FallbackPolicy
from ..scenarios import ERRNOS, FIXES, HibernationParams, make_params, run_scenario
from ..snapshot import DomainSnapshot
from ..trace import Record, summarise_calls
from ..versions import XEN_VERSIONS, xen_version
from .canvas import Pane
from .controls import button, checkbox, dropdown, row
from .dashboard import Dashboard

#: Xen rows a host can run; the patch and build variants come with the fix that needs them.
RELEASES = tuple(name for name in XEN_VERSIONS if name not in ("patch-v4", "patch-v5", "fifo-off", "qemu"))
#: The fixes whose refusal returns the chosen errno (hibernation._create_on_new_host).
ERRNO_FIXES = ("disable-fifo", "xsm")
PLAY_INTERVAL_MS = 800
DOMAIN_VIEWS = ("fifo", "two_level")
NO_DOMAIN = "no domain exists at this step (see the notes above)"


def _domain_of(record: Record) -> DomainSnapshot | None:
    """The domain a record is about: the newest one it shows (guest@B once it exists)."""
    return record.domains[-1] if record.domains else None


def _host_override(fix: str) -> str | None:
    """The Xen row ``fix`` runs the new host on whatever host is chosen, if any."""
    host = HibernationParams(xen="master", fix=fix).new_host_version
    return None if host == "master" else host


def _hibernation_controls(p: HibernationParams) -> dict[str, W.Widget]:
    """Every parameter control, set to ``p``; consistency between them is the dashboard's job."""
    hosts = list(RELEASES) + [v for v in (p.old_xen, p.xen) if v not in RELEASES]
    return {
        "old_xen": dropdown("old host Xen", hosts, p.old_xen, "where the guest boots and hibernates"),
        "xen": dropdown("new host Xen", hosts, p.xen, "where the guest resumes"),
        "guest_fallback": dropdown("guest falls back", [f.value for f in FallbackPolicy], p.guest_fallback,
                                   "which failed init_control makes the kernel use 2-level", "250px"),
        "fix": dropdown("fix", list(FIXES), p.fix, FIXES[p.fix], "180px"),
        "fix_description": W.HTML(html.escape(FIXES[p.fix])),
        "disable_fifo": W.ToggleButton(p.fix == "disable-fifo", description="disable_fifo", icon="ban",
                                       tooltip="XEN_DOMCTL_CDF_disable_fifo ([PATCH v4]): on = fix disable-fifo"),
        "errno": dropdown("errno", list(ERRNOS), p.errno, width="170px"),
        "fifo_events": checkbox(p.fix != "fifo-events-0", "xen.fifo_events",
                                "off = fix fifo-events-0: the boot kernel never tries FIFO"),
        "reset": checkbox(p.fix == "reset", "boot kernel issues EVTCHNOP_reset",
                          "fix reset: back to 2-level, but every channel is closed"),
    }


def _step_controls(last: int, step: int) -> dict[str, W.Widget]:
    slider = W.IntSlider(step, min=0, max=last, description="step", continuous_update=False,
                         layout=W.Layout(width="420px"))
    play = W.Play(step, min=0, max=last, interval=PLAY_INTERVAL_MS, tooltip="play the steps")
    W.link((play, "value"), (slider, "value"))
    W.link((slider, "max"), (play, "max"))
    return {"play": play, "previous": button("previous", "one step back", "step-backward", "110px"), "step": slider,
            "next": button("next", "one step on", "step-forward", "110px"),
            # a fixed height, so the figures below do not jump as the number of notes changes
            "notes": W.HTML(layout=W.Layout(height="8em", overflow="auto"))}


def _heights(vcpus: int) -> dict[str, float]:
    """Inches for each pane: the timeline, the domain views (FIFO grows with vCPUs), the frame map.
    Both domain views are as high, so the page does not jump when one replaces the other."""
    domain = max(7.5, 1.8 + 5.2 * ((vcpus + 1) // 2))
    return {"timeline": 5.5, "fifo": domain, "two_level": domain, "frames": 4.5}


class HibernationDashboard(Dashboard):
    """Parameters of the hibernation scenario on top, a step slider, the outcome, the views."""

    def __init__(self, params: HibernationParams, seed: int = 0) -> None:
        self.fixed = {"vcpus": params.vcpus, "rounds": params.rounds}  # not controls
        self.seed = seed
        trace = run_scenario("hibernation", seed, **vars(params))
        super().__init__({name: Pane(plots.WIDTH, height) for name, height in _heights(params.vcpus).items()})
        self.trace = trace
        self.controls = {**_hibernation_controls(params), **_step_controls(len(trace) - 1, len(trace) - 1)}
        self.slider = self.controls["step"]
        self.banner = W.HTML(layout=W.Layout(padding="2px 8px"))
        self.no_domain = W.HTML(f"<i>{NO_DOMAIN}</i>", layout=W.Layout(padding="2em 8px"))
        self.views = self._draw()
        self.widget = self._assemble()
        self._wire()
        self._enable_for(params.fix)
        self.show_outcome()
        self.show(self.slider.value)
        # the hidden panes get a picture too (of the first domain): no empty image in the page,
        # and their layout and texts are ready when a step first shows them
        self.refresh(*(name for name, pane in self.panes.items() if not pane.visible))

    def _draw(self) -> dict[str, object]:
        """Every view, once, each in its own pane."""
        first = next(d for r in self.trace.records for d in r.domains)
        draw = {"timeline": lambda ax: plots.draw_timeline(self.trace, ax, len(self.trace) - 1),
                "fifo": lambda ax: plots.draw_fifo_queues(first, ax),
                "two_level": lambda ax: plots.draw_two_level(first, ax),
                "frames": lambda ax: plots.draw_frame_map(first, ax)}
        views = {name: draw[name](pane.figure.add_subplot()) for name, pane in self.panes.items()}
        for name, pane in self.panes.items():
            pane.changing = views[name].changing
        return views

    def _assemble(self) -> W.VBox:
        c = self.controls
        return W.VBox([row(c["old_xen"], c["xen"], c["guest_fallback"]), row(c["fix"], c["fix_description"]),
                       row(c["disable_fifo"], c["errno"], c["fifo_events"], c["reset"]), self.banner,
                       row(c["play"], c["previous"], c["step"], c["next"]), c["notes"], self.panes["timeline"].widget,
                       self.no_domain, *(self.panes[name].widget for name in (*DOMAIN_VIEWS, "frames"))])

    def _wire(self) -> None:
        for name in ("old_xen", "xen", "errno", "guest_fallback"):
            self.observe(name, lambda _: self.rerun())
        self.observe("fix", self.choose_fix)
        self.observe("disable_fifo", lambda on: self.choose_fix(self._fix_for("disable-fifo", on)))
        self.observe("fifo_events", lambda on: self.choose_fix(self._fix_for("fifo-events-0", not on)))
        self.observe("reset", lambda on: self.choose_fix(self._fix_for("reset", on)))
        self.observe("step", self.show)
        self.controls["previous"].on_click(lambda _: self.step_by(-1))
        self.controls["next"].on_click(lambda _: self.step_by(1))

    def _fix_for(self, fix: str, on: bool) -> str:
        """The fix a shortcut control asks for: ``fix`` when on; when off, none if it was ``fix``."""
        current = self.controls["fix"].value
        return fix if on else ("none" if current == fix else current)

    def params(self) -> dict[str, object]:
        """The scenario's parameters as the controls now say."""
        names = ("old_xen", "xen", "fix", "errno", "guest_fallback")
        return {**{name: self.controls[name].value for name in names}, **self.fixed}

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
        c["fix_description"].value = html.escape(FIXES[fix])
        c["disable_fifo"].button_style = "warning" if fix == "disable-fifo" else ""
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
            trace = run_scenario("hibernation", self.seed, **self.params())
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
        self.show(self.slider.value)

    def _refuse(self, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        self.banner.style.background, self.banner.style.text_color = plots.GREY, "black"
        self.banner.value = html.escape(f"could not run these parameters ({message}); still showing the last run")

    def show(self, step: int) -> None:
        """Show record ``step`` of the current trace: only indexing, never a re-run."""
        record = self.trace[step]
        plots.update_timeline(self.views["timeline"], self.trace, step)
        changed = self._show_domain(_domain_of(record))
        self.controls["notes"].value = _notes_html(record)
        self.controls["previous"].disabled = step <= self.slider.min
        self.controls["next"].disabled = step >= self.slider.max
        self.refresh("timeline", *changed)

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


def _notes_html(record: Record) -> str:
    """The step, its hypercalls and what Xen and the kernels did, for the lines under the slider."""
    head = f"[{record.index}] {record.host or '-'} {record.step}"
    lines = [f"<b>{html.escape(head)}</b> &nbsp; <code>{html.escape(summarise_calls(record.calls))}</code>"]
    return "<br>".join(lines + [html.escape(note) for note in record.notes])


def hibernation_dashboard(**params: object) -> HibernationDashboard:
    """The hibernation scenario's dashboard; ``params`` (and ``seed``) start it, as in run_scenario.

    Controls (``dash.controls``): old_xen, xen, guest_fallback, fix (with fix_description),
    disable_fifo, errno, fifo_events, reset; play, previous, step, next; notes.
    Panes (``dash.panes``, one view each, in ``dash.views``): timeline, fifo, two_level, frames.
    """
    seed = int(params.pop("seed", 0))
    p = make_params("hibernation", **params)  # ValueError for an unknown name or value
    p = HibernationParams(**{**vars(p), "old_xen": xen_version(p.old_xen).name, "xen": xen_version(p.xen).name})
    return HibernationDashboard(p, seed)


__all__ = ["ERRNO_FIXES", "RELEASES", "HibernationDashboard", "hibernation_dashboard"]
