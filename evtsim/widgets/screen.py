"""What the browser's screen is like: how many device pixels it has per CSS pixel.

A dashboard's pictures are drawn at the size they are shown; to be sharp without being wasteful
they also need the screen's ``window.devicePixelRatio``: 2 on a high-DPI laptop, 1 on a 1366 x 768
one, where twice the pixels would cost four times the drawing, encoding and decoding for nothing
the eye can see. Only the browser knows it, so a hidden widget asks it (``anywidget``: a few lines
of JavaScript, no extension to build) and reports it again when it changes: the window moves to
another screen, or the reader zooms the page.

Where no browser runs the widget (a script, nbconvert, the docs site's snapshot) the ratio stays
what the dashboard started with. ``EVTSIM_STATIC_WIDGETS=1`` (set by docs/conf.py) leaves the
widget out altogether, so a page of saved widget state needs no JavaScript beyond ipywidgets'.
"""

from __future__ import annotations

import os

import anywidget
import ipywidgets as W
import traitlets

#: Ratios outside this range are clamped: below 1 a picture would be blurred up, above 4 nobody sees more.
RATIOS = (1.0, 4.0)

ESM = """
export default {
  render({ model }) {
    let query = null;
    const report = () => {
      const ratio = window.devicePixelRatio || 1;
      if (model.get("pixel_ratio") !== ratio) {
        model.set("pixel_ratio", ratio);
        model.save_changes();
      }
      query?.removeEventListener("change", report);
      query = window.matchMedia(`(resolution: ${ratio}dppx)`);  // true until the ratio changes
      query.addEventListener("change", report);
    };
    report();
    return () => query?.removeEventListener("change", report);
  },
};
"""


class Screen(anywidget.AnyWidget):
    """A hidden widget whose ``pixel_ratio`` is the browser's ``window.devicePixelRatio``."""

    _esm = ESM
    pixel_ratio = traitlets.Float(0.0).tag(sync=True)  # 0 until a browser says

    def __init__(self, **kwargs: object) -> None:
        super().__init__(layout=W.Layout(display="none"), **kwargs)


def clamp(ratio: float) -> float:
    """A reported ratio within ``RATIOS``."""
    return min(max(float(ratio), RATIOS[0]), RATIOS[1])


def screen() -> Screen | None:
    """A Screen to put in a dashboard, or None where the widgets are only ever saved as state."""
    return None if os.environ.get("EVTSIM_STATIC_WIDGETS") else Screen()


__all__ = ["RATIOS", "Screen", "clamp", "screen"]
