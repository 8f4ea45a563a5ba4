"""The 2-level ABI on screen: shared_info's evtchn_pending / evtchn_mask as a word x bit grid,
each vCPU's evtchn_pending_sel and evtchn_upcall_pending beside it, bound ports labelled.

The whole grid (4096 ports on a 64-bit guest) or, ``zoom``-ed, its corner from port 0 to just past
the last bound port, which is where every event of a guest with a few channels happens.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from ..snapshot import DomainSnapshot
from .style import (
    COLOURS,
    EDGE,
    EVENT_STATES,
    FONT,
    PALE,
    TITLE,
    Label,
    Setters,
    TextPool,
    View,
    _legend,
    _lines,
    _new_axes,
    _plain,
    _polys,
    _port_name,
    _rect,
    _set_polys,
    chars_across,
    inches_across,
)


@dataclass(repr=False)
class TwoLevelArtists(View):
    """What ``draw_two_level`` made, for ``update_two_level`` to change."""

    ax: Axes
    grid: AxesImage  # word x bit, coloured by ``codes``
    selector: PolyCollection  # evtchn_pending_sel: a column of cells per vCPU, a gap between
    upcall: PolyCollection  # evtchn_upcall_pending: one cell per vCPU
    bound: PolyCollection  # an outline around each bound port's cell
    leaders: LineCollection  # from each port's label to its cell
    labels: TextPool  # "3 timer0" above the grid
    rules: LineCollection  # a light line every 8 words and bits
    border: Rectangle  # around the grid
    zoom: bool = False  # only the words and bits from port 0 to the last bound port
    set: Setters = field(default_factory=Setters)
    #: What is shown: the grid's codes (0 neither, 1 pending, 2 masked, 3 both) and the selector
    #: and upcall bits (NaN between vCPUs). The grid image gets colours, not codes: colour mapping
    #: after resampling would cost more than the rest of a redraw.
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    selector_bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    upcall_bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def changing(self) -> list[Artist]:
        """What differs from one snapshot to the next (a dashboard redraws only these)."""
        return [self.ax.title, self.grid, self.selector, self.upcall, self.bound, self.leaders, self.rules, self.border,
                *self.labels.texts]


STRIP = 2.4  # width of a selector column, in cells
NARROW = 7.0  # inches: a figure narrower than this has its legend under the grid
LABEL_ROOM = 14  # characters of port label the space above the grid always has room for


def draw_two_level(snapshot: DomainSnapshot, ax: Axes | None = None, zoom: bool = False) -> TwoLevelArtists:
    """shared_info's 2-level bitmaps as a word x bit grid, with selectors and upcall flags."""
    ax = ax or _new_axes(8.0)
    image = dict(interpolation="nearest", aspect="auto")
    blank = np.zeros((1, 1, 4), np.uint8)
    cells = dict(edgecolors="none", antialiaseds=False)  # adjacent cells without seams
    a = TwoLevelArtists(ax, ax.imshow(blank, **image), _polys(ax, **cells), _polys(ax, **cells),
                        _polys(ax, facecolors="none", edgecolors="black", linewidths=0.8),
                        _lines(ax, colors=EDGE, linewidths=0.6, clip_on=False), TextPool(ax, rotation=90, va="bottom"),
                        _lines(ax, colors="#DDDDDD", linewidths=0.5),
                        ax.add_patch(Rectangle((0, 0), 1, 1, facecolor="none", edgecolor=EDGE, linewidth=0.8)), zoom)
    _plain(ax)
    _legend(ax, [("neither", {"facecolor": COLOURS["neither"]}),
                 ("pending (bit, selector, upcall)", {"facecolor": COLOURS["pending"]}),
                 ("masked", {"facecolor": COLOURS["masked"]}),
                 ("pending and masked", {"facecolor": COLOURS["pending+masked"]}),
                 ("bound port", {"facecolor": "white", "edgecolor": "black"})],
            # beside the grid, clear of the port labels above it; under everything on a narrow figure
            **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if inches_across(ax) >= NARROW else
               {"loc": "outside lower center", "ncols": 3}))
    update_two_level(a, snapshot)
    return a


def update_two_level(a: TwoLevelArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot`` in the artists ``draw_two_level`` made."""
    s, ax = snapshot, a.ax
    words, bits = _shown(s, a.zoom)
    n = len(s.vcpus)
    a.codes = _bit_codes(s)[:words, :bits]
    a.grid.set_data(_colours(a.codes, STATE_RGBA))
    a.grid.set_extent((0, bits, words, 0))
    a.border.set_bounds(0, 0, bits, words)
    strip = _strip(bits)
    left = -1.0 - (2 * n - 1) * strip
    a.selector_bits, a.upcall_bits = _vcpu_strips(s, words)
    columns = [(v, left + 2 * v * strip) for v in range(n)]
    _set_polys(a.selector, [_rect(x, w, strip, 1) for v, x in columns for w in range(words)],
               [FLAG_COLOURS[int(a.selector_bits[w, 2 * v])] for v, _ in columns for w in range(words)])
    _set_polys(a.upcall, [_rect(x, -1.2 * strip, strip, strip) for _, x in columns],
               [FLAG_COLOURS[int(a.upcall_bits[0, 2 * v])] for v, _ in columns])
    a.rules.set_segments([[(0, w), (bits, w)] for w in range(8, words, 8)]
                         + [[(b, 0), (b, words)] for b in range(8, bits, 8)])
    _port_labels(a, s, words, bits)
    _axes_text(a, s, words, bits, [left + (2 * v + 0.5) * strip for v in range(n)])
    top, bottom = -1.3 * strip, words + 0.2
    if a.zoom:  # a few words: room below them, so the cells are square rather than tall stripes
        bottom = max(bottom, top + _height_for_square_cells(ax, bits + 0.6 - left))
    a.set(ax.set_xlim, left - 0.3, bits + 0.3)
    a.set(ax.set_ylim, bottom, top)
    # Room above the grid for the port labels: as much as the longest label needs, and never less
    # than a usual one does, so the title stays put while a trace binds and closes ports.
    longest = max((len(t.get_text()) for t in a.labels.active), default=0)
    a.set.title(ax, _two_level_title(s, chars_across(ax, TITLE)), pad=10 + 5.2 * max(longest, LABEL_ROOM), fontsize=TITLE)


def _height_for_square_cells(ax: Axes, width: float) -> float:
    """The data height that makes cells about square when ``width`` data units span the axes,
    from the room the figure leaves a zoomed grid (its title, the port labels above, the x label
    and the legend below take about 2.7 inches; the y labels about 1.4). An estimate, not
    ``set_aspect``: matplotlib would fit the limits to the layout, and the layout to the limits'
    tick labels, and the two need not settle the same way twice."""
    fig = ax.get_figure(root=True)
    across = max(1.0, inches_across(ax) - 1.4)
    down = max(0.5, fig.get_figheight() - 2.7)
    return width * down / across


def _shown(s: DomainSnapshot, zoom: bool) -> tuple[int, int]:
    """How many words and bits the grid shows: all, or (zoomed) from port 0 to just past the
    last bound port: whole words when it takes more than one, else bits in steps of 16."""
    words, bits = len(s.evtchn_pending), s.bits_per_word
    bound = [p.port for p in s.ports if p.port < words * bits]
    if not zoom or not bound:
        return words, bits
    last_word, last_bit = divmod(max(bound), bits)
    return last_word + 1, bits if last_word else min(bits, 16 * (last_bit // 16 + 1))


def _axes_text(a: TwoLevelArtists, s: DomainSnapshot, words: int, bits: int, centres: list[float]) -> None:
    """Ticks (every bit of a zoomed word, else every 8th) and what the axes are."""
    n, step = len(s.vcpus), 1 if bits <= 16 else 8
    a.set(a.ax.set_xticks, [b + 0.5 for b in range(0, bits, step)] + centres,
          [str(b) for b in range(0, bits, step)] + [_selector_name(v, n, bits) for v in range(n)])
    a.set(a.ax.set_yticks, [w + 0.5 for w in range(0, words, 8)] + [-0.7 * _strip(bits)],
          [str(w) for w in range(0, words, 8)] + ["upcall_pending"])
    total = len(s.evtchn_pending) * s.bits_per_word
    shown = ("" if words * bits == total else
             f"\nzoomed to the bound ports: {_range('word', words)}, {_range('bit', bits)} of {total} ports")
    a.set(a.ax.set_xlabel, f"bit in word (port = word \u00d7 {s.bits_per_word} + bit); left: evtchn_pending_sel "
          f"of each vCPU{', numbered' if n > 4 else ''}{shown}", fontsize=FONT)
    a.set(a.ax.set_ylabel, "word of evtchn_pending / evtchn_mask", fontsize=FONT)


def _strip(bits: int) -> float:
    """A selector column's width, in cells: a fixed share of the grid, or one cell when zoomed."""
    return max(1.0, STRIP * bits / 64)


def _selector_name(v: int, n: int, bits: int) -> str:
    """The tick under vCPU ``v``'s selector column: as much as there is room for."""
    if n > 4:
        return str(v)
    return f"cpu{v}" if bits <= 16 else f"sel\ncpu{v}"


def _range(name: str, count: int) -> str:
    return f"{name} 0" if count == 1 else f"{name}s 0-{count - 1}"


STATE_RGBA = np.array([to_rgba(COLOURS[state]) for state in EVENT_STATES])
FLAG_COLOURS = (PALE, COLOURS["pending"])  # a selector or upcall bit: clear, set


def _colours(codes: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """An RGBA image of ``codes`` (indices into ``palette``); NaN cells are transparent."""
    known = ~np.isnan(codes)
    out = np.zeros((*codes.shape, 4), np.uint8)
    out[known] = np.round(255 * palette[codes[known].astype(int)]).astype(np.uint8)
    return out


def _bit_codes(s: DomainSnapshot) -> np.ndarray:
    """0 neither, 1 pending, 2 masked, 3 both; one row per word, one column per bit."""
    shifts = np.arange(s.bits_per_word, dtype=np.uint64)
    pending = np.array(s.evtchn_pending, dtype=np.uint64)[:, None] >> shifts & np.uint64(1)
    masked = np.array(s.evtchn_mask, dtype=np.uint64)[:, None] >> shifts & np.uint64(1)
    return (pending + 2 * masked).astype(float)


def _vcpu_strips(s: DomainSnapshot, words: int) -> tuple[np.ndarray, np.ndarray]:
    """evtchn_pending_sel (its first ``words`` bits) as columns and evtchn_upcall_pending as
    cells, NaN between vCPUs."""
    n = len(s.vcpus)
    sel, up = np.full((words, 2 * n - 1), np.nan), np.full((1, 2 * n - 1), np.nan)
    for v, vcpu in enumerate(s.vcpus):
        sel[:, 2 * v] = [vcpu.pending_sel >> w & 1 for w in range(words)]
        up[0, 2 * v] = 1 if vcpu.upcall_pending else 0
    return sel, up


def _port_labels(a: TwoLevelArtists, s: DomainSnapshot, words: int, bits: int) -> None:
    """Each bound port shown: its label above the grid, spread apart, a leader line to its cell."""
    per_word = s.bits_per_word
    ports = sorted((p for p in s.ports if p.port < per_word * words and p.port % per_word < bits),
                   key=lambda p: (p.port % per_word, p.port))
    cells = [divmod(p.port, per_word) for p in ports]
    xs = _spread([b + 0.5 for _, b in cells], max(0.6, 1.7 * bits / 64), bits)
    top = -1.3 * _strip(bits)
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


def _two_level_title(s: DomainSnapshot, width: int) -> str:
    head = f"{s.name} (dom{s.domid}) on Xen {s.xen}: shared_info 2-level bitmaps"
    if s.crashed:
        kernel = f"the kernel crashed: {s.crashed}"
    else:
        kernel = f"the kernel believes {s.kernel_abi}" if s.kernel_abi else "no kernel yet"
    line = f"Xen runs the domain in {s.abi}; {kernel}"
    if s.abi != "2-level":
        line += "; Xen no longer sets these bits"
    return f"{head}\n{textwrap.fill(line, width)}"


def two_level(snapshot: DomainSnapshot, ax: Axes | None = None, zoom: bool = False) -> TwoLevelArtists:
    """The 2-level bitmaps of ``snapshot`` (see ``draw_two_level``); it displays as its figure."""
    return draw_two_level(snapshot, ax, zoom)
