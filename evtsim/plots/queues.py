"""The FIFO ABI on screen: per vCPU, the 16 priority queues as linked lists HEAD -> ... -> TAIL,
each node's P/M/L/B bits, the READY bits, and the event-array pages Xen maps.

Two layouts: every queue of every vCPU (16 rows each, two vCPUs side by side), or ``compact``:
only the queues with something in them (a HEAD, a TAIL or READY), one vCPU under the other,
which is what a dashboard pane has room for.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D

from ..abi import EVTCHN_FIFO_MAX_QUEUES
from ..snapshot import DomainSnapshot, QueueSnapshot
from .frames import _role
from .style import (
    COLOURS,
    EDGE,
    FONT,
    SMALL,
    TITLE,
    WORD_FLAGS,
    Label,
    Setters,
    TextPool,
    View,
    _event_state,
    _legend,
    _lines,
    _new_axes,
    _plain,
    _polys,
    _port_name,
    _rect,
    _set_polys,
)


@dataclass(repr=False)
class FifoArtists(View):
    """What ``draw_fifo_queues`` made, for ``update_fifo_queues`` to change."""

    ax: Axes
    nodes: PolyCollection  # one box per LINKED word reachable from a HEAD
    links: LineCollection  # HEAD -> first node, and each LINK to the next
    heads: Line2D  # an arrowhead at the end of each link
    ready: PolyCollection  # 16 READY cells per vCPU (compact: one per queue shown)
    broken: PolyCollection  # hatched rows: the control block's frame now holds something else
    node_labels: TextPool  # "3 timer0" / "P.L." in each node
    texts: TextPool  # HEAD and TAIL, READY letters, notes, event-array pages
    frame_texts: TextPool  # vCPU headers, READY column names, queue numbers: they move only with the layout
    compact: bool = False  # only the queues in use, one vCPU under the other
    set: Setters = field(default_factory=Setters)

    def changing(self) -> list[Artist]:
        """What differs from one snapshot to the next (a dashboard redraws only these). The hatched
        rows are not: they lie under everything else, change only when a control block's frame
        does, and hatching is slow to draw; ``update_fifo_queues`` sets them only then."""
        return [self.ax.title, self.nodes, self.links, self.heads, self.ready, *self.node_labels.texts,
                *self.texts.texts, *(self.frame_texts.texts if self.compact else ())]


NODE_W, NODE_GAP, FIRST_NODE, ROWS_TOP = 4.0, 1.0, 5.3, 2.0  # data units; one queue row is 1 high
COMPACT_NODES, COMPACT_ROWS = 4, 12  # compact: room for 4 nodes across, and at least 12 rows down
COMPACT_LINE, FULL_LINE = 0.55, 0.9  # a line of small text, in rows, in each layout
#: Why a HEAD or TAIL is not what a reader expects, one footnote each (event_fifo.c, Linux's
#: consume_one_event): the guest's consumer keeps its own head and never writes HEAD back.
FOOTNOTES = {
    "*": "* stale: the guest consumed this queue; HEAD and Xen's private TAIL keep their ports until Xen links "
         "the next event, which becomes the new HEAD (TAIL's word is no longer LINKED).",
    "\u2020": "\u2020 TAIL 0: Xen holds this queue empty since its last event moved to another queue (the old-tail "
              "rule); the stale HEAD names that event, LINKED in its new queue.",
    "\u2021": "\u2021 TAIL is not on the chain from HEAD: a word on the way is no longer LINKED.",
}
FOOTNOTE_WIDTH = {True: 100, False: 150}  # characters a line has room for: compact, full


def full_height(vcpus: int) -> float:
    """The inches every queue of ``vcpus`` vCPUs needs, laid out in full (two vCPUs abreast)."""
    return 1.8 + 5.2 * ((vcpus + 1) // 2)


def draw_fifo_queues(snapshot: DomainSnapshot, ax: Axes | None = None, compact: bool = False) -> FifoArtists:
    """Every vCPU's FIFO queues as linked lists, READY bits, and the event-array pages."""
    ax = ax or _new_axes(4.5 if compact else full_height(len(snapshot.vcpus)))
    a = FifoArtists(ax, _polys(ax, edgecolors=EDGE, linewidths=0.8, zorder=2),
                    _lines(ax, colors="black", linewidths=0.9, zorder=2),
                    ax.plot([], [], ">", color="black", markersize=4, zorder=2)[0],
                    _polys(ax, edgecolors=EDGE, linewidths=0.6, zorder=2),
                    _polys(ax, facecolors="#FBE3D6", edgecolors=COLOURS["hazard"], hatch="///", linewidths=1.0,
                           zorder=1),
                    TextPool(ax, linespacing=1.05, zorder=3), TextPool(ax, zorder=3), TextPool(ax, zorder=3), compact)
    ax.set_xticks([])
    ax.set_yticks([])
    _plain(ax)
    _legend(ax, [("P: pending (not masked)", {"facecolor": COLOURS["pending"]}),
                 ("M: masked", {"facecolor": COLOURS["masked"]}),
                 ("P and M", {"facecolor": COLOURS["pending+masked"]}),
                 ("L only: linked, not pending", {"facecolor": "white"}),
                 ("R: READY bit set", {"facecolor": COLOURS["ready"]}),
                 ("queue in a frame that holds something else",
                  {"facecolor": "#FBE3D6", "edgecolor": COLOURS["hazard"], "hatch": "///"})],
            loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2 if compact else 3)
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
    frame_texts: list = field(default_factory=list)
    ready: list = field(default_factory=list)
    ready_faces: list = field(default_factory=list)
    broken: list = field(default_factory=list)
    footnotes: set = field(default_factory=set)


@dataclass(frozen=True)
class _Geometry:
    """Where things go: the node width, each vCPU group's origin, each queue row's y."""

    node_w: float
    group_w: float
    origins: list[tuple[float, float]]  # (x, y) of each vCPU's header
    rows: dict[tuple[int, int], float]  # (vcpu, priority) -> y of its row
    bottom: float  # below the last row


def _full_geometry(s: DomainSnapshot) -> _Geometry:
    """Two vCPUs side by side, 16 rows each."""
    group_w = FIRST_NODE + max([3] + [len(q.ports) for q in s.queues]) * (NODE_W + NODE_GAP) + 2.6
    origins = [((v % 2) * (group_w + 1.5), (v // 2) * (EVTCHN_FIFO_MAX_QUEUES + ROWS_TOP + 1))
               for v in range(len(s.vcpus))]
    rows = {(v, p): y0 + ROWS_TOP + p for v, (_, y0) in enumerate(origins) for p in range(EVTCHN_FIFO_MAX_QUEUES)}
    bottom = max(y0 for _, y0 in origins) + ROWS_TOP + EVTCHN_FIFO_MAX_QUEUES + 0.3
    return _Geometry(NODE_W, group_w, origins, rows, bottom)


def _compact_geometry(s: DomainSnapshot) -> _Geometry:
    """One vCPU under the other: a header row, then a row per queue in use."""
    nodes = max([COMPACT_NODES] + [len(q.ports) for q in s.queues])
    group_w = FIRST_NODE + nodes * (NODE_W + NODE_GAP) + 2.6
    origins, rows, y = [], {}, 0.0
    for v in range(len(s.vcpus)):
        origins.append((0.0, y))
        y += 1.1
        for q in sorted((q for q in s.queues if q.vcpu == v), key=lambda q: q.priority):
            rows[(v, q.priority)] = y
            y += 1
        y += 0.3
    return _Geometry(NODE_W, group_w, origins, rows, y)


def update_fifo_queues(a: FifoArtists, snapshot: DomainSnapshot) -> None:
    """Show ``snapshot``'s queues in the artists ``draw_fifo_queues`` made."""
    s, scene = snapshot, _Scene()
    geometry = (_compact_geometry if a.compact else _full_geometry)(s)
    words = {p.port: p for p in s.ports}
    queues = {(q.vcpu, q.priority): q for q in s.queues}
    for v, (x0, y0) in enumerate(geometry.origins):
        scene.frame_texts += _group_labels(v, x0, y0, a.compact, sum(q.vcpu == v for q in s.queues))
        scene.texts += _broken_notes(s, v, x0, y0)
    for (v, prio), y in geometry.rows.items():
        _queue_row(scene, queues.get((v, prio)), geometry.origins[v][0], y, geometry, words, s.queues)
    scene.texts.append(_pages_label(s, geometry.bottom))
    notes = _footnotes(scene.footnotes, a.compact)
    if notes:
        scene.texts.append(Label(-1.4, geometry.bottom + 1.0, notes, {"ha": "left", "va": "top", "color": "#555555"}))
    line = COMPACT_LINE if a.compact else FULL_LINE  # one line of text, in rows
    bottom = geometry.bottom + 1.2 + line * notes.count("\n") + line * bool(notes)
    if a.compact:
        bottom = max(bottom, COMPACT_ROWS)
    if not s.queues and s.abi != "fifo":
        scene.texts.append(Label((geometry.origins[-1][0] + geometry.group_w) / 2, geometry.bottom / 2,
                                 f"Xen runs this domain in {s.abi}: no FIFO queues", {"fontsize": FONT}))
    _show_scene(a, scene)
    a.set(a.ax.set_xlim, -1.6, max(x0 for x0, _ in geometry.origins) + geometry.group_w)
    a.set(a.ax.set_ylim, bottom, -0.2)
    a.set.title(a.ax, _title(s, a.compact), fontsize=TITLE)


def _footnotes(marks: set[str], compact: bool) -> str:
    """The footnotes of the marks used, each wrapped to the view's width."""
    return "\n".join(textwrap.fill(FOOTNOTES[mark], FOOTNOTE_WIDTH[compact]) for mark in sorted(marks))


def _title(s: DomainSnapshot, compact: bool) -> str:
    which = "the queues in use" if compact else "priority 0 (highest) to 15"
    kernel = f"the kernel crashed: {s.crashed}" if s.crashed else f"the kernel believes {s.kernel_abi or 'nothing yet'}"
    return f"{s.name} (dom{s.domid}) on Xen {s.xen}: FIFO queues per vCPU, {which}\n" \
           f"Xen runs the domain in {s.abi}; {kernel}"


def _queue_row(scene: _Scene, q: QueueSnapshot | None, x0: float, y: float, geometry: _Geometry, words: dict,
               queues: tuple[QueueSnapshot, ...]) -> None:
    """One priority's row: READY, then HEAD -> nodes along LINK -> TAIL; hatched if broken."""
    scene.ready.append(_rect(x0, y + 0.15, 0.7, 0.7))
    scene.ready_faces.append(COLOURS["ready"] if q and q.ready else "white")
    if q is None:
        return
    if q.ready:
        scene.texts.append(Label(x0 + 0.35, y + 0.5, "R", {"color": "white", "fontweight": "bold"}))
    if q.note:
        scene.broken.append(_rect(x0 - 0.2, y + 0.02, geometry.group_w - 0.6, 0.96))
    if not q.ports or q.tail == 0:
        _empty_row(scene, q, x0, y, queues)
        return
    scene.texts.append(Label(x0 + 0.9, y + 0.5, f"HEAD {q.head}", {"ha": "left"}))
    x = x0 + FIRST_NODE
    for i, port in enumerate(q.ports):
        scene.links.append([(x - (0.9 if i == 0 else NODE_GAP), y + 0.5), (x, y + 0.5)])
        scene.nodes.append(_rect(x, y + 0.08, geometry.node_w, 0.84))
        scene.faces.append(COLOURS[_word_state(words.get(port))])
        scene.labels.append(Label(x + geometry.node_w / 2, y + 0.5, _node_text(port, words.get(port))))
        x += geometry.node_w + NODE_GAP
    scene.texts.append(_tail_label(scene, q, x - NODE_GAP + 0.2, y + 0.5))


def _empty_row(scene: _Scene, q: QueueSnapshot, x0: float, y: float, queues: tuple[QueueSnapshot, ...]) -> None:
    """A queue Xen holds empty: say so, and why its HEAD (and TAIL) still name ports."""
    grey = {"ha": "left", "color": "#555555"}
    if not q.ports:
        scene.footnotes.add("*")
        stale = " and ".join(f"{name} {port}" for name, port in (("HEAD", q.head), ("TAIL", q.tail)) if port)
        scene.texts.append(Label(x0 + 0.9, y + 0.5, f"empty: {stale} {'are' if ' and ' in stale else 'is'} stale*",
                                 grey))
        return
    scene.footnotes.add("\u2020")
    now = next((o for o in queues if o is not q and q.head in o.ports), None)
    where = f": port {q.head} is queued on vCPU{now.vcpu} q{now.priority} now" if now else ""
    scene.texts.append(Label(x0 + 0.9, y + 0.5, f"empty for Xen (TAIL 0\u2020); HEAD {q.head} is stale{where}", grey))


def _show_scene(a: FifoArtists, scene: _Scene) -> None:
    _set_polys(a.nodes, scene.nodes, scene.faces)
    _set_polys(a.ready, scene.ready, scene.ready_faces)
    a.set(a.broken.set_verts, scene.broken)  # in the background: set only when they change
    a.links.set_segments(scene.links)
    a.heads.set_data([seg[1][0] - 0.15 for seg in scene.links], [seg[1][1] for seg in scene.links])
    a.node_labels.show(scene.labels)
    a.texts.show(scene.texts)
    a.frame_texts.show(scene.frame_texts)


def _broken_notes(s: DomainSnapshot, v: int, x0: float, y0: float) -> list[Label]:
    """Beside the vCPU header: why its queues are hatched, if they are."""
    notes = sorted({q.note for q in s.queues if q.vcpu == v and q.note})
    return [Label(x0 + 1.4, y0 + 0.3, "; ".join(notes), {"ha": "left", "color": COLOURS["hazard"]})] if notes else []


def _group_labels(v: int, x0: float, y0: float, compact: bool, in_use: int) -> list[Label]:
    """The vCPU header, then the READY column name and queue numbers (compact: the count in use)."""
    header = [Label(x0 - 1.4, y0 + 0.3, f"vCPU{v}", {"ha": "left", "fontsize": FONT, "fontweight": "bold"})]
    if compact:
        return header + [Label(x0 - 1.4, y0 + 0.85, f"{in_use} of {EVTCHN_FIFO_MAX_QUEUES} queues in use; "
                                                   "the others are empty", {"ha": "left", "color": "#555555"})]
    header.append(Label(x0 + 0.35, y0 + ROWS_TOP - 0.35, "READY", {"fontsize": SMALL}))
    if v % 2 == 0:  # the second column shares the first one's rows
        header += [Label(x0 - 0.3, y0 + ROWS_TOP + p + 0.5, f"q{p}", {"ha": "right", "color": "#555555"})
                   for p in range(EVTCHN_FIFO_MAX_QUEUES)]
    return header


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


def _tail_label(scene: _Scene, q: QueueSnapshot, x: float, y: float) -> Label:
    """TAIL after the last node, or where Xen's TAIL is when the walk from HEAD misses it."""
    if q.tail == q.ports[-1]:
        return Label(x, y, "\u2190 TAIL", {"ha": "left"})
    scene.footnotes.add("\u2021")
    return Label(x, y, f"TAIL {q.tail} not reached\u2021", {"ha": "left", "color": COLOURS["hazard"]})


def _pages_label(s: DomainSnapshot, y: float) -> Label:
    """Which frames Xen maps as event-array pages, and what each holds now."""
    pages = [f for f in s.frames if f.xen_mapping == "event_array"]
    if not pages:
        return Label(-1.4, y, "event-array pages: none mapped", {"ha": "left", "va": "top", "fontsize": FONT})
    wrong = any(_role(f.content) != "event_array" for f in pages)
    text = "event-array pages Xen maps: " + ", ".join(f"{f.gfn:#x} (holds: {f.content})" for f in pages)
    return Label(-1.4, y, text, {"ha": "left", "va": "top", "fontsize": FONT,
                                 "color": COLOURS["hazard"] if wrong else "black"})


def fifo_queues(snapshot: DomainSnapshot, ax: Axes | None = None, compact: bool = False) -> FifoArtists:
    """The FIFO queues of ``snapshot`` (see ``draw_fifo_queues``); it displays as its figure."""
    return draw_fifo_queues(snapshot, ax, compact)
