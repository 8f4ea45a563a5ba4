"""Dashboards: ipywidgets controls that choose what to run or show, and views updated in place.

Presentation only (architecture.md, "Boundaries"): a dashboard runs scenarios through
``run_scenario`` and shows their frozen records with the ``plots.draw_X`` / ``update_X`` pairs;
moving the step slider only indexes the trace. The playgrounds act on one live guest, as a
learner's own kernel code would, and show a fresh snapshot after each action.

One figure per dashboard. Under ``%matplotlib widget`` (ipympl) its canvas is itself a widget
and is redrawn with ``draw_idle()``; under any other backend (``%matplotlib inline``, Agg in the
tests) the figure has an Agg canvas and an ``ipywidgets.Output`` shows it again after each
update; that figure is taken out of pyplot's list, so it is never shown twice (ecosystem.md 2).

Laying out a figure (constrained layout) costs about half a draw, so ``FrozenLayout`` runs it at
the first draw of each *shape* of the texts around a view (line counts, label lengths) and
otherwise reuses the positions it found.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ipywidgets as W
from IPython import get_ipython
from IPython.display import display
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine, LayoutEngine

from . import plots
from .abi import (
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_set_priority,
    EvtchnBindVcpu,
    EvtchnSetPriority,
    errno_name,
)
from .fifo import M
from .guest.kernel import FallbackPolicy, Kernel, KernelConfig
from .scenario import Shown, World
from .scenarios import ERRNOS, FIXES, HibernationParams, make_params, run_scenario
from .scenarios.common import connect_vbd, consume, send
from .snapshot import DomainSnapshot, snapshot_domain
from .toolstack import xl_create
from .trace import Call, Record, Trace, summarise_calls
from .versions import XEN_VERSIONS, xen_version

#: Xen rows a host can run; the patch and build variants come with the fix that needs them.
RELEASES = tuple(name for name in XEN_VERSIONS if name not in ("patch-v4", "patch-v5", "fifo-off", "qemu"))
#: The fixes whose refusal returns the chosen errno (hibernation._create_on_new_host).
ERRNO_FIXES = ("disable-fifo", "xsm")
WIDE = {"description_width": "initial"}
PLAY_INTERVAL_MS = 800


# ---------------------------------------------------------------------------------------------
# The figure, its layout, and the dashboard


def new_figure(width: float, height: float) -> tuple[Figure, W.Widget]:
    """A figure and the widget that shows it: ipympl's canvas itself, else an Output."""
    import matplotlib.pyplot as plt

    with plt.ioff():  # never auto-shown: the dashboard shows it
        fig = plt.figure(figsize=(width, height))
    if isinstance(fig.canvas, W.DOMWidget):
        fig.canvas.header_visible = False
        return fig, fig.canvas
    plt.close(fig)  # out of pyplot's list, so the inline backend does not show it again
    FigureCanvasAgg(fig)
    return fig, W.Output()


def _lines(text: str) -> tuple[int, int]:
    """A text's line count and longest line, in tens of characters."""
    lines = text.split("\n")
    return len(lines), max(map(len, lines)) // 10


def _shape(ax: Axes) -> tuple:
    """What decides the room around ``ax``: its titles, labels, tick labels, child axes."""
    if not ax.get_visible():
        return (False,)
    ticks = [max((len(t.get_text()) for t in labels), default=0)
             for labels in (ax.get_xticklabels(), ax.get_yticklabels())]
    return (True, _lines(ax.title.get_text()), round(ax.titleOffsetTrans.get_matrix()[1, 2]),
            _lines(ax.xaxis.label.get_text()), _lines(ax.yaxis.label.get_text()), *ticks,
            tuple(_shape(child) for child in ax.child_axes))


class FrozenLayout(LayoutEngine):
    """Constrained layout, run when a view's texts take a shape not seen before; otherwise the
    positions it found for that shape are reused.

    A layout engine, so every canvas (Agg, the inline backend's PNG, ipympl) runs it before
    drawing, and nothing is laid out while nobody draws. Each subfigure (one view each) is
    remembered on its own: constrained layout sizes subfigures by padding only, never by
    their content, so one view's positions do not depend on another's texts.
    """

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[tuple, list] = {}  # (subfigure, shape) -> its Axes' positions
        self.runs = 0  # how many times constrained layout actually ran

    def execute(self, fig: Figure) -> None:
        """Put every Axes where constrained layout puts it for the texts shown now."""
        groups = fig.subfigs or [fig]
        keys = [(i, tuple(_shape(ax) for ax in group.axes)) for i, group in enumerate(groups)]
        if any(key not in self.positions for key in keys):
            ConstrainedLayoutEngine().execute(fig)
            self.runs += 1
            for group, key in zip(groups, keys):
                self.positions[key] = [ax.get_position(original=True).frozen() for ax in group.axes]
            return
        for group, key in zip(groups, keys):
            for ax, position in zip(group.axes, self.positions[key]):
                ax.set_position(position)
                ax.set_in_layout(True)  # set_position takes an Axes out of layouts and tight bounding boxes


class Dashboard:
    """What a dashboard builder returns: display it, or reach into its parts.

    ``widget`` is the root container; ``controls`` names every control; ``figure`` holds the
    views (their artists in ``views``); ``banner`` and ``slider`` are None in the playgrounds,
    where ``trace`` is None too; ``snapshot`` is the domain the views show now.
    """

    def __init__(self, figure: Figure, holder: W.Widget) -> None:
        self.figure = figure
        self.holder = holder  # the canvas widget (ipympl) or the Output the figure is shown in
        self.layout = FrozenLayout()
        figure.set_layout_engine(self.layout)
        self.controls: dict[str, W.Widget] = {}
        self.views: dict[str, object] = {}
        self.widget: W.Box = W.VBox()
        self.banner: W.HTML | None = None
        self.slider: W.IntSlider | None = None
        self.trace: Trace | None = None
        self.snapshot: DomainSnapshot | None = None
        self._quiet_depth = 0

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Controls changed inside this block do not trigger their observers."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def redraw(self) -> None:
        """Show the changed artists: ipympl's draw_idle, else the figure again in the Output."""
        if isinstance(self.figure.canvas, W.DOMWidget):
            self.figure.canvas.draw_idle()
        elif get_ipython() is not None:  # without IPython nobody could see the Output
            self.holder.clear_output(wait=True)
            with self.holder:
                display(self.figure)

    def observe(self, name: str, handler: Callable[[object], None]) -> None:
        """Call ``handler(new value)`` when control ``name`` changes, unless quiet."""
        def on_change(change: dict) -> None:
            if not self._quiet_depth:
                handler(change["new"])
        self.controls[name].observe(on_change, "value")


# ---------------------------------------------------------------------------------------------
# The hibernation dashboard


def _domain_of(record: Record) -> DomainSnapshot | None:
    """The domain a record is about: the newest one it shows (guest@B once it exists)."""
    return record.domains[-1] if record.domains else None


def _host_override(fix: str) -> str | None:
    """The Xen row ``fix`` runs the new host on whatever host is chosen, if any."""
    row = HibernationParams(xen="master", fix=fix).new_host_version
    return None if row == "master" else row


def _dropdown(description: str, options: list, value: object, tooltip: str = "", width: str = "200px") -> W.Dropdown:
    return W.Dropdown(options=options, value=value, description=description, tooltip=tooltip, style=WIDE,
                      layout=W.Layout(width=width))


def _checkbox(value: bool, description: str, tooltip: str) -> W.Checkbox:
    return W.Checkbox(value, description=description, tooltip=tooltip, indent=False,
                      layout=W.Layout(width="auto", margin="0 12px"))


def _row(*children: W.Widget) -> W.HBox:
    """Controls side by side, wrapping onto a new line in a narrow notebook."""
    return W.HBox(children, layout=W.Layout(flex_flow="row wrap", align_items="center"))


def _hibernation_controls(p: HibernationParams) -> dict[str, W.Widget]:
    """Every parameter control, set to ``p``; consistency between them is the dashboard's job."""
    hosts = list(RELEASES) + [v for v in (p.old_xen, p.xen) if v not in RELEASES]
    return {
        "old_xen": _dropdown("old host Xen", hosts, p.old_xen, "where the guest boots and hibernates"),
        "xen": _dropdown("new host Xen", hosts, p.xen, "where the guest resumes"),
        "guest_fallback": _dropdown("guest falls back", [f.value for f in FallbackPolicy], p.guest_fallback,
                                    "which failed init_control makes the kernel use 2-level", "250px"),
        "fix": _dropdown("fix", list(FIXES), p.fix, FIXES[p.fix], "180px"),
        "fix_description": W.HTML(html.escape(FIXES[p.fix])),
        "disable_fifo": W.ToggleButton(p.fix == "disable-fifo", description="disable_fifo", icon="ban",
                                       tooltip="XEN_DOMCTL_CDF_disable_fifo ([PATCH v4]): on = fix disable-fifo"),
        "errno": _dropdown("errno", list(ERRNOS), p.errno, width="170px"),
        "fifo_events": _checkbox(p.fix != "fifo-events-0", "xen.fifo_events",
                                 "off = fix fifo-events-0: the boot kernel never tries FIFO"),
        "reset": _checkbox(p.fix == "reset", "boot kernel issues EVTCHNOP_reset",
                           "fix reset: back to 2-level, but every channel is closed"),
    }


def _step_controls(last: int, step: int) -> dict[str, W.Widget]:
    slider = W.IntSlider(step, min=0, max=last, description="step", continuous_update=False,
                         layout=W.Layout(width="420px"))
    play = W.Play(step, min=0, max=last, interval=PLAY_INTERVAL_MS, tooltip="play the steps")
    W.link((play, "value"), (slider, "value"))
    W.link((slider, "max"), (play, "max"))
    return {"play": play, "previous": W.Button(description="previous", icon="step-backward",
                                               layout=W.Layout(width="110px")),
            "step": slider, "next": W.Button(description="next", icon="step-forward", layout=W.Layout(width="110px")),
            # a fixed height, so the figure below does not jump as the number of notes changes
            "notes": W.HTML(layout=W.Layout(height="8em", overflow="auto"))}


class HibernationDashboard(Dashboard):
    """Parameters of the hibernation scenario on top, a step slider, the outcome, the views."""

    def __init__(self, params: HibernationParams, seed: int = 0) -> None:
        self.fixed = {"vcpus": params.vcpus, "rounds": params.rounds}  # not controls
        self.seed = seed
        trace = run_scenario("hibernation", seed, **vars(params))
        super().__init__(*new_figure(plots.WIDTH, sum(_heights(params.vcpus))))
        self.trace = trace
        self.controls = {**_hibernation_controls(params), **_step_controls(len(trace) - 1, len(trace) - 1)}
        self.slider = self.controls["step"]
        self.banner = W.HTML(layout=W.Layout(padding="2px 8px"))
        self.views = _draw_hibernation(self.figure, trace, _heights(params.vcpus))
        self.widget = self._assemble()
        self._wire()
        self._enable_for(params.fix)
        self._show_outcome()
        self.show(self.slider.value)

    def _assemble(self) -> W.VBox:
        c = self.controls
        return W.VBox([_row(c["old_xen"], c["xen"], c["guest_fallback"]), _row(c["fix"], c["fix_description"]),
                       _row(c["disable_fifo"], c["errno"], c["fifo_events"], c["reset"]), self.banner,
                       _row(c["play"], c["previous"], c["step"], c["next"]), c["notes"], self.holder])

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
        row = _host_override(fix)
        c["xen"].disabled = row is not None
        c["xen"].tooltip = (f"fix {fix} runs the new host on the {row} row: this choice is ignored" if row
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
        self._show_outcome()
        self.show(self.slider.value)

    def _refuse(self, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        self.banner.style.background, self.banner.style.text_color = plots.GREY, "black"
        self.banner.value = html.escape(f"could not run these parameters ({message}); still showing the last run")

    def _show_outcome(self) -> None:
        verdict = self.trace.outcome.verdict
        self.banner.style.background = plots.VERDICT_COLOURS[verdict]
        self.banner.style.text_color = "black" if verdict == "events lost" else "white"
        self.banner.value = f"<b>{html.escape(self.trace.outcome.summary)}</b>"

    def step_by(self, delta: int) -> None:
        """Move the slider ``delta`` steps, within its bounds."""
        self.slider.value = min(max(self.slider.value + delta, self.slider.min), self.slider.max)

    def show(self, step: int) -> None:
        """Show record ``step`` of the current trace: only indexing, never a re-run."""
        record = self.trace[step]
        plots.update_timeline(self.views["timeline"], self.trace, step)
        self._show_domain(_domain_of(record))
        self.controls["notes"].value = _notes_html(record)
        self.controls["previous"].disabled = step <= self.slider.min
        self.controls["next"].disabled = step >= self.slider.max
        self.redraw()

    def _show_domain(self, snapshot: DomainSnapshot | None) -> None:
        """The FIFO queues or the 2-level grid (by Xen's ABI) and the frame map, if they changed."""
        if snapshot == self.snapshot and self.snapshot is not None:
            return
        self.snapshot = snapshot
        shown = "none" if snapshot is None else "fifo" if snapshot.abi == "fifo" else "two_level"
        for name in ("fifo", "two_level", "none"):
            self.views[name].ax.set_visible(name == shown)
        self.views["frames"].ax.set_visible(snapshot is not None)
        if snapshot is not None:
            (plots.update_fifo_queues if shown == "fifo" else plots.update_two_level)(self.views[shown], snapshot)
            plots.update_frame_map(self.views["frames"], snapshot)


class _Note:
    """A stand-in view for a step without a domain: one centred sentence."""

    def __init__(self, ax: Axes, text: str) -> None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=plots.TITLE, transform=ax.transAxes)
        self.ax = ax


def _heights(vcpus: int) -> tuple[float, float, float]:
    """Inches for the timeline, the domain view (FIFO grows with vCPUs), the frame map."""
    return 5.5, max(7.5, 1.8 + 5.2 * ((vcpus + 1) // 2)), 4.5


def _draw_hibernation(fig: Figure, trace: Trace, heights: tuple[float, ...]) -> dict[str, object]:
    """Every view, once: the timeline, both domain views in one slot (one hidden), the frames."""
    # Subfigures: each view gets its own margins (legends outside one view don't narrow the others).
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=heights)
    first = next(d for r in trace.records for d in r.domains)
    return {"timeline": plots.draw_timeline(trace, top.add_subplot(), len(trace) - 1),
            "fifo": plots.draw_fifo_queues(first, middle.add_subplot()),
            "two_level": plots.draw_two_level(first, middle.add_subplot()),
            "none": _Note(middle.add_subplot(), "no domain exists at this step (see the notes above)"),
            "frames": plots.draw_frame_map(first, bottom.add_subplot())}


def _notes_html(record: Record) -> str:
    """The step, its hypercalls and what Xen and the kernels did, for the line under the slider."""
    head = f"[{record.index}] {record.host or '-'} {record.step}"
    lines = [f"<b>{html.escape(head)}</b> &nbsp; <code>{html.escape(summarise_calls(record.calls))}</code>"]
    return "<br>".join(lines + [html.escape(note) for note in record.notes])


def hibernation_dashboard(**params: object) -> Dashboard:
    """The hibernation scenario's dashboard; ``params`` (and ``seed``) start it, as in run_scenario.

    Controls (``dash.controls``): old_xen, xen, guest_fallback, fix (with fix_description),
    disable_fifo, errno, fifo_events, reset; play, previous, step, next; notes.
    """
    seed = int(params.pop("seed", 0))
    p = make_params("hibernation", **params)  # ValueError for an unknown name or value
    p = HibernationParams(**{**vars(p), "old_xen": xen_version(p.old_xen).name, "xen": xen_version(p.xen).name})
    return HibernationDashboard(p, seed)


# ---------------------------------------------------------------------------------------------
# Playgrounds: one live guest, a learner's buttons, the queue view or the 2-level grid


class Playground(Dashboard):
    """A booted guest on one host; each button is one thing a kernel or backend does."""

    def __init__(self, fifo: bool, xen: str = "master", vcpus: int = 2) -> None:
        self.world = World()
        self.shown = _boot_guest(self.world, xen, vcpus, fifo)
        self.calls: tuple[Call, ...] = ()
        height = 1.8 + 5.2 * ((vcpus + 1) // 2) if fifo else 8.0
        super().__init__(*new_figure(plots.WIDTH, height))
        self.snapshot = self.take_snapshot()
        self.view = "fifo" if fifo else "two_level"
        draw = plots.draw_fifo_queues if fifo else plots.draw_two_level
        self.views = {self.view: draw(self.snapshot, self.figure.add_subplot())}
        self.controls = _playground_controls(self.kernel, vcpus, fifo)
        self._wire(fifo)
        self.widget = self._assemble(fifo)
        self.redraw()

    @property
    def kernel(self) -> Kernel:
        return self.shown.kernel

    def _assemble(self, fifo: bool) -> W.VBox:
        c = self.controls
        rows = [_row(c["port"], c["send"], c["mask"], c["unmask"], c["consume"])]
        if fifo:
            rows.append(_row(c["priority"], c["set_priority"], c["vcpu"], c["bind_vcpu"]))
        return W.VBox(rows + [c["status"], self.holder])

    def _wire(self, fifo: bool) -> None:
        actions = {"send": self.send, "mask": self.mask, "unmask": self.unmask, "consume": self.consume}
        if fifo:
            actions |= {"set_priority": self.set_priority, "bind_vcpu": self.bind_vcpu}
        for name, action in actions.items():
            self.controls[name].on_click(lambda _, name=name, action=action: self.act(name, action))

    def take_snapshot(self) -> DomainSnapshot:
        """The guest's domain, frozen, with the kernel's names for its ports."""
        labels = {c.port: c.name for c in self.kernel.channels.values()}
        return snapshot_domain(self.shown.guest.domain, name=self.shown.name, host=self.shown.host, labels=labels,
                               kernel_abi=self.kernel.abi, crashed=self.kernel.crashed)

    def act(self, name: str, action: Callable[[str], str]) -> None:
        """Run one action on the chosen channel; show the new snapshot and the last return code."""
        channel = self.controls["port"].value
        self.world.calls = []
        try:
            what = action(channel)
        except Exception as error:  # a widget callback: one line, never a traceback
            what = f"refused: {type(error).__name__}: {error}".splitlines()[0]
        self.calls = tuple(self.world.calls)
        self.controls["status"].value = html.escape(f"{name} {channel}: {_last_call(self.calls, what)}")
        self.snapshot = self.take_snapshot()
        update = plots.update_fifo_queues if self.view == "fifo" else plots.update_two_level
        update(self.views[self.view], self.snapshot)
        self.redraw()

    def port(self, channel: str) -> int:
        return self.kernel.channels[channel].port

    def send(self, channel: str) -> str:
        """An event on ``channel`` from whoever raises it: Xen (timers), dom0 (devices), the guest (IPIs)."""
        send(self.world, self.shown, channel)
        return "Xen raised VIRQ_TIMER itself (send_guest_vcpu_virq)" if channel.startswith("timer") else "sent"

    def mask(self, channel: str) -> str:
        """mask_evtchn: the guest sets M (FIFO) or its evtchn_mask bit (2-level) itself."""
        port = self.port(channel)
        if self.kernel.abi == "fifo":
            page, index = self.kernel.consumer.word_index(port)
            page[index] |= M
            return "the guest set M in the event word"
        shinfo = self.shown.guest.domain.shared_info
        word, bit = divmod(port, shinfo.layout.bits_per_word)
        shinfo.evtchn_mask[word] |= 1 << bit
        return f"the guest set bit {bit} of evtchn_mask[{word}]"

    def unmask(self, channel: str) -> str:
        """unmask_evtchn: the kernel clears the mask itself, or asks Xen when the event is pending."""
        self.kernel.unmask(self.port(channel))
        return "the guest cleared the mask itself"

    def consume(self, channel: str) -> str:
        """The guest takes its pending upcalls (every channel, not only the chosen one)."""
        before = sum(self.kernel.received.values())
        consume(self.world, self.shown)
        return f"the guest's handlers ran {sum(self.kernel.received.values()) - before} time(s)"

    def set_priority(self, channel: str) -> str:
        """EVTCHNOP_set_priority: later events on the channel go to that priority's queue."""
        arg = EvtchnSetPriority(port=self.port(channel), priority=self.controls["priority"].value)
        self.shown.guest.domain.evtchn_op(EVTCHNOP_set_priority, arg)
        return "set_priority"

    def bind_vcpu(self, channel: str) -> str:
        """xen_rebind_evtchn_to_cpu: on success the kernel routes the channel to that vCPU."""
        arg = EvtchnBindVcpu(port=self.port(channel), vcpu=self.controls["vcpu"].value)
        if self.shown.guest.domain.evtchn_op(EVTCHNOP_bind_vcpu, arg) == 0:
            self.kernel.channels[channel].cpu = arg.vcpu
        return "bind_vcpu"


def _last_call(calls: tuple[Call, ...], what: str) -> str:
    """``EVTCHNOP_unmask -> 0`` for the action's last hypercall, else what the guest did."""
    if not calls:
        return f"{what} (no hypercall)"
    last = calls[-1]
    return f"{last.domain}: EVTCHNOP_{last.op} -> {errno_name(last.rc)}"


def _boot_guest(world: World, xen: str, vcpus: int, fifo: bool) -> Shown:
    """xl create, then a kernel boots and binds its usual channels (as scenarios/common.boot)."""
    handle = xl_create(world.host("host", xen), vcpus=vcpus)
    shown = world.show("guest", "host", handle)
    shown.kernel = Kernel(handle.domain, KernelConfig(fifo_events=fifo), "linux")
    shown.kernel.boot()
    shown.kernel.bind_standard_channels(handle.store_evtchn, handle.console_evtchn)
    connect_vbd(shown)
    return shown


def _button(name: str, tooltip: str) -> W.Button:
    return W.Button(description=name, tooltip=tooltip, layout=W.Layout(width="auto"))


def _playground_controls(kernel: Kernel, vcpus: int, fifo: bool) -> dict[str, W.Widget]:
    ports = [(f"{name} (port {c.port})", name) for name, c in kernel.channels.items()]
    controls = {"port": _dropdown("channel", ports, ports[0][1], "the channel the buttons act on", "240px"),
                "send": _button("send", "an event on the channel (Xen, dom0 or the guest sends it)"),
                "mask": _button("mask", "the guest masks the channel (no hypercall)"),
                "unmask": _button("unmask", "the guest unmasks; Xen's EVTCHNOP_unmask if it is pending"),
                "consume": _button("consume", "the guest takes its upcalls, as Linux's handler does"),
                "status": W.HTML("ready: pick a channel and press a button")}
    if fifo:
        controls |= {"priority": W.IntSlider(EVTCHN_FIFO_PRIORITY_DEFAULT, min=0, max=EVTCHN_FIFO_MAX_QUEUES - 1,
                                             description="priority", style=WIDE),
                     "set_priority": _button("set_priority", "EVTCHNOP_set_priority with the slider's priority"),
                     "vcpu": _dropdown("vCPU", list(range(vcpus)), 0, "the vCPU for bind_vcpu", "110px"),
                     "bind_vcpu": _button("bind_vcpu", "EVTCHNOP_bind_vcpu: later events go to that vCPU's queues")}
    return controls


def fifo_playground(xen: str = "master", vcpus: int = 2) -> Dashboard:
    """A live FIFO guest: send, mask, unmask, consume, set_priority and bind_vcpu, one click each."""
    return Playground(True, xen, vcpus)


def two_level_playground(xen: str = "master", vcpus: int = 2) -> Dashboard:
    """A live 2-level guest (xen.fifo_events=0): send, mask, unmask and consume, one click each."""
    return Playground(False, xen, vcpus)


__all__ = ["Dashboard", "FrozenLayout", "HibernationDashboard", "Playground", "fifo_playground",
           "hibernation_dashboard", "new_figure", "two_level_playground"]
