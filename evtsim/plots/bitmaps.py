"""The 2-level ABI on screen: shared_info's evtchn_pending / evtchn_mask as a word x bit grid,
each vCPU's evtchn_pending_sel and evtchn_upcall_pending beside it, bound ports labelled."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
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
    TextPool,
    _cmap,
    _legend,
    _lines,
    _new_axes,
    _plain,
    _polys,
    _port_name,
    _rect,
)


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
