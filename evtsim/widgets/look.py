"""How big a dashboard is drawn, and the few CSS rules ipywidgets' layouts cannot express.

A dashboard is laid out in CSS pixels for a notebook at its usual size (``Look()``) or larger for
a projector (``PRESENTER``). Its pictures are drawn at the size they are shown: a pane of W x H
CSS pixels is a figure of W/96 x H/96 inches (CSS puts 96 pixels in an inch, so a 9-point label
is 12 CSS pixels on every screen), rendered at ``pixel_ratio`` device pixels per CSS pixel so it
stays sharp on high-DPI screens, and shown at W x H by the ``<img>``'s width and height. A look
that ``follow_screen``s starts at ``pixel_ratio`` and then takes the ratio the browser reports
(``widgets.screen``); one given a ratio keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

CSS_DPI = 96  # CSS pixels per inch


@dataclass(frozen=True)
class Look:
    """Sizes for one audience: ``scale`` times the notebook layout, pictures at ``pixel_ratio``
    (the screen's, once a browser reports it, if ``follow_screen``)."""

    scale: float = 1.0
    pixel_ratio: float = 2.0
    name: str = "notebook"
    follow_screen: bool = True

    def px(self, css_pixels: float) -> str:
        """A CSS length: ``css_pixels`` of the notebook layout, scaled."""
        return f"{round(css_pixels * self.scale)}px"

    def size(self, css_pixels: float) -> int:
        """``css_pixels`` of the notebook layout, scaled, as a whole number of CSS pixels."""
        return round(css_pixels * self.scale)

    @property
    def dpi(self) -> float:
        """Device pixels per inch of a figure drawn for this look."""
        return CSS_DPI * self.scale * self.pixel_ratio


NOTEBOOK = Look()
#: Voila on a projector: everything half as large again, for a 1920 x 1080 screen at the back of a room.
PRESENTER = Look(scale=1.5, name="presenter")

#: Rules every dashboard's style block carries (classes are prefixed ``evtsim-``).
RULES = """
.evtsim-dashboard .evtsim-notes .widget-html-content {
  line-height: 1.35; overflow-wrap: anywhere; white-space: normal; padding: 2px 6px; }
.evtsim-dashboard .evtsim-notes .evtsim-panic { color: #A33800; font-weight: bold; }
.evtsim-dashboard .evtsim-banner .widget-html-content { line-height: 1.3; padding: 4px 8px; }
.evtsim-dashboard .widget-image, .evtsim-dashboard .jupyter-widget-image { margin: 0; }  /* shown at the size drawn */
.evtsim-framed { position: relative; align-self: flex-start; }
.evtsim-framed > .evtsim-frame-layer {
  position: absolute; left: 0; top: 0; right: 0; bottom: 0; margin: 0; pointer-events: none; }
.evtsim-framed > .evtsim-frame-layer > .widget-html-content { position: static; }
.evtsim-frame { position: absolute; box-sizing: border-box; border: 2px solid #222222; border-radius: 2px; }
"""


def stylesheet(look: Look) -> str:
    """The ``<style>`` a dashboard carries: the rules, and larger controls for a larger look."""
    sized = "" if look.scale == 1 else (
        f".evtsim-{look.name} {{ --jp-widgets-font-size: {look.px(13)}; --jp-widgets-inline-height: {look.px(28)};"
        f" --jp-widgets-slider-handle-size: {look.px(16)}; }}")
    return f"<style>{RULES}{sized}</style>"


__all__ = ["CSS_DPI", "NOTEBOOK", "PRESENTER", "Look", "stylesheet"]
