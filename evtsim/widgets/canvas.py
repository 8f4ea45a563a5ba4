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
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace

import ipywidgets as W
import numpy as np
from isal import isal_zlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine, LayoutEngine

from .look import CSS_DPI, NOTEBOOK, Look

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


def _tick_labels(axis: Axis) -> list[str]:
    """The axis's major tick labels, without ``get_ticklabels()``, which updates (and so marks
    stale) every tick."""
    return axis.major.formatter.format_ticks(axis.major.locator()) if axis.get_visible() else []


def _shape(ax: Axes) -> tuple:
    """What decides the room around ``ax``: its titles, labels, tick labels, child axes."""
    if not ax.get_visible():
        return (False,)
    ticks = [max(((len(t), t.count("\n")) for t in _tick_labels(axis)), default=(0, 0)) for axis in (ax.xaxis, ax.yaxis)]
    # titles and labels count by their lines, not their lengths: the views wrap them to fit
    lines = [text.get_text().count("\n") for text in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    return (True, *lines, round(ax.titleOffsetTrans.get_matrix()[1, 2]), *ticks,
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


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", isal_zlib.crc32(tag + data))


def _png(width: int, height: int, zlib_stream: bytes) -> bytes:
    """A PNG file of 8-bit RGBA rows, given their zlib stream."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib_stream) + _chunk(b"IEND", b"")


def _rows(pixels: np.ndarray) -> np.ndarray:
    """PNG's scanlines: each row is its filter type (0, none) then its pixels as they are."""
    height, width, channels = pixels.shape
    rows = np.empty((height, 1 + channels * width), np.uint8)
    rows[:, 0] = 0
    rows[:, 1:].reshape(height, width, channels)[...] = pixels
    return rows


def one_to_one(pixels: np.ndarray, pixel_ratio: float) -> np.ndarray:
    """``pixels`` drawn at ``pixel_ratio`` device pixels per CSS pixel, averaged down to one:
    each CSS pixel is the mean of the device pixels that start within it (whole blocks at a
    ratio of 2, blocks of one or two at 1.5)."""
    if pixel_ratio <= 1:
        return pixels.copy()
    height, width = pixels.shape[:2]
    rows = np.unique(np.floor(np.arange(0, height, pixel_ratio)).astype(np.intp))
    cols = np.unique(np.floor(np.arange(0, width, pixel_ratio)).astype(np.intp))
    sums = np.add.reduceat(np.add.reduceat(pixels.astype(np.float32), rows, axis=0), cols, axis=1)
    counts = np.diff(rows, append=height)[:, None] * np.diff(cols, append=width)[None, :]
    return np.round(sums / counts[..., None]).astype(np.uint8)


def encode_png(rgba: np.ndarray, compress: Callable[[bytes, int], bytes] = isal_zlib.compress) -> bytes:
    """An RGBA PNG of ``rgba``, unfiltered, deflated by ISA-L at level 1.

    Flat-coloured plots compress well without PNG's per-row filters; skipping them, and keeping
    Agg's RGBA rows as they are (one contiguous copy), saves Pillow's filtering. ISA-L's deflate
    (the ``isal`` package, Intel's Intelligent Storage Acceleration Library) writes the same
    format as zlib five to eight times as fast, in fewer bytes at level 1 than zlib's level 1:
    the 2356 x 660 timeline in 2 ms instead of 12 (benchmarks/interaction.py prints both, passing
    ``zlib.compress`` as ``compress`` for the baseline)."""
    height, width = rgba.shape[:2]
    return _png(width, height, compress(_rows(rgba), 1))


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's checksum (RFC 1950's sums:
    A = 1 + the bytes, B = the sum of the As, both modulo 65521)."""
    base = 65521
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % base
    b = (b1 + b2 + second_length * (a1 - 1)) % base
    return b << 16 | a


class PngStream:
    """Successive pictures of one pane as PNGs, re-compressing only the rows that changed.

    (RGBA as Agg draws it: dropping the alpha channel of an opaque figure saves a tenth of the
    bytes, but the deflater compresses the 3-byte pixels more slowly than it saves.)

    The rows are compressed in bands of ``BAND_ROWS``, each band on its own (a raw deflate
    stream flushed to a byte boundary), so the bands join into one valid zlib stream in any
    combination (RFC 1951 3.2.3: blocks follow each other; only the last is marked final). A
    band whose pixels equal the last picture's keeps its compressed bytes. A slider step
    changes a few labels and boxes of a view, so most bands are reused."""

    BAND_ROWS = 32

    def __init__(self) -> None:
        self.last: np.ndarray | None = None  # the last picture's pixels
        self.bands: list[tuple[bytes, int, int]] = []  # (deflated, adler32, length) per band
        self.compressed = 0  # bands compressed so far (the rest were reused)

    def encode(self, rgba: np.ndarray) -> bytes:
        """The PNG of ``rgba``."""
        height, width = rgba.shape[:2]
        if self.last is None or self.last.shape != rgba.shape:
            self.last, self.bands = None, [None] * -(-height // self.BAND_ROWS)
        for i, top in enumerate(range(0, height, self.BAND_ROWS)):
            band = rgba[top:top + self.BAND_ROWS]
            if self.last is None or not np.array_equal(band, self.last[top:top + self.BAND_ROWS]):
                self.bands[i] = self._deflate(_rows(band))
        self.last = rgba.copy()
        adler = 1
        for _, checksum, length in self.bands:
            adler = adler32_combine(adler, checksum, length)
        stream = b"\x78\x01" + b"".join(d for d, _, _ in self.bands) + LAST_BLOCK + struct.pack(">I", adler)
        return _png(width, height, stream)

    def _deflate(self, rows: np.ndarray) -> tuple[bytes, int, int]:
        self.compressed += 1
        compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)  # raw deflate: no header, no checksum
        return (compressor.compress(rows) + compressor.flush(isal_zlib.Z_FULL_FLUSH), isal_zlib.adler32(rows),
                rows.nbytes)


#: An empty final deflate block (fixed codes, end-of-block only), after the bands.
LAST_BLOCK = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15).flush()


# ---------------------------------------------------------------------------------------------
# One pane: a figure, the widget that shows it, and its redraw


class Pane:
    """One view's figure and the widget that shows it, ``width`` x ``height`` CSS pixels.

    ``changing`` names the artists that differ from one update to the next; ``refresh()`` after
    an update shows the change, drawing the whole figure only when something else changed.
    """

    def __init__(self, width: float, height: float, look: Look = NOTEBOOK) -> None:
        import matplotlib.pyplot as plt

        inches = (width / CSS_DPI, height / CSS_DPI)
        with plt.ioff():  # never auto-shown: the dashboard shows it
            self.figure = plt.figure(figsize=inches, dpi=CSS_DPI * look.scale)
        self.layout = FrozenLayout()
        self.figure.set_layout_engine(self.layout)
        self.changing: Callable[[], Iterable[Artist]] = list
        self.background = None
        self.full_draws = self.quick_draws = 0
        self.png = PngStream()
        self.look = look
        if isinstance(self.figure.canvas, W.DOMWidget):  # ipympl: the canvas is the widget
            self.figure.canvas.header_visible = False
            self.widget: W.DOMWidget = self.figure.canvas
            return
        plt.close(self.figure)  # out of pyplot's list, so the inline backend never shows it too
        self.figure.set_dpi(look.dpi)
        CachedTextCanvas(self.figure)
        # shown at its CSS size (the <img>'s width and height), narrower only if the page is
        self.widget = W.Image(format="png", width=str(look.size(width)), height=str(look.size(height)),
                              layout=W.Layout(max_width="100%", height="auto"))

    def set_pixel_ratio(self, ratio: float) -> bool:
        """Draw from now on at ``ratio`` device pixels per CSS pixel (the screen's, as
        ``widgets.screen`` reports it); whether that changed anything. The shown size stays,
        and so do the layouts found (fractions of the figure); the background and the PNG bands
        start afresh at the new size."""
        if self.ipympl or ratio == self.look.pixel_ratio:
            return False
        self.look = replace(self.look, pixel_ratio=ratio)
        self.figure.set_dpi(self.look.dpi)
        self.background = None
        return True

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

    def still(self) -> np.ndarray:
        """The picture as shown, one pixel per CSS pixel (for a still of the dashboard)."""
        if self.ipympl:
            self.figure.canvas.draw()
            return self.pixels().copy()
        return one_to_one(self.pixels(), self.look.pixel_ratio)


def refresh_panes(panes: Iterable[Pane]) -> None:
    """Show each pane as its figure is now: ipympl draws its own; the others are redrawn (see
    the module's docstring) and sent one after the other, so the browser decodes a picture while
    the next one is drawn. Encoding in this thread is quicker than in a pool: ISA-L takes a few
    milliseconds a picture, less than the interpreter lock's hand-overs cost a helper thread."""
    for pane in panes:
        if pane.ipympl:
            pane.figure.canvas.draw_idle()
        else:
            pane.draw()
            pane.widget.value = pane.png.encode(pane.pixels())


__all__ = ["CachedTextCanvas", "CachedTextRenderer", "FrozenLayout", "Pane", "PngStream", "adler32_combine",
           "encode_png", "one_to_one", "refresh_panes"]
