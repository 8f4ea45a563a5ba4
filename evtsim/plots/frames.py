"""Guest memory on screen: the frames with a role (shared_info, control blocks, event-array pages,
image data), where Xen maps them, and Xen's writes into frames that now hold something else."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.text import Text
from matplotlib.transforms import ScaledTranslation

from ..snapshot import DomainSnapshot
from .style import (
    COLOURS,
    FONT,
    SMALL,
    TITLE,
    Label,
    Setters,
    TextPool,
    View,
    _legend,
    _new_axes,
    _plain,
    _polys,
    _rect,
    _set_polys,
    chars_across,
    inches_across,
    ink_on,
)


@dataclass(repr=False)
class FrameMapArtists(View):
    """What ``draw_frame_map`` made, for ``update_frame_map`` to change."""

    ax: Axes
    cells: PolyCollection  # one square per frame with a role, coloured by what it holds
    mapped: PolyCollection  # a thick outline where Xen maps the frame
    hazards: PolyCollection  # hatched: Xen maps a frame that now holds something else
    counts: TextPool  # Xen's write count in each written frame
    rows: TextPool  # the gfn that starts each row
    contents: TextPool  # what a short row's frames hold, after its last cell
    mappings: Text  # under the frames, one line per frame Xen maps (the x label keeps its room)
    rows_shown: int = 3  # room for at least this many rows (a dashboard keeps one size for a whole trace)
    lines_shown: int = 1  # room under the frames for at least this many mapping lines (likewise)
    set: Setters = field(default_factory=Setters)

    def changing(self) -> list[Artist]:
        """What differs from one snapshot to the next (a dashboard redraws only these): all of
        the map; the legend and the room kept for it (``rows_shown``, ``lines_shown``) stay."""
        return [self.ax.title, self.cells, self.mapped, self.hazards, *self.counts.texts, *self.rows.texts,
                *self.contents.texts, self.mappings]


COLUMNS = 32
NARROW = 7.0  # inches: a figure narrower than this has its legend under the frames
LABEL_PAD = 4.0  # points between the frames and the mapping lines under them
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
        ax = _new_axes(2.0 + 0.22 * max(frame_rows(snapshot), 3) + 0.17 * sum(1 for f in snapshot.frames if f.xen_mapping))
    a = FrameMapArtists(ax, _polys(ax, edgecolors="white", linewidths=0.5),
                        _polys(ax, facecolors="none", edgecolors="black", linewidths=1.6),
                        _polys(ax, facecolors=COLOURS["hazard"], edgecolors="black", hatch="//", linewidths=1.6),
                        TextPool(ax, fontweight="bold", bbox=None), TextPool(ax, ha="right"),
                        TextPool(ax, ha="left"),
                        ax.text(0, 0, "", ha="left", va="top", multialignment="left", in_layout=False,
                                transform=ax.transAxes + ScaledTranslation(0, -LABEL_PAD / 72, ax.figure.dpi_scale_trans)))
    ax.set_xticks([])
    ax.set_yticks([])
    _plain(ax)
    _legend(ax, [(name, {"facecolor": COLOURS[role]}) for role, name in ROLE_NAMES.items()]
            + [("Xen maps it (outline)", {"facecolor": "white", "edgecolor": "black", "linewidth": 1.6}),
               ("Xen maps it, but it\nholds something else", {"facecolor": COLOURS["hazard"], "edgecolor": "black",
                                                              "hatch": "//"}),
               ("n: Xen's writes into it", {"facecolor": "white", "edgecolor": "white"})],
            # beside the frames on a wide figure; under them on a narrow one, so the cells keep their size
            **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if inches_across(ax) >= NARROW else
               {"loc": "outside lower center", "ncols": 3}))
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
    a.counts.show(_count(f, r, c) for (r, c), f in zip(places, s.frames) if f.xen_writes)
    starts = [(r, f.gfn) for (r, c), f in zip(places, s.frames) if c == 0]
    a.rows.show(Label(-0.2, r + 0.5, f"{gfn:#x}") for r, gfn in starts)
    a.contents.show(_row_contents(places, s.frames, chars_across(a.ax, SMALL) / (COLUMNS + 3)))
    # wrapped to the axes' width (all of the figure's, or what the legend beside leaves); the axis
    # draws its label with the background, so a new mapping means a whole redraw, as it should
    narrow = inches_across(a.ax) < NARROW
    width = int((0.9 if narrow else 0.68) * chars_across(a.ax, SMALL if narrow else FONT))
    lines, size = _mapping_lines(s, width), SMALL if narrow else FONT
    a.mappings.set(text=lines, fontsize=size)
    a.set(_room_below, a.ax, max(lines.count("\n") + 1, a.lines_shown), size)
    a.set(a.ax.set_xlim, -2.6, COLUMNS)
    a.set(a.ax.set_ylim, max(frame_rows(s), a.rows_shown), 0)
    hazards = sum(_is_hazard(f) for f in s.frames)
    title = (f"{s.name} (dom{s.domid}): frames by gfn, and Xen's writes into them\n"
             + (f"{hazards} frame(s) Xen maps hold something else now: its writes corrupt them"
                if hazards else "every frame Xen maps holds what Xen thinks it holds"))
    width = chars_across(a.ax, TITLE)
    a.set.title(a.ax, "\n".join(textwrap.fill(line, width) for line in title.split("\n")), fontsize=TITLE,
                color=COLOURS["hazard"] if hazards else "black")


def _room_below(ax: Axes, lines: int, size: float) -> None:
    """An x label of ``lines`` blank lines: constrained layout keeps that much room under the
    frames, where the mapping lines are drawn (as a text of their own, so a dashboard can redraw
    them alone). The figure is marked stale, as the axis's own setter does not."""
    ax.set_xlabel("\n".join([" "] * lines), fontsize=size, labelpad=LABEL_PAD)
    ax.stale = True


def frame_rows(snapshot: DomainSnapshot) -> int:
    """How many rows the frame map of ``snapshot`` takes."""
    places = _frame_places(snapshot.frames)
    return places[-1][0] + 1 if places else 1


def _frame_places(frames) -> list[tuple[int, int]]:
    """(row, column) per frame: 32 consecutive gfns to a row, a new row at every gap."""
    places, row, col, last = [], -1, COLUMNS, None
    for f in frames:
        if col >= COLUMNS or last is None or f.gfn != last + 1:
            row, col = row + 1, 0
        places.append((row, col))
        col, last = col + 1, f.gfn
    return places


def _count(frame, row: int, column: int) -> Label:
    """Xen's writes into a frame, in its cell: on a white patch over a hatched hazard (the
    hatching would run through the digits), else in whichever ink reads on the cell's colour."""
    if _is_hazard(frame):
        patch = {"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
        return Label(column + 0.5, row + 0.5, str(frame.xen_writes), {"color": "black", "bbox": patch})
    return Label(column + 0.5, row + 0.5, str(frame.xen_writes), {"color": ink_on(_cell_colour(frame))})


def _cell_colour(frame) -> str:
    return COLOURS["hazard"] if _is_hazard(frame) else COLOURS[_role(frame.content)]


def _row_contents(places: list[tuple[int, int]], frames, chars_per_cell: float) -> list[Label]:
    """After the last cell of each short row: what its frames hold, owner named once."""
    rows: dict[int, list] = {}
    for (r, _), f in zip(places, frames):
        rows.setdefault(r, []).append(f)
    out = []
    for r, row in rows.items():
        room = int((COLUMNS - len(row) - 1.0) * chars_per_cell)
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


def _mapping_lines(s: DomainSnapshot, width: int) -> str:
    """``Xen maps 0xc0 as control_block; it holds hibernation image`` for each frame Xen maps,
    one line each (what the frame holds is shortened to fit ``width`` characters).

    The write counts are in the cells, not here: this label changes only when a mapping or a
    frame's contents do, and its shape (its lines) only when a mapping does."""
    lines = []
    for f in (f for f in s.frames if f.xen_mapping):
        head, tail = f"Xen maps {f.gfn:#x} as {f.xen_mapping}; it holds ", ""
        if _is_hazard(f):
            tail = "  \u2190 Xen's writes corrupt it"
        lines.append(head + textwrap.shorten(f.content, max(12, width - len(head) - len(tail)), placeholder="\u2026")
                     + tail)
    return "\n".join(lines) or "Xen maps no frame"


def frame_map(snapshot: DomainSnapshot, ax: Axes | None = None) -> FrameMapArtists:
    """The frame map of ``snapshot`` (see ``draw_frame_map``); it displays as its figure."""
    return draw_frame_map(snapshot, ax)
