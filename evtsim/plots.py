"""Pictures of evtsim's frozen state: 2-level bitmaps, FIFO queues, frames, timelines, matrices.

Presentation only (architecture.md, "Boundaries"): every view reads a ``DomainSnapshot``, a
``Trace`` or the rows of an alternatives matrix, never a live ``Xen``; the core never imports
this module.

Each view is a pair, so a widget can move through a trace without rebuilding its figure::

    artists = draw_two_level(snapshot, ax=None)   # makes the artists once; artists.ax is the Axes
    update_two_level(artists, other_snapshot)     # changes those same artists in place
    artists.ax.figure.canvas.draw_idle()

``draw_X`` makes empty containers (images, collections, pools of texts) and calls ``update_X``
to fill them, so the two can never disagree. ``update_X`` only calls setters (``set_data``,
``set_verts``, ``set_segments``, ``set_text``, ``set_facecolor``...): texts come from a pool
that grows when needed and hides what it does not use. Updating costs about half a full replot
(ecosystem.md section 7). The short forms ``two_level(snapshot, ax=None)`` and so on return
just the Axes.

With ``ax=None`` a new ``matplotlib.figure.Figure`` with an Agg canvas is made: no pyplot, so it
renders headless, and Jupyter's inline backend displays it. A widget passes its own ``ax``.
One style throughout: the Okabe-Ito palette (colour-blind safe), colour never the only cue
(hatches, letters), one legend per plot, no text under 8 pt on figures about 9 in wide.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text

from .abi import (
    EVTCHN_FIFO_BUSY,
    EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PENDING,
    errno_name,
)
from .snapshot import DomainSnapshot
from .trace import VERDICTS, Trace

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
    "sent": _O["black"], "delivered": _O["bluish green"], "lost": _O["orange"], "stray writes": _O["vermillion"],
    "calls": GREY, "failed": _O["vermillion"], "cursor": "#FFF6C2",
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
    """The plot's one legend: patches, or lines when the entry has a ``marker`` or ``ls``."""
    handles = [Line2D([], [], label=label, **props) if {"marker", "ls"} & set(props)
               else Patch(label=label, **{"edgecolor": EDGE, **props}) for label, props in entries]
    ax.legend(handles=handles, fontsize=SMALL, frameon=False, **where)


def _plain(ax: Axes) -> None:
    """Ticks at the house size; no spines."""
    ax.tick_params(labelsize=SMALL, length=2)
    for spine in ax.spines.values():
        spine.set_visible(False)


@dataclass(frozen=True)
class Label:
    """One text a pool should show: where, what, and any properties beyond the pool's defaults."""

    x: float
    y: float
    text: str
    props: dict = field(default_factory=dict)


class TextPool:
    """Text artists reused across updates: ``show`` sets the first n and hides the rest."""

    def __init__(self, ax: Axes, **defaults: object) -> None:
        self.ax = ax
        self.defaults = {"fontsize": SMALL, "ha": "center", "va": "center", "color": "black",
                         "fontweight": "normal", "rotation": 0, "clip_on": False, **defaults}
        self.texts: list[Text] = []
        self.count = 0

    def show(self, labels: Iterable[Label]) -> None:
        n = 0
        for n, label in enumerate(labels, 1):
            if n > len(self.texts):
                self.texts.append(self.ax.text(0, 0, ""))
            t = self.texts[n - 1]
            t.set(position=(label.x, label.y), text=label.text, visible=True, **{**self.defaults, **label.props})
        for t in self.texts[n:]:
            t.set_visible(False)
        self.count = n

    @property
    def active(self) -> list[Text]:
        """The texts now shown."""
        return self.texts[:self.count]


def _port_name(label: str, state: str) -> str:
    return label or state


def _event_state(pending: bool, masked: bool) -> str:
    return EVENT_STATES[int(pending) + 2 * int(masked)]


# ---------------------------------------------------------------------------------------------
# 1. The 2-level bitmaps: evtchn_pending and evtchn_mask, selectors, upcall flags


@dataclass
class TwoLevelArtists:
    """What ``draw_two_level`` made, for ``update_two_level`` to change."""

    ax: Axes
    grid: AxesImage  # word x bit: 0 neither, 1 pending, 2 masked, 3 both
    selector: AxesImage  # evtchn_pending_sel: one column per vCPU, NaN between
    upcall: AxesImage  # evtchn_upcall_pending: one cell per vCPU
    bound: PolyCollection  # an outline around each bound port's cell
    leaders: LineCollection  # from each port's label to its cell
    labels: TextPool  # "3 timer0" above the grid
    rules: LineCollection  # a light line every 8 words and bits
    border: Rectangle  # around the grid


STRIP = 2.4  # width of a selector column, in cells


def draw_two_level(snapshot: DomainSnapshot, ax: Axes | None = None) -> TwoLevelArtists:
    """shared_info's 2-level bitmaps as a word x bit grid, with selectors and upcall flags."""
    ax = ax or _new_axes(8.0)
    image = dict(cmap=_cmap([COLOURS[s] for s in EVENT_STATES]), vmin=-0.5, vmax=3.5, interpolation="nearest",
                 aspect="auto")
    flag = dict(cmap=_cmap([PALE, COLOURS["pending"]]), vmin=-0.5, vmax=1.5, interpolation="nearest", aspect="auto")
    a = TwoLevelArtists(ax, ax.imshow(np.zeros((1, 1)), **image), ax.imshow(np.zeros((1, 1)), **flag),
                        ax.imshow(np.zeros((1, 1)), **flag),
                        _polys(ax, facecolors="none", edgecolors="black", linewidths=0.8),
                        _lines(ax, colors=EDGE, linewidths=0.6, clip_on=False), TextPool(ax, rotation=90, va="bottom"),
                        _lines(ax, colors="#DDDDDD", linewidths=0.5),
                        ax.add_patch(Rectangle((0, 0), 1, 1, facecolor="none", edgecolor=EDGE, linewidth=0.8)))
    _plain(ax)
    _legend(ax, [("neither", {"facecolor": COLOURS["neither"]}),
                 ("pending (bit, selector, upcall)", {"facecolor": COLOURS["pending"]}),
                 ("masked", {"facecolor": COLOURS["masked"]}),
                 ("pending and masked", {"facecolor": COLOURS["pending+masked"]}),
                 ("bound port", {"facecolor": "white", "edgecolor": "black"})],
            loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    update_two_level(a, snapshot)
    return a


def update_two_level(a: TwoLevelArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot`` in the artists ``draw_two_level`` made."""
    s, ax = snapshot, a.ax
    words, bits, n = len(s.evtchn_pending), s.bits_per_word, len(s.vcpus)
    a.grid.set_data(_bit_codes(s))
    a.grid.set_extent((0, bits, words, 0))
    a.border.set_bounds(0, 0, bits, words)
    strip = STRIP * bits / 64
    left = -1.0 - (2 * n - 1) * strip
    sel, up = _vcpu_strips(s)
    a.selector.set_data(sel)
    a.selector.set_extent((left, -1.0, words, 0))
    a.upcall.set_data(up)
    a.upcall.set_extent((left, -1.0, -0.2 * strip, -1.2 * strip))
    a.rules.set_segments([[(0, w), (bits, w)] for w in range(8, words, 8)]
                         + [[(b, 0), (b, words)] for b in range(8, bits, 8)])
    _port_labels(a, s)
    centres = [left + (2 * v + 0.5) * strip for v in range(n)]
    ax.set_xticks([b + 0.5 for b in range(0, bits, 8)] + centres,
                  [str(b) for b in range(0, bits, 8)] + [f"sel\ncpu{v}" for v in range(n)])
    ax.set_yticks([w + 0.5 for w in range(0, words, 8)] + [-0.7 * strip],
                  [str(w) for w in range(0, words, 8)] + ["upcall_pending"])
    ax.set_xlim(left - 0.3, bits + 0.3)
    ax.set_ylim(words + 0.2, -1.3 * strip)
    ax.set_xlabel(f"bit in word (port = word \u00d7 {bits} + bit); left: evtchn_pending_sel of each vCPU",
                  fontsize=FONT)
    ax.set_ylabel("word of evtchn_pending / evtchn_mask", fontsize=FONT)
    longest = max((len(t.get_text()) for t in a.labels.active), default=0)
    ax.set_title(_two_level_title(s), fontsize=TITLE, pad=max(52, 10 + 5.2 * longest))


def _bit_codes(s: DomainSnapshot) -> np.ndarray:
    """0 neither, 1 pending, 2 masked, 3 both; one row per word, one column per bit."""
    shifts = np.arange(s.bits_per_word, dtype=np.uint64)
    pending = np.array(s.evtchn_pending, dtype=np.uint64)[:, None] >> shifts & np.uint64(1)
    masked = np.array(s.evtchn_mask, dtype=np.uint64)[:, None] >> shifts & np.uint64(1)
    return (pending + 2 * masked).astype(float)


def _vcpu_strips(s: DomainSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """evtchn_pending_sel as columns and evtchn_upcall_pending as cells, NaN between vCPUs."""
    words, n = len(s.evtchn_pending), len(s.vcpus)
    sel, up = np.full((words, 2 * n - 1), np.nan), np.full((1, 2 * n - 1), np.nan)
    for v, vcpu in enumerate(s.vcpus):
        sel[:, 2 * v] = [vcpu.pending_sel >> w & 1 for w in range(words)]
        up[0, 2 * v] = 1 if vcpu.upcall_pending else 0
    return sel, up


def _port_labels(a: TwoLevelArtists, s: DomainSnapshot) -> None:
    """Each bound port's label above the grid, spread apart, with a leader line to its cell."""
    bits, words = s.bits_per_word, len(s.evtchn_pending)
    ports = sorted((p for p in s.ports if p.port < bits * words), key=lambda p: (p.port % bits, p.port))
    cells = [divmod(p.port, bits) for p in ports]
    xs = _spread([b + 0.5 for _, b in cells], 1.7 * bits / 64, bits)
    top = -1.3 * STRIP * bits / 64
    a.labels.show(Label(x, top - 0.3, f"{p.port} {_port_name(p.label, p.state)}") for x, p in zip(xs, ports))
    a.leaders.set_segments([[(x, top - 0.2), (b + 0.5, top + 0.6), (b + 0.5, w + 0.1)] for x, (w, b) in zip(xs, cells)])
    a.bound.set_verts([_rect(b, w, 1, 1) for w, b in cells])


def _spread(xs: list[float], gap: float, right: float) -> list[float]:
    """Sorted positions pushed apart to at least ``gap``, kept left of ``right`` where possible."""
    out: list[float] = []
    for x in xs:
        out.append(max(x, out[-1] + gap) if out else x)
    if out and out[-1] > right:
        out[-1] = right
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - gap)
    return out


def _two_level_title(s: DomainSnapshot) -> str:
    head = f"{s.name} (dom{s.domid}) on Xen {s.xen}: shared_info 2-level bitmaps"
    kernel = f"the kernel believes {s.kernel_abi}" if s.kernel_abi else "no kernel yet"
    line = f"Xen runs the domain in {s.abi}; {kernel}"
    if s.abi != "2-level":
        line += "; Xen no longer sets these bits"
    if s.crashed:
        line += f"; kernel crashed: {s.crashed}"
    return f"{head}\n{textwrap.fill(line, 100)}"


def two_level(snapshot: DomainSnapshot, ax: Axes | None = None) -> Axes:
    """The 2-level bitmaps of ``snapshot`` (see ``draw_two_level``)."""
    return draw_two_level(snapshot, ax).ax


# ---------------------------------------------------------------------------------------------
# 2. FIFO queues: per vCPU, 16 priority queues as linked lists HEAD -> ... -> TAIL


@dataclass
class FifoArtists:
    """What ``draw_fifo_queues`` made, for ``update_fifo_queues`` to change."""

    ax: Axes
    nodes: PolyCollection  # one box per LINKED word reachable from a HEAD
    links: LineCollection  # HEAD -> first node, and each LINK to the next
    heads: Line2D  # an arrowhead at the end of each link
    ready: PolyCollection  # 16 READY cells per vCPU
    broken: PolyCollection  # hatched rows: the control block's frame now holds something else
    node_labels: TextPool  # "3 timer0" / "P.L." in each node
    texts: TextPool  # headers, queue numbers, HEAD and TAIL, notes, event-array pages


NODE_W, NODE_GAP, FIRST_NODE, ROWS_TOP = 4.0, 1.0, 5.3, 2.0  # data units; one queue row is 1 high


def draw_fifo_queues(snapshot: DomainSnapshot, ax: Axes | None = None) -> FifoArtists:
    """Every vCPU's 16 FIFO queues as linked lists, READY bits, and the event-array pages."""
    ax = ax or _new_axes(1.8 + 5.2 * ((len(snapshot.vcpus) + 1) // 2))
    a = FifoArtists(ax, _polys(ax, edgecolors=EDGE, linewidths=0.8, zorder=2),
                    _lines(ax, colors="black", linewidths=0.9, zorder=2),
                    ax.plot([], [], ">", color="black", markersize=4, zorder=2)[0],
                    _polys(ax, edgecolors=EDGE, linewidths=0.6, zorder=2),
                    _polys(ax, facecolors="#FBE3D6", edgecolors=COLOURS["hazard"], hatch="///", linewidths=1.0,
                           zorder=1),
                    TextPool(ax, linespacing=1.05, zorder=3), TextPool(ax, zorder=3))
    ax.set_xticks([])
    ax.set_yticks([])
    _plain(ax)
    _legend(ax, [("P: pending (not masked)", {"facecolor": COLOURS["pending"]}),
                 ("M: masked", {"facecolor": COLOURS["masked"]}),
                 ("P and M", {"facecolor": COLOURS["pending+masked"]}),
                 ("L only: linked, not pending", {"facecolor": "white"}),
                 ("R: READY bit set", {"facecolor": COLOURS["pending"]}),
                 ("queue in a frame that holds something else",
                  {"facecolor": "#FBE3D6", "edgecolor": COLOURS["hazard"], "hatch": "///"})],
            loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=3)
    update_fifo_queues(a, snapshot)
    return a


@dataclass
class _Scene:
    """What one update of the FIFO view will show, gathered before any artist is touched."""

    nodes: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    links: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    ready: list = field(default_factory=list)
    ready_faces: list = field(default_factory=list)
    broken: list = field(default_factory=list)


def update_fifo_queues(a: FifoArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot``'s queues in the artists ``draw_fifo_queues`` made."""
    s, scene = snapshot, _Scene()
    group_w = FIRST_NODE + max([3] + [len(q.ports) for q in s.queues]) * (NODE_W + NODE_GAP) + 2.6
    origins = [((v % 2) * (group_w + 1.5), (v // 2) * (EVTCHN_FIFO_MAX_QUEUES + ROWS_TOP + 1))
               for v in range(len(s.vcpus))]
    words = {p.port: p for p in s.ports}
    for v, (x0, y0) in enumerate(origins):
        scene.texts += _group_labels(s, v, x0, y0)
        queues = {q.priority: q for q in s.queues if q.vcpu == v}
        for prio in range(EVTCHN_FIFO_MAX_QUEUES):
            _queue_row(scene, queues.get(prio), x0, y0 + ROWS_TOP + prio, group_w, words)
    bottom = max(y0 for _, y0 in origins) + ROWS_TOP + EVTCHN_FIFO_MAX_QUEUES + 0.3
    scene.texts.append(_pages_label(s, bottom))
    if not s.queues and s.abi != "fifo":
        scene.texts.append(Label((origins[-1][0] + group_w) / 2, bottom / 2,
                                 f"Xen runs this domain in {s.abi}: no FIFO queues", {"fontsize": FONT}))
    _show_scene(a, scene)
    a.ax.set_xlim(-1.6, max(x0 for x0, _ in origins) + group_w)
    a.ax.set_ylim(bottom + 1.2, -0.2)
    a.ax.set_title(f"{s.name} (dom{s.domid}) on Xen {s.xen}: FIFO queues per vCPU, priority 0 (highest) "
                   f"to 15\nXen runs the domain in {s.abi}; the kernel believes {s.kernel_abi or 'nothing yet'}",
                   fontsize=TITLE)


def _queue_row(scene: _Scene, q, x0: float, y: float, group_w: float, words: dict) -> None:
    """One priority's row: READY, then HEAD -> nodes along LINK -> TAIL; hatched if broken."""
    scene.ready.append(_rect(x0, y + 0.15, 0.7, 0.7))
    scene.ready_faces.append(COLOURS["pending"] if q and q.ready else "white")
    if q is None:
        return
    if q.ready:
        scene.texts.append(Label(x0 + 0.35, y + 0.5, "R"))
    if q.note:
        scene.broken.append(_rect(x0 - 0.2, y + 0.02, group_w - 0.6, 0.96))
    scene.texts.append(Label(x0 + 0.9, y + 0.5, f"HEAD {q.head}", {"ha": "left"}))
    x = x0 + FIRST_NODE
    for i, port in enumerate(q.ports):
        scene.links.append([(x - (0.9 if i == 0 else NODE_GAP), y + 0.5), (x, y + 0.5)])
        scene.nodes.append(_rect(x, y + 0.08, NODE_W, 0.84))
        scene.faces.append(COLOURS[_word_state(words.get(port))])
        scene.labels.append(Label(x + NODE_W / 2, y + 0.5, _node_text(port, words.get(port))))
        x += NODE_W + NODE_GAP
    scene.texts.append(_tail_label(q, x - NODE_GAP + 0.2, y + 0.5))


def _show_scene(a: FifoArtists, scene: _Scene) -> None:
    _set_polys(a.nodes, scene.nodes, scene.faces)
    _set_polys(a.ready, scene.ready, scene.ready_faces)
    a.broken.set_verts(scene.broken)
    a.links.set_segments(scene.links)
    a.heads.set_data([seg[1][0] - 0.15 for seg in scene.links], [seg[1][1] for seg in scene.links])
    a.node_labels.show(scene.labels)
    a.texts.show(scene.texts)


def _group_labels(s: DomainSnapshot, v: int, x0: float, y0: float) -> list[Label]:
    """The vCPU header (with the broken-frame note), the READY column name, queue numbers."""
    notes = sorted({q.note for q in s.queues if q.vcpu == v and q.note})
    out = [Label(x0 - 1.4, y0 + 0.3, f"vCPU{v}", {"ha": "left", "fontsize": FONT, "fontweight": "bold"}),
           Label(x0 + 0.35, y0 + ROWS_TOP - 0.35, "READY", {"fontsize": SMALL})]
    if notes:
        out.append(Label(x0 + 1.4, y0 + 0.3, "; ".join(notes), {"ha": "left", "color": COLOURS["hazard"]}))
    if v % 2 == 0:  # the second column shares the first one's rows
        out += [Label(x0 - 0.3, y0 + ROWS_TOP + p + 0.5, f"q{p}", {"ha": "right", "color": "#555555"})
                for p in range(EVTCHN_FIFO_MAX_QUEUES)]
    return out


def _word_state(port) -> str:
    """The node's colour key from its event word's P and M bits."""
    word = port.word if port is not None and port.word is not None else 0
    return _event_state(bool(word & WORD_FLAGS[0][1]), bool(word & WORD_FLAGS[1][1]))


def _node_text(port: int, snap) -> str:
    """``3 timer0`` over the word's P M L B bits, a dot for each clear one."""
    if snap is None or snap.word is None:
        return f"{port} (unbound)\n? ? L ?"
    flags = " ".join(letter if snap.word & bit else "." for letter, bit in WORD_FLAGS)
    return f"{port} {_port_name(snap.label, snap.state)}\n{flags}"


def _tail_label(q, x: float, y: float) -> Label:
    """TAIL after the last node: stale once the queue drained, red if the walk misses it."""
    if not q.ports:
        return Label(x, y, f"empty: HEAD's word is not LINKED (TAIL {q.tail} is stale)", {"ha": "left",
                                                                                           "color": "#555555"})
    if q.tail == q.ports[-1]:
        return Label(x, y, "\u2190 TAIL", {"ha": "left"})
    return Label(x, y, f"TAIL {q.tail} (not reached from HEAD)", {"ha": "left", "color": COLOURS["hazard"]})


def _pages_label(s: DomainSnapshot, y: float) -> Label:
    """Which frames Xen maps as event-array pages, and what each holds now."""
    pages = [f for f in s.frames if f.xen_mapping == "event_array"]
    if not pages:
        return Label(-1.4, y, "event-array pages: none mapped", {"ha": "left", "va": "top", "fontsize": FONT})
    wrong = any(_role(f.content) != "event_array" for f in pages)
    text = "event-array pages Xen maps: " + ", ".join(f"{f.gfn:#x} (holds: {f.content})" for f in pages)
    return Label(-1.4, y, text, {"ha": "left", "va": "top", "fontsize": FONT,
                                 "color": COLOURS["hazard"] if wrong else "black"})


def fifo_queues(snapshot: DomainSnapshot, ax: Axes | None = None) -> Axes:
    """The FIFO queues of ``snapshot`` (see ``draw_fifo_queues``)."""
    return draw_fifo_queues(snapshot, ax).ax


# ---------------------------------------------------------------------------------------------
# 3. The frame map: which frames hold what, which Xen maps, and Xen's writes


@dataclass
class FrameMapArtists:
    """What ``draw_frame_map`` made, for ``update_frame_map`` to change."""

    ax: Axes
    cells: PolyCollection  # one square per frame with a role, coloured by what it holds
    mapped: PolyCollection  # a thick outline where Xen maps the frame
    hazards: PolyCollection  # hatched: Xen maps a frame that now holds something else
    counts: TextPool  # Xen's write count in each written frame
    rows: TextPool  # the gfn that starts each row
    contents: TextPool  # what a short row's frames hold, after its last cell
    mappings: Text  # the x label: one line per frame Xen maps


COLUMNS = 32
ROLES = {"shared_info": "shared_info", "control block": "control_block", "event channels": "event_array",
         "image": "image", "restored": "image"}
ROLE_NAMES = {"shared_info": "shared_info", "control_block": "FIFO control block", "event_array": "event-array page",
              "image": "image / restored RAM", "other": "other"}


def _role(content: str) -> str:
    """What a frame's content label says it holds, as one of the ``ROLE_NAMES`` keys."""
    return next((role for key, role in ROLES.items() if key in content), "other")


def _is_hazard(frame) -> bool:
    """Xen maps the frame as a structure the frame no longer holds (vcpu_info lives in shared_info)."""
    if frame.xen_mapping is None:
        return False
    want = "shared_info" if frame.xen_mapping == "vcpu_info" else frame.xen_mapping
    return _role(frame.content) != want


def draw_frame_map(snapshot: DomainSnapshot, ax: Axes | None = None) -> FrameMapArtists:
    """The frames with a role, 32 to a row (a new row after each gap in gfns)."""
    if ax is None:
        rows = len({r for r, _ in _frame_places(snapshot.frames)})
        ax = _new_axes(2.0 + 0.22 * max(rows, 3) + 0.17 * sum(1 for f in snapshot.frames if f.xen_mapping))
    count_box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
    a = FrameMapArtists(ax, _polys(ax, edgecolors="white", linewidths=0.5),
                        _polys(ax, facecolors="none", edgecolors="black", linewidths=1.6),
                        _polys(ax, facecolors=COLOURS["hazard"], edgecolors="black", hatch="//", linewidths=1.6),
                        TextPool(ax, fontweight="bold", bbox=count_box), TextPool(ax, ha="right"),
                        TextPool(ax, ha="left"), ax.xaxis.label)
    ax.set_xticks([])
    ax.set_yticks([])
    _plain(ax)
    _legend(ax, [(name, {"facecolor": COLOURS[role]}) for role, name in ROLE_NAMES.items()]
            + [("Xen maps it (outline)", {"facecolor": "white", "edgecolor": "black", "linewidth": 1.6}),
               ("Xen maps it, but it\nholds something else", {"facecolor": COLOURS["hazard"], "edgecolor": "black",
                                                              "hatch": "//"}),
               ("n: Xen's writes into it", {"facecolor": "white", "edgecolor": "white"})],
            loc="upper left", bbox_to_anchor=(1.01, 1.0))
    update_frame_map(a, snapshot)
    return a


def update_frame_map(a: FrameMapArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot``'s frames in the artists ``draw_frame_map`` made."""
    s = snapshot
    places = _frame_places(s.frames)
    boxes = [_rect(c + 0.05, r + 0.05, 0.9, 0.9) for r, c in places]
    _set_polys(a.cells, boxes, [COLOURS[_role(f.content)] for f in s.frames])
    a.mapped.set_verts([b for b, f in zip(boxes, s.frames) if f.xen_mapping and not _is_hazard(f)])
    a.hazards.set_verts([b for b, f in zip(boxes, s.frames) if _is_hazard(f)])
    a.counts.show(Label(c + 0.5, r + 0.5, str(f.xen_writes)) for (r, c), f in zip(places, s.frames) if f.xen_writes)
    starts = [(r, f.gfn) for (r, c), f in zip(places, s.frames) if c == 0]
    a.rows.show(Label(-0.2, r + 0.5, f"{gfn:#x}") for r, gfn in starts)
    a.contents.show(_row_contents(places, s.frames))
    a.ax.set_xlabel(_mapping_lines(s), loc="left", fontsize=FONT, multialignment="left")
    rows = places[-1][0] + 1 if places else 1
    a.ax.set_xlim(-2.6, COLUMNS)
    a.ax.set_ylim(max(rows, 3), 0)
    hazards = sum(_is_hazard(f) for f in s.frames)
    a.ax.set_title(f"{s.name} (dom{s.domid}): frames with a role, by gfn, and Xen's writes into them\n"
                   + (f"{hazards} frame(s) that Xen still maps now hold something else: Xen's writes corrupt them"
                      if hazards else "every frame Xen maps holds what Xen thinks it holds"), fontsize=TITLE,
                   color=COLOURS["hazard"] if hazards else "black")


def _frame_places(frames) -> list[tuple[int, int]]:
    """(row, column) per frame: 32 consecutive gfns to a row, a new row at every gap."""
    places, row, col, last = [], -1, COLUMNS, None
    for f in frames:
        if col >= COLUMNS or last is None or f.gfn != last + 1:
            row, col = row + 1, 0
        places.append((row, col))
        col, last = col + 1, f.gfn
    return places


def _row_contents(places: list[tuple[int, int]], frames) -> list[Label]:
    """After the last cell of each short row: what its frames hold, owner named once."""
    rows: dict[int, list] = {}
    for (r, _), f in zip(places, frames):
        rows.setdefault(r, []).append(f)
    out = []
    for r, row in rows.items():
        room = int((COLUMNS - len(row) - 1.0) * 3.3)
        if room >= 12:
            out.append(Label(len(row) + 0.3, r + 0.5, textwrap.shorten(_summary(f.content for f in row), room)))
    return out


def _summary(contents: Iterable[str]) -> str:
    """``boot kernel: FIFO control block cpu0, event channels``: each owner's prefix once."""
    owners: dict[str, list[str]] = {}
    for content in dict.fromkeys(contents):
        owner, _, what = content.rpartition(": ")
        owners.setdefault(owner, []).append(what)
    return "; ".join(f"{owner}: {', '.join(whats)}" if owner else ", ".join(whats) for owner, whats in owners.items())


def _mapping_lines(s: DomainSnapshot) -> str:
    """``0xc0 control_block: holds hibernation image (4 writes)`` for each frame Xen maps."""
    lines = [f"Xen maps {f.gfn:#x} as {f.xen_mapping}; it holds {textwrap.shorten(f.content, 40)}; "
             f"{f.xen_writes} Xen writes" + ("  \u2190 corrupted" if _is_hazard(f) else "")
             for f in s.frames if f.xen_mapping]
    return "\n".join(lines) or "Xen maps no frame"


def frame_map(snapshot: DomainSnapshot, ax: Axes | None = None) -> Axes:
    """The frame map of ``snapshot`` (see ``draw_frame_map``)."""
    return draw_frame_map(snapshot, ax).ax


# ---------------------------------------------------------------------------------------------
# 4. The timeline of a trace: ABI per domain, hypercalls and their return codes, events


@dataclass
class TimelineArtists:
    """What ``draw_timeline`` made, for ``update_timeline`` to change."""

    ax: Axes  # the frame; the three lanes are insets of it
    abi_ax: Axes
    calls_ax: Axes
    events_ax: Axes
    abi: PolyCollection  # one cell per (domain, Xen or kernel, step), coloured by ABI
    mismatch: PolyCollection  # hatched where Xen's ABI and the kernel's differ (the bug)
    ok_calls: PolyCollection  # bars: hypercalls that returned >= 0
    failed_calls: PolyCollection  # bars stacked on top: hypercalls that returned -errno
    errors: TextPool  # "init_control\n-ENOSYS" over the failed bars
    abi_texts: TextPool  # "BUG" where a kernel crashed
    sent: Line2D
    delivered: Line2D
    lost: Line2D
    stray: Line2D
    cursors: list[Rectangle]  # the selected step, in each lane


EVENT_LINES = (("sent", "o", "-"), ("delivered", "s", "-"), ("lost", "^", "--"), ("stray writes", "x", ":"))


def draw_timeline(trace: Trace, ax: Axes | None = None, step: int | None = None) -> TimelineArtists:
    """Steps left to right: the ABI per domain, hypercalls with failures named, events."""
    ax = ax or _new_axes(7.5)
    ax.set_axis_off()
    events_ax = ax.inset_axes((0, 0, 1, 0.34))
    calls_ax = ax.inset_axes((0, 0.40, 1, 0.25), sharex=events_ax)
    abi_ax = ax.inset_axes((0, 0.71, 1, 0.29), sharex=events_ax)
    lines = [events_ax.plot([], [], marker=m, ls=ls, color=COLOURS[k], lw=1.6, markersize=4)[0]
             for k, m, ls in EVENT_LINES]
    a = TimelineArtists(
        ax, abi_ax, calls_ax, events_ax, _polys(abi_ax, edgecolors="white", linewidths=1.0),
        _polys(abi_ax, facecolors="none", edgecolors=COLOURS["hazard"], hatch="///", linewidths=1.5),
        _polys(calls_ax, facecolors=COLOURS["calls"], edgecolors="none"),
        _polys(calls_ax, facecolors=COLOURS["failed"], edgecolors="none"), TextPool(calls_ax, va="bottom"),
        TextPool(abi_ax, color="white", fontweight="bold"), *lines,
        cursors=[lane.axvspan(0, 1, color=COLOURS["cursor"], zorder=0) for lane in (abi_ax, calls_ax, events_ax)])
    for lane in (abi_ax, calls_ax, events_ax):
        _plain(lane)
        lane.tick_params(axis="x", labelbottom=lane is events_ax)
    calls_ax.set_ylabel("hypercalls", fontsize=FONT)
    events_ax.set_ylabel("events\n(cumulative)", fontsize=FONT)
    _legend(ax, [(name, {"facecolor": COLOURS[key]}) for name, key in
                 (("2-level", "2-level"), ("FIFO", "fifo"), ("no kernel", "no kernel"), ("kernel crashed", "crashed"))]
            + [("Xen and kernel disagree", {"facecolor": "none", "edgecolor": COLOURS["hazard"], "hatch": "///"}),
               ("calls returning >= 0", {"facecolor": COLOURS["calls"]}),
               ("calls returning -errno", {"facecolor": COLOURS["failed"]})]
            + [(k, {"color": COLOURS[k], "marker": m, "ls": ls}) for k, m, ls in EVENT_LINES],
            loc="upper left", bbox_to_anchor=(1.01, 1.0))
    update_timeline(a, trace, step)
    return a


def update_timeline(a: TimelineArtists, trace: Trace, step: int | None = None) -> None:
    """Show ``trace`` (and highlight ``step``) in the artists ``draw_timeline`` made."""
    _abi_lane(a, trace)
    _calls_lane(a, trace)
    _events_lane(a, trace)
    for cursor in a.cursors:
        cursor.set_visible(step is not None)
        cursor.set_x((step if step is not None else 0) - 0.5)
        cursor.set_width(1.0)
    params = " ".join(f"{k}={v}" for k, v in trace.params)
    a.ax.set_title(textwrap.fill(f"{trace.scenario} ({params})", 95) + "\n"
                   + textwrap.fill(f"outcome: {trace.outcome.summary}", 95), fontsize=TITLE)


def _events_lane(a: TimelineArtists, trace: Trace) -> None:
    """Cumulative events sent, delivered and lost, and Xen's stray writes; the step names."""
    records = trace.records
    xs = np.arange(len(records))
    values = {"sent": [r.sent for r in records], "delivered": [r.delivered for r in records],
              "lost": [r.sent - r.delivered for r in records], "stray writes": [r.stray_writes for r in records]}
    for line, (key, _, _) in zip((a.sent, a.delivered, a.lost, a.stray), EVENT_LINES):
        line.set_data(xs, values[key])
    top = max([1] + values["sent"] + values["stray writes"])
    a.events_ax.set_ylim(-0.05 * top, top * 1.1)
    a.events_ax.set_xlim(-0.6, len(records) - 0.4)
    names = [textwrap.fill(f"{r.index} {r.step}", 26, break_on_hyphens=False) for r in records]
    a.events_ax.set_xticks(xs, names, rotation=30, ha="right", rotation_mode="anchor", fontsize=SMALL)


def _abi_lane(a: TimelineArtists, trace: Trace) -> None:
    """Two rows per domain, Xen's ABI and the kernel's, one cell per step."""
    names = list(dict.fromkeys(d.name for r in trace.records for d in r.domains))
    cells, faces, bad, crashes = [], [], [], []
    for r in trace.records:
        for d in r.domains:
            y = 2 * names.index(d.name)
            kernel = "crashed" if d.crashed else (d.kernel_abi or "no kernel")
            for row, key in ((y, d.abi), (y + 1, kernel)):
                cells.append(_rect(r.index - 0.48, row + 0.05, 0.96, 0.9))
                faces.append(COLOURS.get(key, GREY))
            if d.crashed:
                crashes.append(Label(r.index, y + 1.5, "BUG"))
            if d.kernel_abi and d.kernel_abi != d.abi:
                bad.append(_rect(r.index - 0.48, y + 0.05, 0.96, 1.9))
    _set_polys(a.abi, cells, faces)
    a.mismatch.set_verts(bad)
    a.abi_texts.show(crashes)
    a.abi_ax.set_ylim(2 * len(names) + 0.05, -0.05)
    a.abi_ax.set_yticks([i + 0.5 for i in range(2 * len(names))],
                        [f"{n} {who}" for n in names for who in ("Xen", "kernel")])


def _calls_lane(a: TimelineArtists, trace: Trace) -> None:
    """Bars of hypercalls per step, failures on top, each failure named by op and errno."""
    ok, failed, labels = [], [], []
    top = 1
    for r in trace.records:
        good = sum(c.rc >= 0 for c in r.calls)
        bad = len(r.calls) - good
        ok.append(_rect(r.index - 0.3, 0, 0.6, good))
        failed.append(_rect(r.index - 0.3, good, 0.6, bad))
        top = max(top, len(r.calls))
        if bad:
            labels.append(Label(r.index, len(r.calls) + 0.3, _failures(r.calls), {"color": COLOURS["failed"]}))
    a.ok_calls.set_verts(ok)
    a.failed_calls.set_verts(failed)
    a.errors.show(labels)
    a.calls_ax.set_ylim(0, top * 1.9)


def _failures(calls) -> str:
    """``init_control -ENOSYS`` (with ``x2`` when repeated), one line per distinct failure."""
    counts: dict[tuple[str, int], int] = {}
    for c in calls:
        if c.rc < 0:
            counts[(c.op, c.rc)] = counts.get((c.op, c.rc), 0) + 1
    lines = [f"{op}\n{errno_name(rc)}" + (f" x{n}" if n > 1 else "") for (op, rc), n in counts.items()]
    return "\n".join(lines[:2]) + (f"\n+{len(lines) - 2} more" if len(lines) > 2 else "")


def timeline(trace: Trace, ax: Axes | None = None, step: int | None = None) -> Axes:
    """The timeline of ``trace`` (see ``draw_timeline``)."""
    return draw_timeline(trace, ax, step).ax


# ---------------------------------------------------------------------------------------------
# 5. The alternatives matrix: one coloured cell per run, by verdict


@dataclass
class MatrixArtists:
    """What ``draw_alternatives_matrix`` made, for ``update_alternatives_matrix``."""

    ax: Axes
    image: AxesImage  # one cell per (row label, column label): the verdict's index in VERDICTS, NaN if none
    texts: TextPool  # the verdict, short, in each cell
    rules: LineCollection  # white lines between cells
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)


OUTCOME_FIELDS = frozenset({"verdict", "summary", "seed", "sent", "delivered", "lost", "stray_writes", "crash",
                            "corrupted_frames", "first_loss_step", "first_corruption_step", "crash_step",
                            "channels_closed", "outcome"})
ROW_KEYS = ("fix", "errno")
COLUMN_ORDER = ("old_xen", "xen", "guest_fallback")


def matrix_cells(rows: Iterable[object]) -> tuple[list[str], list[str], dict[tuple[str, str], str], str, str]:
    """Pivot runs into (row labels, column labels, {(row, column): verdict}, row title, column title).

    Rows are fix (plus errno where a fix was run with several), columns every other parameter
    that varies (host pair, then guest fallback, then the rest)."""
    dicts = [_row_dict(r) for r in rows]
    for d in dicts:
        if d.get("verdict") not in VERDICTS:
            raise ValueError(f"row {d} has no verdict among {', '.join(VERDICTS)}")
    keys = [k for k in dict.fromkeys(k for d in dicts for k in d) if k not in OUTCOME_FIELDS]
    varying = [k for k in keys if len({str(d.get(k)) for d in dicts}) > 1]
    row_keys = [k for k in ROW_KEYS if k in varying or (k == "fix" and k in keys)]
    col_keys = sorted((k for k in varying if k not in row_keys),
                      key=lambda k: COLUMN_ORDER.index(k) if k in COLUMN_ORDER else len(COLUMN_ORDER))
    multi = _errnos_per_fix(dicts) if "errno" in row_keys else {}
    cells = {(_row_label(d, row_keys, multi), _col_label(d, col_keys)): str(d["verdict"]) for d in dicts}
    row_labels = _ordered(dicts, [r for r, _ in cells], lambda d: _row_label(d, row_keys, multi), row_keys)
    col_labels = _ordered(dicts, [c for _, c in cells], lambda d: _col_label(d, col_keys), col_keys)
    return row_labels, col_labels, cells, " / ".join(row_keys), _col_title(col_keys)


def _row_dict(row: object) -> dict[str, object]:
    """A flat dict from a mapping, a sweep Row (``as_dict``), a Trace or any dataclass."""
    if isinstance(row, Mapping):
        d = dict(row)
    elif hasattr(row, "as_dict"):
        d = dict(row.as_dict())
    elif dataclasses.is_dataclass(row):
        d = {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "records"}
    else:
        d = dict(vars(row))
    params = d.pop("params", None)
    if params is not None:
        d.update(dict(params) if not dataclasses.is_dataclass(params) else dataclasses.asdict(params))
    outcome = d.get("outcome")
    if "verdict" not in d and hasattr(outcome, "verdict"):
        d["verdict"] = outcome.verdict
    return d


def _errnos_per_fix(dicts: list[dict]) -> set[str]:
    """The fixes run with more than one errno: only their rows name the errno."""
    seen: dict[str, set[str]] = {}
    for d in dicts:
        seen.setdefault(str(d.get("fix")), set()).add(str(d.get("errno")))
    return {fix for fix, errnos in seen.items() if len(errnos) > 1}


def _row_label(d: dict, keys: list[str], multi: set[str]) -> str:
    parts = [str(d.get(k)) for k in keys if k != "errno" or str(d.get("fix")) in multi or "fix" not in keys]
    return " / ".join(parts) or "all"


def _col_label(d: dict, keys: list[str]) -> str:
    """Values one per line; an old and a new host read ``4.3 -> 4.4``."""
    parts = [str(d.get(k)) for k in keys if k not in ("old_xen", "xen")]
    hosts = [str(d.get(k)) for k in ("old_xen", "xen") if k in keys]
    return "\n".join(["\u2192".join(hosts)] * bool(hosts) + parts) or "all"


def _col_title(keys: list[str]) -> str:
    hosts = [k for k in ("old_xen", "xen") if k in keys]
    return " / ".join([" \u2192 ".join(hosts)] * bool(hosts) + [k for k in keys if k not in hosts])


def _ordered(dicts: list[dict], present: list[str], label, keys: list[str]) -> list[str]:
    """Labels ordered by each key's values in order of first appearance (input order within)."""
    firsts = {k: list(dict.fromkeys(str(d.get(k)) for d in dicts)) for k in keys}
    rank = {}
    for d in dicts:
        rank.setdefault(label(d), tuple(firsts[k].index(str(d.get(k))) for k in keys))
    return sorted(dict.fromkeys(present), key=lambda lab: rank[lab])


def draw_alternatives_matrix(rows: Iterable[object], ax: Axes | None = None,
                             title: str = "Each alternative's outcome") -> MatrixArtists:
    """A coloured table, one cell per run, coloured and lettered by verdict."""
    rows = list(rows)
    if ax is None:
        row_labels, col_labels, *_ = matrix_cells(rows)
        ax = _new_axes(2.0 + 0.25 * len(row_labels) + (0.8 if len(col_labels) > 12 else 0.3))
    image = ax.imshow(np.zeros((1, 1)), cmap=_cmap([VERDICT_COLOURS[v] for v in VERDICTS]), vmin=-0.5,
                      vmax=len(VERDICTS) - 0.5, interpolation="nearest", aspect="auto")
    a = MatrixArtists(ax, image, TextPool(ax), _lines(ax, colors="white", linewidths=1.5))
    _plain(ax)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_title(title, fontsize=TITLE)
    _legend(ax, [(f"{v} ({VERDICT_SHORT[v]})", {"facecolor": VERDICT_COLOURS[v]}) for v in VERDICTS]
            + [("not run", {"facecolor": "white"})], loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=5)
    update_alternatives_matrix(a, rows)
    return a


def update_alternatives_matrix(a: MatrixArtists, rows: Iterable[object]) -> None:
    """Show ``rows`` in the artists ``draw_alternatives_matrix`` made."""
    row_labels, col_labels, cells, row_title, col_title = matrix_cells(rows)
    grid = np.full((len(row_labels), len(col_labels)), np.nan)
    texts = []
    for (r, c), verdict in cells.items():
        i, j = row_labels.index(r), col_labels.index(c)
        grid[i, j] = VERDICTS.index(verdict)
        ink = "white" if verdict in ("memory corrupted", "works") else "black"
        texts.append(Label(j, i, VERDICT_SHORT[verdict], {"color": ink}))
    nr, nc = grid.shape
    a.image.set_data(grid)
    a.image.set_extent((-0.5, nc - 0.5, nr - 0.5, -0.5))
    a.texts.show(texts)
    a.rules.set_segments([[(j - 0.5, -0.5), (j - 0.5, nr - 0.5)] for j in range(1, nc)]
                         + [[(-0.5, i - 0.5), (nc - 0.5, i - 0.5)] for i in range(1, nr)])
    a.row_labels, a.col_labels = row_labels, col_labels
    a.ax.set_xticks(range(nc), col_labels, fontsize=SMALL, rotation=90 if nc > 12 else 0)
    a.ax.set_yticks(range(nr), row_labels, fontsize=SMALL)
    a.ax.set_xlim(-0.5, nc - 0.5)
    a.ax.set_ylim(nr - 0.5, -0.5)
    a.ax.set_xlabel(col_title, fontsize=FONT)
    a.ax.set_ylabel(row_title, fontsize=FONT)


def alternatives_matrix(rows: Iterable[object], ax: Axes | None = None,
                        title: str = "Each alternative's outcome") -> Axes:
    """The alternatives matrix of ``rows`` (see ``draw_alternatives_matrix``)."""
    return draw_alternatives_matrix(rows, ax, title).ax


__all__ = ["COLOURS", "OKABE_ITO", "VERDICT_COLOURS", "FifoArtists", "FrameMapArtists", "Label", "MatrixArtists",
           "TextPool", "TimelineArtists", "TwoLevelArtists", "alternatives_matrix", "draw_alternatives_matrix",
           "draw_fifo_queues", "draw_frame_map", "draw_timeline", "draw_two_level", "fifo_queues", "frame_map",
           "matrix_cells", "timeline", "two_level", "update_alternatives_matrix", "update_fifo_queues",
           "update_frame_map", "update_timeline", "update_two_level"]
