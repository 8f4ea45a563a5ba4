"""The timeline's current-step frame, drawn by the browser over the picture instead of in it.

Moving the step slider then changes a few bytes of HTML, not the timeline's picture: the
timeline is redrawn only when a parameter change makes a new trace. The frame is a border,
never a tint, so the cells inside it keep their colours. Under ipympl, whose canvas draws the
whole figure anyway, the timeline's own cursor artists frame the step instead.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from ..plots import TimelineArtists
from .canvas import Pane

Box = tuple[float, float, float, float]  # left, top, width, height: fractions of the picture


def step_box(artists: TimelineArtists, step: int) -> Box:
    """Where ``step``'s column of the three lanes is, as fractions of the figure (from the top
    left), as the figure was last laid out."""
    fig = artists.figure
    top, bottom = artists.abi_ax.get_position().y1, artists.events_ax.get_position().y0
    (x0, _), (x1, _) = artists.events_ax.transData.transform([(step - 0.5, 0), (step + 0.5, 0)])
    return x0 / fig.bbox.width, 1 - top, (x1 - x0) / fig.bbox.width, top - bottom


class StepFrame:
    """A timeline pane's picture with a layer on top that frames one step."""

    def __init__(self, pane: Pane) -> None:
        self.pane = pane
        self.layer = W.HTML()
        self.layer.add_class("evtsim-frame-layer")
        self.widget = W.Box([pane.widget, self.layer])
        self.widget.add_class("evtsim-framed")
        self.box: Box | None = None

    def show(self, artists: TimelineArtists, step: int | None) -> None:
        """Frame ``step`` (none if None); call after the pane is drawn, which lays it out."""
        self.box = None if step is None else step_box(artists, step)
        if self.box is None:
            self.layer.value = ""
            return
        left, top, width, height = (f"{100 * f:.3f}%" for f in self.box)
        self.layer.value = (f'<div class="evtsim-frame" style="left: {left}; top: {top}; width: {width}; '
                            f'height: {height}"></div>')

    def draw_on(self, pixels: np.ndarray, thickness: int) -> np.ndarray:
        """A copy of ``pixels`` (the pane's picture) with the frame drawn in, as on screen."""
        out = pixels.copy()
        if self.box is None:
            return out
        h, w = out.shape[:2]
        left, top, width, height = self.box
        x0, y0 = round(left * w), round(top * h)
        x1, y1 = min(w, round((left + width) * w)), min(h, round((top + height) * h))
        ink = (0x22, 0x22, 0x22, 0xFF)
        for rows, cols in (((y0, y0 + thickness), (x0, x1)), ((y1 - thickness, y1), (x0, x1)),
                           ((y0, y1), (x0, x0 + thickness)), ((y0, y1), (x1 - thickness, x1))):
            out[max(0, rows[0]):rows[1], max(0, cols[0]):cols[1]] = ink
        return out


__all__ = ["StepFrame", "step_box"]
