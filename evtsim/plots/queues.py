"""The FIFO ABI on screen: per vCPU, the 16 priority queues as linked lists HEAD -> ... -> TAIL,
each node's P/M/L/B bits, the READY bits, and the event-array pages Xen maps."""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D

from ..abi import EVTCHN_FIFO_MAX_QUEUES
from ..snapshot import DomainSnapshot
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
    texts: TextPool  # HEAD and TAIL, READY letters, notes, event-array pages
    frame_texts: TextPool  # vCPU headers, READY column names, queue numbers: they move only with the layout
    set: Setters = field(default_factory=Setters)

    def changing(self) -> list[Artist]:
        """What differs from one snapshot to the next (a dashboard redraws only these)."""
        return [self.ax.title, self.nodes, self.links, self.heads, self.ready, self.broken, *self.node_labels.texts,
                *self.texts.texts]


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
                    TextPool(ax, linespacing=1.05, zorder=3), TextPool(ax, zorder=3), TextPool(ax, zorder=3))
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
    frame_texts: list = field(default_factory=list)
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
        scene.frame_texts += _group_labels(v, x0, y0)
        scene.texts += _broken_notes(s, v, x0, y0)
        queues = {q.priority: q for q in s.queues if q.vcpu == v}
        for prio in range(EVTCHN_FIFO_MAX_QUEUES):
            _queue_row(scene, queues.get(prio), x0, y0 + ROWS_TOP + prio, group_w, words)
    bottom = max(y0 for _, y0 in origins) + ROWS_TOP + EVTCHN_FIFO_MAX_QUEUES + 0.3
    scene.texts.append(_pages_label(s, bottom))
    if not s.queues and s.abi != "fifo":
        scene.texts.append(Label((origins[-1][0] + group_w) / 2, bottom / 2,
                                 f"Xen runs this domain in {s.abi}: no FIFO queues", {"fontsize": FONT}))
    _show_scene(a, scene)
    a.set(a.ax.set_xlim, -1.6, max(x0 for x0, _ in origins) + group_w)
    a.set(a.ax.set_ylim, bottom + 1.2, -0.2)
    a.set.title(a.ax, f"{s.name} (dom{s.domid}) on Xen {s.xen}: FIFO queues per vCPU, priority 0 (highest) "
          f"to 15\nXen runs the domain in {s.abi}; the kernel believes {s.kernel_abi or 'nothing yet'}", fontsize=TITLE)


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
    a.frame_texts.show(scene.frame_texts)


def _broken_notes(s: DomainSnapshot, v: int, x0: float, y0: float) -> list[Label]:
    """Beside the vCPU header: why its queues are hatched, if they are."""
    notes = sorted({q.note for q in s.queues if q.vcpu == v and q.note})
    return [Label(x0 + 1.4, y0 + 0.3, "; ".join(notes), {"ha": "left", "color": COLOURS["hazard"]})] if notes else []


def _group_labels(v: int, x0: float, y0: float) -> list[Label]:
    """The vCPU header, the READY column name, queue numbers."""
    out = [Label(x0 - 1.4, y0 + 0.3, f"vCPU{v}", {"ha": "left", "fontsize": FONT, "fontweight": "bold"}),
           Label(x0 + 0.35, y0 + ROWS_TOP - 0.35, "READY", {"fontsize": SMALL})]
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
