"""A trace player: any trace's records behind a step slider, on the view of its guest's ABI.

Made for the interleaving explorer's counterexamples (``evtsim.races``), whose records are one
atomic step each: the slider walks them, the notes say which actor ran which step of Xen or
Linux and what it read and wrote, and the pane shows the guest's FIFO queues or 2-level bitmaps
after that step. Moving the slider only indexes the trace, as in the hibernation dashboard.
"""

from __future__ import annotations

import ipywidgets as W

from .. import plots
from ..trace import Trace
from .canvas import Pane
from .controls import row
from .dashboard import Dashboard
from .hibernation import _domain_of, _notes_html, _step_controls
from .look import CSS_DPI, NOTEBOOK

#: The full views of the playgrounds: a notebook's width, and as high as the guest's vCPUs need.
WIDTH, TWO_LEVEL_HEIGHT = plots.WIDTH * CSS_DPI, 8.0 * CSS_DPI


class TracePlayer(Dashboard):
    """The outcome banner, a step slider with its notes, and one pane: the guest's view."""

    def __init__(self, trace: Trace, step: int = 0) -> None:
        first = next((d for r in trace.records for d in r.domains), None)
        if first is None:
            raise ValueError(f"trace {trace.scenario!r} has no domain snapshot to show")
        self.view_name = "fifo" if first.abi == "fifo" else "two_level"
        height = plots.queues.full_height(len(first.vcpus)) * CSS_DPI if self.view_name == "fifo" else TWO_LEVEL_HEIGHT
        super().__init__({self.view_name: Pane(WIDTH, max(height, TWO_LEVEL_HEIGHT))})
        self.trace = trace
        self.controls = _step_controls(len(trace) - 1, min(max(step, 0), len(trace) - 1), NOTEBOOK)
        self.controls["notes"].layout.width = f"{WIDTH:.0f}px"  # as wide as the view under it
        self.slider = self.controls["step"]
        self.banner = W.HTML(layout=W.Layout(padding="2px 8px"))
        draw = plots.draw_fifo_queues if self.view_name == "fifo" else plots.draw_two_level
        view = draw(first, self.panes[self.view_name].figure.add_subplot())
        self.views = {self.view_name: view}
        self.panes[self.view_name].changing = view.changing
        c = self.controls
        self.widget = self.root([self.banner, row(c["play"], c["previous"], c["step"], c["next"]), c["notes"],
                                 self.panes[self.view_name].widget])
        self.observe("step", self.show)
        c["previous"].on_click(lambda _: self.step_by(-1))
        c["next"].on_click(lambda _: self.step_by(1))
        self.show_outcome()
        self.show(self.slider.value)

    def show(self, step: int) -> None:
        """Show record ``step``: its notes, and the guest as it stood after it."""
        record = self.trace[step]
        snapshot = _domain_of(record)
        self.controls["notes"].value = _notes_html(record)
        self.controls["previous"].disabled = step <= self.slider.min
        self.controls["next"].disabled = step >= self.slider.max
        if snapshot is not None and snapshot != self.snapshot:
            self.snapshot = snapshot
            update = plots.update_fifo_queues if self.view_name == "fifo" else plots.update_two_level
            update(self.views[self.view_name], snapshot)
            self.refresh(self.view_name)


    def describe(self) -> str:
        return (f"trace player for {self.trace.scenario}, step {self.slider.value} of {self.slider.max}: "
                f"{self.trace.outcome.summary} (live widgets: run the notebook to use them)")


def trace_player(trace: Trace, step: int = 0) -> TracePlayer:
    """A player for ``trace``, showing record ``step`` first.

    Controls (``player.controls``): play, previous, step, next; notes. One pane (``player.panes``):
    ``fifo`` or ``two_level``, by the ABI of the trace's first snapshot.
    """
    return TracePlayer(trace, step)


__all__ = ["TracePlayer", "trace_player"]
