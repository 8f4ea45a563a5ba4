"""What every dashboard is: controls, panes of views, and quiet changes to its own controls."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import ipywidgets as W

from .. import plots
from ..snapshot import DomainSnapshot
from ..trace import Trace
from . import stills
from .canvas import Pane, refresh_panes
from .look import NOTEBOOK, Look, stylesheet
from .screen import clamp, screen


class Dashboard:
    """What a dashboard builder returns: display it, or reach into its parts.

    ``widget`` is the root container; ``controls`` names every control; ``panes`` holds the
    figures (``pane.figure``) and the widgets that show them, ``views`` the artists drawn in
    them; ``banner`` and ``slider`` are None in the playgrounds, where ``trace`` is None too;
    ``snapshot`` is the domain the views show now; ``look`` its sizes (``widgets.look``);
    ``screen`` the hidden widget that reports the browser's pixel ratio (None if the look keeps
    its own): each report redraws the pictures at that ratio (``set_pixel_ratio``).

    Displayed, it shows as its widgets where a kernel runs them, and as a still picture of its
    current state (``picture()``) where none does: a saved notebook on GitHub, nbconvert.
    """

    def __init__(self, panes: dict[str, Pane], look: Look = NOTEBOOK) -> None:
        self.panes = panes
        self.look = look
        self.controls: dict[str, W.Widget] = {}
        self.views: dict[str, object] = {}
        self.widget: W.Box = W.VBox()
        self.banner: W.HTML | None = None
        self.slider: W.IntSlider | None = None
        self.trace: Trace | None = None
        self.snapshot: DomainSnapshot | None = None
        # the few rules ipywidgets' layouts cannot express; a <style> applies even where it is not displayed
        self.style = W.HTML(stylesheet(look), layout=W.Layout(display="none"))
        self.screen = screen() if look.follow_screen else None
        if self.screen is not None:
            self.screen.observe(lambda change: self.set_pixel_ratio(change["new"]), "pixel_ratio")
        self._quiet_depth = 0

    def root(self, children: list[W.Widget], width: str | None = None) -> W.VBox:
        """The root container: ``children`` and the style (and screen) they need, at most ``width`` wide."""
        hidden = [self.style] + ([self.screen] if self.screen is not None else [])
        box = W.VBox([*hidden, *children], layout=W.Layout(max_width=width))
        box.add_class("evtsim-dashboard")
        box.add_class(f"evtsim-{self.look.name}")
        return box

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["image/png"] = stills.png(self.picture())
        bundle["text/plain"] = self.describe()
        return bundle

    def __repr__(self) -> str:
        """In a REPL, the same line a static page shows in place of the widgets."""
        return self.describe()

    def describe(self) -> str:
        """One line for a reader who sees neither the widgets nor the picture."""
        return f"{type(self).__name__} (live widgets: run the notebook to use them)"

    def picture(self) -> stills.Pixels:
        """The shown panes, one under the other, at one pixel per CSS pixel."""
        shown = [pane.still() for pane in self.panes.values() if pane.visible]
        return stills.stacked(shown) if shown else stills.text_strip(self.describe(), 600, "white", "black")

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Controls changed inside this block do not trigger their observers."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def set_pixel_ratio(self, ratio: float) -> None:
        """Draw every pane at ``ratio`` device pixels per CSS pixel (clamped to ``screen.RATIOS``),
        and show them again if that changed their size; a ratio of 0 (no browser yet) changes nothing."""
        if not ratio:
            return
        ratio = clamp(ratio)
        self.look = replace(self.look, pixel_ratio=ratio)
        changed = [name for name, pane in self.panes.items() if pane.set_pixel_ratio(ratio)]
        if changed:
            self.redraw(changed)

    def redraw(self, names: list[str]) -> None:
        """Show the panes ``names`` again after their pixel ratio changed."""
        self.refresh(*names)

    def refresh(self, *names: str) -> None:
        """Show the panes ``names`` (all by default) as their views are now."""
        refresh_panes(self.panes[name] for name in names or self.panes)

    def step_by(self, delta: int) -> None:
        """Move the step slider ``delta`` steps, within its bounds."""
        self.slider.value = min(max(self.slider.value + delta, self.slider.min), self.slider.max)

    def show_outcome(self) -> None:
        """The banner: the trace's outcome on its verdict's colour, in the ink that reads on it."""
        colour = plots.VERDICT_COLOURS[self.trace.outcome.verdict]
        self.banner.style.background, self.banner.style.text_color = colour, plots.ink_on(colour)
        self.banner.value = f"<b>{html.escape(self.trace.outcome.summary)}</b>"

    def observe(self, name: str, handler: Callable[[object], None]) -> None:
        """Call ``handler(new value)`` when control ``name`` changes, unless quiet."""
        def on_change(change: dict) -> None:
            if not self._quiet_depth:
                handler(change["new"])
        self.controls[name].observe(on_change, "value")
