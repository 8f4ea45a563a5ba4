"""The 2-level ABI on screen: shared_info's evtchn_pending / evtchn_mask as a word x bit grid,
each vCPU's evtchn_pending_sel and evtchn_upcall_pending beside it, bound ports labelled."""

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
    _legend,
    _lines,
    _new_axes,
    _plain,
    _polys,
    _port_name,
    _rect,
    _set_polys,
)


@dataclass
class TwoLevelArtists:
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
LABEL_ROOM = 14  # characters of port label the space above the grid always has room for


def draw_two_level(snapshot: DomainSnapshot, ax: Axes | None = None) -> TwoLevelArtists:
    """shared_info's 2-level bitmaps as a word x bit grid, with selectors and upcall flags."""
    ax = ax or _new_axes(8.0)
    image = dict(interpolation="nearest", aspect="auto")
    blank = np.zeros((1, 1, 4), np.uint8)
    cells = dict(edgecolors="none", antialiaseds=False)  # adjacent cells without seams
    a = TwoLevelArtists(ax, ax.imshow(blank, **image), _polys(ax, **cells), _polys(ax, **cells),
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
            loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the grid: clear of the port labels above it
    update_two_level(a, snapshot)
    return a


def update_two_level(a: TwoLevelArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot`` in the artists ``draw_two_level`` made."""
    s, ax = snapshot, a.ax
    words, bits, n = len(s.evtchn_pending), s.bits_per_word, len(s.vcpus)
    a.codes = _bit_codes(s)
    a.grid.set_data(_colours(a.codes, STATE_RGBA))
    a.grid.set_extent((0, bits, words, 0))
    a.border.set_bounds(0, 0, bits, words)
    strip = STRIP * bits / 64
    left = -1.0 - (2 * n - 1) * strip
    a.selector_bits, a.upcall_bits = _vcpu_strips(s)
    columns = [(v, left + 2 * v * strip) for v in range(n)]
    _set_polys(a.selector, [_rect(x, w, strip, 1) for v, x in columns for w in range(words)],
               [FLAG_COLOURS[int(a.selector_bits[w, 2 * v])] for v, _ in columns for w in range(words)])
    _set_polys(a.upcall, [_rect(x, -1.2 * strip, strip, strip) for _, x in columns],
               [FLAG_COLOURS[int(a.upcall_bits[0, 2 * v])] for v, _ in columns])
    a.rules.set_segments([[(0, w), (bits, w)] for w in range(8, words, 8)]
                         + [[(b, 0), (b, words)] for b in range(8, bits, 8)])
    _port_labels(a, s)
    centres = [left + (2 * v + 0.5) * strip for v in range(n)]
    a.set(ax.set_xticks, [b + 0.5 for b in range(0, bits, 8)] + centres,
          [str(b) for b in range(0, bits, 8)] + [f"sel\ncpu{v}" if n <= 4 else str(v) for v in range(n)])
    a.set(ax.set_yticks, [w + 0.5 for w in range(0, words, 8)] + [-0.7 * strip],
          [str(w) for w in range(0, words, 8)] + ["upcall_pending"])
    a.set(ax.set_xlim, left - 0.3, bits + 0.3)
    a.set(ax.set_ylim, words + 0.2, -1.3 * strip)
    a.set(ax.set_xlabel, f"bit in word (port = word \u00d7 {bits} + bit); left: evtchn_pending_sel of each vCPU"
          + (", numbered" if n > 4 else ""),
          fontsize=FONT)
    a.set(ax.set_ylabel, "word of evtchn_pending / evtchn_mask", fontsize=FONT)
    # Room above the grid for the port labels: as much as the longest label needs, and never less
    # than a usual one does, so the title stays put while a trace binds and closes ports.
    longest = max((len(t.get_text()) for t in a.labels.active), default=0)
    a.set.title(ax, _two_level_title(s), pad=10 + 5.2 * max(longest, LABEL_ROOM), fontsize=TITLE)


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
