"""One view's figure in a dashboard, redrawn in milliseconds: frozen layout, blitting, cached text.

A dashboard redraws after every click, and a whole matplotlib draw of a view costs 60-100 ms,
most of it text: Agg lays out and rasterises every glyph of every label again on each draw, and
legends and tick labels are measured again although they never change. Each view has a pane of
its own (a step that leaves a view alone leaves its pane alone), and four things make a redraw
cheap, each built on a documented matplotlib mechanism:

- ``FrozenLayout``: constrained layout runs only when the texts around a view take a shape it
  has not seen (line counts, label lengths); otherwise the positions it found are reused.
- Blitting (matplotlib's "faster rendering by using blitting"): the artists a view changes from
  step to step (``XArtists.changing()``) are *animated*, so a normal draw leaves them out; that
  draw is kept as the background, and a redraw pastes it back and draws only those artists.
  Matplotlib does not let a change to an animated artist make its figure stale, so a stale
  figure means something in the background changed (limits, ticks, labels) and it is redrawn.
- ``plots.style.Setters``: the views call a background setter only when its value changed,
  since every call marks the figure stale, equal value or not.
- ``CachedTextRenderer``: Agg with a cache of rendered texts, keyed by everything that decides
  their pixels, including the anchor's fraction of a pixel: a label drawn again where it was
  drawn before (most labels, most of the time) is pasted as an image.

The picture goes to an ``ipywidgets.Image`` as PNG, which is what the inline backend, Voila and
static docs show; under ipympl (``%matplotlib widget``) the figure's canvas is itself the widget
and ipympl draws it whole, so none of the above applies.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import ipywidgets as W
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine, LayoutEngine

TEXT_CACHE_SIZE = 4096  # rendered texts kept; a dashboard uses a few hundred


# ---------------------------------------------------------------------------------------------
# Text drawn once, pasted afterwards


def _font_key(prop: FontProperties) -> tuple:
    return (tuple(prop.get_family()), prop.get_style(), prop.get_variant(), prop.get_weight(), prop.get_stretch(),
            prop.get_size_in_points(), prop.get_file(), prop.get_math_fontfamily())


class CachedTextRenderer(RendererAgg):
    """``RendererAgg`` that renders each distinct text once and pastes the pixels afterwards.

    The key holds the string, font, angle, colour, antialiasing, dpi and the anchor's position
    within its pixel (in FreeType's 1/64 steps), so a pasted text has the pixels a fresh
    rendering would have (to rounding). Texts with mathtext, transparency or a clip path are
    drawn as usual. The cache is shared by every renderer of this class (one process, one set
    of fonts).
    """

    cache: OrderedDict[tuple, tuple[np.ndarray, int, int] | None] = OrderedDict()

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):  # noqa: D102 (RendererAgg's)
        if ismath or gc.get_alpha() != 1 or gc.get_clip_path() != (None, None):
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        fx, fy = round(x % 1 * 64), round(y % 1 * 64)
        key = (s, _font_key(prop), angle, tuple(gc.get_rgb()), gc.get_antialiased(), self.dpi, fx, fy,
               getattr(mtext, "get_fontfeatures", lambda: None)(), getattr(mtext, "get_language", lambda: None)())
        if key in self.cache:
            self.cache.move_to_end(key)
        else:
            self.cache[key] = self._render_alone(gc, fx / 64, fy / 64, s, prop, angle, mtext)
            if len(self.cache) > TEXT_CACHE_SIZE:
                self.cache.popitem(last=False)
        if self.cache[key] is None:  # nothing visible (blanks)
            return None
        image, left, top = self.cache[key]
        # draw_image takes the image's lower-left corner, y upwards; our offsets are y downwards
        self.draw_image(gc, math.floor(x) + left, self.height - (math.floor(y) + top) - image.shape[0], image)
        return None

    def _render_alone(self, gc, fx: float, fy: float, s: str, prop, angle: float, mtext):
        """The text rendered on its own transparent canvas, cropped, with its offset from the
        anchor's pixel; None if it has no visible pixels."""
        width, height, descent = self.get_text_width_height_descent(s, prop, ismath=False)
        pad = 2 + math.ceil(0.3 * self.points_to_pixels(prop.get_size_in_points()))
        # the text's box around its anchor (baseline, left), y upwards, turned by ``angle``
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        corners = [(cx * cos - cy * sin, -(cx * sin + cy * cos))  # then y downwards
                   for cx in (0, width) for cy in (-descent, height - descent)]
        ox = pad - math.floor(min(cx for cx, _ in corners))
        oy = pad - math.floor(min(cy for _, cy in corners))
        alone = RendererAgg(ox + math.ceil(max(cx for cx, _ in corners)) + pad,
                            oy + math.ceil(max(cy for _, cy in corners)) + pad, self.dpi)
        plain = alone.new_gc()
        plain.copy_properties(gc)
        plain.set_clip_rectangle(None)
        alone.draw_text(plain, ox + fx, oy + fy, s, prop, angle, False, mtext)
        pixels = np.asarray(alone.buffer_rgba())
        rows, cols = np.nonzero(pixels[..., 3].any(axis=1))[0], np.nonzero(pixels[..., 3].any(axis=0))[0]
        if not len(rows):
            return None
        image = np.ascontiguousarray(pixels[rows[-1]:rows[0] - 1 if rows[0] else None:-1, cols[0]:cols[-1] + 1])
        return image, cols[0] - ox, rows[0] - oy  # draw_image wants the bottom row first


class CachedTextCanvas(FigureCanvasAgg):
    """An Agg canvas whose renderer is a ``CachedTextRenderer`` (for ``draw`` and ``savefig``)."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if getattr(self, "_cached_text_key", None) != key:
            self.renderer = CachedTextRenderer(w, h, self.figure.dpi)
            self._cached_text_key = key
        return self.renderer


# ---------------------------------------------------------------------------------------------
# Layout, run when the texts' shape changes


def _lines(text: str) -> tuple[int, int]:
    """A text's line count and longest line, in tens of characters."""
    lines = text.split("\n")
    return len(lines), max(map(len, lines)) // 10


def _tick_labels(axis: Axis) -> list[str]:
    """The axis's major tick labels, without ``get_ticklabels()``, which updates (and so marks
    stale) every tick."""
    return axis.major.formatter.format_ticks(axis.major.locator()) if axis.get_visible() else []


def _shape(ax: Axes) -> tuple:
    """What decides the room around ``ax``: its titles, labels, tick labels, child axes."""
    if not ax.get_visible():
        return (False,)
    ticks = [max(map(len, _tick_labels(axis)), default=0) for axis in (ax.xaxis, ax.yaxis)]
    return (True, _lines(ax.title.get_text()), round(ax.titleOffsetTrans.get_matrix()[1, 2]),
            _lines(ax.xaxis.label.get_text()), _lines(ax.yaxis.label.get_text()), *ticks,
            tuple(_shape(child) for child in ax.child_axes))


class FrozenLayout(LayoutEngine):
    """Constrained layout, run when the texts around the axes take a shape not seen before;
    otherwise the positions it found for that shape are reused.

    A layout engine, so every canvas (Agg, the inline backend's PNG, ipympl) runs it before
    drawing, and nothing is laid out while nobody draws.
    """

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[tuple, list] = {}  # shape -> the Axes' positions
        self.current: tuple | None = None  # the shape the Axes are placed for now
        self.runs = 0  # how many times constrained layout actually ran

    @staticmethod
    def shape(fig: Figure) -> tuple:
        return tuple(_shape(ax) for ax in fig.axes)

    def moved(self, fig: Figure) -> bool:
        """Whether the texts now call for other positions than the Axes have."""
        return self.shape(fig) != self.current

    def execute(self, fig: Figure) -> None:
        """Put every Axes where constrained layout puts it for the texts shown now."""
        key = self.shape(fig)
        if key not in self.positions:
            ConstrainedLayoutEngine().execute(fig)
            self.runs += 1
            self.positions[key] = [ax.get_position(original=True).frozen() for ax in fig.axes]
        else:
            for ax, position in zip(fig.axes, self.positions[key]):
                ax.set_position(position)
                ax.set_in_layout(True)  # set_position takes an Axes out of layouts and tight bounding boxes
        self.current = key


# ---------------------------------------------------------------------------------------------
# PNG, as fast as the pictures allow


def encode_png(rgba: np.ndarray) -> bytes:
    """An RGBA PNG of ``rgba``, unfiltered, zlib level 1.

    Flat-coloured plots compress well without PNG's per-row filters; skipping them, and keeping
    Agg's RGBA rows as they are (one contiguous copy), makes this two to three times as fast as
    Pillow's encoder (benchmarks/interaction.py measures it). zlib lets other threads run, so
    several panes can be encoded at once."""
    height, width = rgba.shape[:2]
    rows = np.empty((height, 1 + 4 * width), np.uint8)
    rows[:, 0] = 0  # each row: filter type 0 (none), then its pixels
    rows[:, 1:] = rgba.reshape(height, 4 * width)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1))
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------
# One pane: a figure, the widget that shows it, and its redraw


class Pane:
    """One view's figure and the widget that shows it.

    ``changing`` names the artists that differ from one update to the next; ``refresh()`` after
    an update shows the change, drawing the whole figure only when something else changed.
    """

    def __init__(self, width: float, height: float) -> None:
        import matplotlib.pyplot as plt

        with plt.ioff():  # never auto-shown: the dashboard shows it
            self.figure = plt.figure(figsize=(width, height))
        self.layout = FrozenLayout()
        self.figure.set_layout_engine(self.layout)
        self.changing: Callable[[], Iterable[Artist]] = list
        self.background = None
        self.full_draws = self.quick_draws = 0
        if isinstance(self.figure.canvas, W.DOMWidget):  # ipympl: the canvas is the widget
            self.figure.canvas.header_visible = False
            self.widget: W.DOMWidget = self.figure.canvas
            return
        plt.close(self.figure)  # out of pyplot's list, so the inline backend never shows it too
        CachedTextCanvas(self.figure)
        self.widget = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))

    @property
    def visible(self) -> bool:
        """Whether the pane is shown (a hidden pane keeps its figure and background)."""
        return self.widget.layout.display != "none"

    @visible.setter
    def visible(self, on: bool) -> None:
        self.widget.layout.display = None if on else "none"

    @property
    def ipympl(self) -> bool:
        return self.widget is self.figure.canvas

    def refresh(self) -> None:
        """Show the figure as it is now (``refresh_panes`` does several at once)."""
        refresh_panes([self])

    def draw(self) -> None:
        """Redraw on the Agg canvas: the background if it changed, then the changing artists."""
        canvas, changing = self.figure.canvas, list(self.changing())
        joined = [a for a in changing if not a.get_animated()]
        for artist in joined:
            artist.set_animated(True)  # from now on drawn only here, over the background
        if joined or self.background is None or self.figure.stale or self.layout.moved(self.figure):
            canvas.draw()  # runs the layout engine; animated artists are left out
            self.background = canvas.copy_from_bbox(self.figure.bbox)
            self.full_draws += 1
        else:
            canvas.restore_region(self.background)
            self.quick_draws += 1
        renderer = canvas.get_renderer()
        for artist in sorted(changing, key=Artist.get_zorder):
            artist.draw(renderer)

    def pixels(self) -> np.ndarray:
        """The picture last drawn, as an (height, width, 4) RGBA array (a view: copy to keep it)."""
        return np.asarray(self.figure.canvas.buffer_rgba())


_ENCODER = ThreadPoolExecutor(max_workers=3, thread_name_prefix="evtsim-png")


def refresh_panes(panes: Iterable[Pane]) -> None:
    """Show each pane as its figure is now: ipympl draws its own; the others are redrawn (see
    the module's docstring) one after the other, then encoded side by side into their Images."""
    drawn = []
    for pane in panes:
        if pane.ipympl:
            pane.figure.canvas.draw_idle()
        else:
            pane.draw()
            drawn.append(pane)
    for pane, png in zip(drawn, _ENCODER.map(encode_png, [pane.pixels() for pane in drawn])):
        pane.widget.value = png


__all__ = ["CachedTextCanvas", "CachedTextRenderer", "FrozenLayout", "Pane", "encode_png", "refresh_panes"]
