"""The one figure style of every view, and the small helpers the views share.

Okabe and Ito's palette (colour-blind safe), one meaning per colour in every view, colour never
the only cue (hatches, letters), one legend per plot, no text under 8 pt on figures about 9 in
wide. ``TextPool`` is how a view shows a changing number of labels without making new artists.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from ..abi import EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_PENDING

#: Okabe & Ito's colour-blind safe palette (https://jfly.uni-koeln.de/color/).
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
_O = OKABE_ITO
GREY, PALE, EDGE = "#BBBBBB", "#F0F0F0", "#888888"

#: One meaning, one colour, in every view.
COLOURS = {
    # masked: a pale tint of sky blue, so a sea of masked ports stays quiet behind the pending ones
    "neither": "#FFFFFF", "pending": _O["orange"], "masked": "#BEE1F5", "pending+masked": _O["reddish purple"],
    "2-level": _O["blue"], "fifo": _O["bluish green"], "no kernel": PALE, "crashed": _O["reddish purple"],
    "shared_info": _O["blue"], "control_block": _O["bluish green"], "event_array": _O["yellow"],
    "image": _O["sky blue"], "other": GREY, "hazard": _O["vermillion"],
    "sent": _O["black"], "delivered": _O["bluish green"], "undelivered": _O["orange"], "stray writes": _O["vermillion"],
    "calls": GREY, "failed": _O["vermillion"], "cursor": "#222222",
    # a queue's READY bit: dark, so it never reads as a pending event word (orange)
    "ready": "#555555",
}
VERDICT_COLOURS = {"works": _O["bluish green"], "events lost": _O["orange"], "memory corrupted": _O["vermillion"],
                   "guest crash": _O["reddish purple"]}
VERDICT_SHORT = {"works": "ok", "events lost": "lost", "memory corrupted": "mem", "guest crash": "BUG"}
EVENT_STATES = ("neither", "pending", "masked", "pending+masked")
#: The FIFO event word's flag bits (bit numbers in Xen's header), as the letters nodes show.
WORD_FLAGS = (("P", 1 << EVTCHN_FIFO_PENDING), ("M", 1 << EVTCHN_FIFO_MASKED), ("L", 1 << EVTCHN_FIFO_LINKED),
              ("B", 1 << EVTCHN_FIFO_BUSY))
FONT, SMALL, TITLE = 9, 8, 10  # points
WIDTH = 9.0  # inches: a notebook's width


# ---------------------------------------------------------------------------------------------
# Text that can be read on a coloured ground (WCAG 2.x contrast)

MIN_CONTRAST = 4.5  # WCAG 2.x level AA for normal text


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour: 0 for black, 1 for white."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two colours, from 1 (none) to 21 (black on white)."""
    dark, light = sorted((relative_luminance(a), relative_luminance(b)))
    return (light + 0.05) / (dark + 0.05)


def ink_on(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    return max(("black", "white"), key=lambda ink: contrast_ratio(ink, background))


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _new_axes(height: float) -> Axes:
    """A fresh Figure with an Agg canvas (not pyplot), so it works headless and in widgets."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def _rect(x: float, y: float, w: float, h: float) -> list[tuple[float, float]]:
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _cmap(colours: Sequence[str]) -> ListedColormap:
    """Discrete colours by index; NaN cells are transparent."""
    return ListedColormap(list(colours)).with_extremes(bad=(0, 0, 0, 0))


def _polys(ax: Axes, **style: object) -> PolyCollection:
    coll = PolyCollection([], **style)
    ax.add_collection(coll, autolim=False)
    return coll


def _lines(ax: Axes, **style: object) -> LineCollection:
    coll = LineCollection([], **style)
    ax.add_collection(coll, autolim=False)
    return coll


def _set_polys(coll: PolyCollection, verts: list, faces: list | None = None) -> None:
    """New polygons (and face colours) for an existing collection."""
    coll.set_verts(verts)
    if faces is not None:
        coll.set_facecolor(faces or "none")


def _legend(ax: Axes, entries: Iterable[tuple[str, dict]], **where: object) -> None:
    """The plot's one legend: patches, or lines when the entry has a ``marker`` or ``ls``.
    ``loc="outside lower center"`` puts it under everything else in the figure (the x label
    included), where constrained layout makes room for it."""
    handles = [Line2D([], [], label=label, **props) if {"marker", "ls"} & set(props)
               else Patch(label=label, **{"edgecolor": EDGE, **props}) for label, props in entries]
    owner = ax.figure if str(where.get("loc", "")).startswith("outside") else ax
    owner.legend(handles=handles, fontsize=SMALL, frameon=False, **where)


def inches_across(ax: Axes) -> float:
    """The width of the figure (or subfigure) ``ax`` is in, in inches."""
    return ax.figure.bbox.width / ax.figure.dpi


def chars_across(ax: Axes, points: float) -> int:
    """About how many characters of a ``points``-sized text fit across ``ax``'s figure (to wrap
    titles)."""
    return int(inches_across(ax) * 72 / (0.55 * points))  # DejaVu Sans: about 0.55 em a character


def _plain(ax: Axes) -> None:
    """Ticks at the house size; no spines."""
    ax.tick_params(labelsize=SMALL, length=2)
    for spine in ax.spines.values():
        spine.set_visible(False)


class View:
    """What every ``draw_X`` returns: the artists of one view, which display as their figure.

    In a notebook the last expression of a cell shows as the picture (``_repr_png_``), unless
    pyplot manages the figure: then the backend shows it already, and once is enough.
    """

    ax: Axes

    @property
    def figure(self) -> Figure:
        return self.ax.get_figure(root=True)

    def _repr_png_(self) -> bytes | None:
        if self.figure.canvas.manager is not None:  # a pyplot figure: its backend shows it
            return None
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def __repr__(self) -> str:
        title = self.ax.get_title().split("\n")[0] or "untitled"
        return f"<{type(self).__name__}: {title}>"


@dataclass(frozen=True)
class Label:
    """One text a pool should show: where, what, and any properties beyond the pool's defaults."""

    x: float
    y: float
    text: str
    props: dict = field(default_factory=dict)


class TextPool:
    """Text artists reused across updates: ``show`` sets the first n and hides the rest.

    A text whose label is the one it already shows is left alone: every setter call marks the
    figure stale, and a stale figure is drawn whole (see ``Setters``)."""

    def __init__(self, ax: Axes, **defaults: object) -> None:
        self.ax = ax
        self.defaults = {"fontsize": SMALL, "ha": "center", "va": "center", "color": "black",
                         "fontweight": "normal", "rotation": 0, "clip_on": False, **defaults}
        self.texts: list[Text] = []
        self.labels: list[Label | None] = []  # what each text shows (None: nothing yet)
        self.count = 0

    def show(self, labels: Iterable[Label]) -> None:
        n = 0
        for n, label in enumerate(labels, 1):
            if n > len(self.texts):
                self.texts.append(self.ax.text(0, 0, ""))
                self.labels.append(None)
            t = self.texts[n - 1]
            if label != self.labels[n - 1]:
                t.set(position=(label.x, label.y), text=label.text, **{**self.defaults, **label.props})
                self.labels[n - 1] = label
            t.set_visible(True)
        for t in self.texts[n:]:
            t.set_visible(False)
        self.count = n

    @property
    def active(self) -> list[Text]:
        """The texts now shown."""
        return self.texts[:self.count]


class Setters:
    """Calls an Axes setter (limits, ticks, labels, title) only when its arguments changed.

    Matplotlib marks a figure stale on every setter call, equal value or not. A dashboard
    redraws a stale figure whole and otherwise only a view's ``changing()`` artists
    (``evtsim.widgets.canvas``), so a view that set unchanged limits and ticks at every step
    would be drawn whole at every step."""

    def __init__(self) -> None:
        self.last: dict[object, tuple] = {}  # bound setter -> (args, kwargs) of its last call

    def __call__(self, setter: Callable[..., object], *args: object, **kwargs: object) -> None:
        call = (args, kwargs)
        if self.last.get(setter) != call:
            setter(*args, **kwargs)
            self.last[setter] = call

    def title(self, ax: Axes, text: str, pad: float | None = None, **props: object) -> None:
        """``ax.set_title``, except that a new text or colour changes the title alone: moving the
        title (``pad``) moves the empty left and right titles too, which marks the figure stale.

        The title sits at the top of the Axes (``y=1``) plus ``pad``: our views have no ticks or
        labels on top, and matplotlib's search for them costs more than the rest of a redraw."""
        if (ax, "pad") not in self.last or self.last[(ax, "pad")] != pad:
            ax.set_title(text, pad=pad, y=1.0, **props)
        elif self.last[(ax, "title")] != (text, props):
            ax.title.update({"text": text, **props})
        self.last[(ax, "pad")], self.last[(ax, "title")] = pad, (text, props)


def _port_name(label: str, state: str) -> str:
    return label or state


def _event_state(pending: bool, masked: bool) -> str:
    return EVENT_STATES[int(pending) + 2 * int(masked)]
