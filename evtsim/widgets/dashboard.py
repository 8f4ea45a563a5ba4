"""What every dashboard is: controls, panes of views, and quiet changes to its own controls."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ipywidgets as W
from IPython.display import display

from .. import plots
from ..snapshot import DomainSnapshot
from ..trace import Trace
from .canvas import Pane, refresh_panes


class Dashboard:
    """What a dashboard builder returns: display it, or reach into its parts.

    ``widget`` is the root container; ``controls`` names every control; ``panes`` holds the
    figures (``pane.figure``) and the widgets that show them, ``views`` the artists drawn in
    them; ``banner`` and ``slider`` are None in the playgrounds, where ``trace`` is None too;
    ``snapshot`` is the domain the views show now.
    """

    def __init__(self, panes: dict[str, Pane]) -> None:
        self.panes = panes
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

    def refresh(self, *names: str) -> None:
        """Show the panes ``names`` (all by default) as their views are now."""
        refresh_panes(self.panes[name] for name in names or self.panes)

    def step_by(self, delta: int) -> None:
        """Move the step slider ``delta`` steps, within its bounds."""
        self.slider.value = min(max(self.slider.value + delta, self.slider.min), self.slider.max)

    def show_outcome(self) -> None:
        """The banner: the trace's outcome on its verdict's colour."""
        verdict = self.trace.outcome.verdict
        self.banner.style.background = plots.VERDICT_COLOURS[verdict]
        self.banner.style.text_color = "black" if verdict == "events lost" else "white"
        self.banner.value = f"<b>{html.escape(self.trace.outcome.summary)}</b>"

    def observe(self, name: str, handler: Callable[[object], None]) -> None:
        """Call ``handler(new value)`` when control ``name`` changes, unless quiet."""
        def on_change(change: dict) -> None:
            if not self._quiet_depth:
                handler(change["new"])
        self.controls[name].observe(on_change, "value")
