"""A trace over time: the ABI Xen and each kernel use, hypercalls with their failures named
(``-ENOSYS`` visible), and events sent, delivered and not yet delivered, with the selected step
framed."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..abi import errno_name
from ..trace import Trace
from .style import (
    COLOURS,
    FONT,
    GREY,
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
)


@dataclass(repr=False)
class TimelineArtists(View):
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
    undelivered: Line2D  # sent minus delivered so far: in flight or lost, the trace cannot tell yet
    stray: Line2D
    cursors: list[Rectangle]  # a frame around the selected step, in each lane
    set: Setters = field(default_factory=Setters)
    trace: Trace | None = None  # the trace the lanes show

    def changing(self) -> list[Artist]:
        """What differs from one trace or step to the next (a dashboard redraws only these): the
        data in the lanes, the title and the cursor. The lanes' limits and ticks change only when
        a trace has other steps, other domains or other magnitudes (see ``_ceiling``)."""
        return [self.ax.title, self.abi, self.mismatch, self.ok_calls, self.failed_calls, *self.errors.texts,
                *self.abi_texts.texts, self.sent, self.delivered, self.undelivered, self.stray, *self.cursors]


#: (colour key, legend label, marker, line style) of each line in the events lane.
EVENT_LINES = (("sent", "sent", "o", "-"), ("delivered", "delivered", "s", "-"),
               ("undelivered", "not (yet) delivered", "^", "--"), ("stray writes", "Xen's stray writes", "x", ":"))


UPRIGHT_ROOM = 1.0  # inches per step from which the step names stand upright


def draw_timeline(trace: Trace, ax: Axes | None = None, step: int | None = None) -> TimelineArtists:
    """Steps left to right: the ABI per domain, hypercalls with failures named, events."""
    ax = ax or _new_axes(7.5)
    ax.set_axis_off()
    events_ax = ax.inset_axes((0, 0, 1, 0.34))
    calls_ax = ax.inset_axes((0, 0.40, 1, 0.25), sharex=events_ax)
    abi_ax = ax.inset_axes((0, 0.71, 1, 0.29), sharex=events_ax)
    lines = [events_ax.plot([], [], marker=m, ls=ls, color=COLOURS[k], lw=1.6, markersize=4)[0]
             for k, _, m, ls in EVENT_LINES]
    a = TimelineArtists(
        ax, abi_ax, calls_ax, events_ax, _polys(abi_ax, edgecolors="white", linewidths=1.0),
        _polys(abi_ax, facecolors="none", edgecolors=COLOURS["hazard"], hatch="///", linewidths=1.5),
        _polys(calls_ax, facecolors=COLOURS["calls"], edgecolors="none"),
        _polys(calls_ax, facecolors=COLOURS["failed"], edgecolors="none"), TextPool(calls_ax, va="bottom"),
        TextPool(abi_ax, color="white", fontweight="bold"), *lines,
        # the selected step: a frame over the lanes, never a tint, so the cells inside keep their colours
        cursors=[lane.axvspan(0, 1, facecolor="none", edgecolor=COLOURS["cursor"], linewidth=2.0, zorder=5)
                 for lane in (abi_ax, calls_ax, events_ax)])
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
            + [(label, {"color": COLOURS[k], "marker": m, "ls": ls}) for k, label, m, ls in EVENT_LINES],
            loc="upper left", bbox_to_anchor=(1.01, 1.0))
    update_timeline(a, trace, step)
    return a


def update_timeline(a: TimelineArtists, trace: Trace, step: int | None = None) -> None:
    """Show ``trace`` (and highlight ``step``) in the artists ``draw_timeline`` made; for the
    trace already shown, only the cursor moves."""
    if trace is not a.trace:
        _abi_lane(a, trace)
        _calls_lane(a, trace)
        _events_lane(a, trace)
        ignored = dict(trace.ignored)  # the parameters this run did not use (the errno of most fixes)
        params = " ".join(f"{k}={v}" for k, v in trace.params if k not in ignored) + _rows_run(trace)
        width = chars_across(a.ax, TITLE)
        a.set.title(a.ax, textwrap.fill(f"{trace.scenario} ({params})", width) + "\n"
                    + textwrap.fill(f"outcome: {trace.outcome.summary}", width), fontsize=TITLE)
        a.trace = trace
    for cursor in a.cursors:
        cursor.set_visible(step is not None)
        cursor.set_x((step if step is not None else 0) - 0.5)
        cursor.set_width(1.0)


def _rows_run(trace: Trace) -> str:
    """``; host B ran patch-v4`` for each host whose Xen row is none of the versions asked for:
    some fixes run the new host on a patched or rebuilt Xen whatever ``xen`` says."""
    asked = {v for k, v in trace.params if k in ("xen", "old_xen")}
    ran = dict.fromkeys((d.host, d.xen) for r in trace.records for d in r.domains if d.xen not in asked)
    return "".join(f"; host {host} ran {xen}" for host, xen in ran)


def _events_lane(a: TimelineArtists, trace: Trace) -> None:
    """Cumulative events sent, delivered and not (yet) delivered, and Xen's stray writes; the step names."""
    records = trace.records
    xs = np.arange(len(records))
    values = {"sent": [r.sent for r in records], "delivered": [r.delivered for r in records],
              "undelivered": [r.sent - r.delivered for r in records], "stray writes": [r.stray_writes for r in records]}
    for line, (key, *_) in zip((a.sent, a.delivered, a.undelivered, a.stray), EVENT_LINES):
        line.set_data(xs, values[key])
    top = _ceiling(max([1] + values["sent"] + values["stray writes"]))
    a.set(a.events_ax.set_ylim, -0.05 * top, top * 1.1)
    a.set(a.events_ax.set_xlim, -0.6, len(records) - 0.4)
    # upright, wrapped to the room each step has, when that is an inch or more; else slanted
    room = 0.8 * inches_across(a.ax) / len(records)
    upright = room >= UPRIGHT_ROOM
    width = int(room * 72 / (0.6 * SMALL)) if upright else 26
    names = [textwrap.fill(f"{r.index} {r.step}", width, break_on_hyphens=False) for r in records]
    a.set(a.events_ax.set_xticks, list(range(len(records))), names, fontsize=SMALL,
          **({"rotation": 0, "ha": "center"} if upright else {"rotation": 30, "ha": "right", "rotation_mode": "anchor"}))


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
    a.set(a.abi_ax.set_ylim, 2 * len(names) + 0.05, -0.05)
    a.set(a.abi_ax.set_yticks, [i + 0.5 for i in range(2 * len(names))],
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
    a.set(a.calls_ax.set_ylim, 0, _ceiling(top) * 1.9)


def _ceiling(n: int) -> int:
    """``n`` rounded up to 5, 10, then a multiple of 10: traces of about the same size share
    their lanes' limits and ticks, so a new trace redraws only its data."""
    return 5 if n <= 5 else -(-n // 10) * 10


def _failures(calls) -> str:
    """``init_control -ENOSYS`` (with ``x2`` when repeated), one line per distinct failure."""
    counts: dict[tuple[str, int], int] = {}
    for c in calls:
        if c.rc < 0:
            counts[(c.op, c.rc)] = counts.get((c.op, c.rc), 0) + 1
    lines = [f"{op}\n{errno_name(rc)}" + (f" x{n}" if n > 1 else "") for (op, rc), n in counts.items()]
    return "\n".join(lines[:2]) + (f"\n+{len(lines) - 2} more" if len(lines) > 2 else "")


def timeline(trace: Trace, ax: Axes | None = None, step: int | None = None) -> TimelineArtists:
    """The timeline of ``trace`` (see ``draw_timeline``); it displays as its figure."""
    return draw_timeline(trace, ax, step)
