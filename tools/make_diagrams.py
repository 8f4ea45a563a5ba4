"""Draw the teaching series' diagrams into assets/diagrams/ from evtsim's own numbers and runs.

Every number in a picture comes from evtsim: bit positions and offsets from ``evtsim.abi`` and
``evtsim.memory``, example words, queues and the hibernation sequence from scenario traces. So a
diagram cannot drift from the model it explains. Colours are those of ``evtsim.plots``.

Run: ``.venv/bin/python tools/make_diagrams.py`` (prints the paths it wrote).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from evtsim.abi import (
    EVTCHN_FIFO_BUSY,
    EVTCHN_FIFO_CONTROL_BLOCK_SIZE,
    EVTCHN_FIFO_LINK_BITS,
    EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PENDING,
    errno_name,
)
from evtsim.memory import LAYOUT_64, SHINFO_PENDING_OFFSET, VCPU_INFO_SIZE, ControlBlockView
from evtsim.plots import COLOURS, OKABE_ITO
from evtsim.scenarios import run_scenario
from evtsim.snapshot import DomainSnapshot
from evtsim.trace import Record, Trace

OUT = Path(__file__).resolve().parents[1] / "assets" / "diagrams"
DPI = 110
FONT, SMALL = 9, 8
PALE, EDGE = "#F0F0F0", "#888888"
WORD_BYTES = 4  # event_word_t and every control-block field are uint32_t


# ---------------------------------------------------------------------------------------------
# Helpers


def new_axes(width: float, height: float) -> Axes:
    """A bare Axes on a fresh Agg figure (no pyplot, no ticks, no spines)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    return ax


def box(ax: Axes, x: float, y: float, w: float, h: float, face: str, text: str = "", **text_style) -> None:
    """A labelled rectangle with its bottom-left corner at (x, y)."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor=EDGE, linewidth=0.8))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=text_style.pop("fontsize", SMALL),
                **text_style)


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **style) -> None:
    """A filled arrowhead from ``start`` to ``end`` (data coordinates)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, linewidth=1.0,
                                 color=style.pop("color", "black"), **style))


def flag_letters(word: int) -> str:
    """``P . L .``: the event word's P M L B bits, a dot for each clear one."""
    bits = ((EVTCHN_FIFO_PENDING, "P"), (EVTCHN_FIFO_MASKED, "M"), (EVTCHN_FIFO_LINKED, "L"), (EVTCHN_FIFO_BUSY, "B"))
    return " ".join(letter if word >> bit & 1 else "." for bit, letter in bits)


def fifo_basics_guest(step: str) -> DomainSnapshot:
    """The guest of the ``fifo-basics`` scenario after ``step``."""
    trace = run_scenario("fifo-basics")
    return next(r for r in trace.records if r.step == step).domain("guest")


QUEUED = "dom0 notifies xenstore, console and vbd"  # three events on queue 7 of vCPU0
TIMER = "timer fires on cpu0 (priority 0)"  # ... and the timer on queue 0


# ---------------------------------------------------------------------------------------------
# 1. The FIFO event word


WORD_FIELDS = (  # (first bit, last bit, name, colour key)
    (EVTCHN_FIFO_PENDING, EVTCHN_FIFO_PENDING, "P", "pending"),
    (EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MASKED, "M", "masked"),
    (EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINKED, "L", "fifo"),
    (EVTCHN_FIFO_BUSY, EVTCHN_FIFO_BUSY, "B", "other"),
    (EVTCHN_FIFO_LINK_BITS, EVTCHN_FIFO_BUSY - 1, "unused", "no kernel"),
    (0, EVTCHN_FIFO_LINK_BITS - 1, "LINK: the next port in the queue (0 = none)", "image"),
)
WORD_MEANINGS = ("P  EVTCHN_FIFO_PENDING: an event is pending (Xen sets it; the guest's ack clears it)",
                 "M  EVTCHN_FIFO_MASKED: Xen will not link the event (the guest sets and clears it)",
                 "L  EVTCHN_FIFO_LINKED: the word is on a queue (Xen sets it; the guest clears it with LINK)",
                 "B  EVTCHN_FIFO_BUSY: Xen is updating LINK; the guest must not clear M meanwhile")


def draw_event_word(ax: Axes) -> None:
    """event_word_t: bit 31 on the left; a real word from fifo-basics below the layout."""
    for first, last, name, key in WORD_FIELDS:
        x = 31 - last
        box(ax, x, 2.2, last - first + 1, 1, COLOURS[key], name, fontweight="bold" if len(name) == 1 else "normal")
        for bit in {first, last}:
            ax.text(31 - bit + 0.5, 3.35, str(bit), ha="center", fontsize=SMALL - 1)
    guest = fifo_basics_guest(QUEUED)
    port = next(p for p in guest.ports if p.label == "xenstore")
    behind = next(len(q.ports) - 1 for q in guest.queues if port.port in q.ports)
    word = port.word or 0
    ax.text(0, 1.5, f"Example from the fifo-basics scenario: the {port.label} port ({port.port}) with {behind} more "
            f"events queued behind it:\nword = {word:#010x} = {flag_letters(word)}, LINK = {word & EVTCHN_FIFO_LINK_MASK} "
            f"(the next port in queue {port.priority})", fontsize=FONT, va="top")
    for i, line in enumerate(WORD_MEANINGS):
        ax.text(0, 0.45 - 0.42 * i, line, fontsize=SMALL, va="top", family="monospace")
    ax.set_xlim(-0.2, 32.2)
    ax.set_ylim(-1.3, 3.9)
    ax.set_title("The FIFO event word (event_word_t, 32 bits, one per port, in guest memory)", fontsize=10)


# ---------------------------------------------------------------------------------------------
# 2. The control block


def control_block_fields() -> list[tuple[int, str, str]]:
    """(byte offset, field, meaning) of struct evtchn_fifo_control_block, in order."""
    head0 = ControlBlockView.HEAD0 * WORD_BYTES
    fields = [(ControlBlockView.READY * WORD_BYTES, "ready", "bit q set: queue q has events (Xen sets; guest swaps with 0)"),
              (WORD_BYTES, "_rsvd", "reserved")]
    for q in range(EVTCHN_FIFO_MAX_QUEUES):
        where = " (highest priority)" if q == 0 else " (lowest)" if q == EVTCHN_FIFO_MAX_QUEUES - 1 else ""
        fields.append((head0 + WORD_BYTES * q, f"head[{q}]", f"first port of priority {q}'s queue{where}"))
    assert fields[-1][0] + WORD_BYTES == EVTCHN_FIFO_CONTROL_BLOCK_SIZE
    return fields


def control_block_values(snapshot: DomainSnapshot, vcpu: int = 0) -> dict[str, int]:
    """ready and the non-zero head[q] of ``vcpu``, as its queues in the snapshot show them."""
    queues = [q for q in snapshot.queues if q.vcpu == vcpu]
    values = {f"head[{q.priority}]": q.head for q in queues}
    values["ready"] = sum(1 << q.priority for q in queues if q.ready)
    return values


def example_caption(values: dict[str, int]) -> str:
    """``ready = 0b10000001 (queues 0, 7), head[0] = 3 (timer0), ...`` from the example values."""
    labels = {p.port: p.label for p in fifo_basics_guest(TIMER).ports}
    ready = values["ready"]
    queues = ", ".join(str(q) for q in range(EVTCHN_FIFO_MAX_QUEUES) if ready >> q & 1)
    heads = ", ".join(f"{name} = {port} ({labels.get(port, '?')})" for name, port in values.items()
                      if name != "ready")
    return f"ready = {ready:#b} (queues {queues}), {heads}"


def draw_control_block(ax: Axes) -> None:
    """One row per u32 field, byte offset on the left, an example value from fifo-basics."""
    values = control_block_values(fifo_basics_guest(TIMER))
    fields = control_block_fields()
    for row, (offset, name, meaning) in enumerate(fields):
        value = values.get(name, 0)
        face = COLOURS["pending"] if value else "white"
        box(ax, 0, -row, 3, 0.9, face, name, family="monospace")
        ax.text(-0.2, -row + 0.45, f"{offset:2d}  {offset:#04x}", ha="right", va="center", fontsize=SMALL,
                family="monospace")
        shown = f"{value:#b}" if name == "ready" else str(value)
        ax.text(3.3, -row + 0.45, shown, va="center", fontsize=SMALL, family="monospace")
        ax.text(5.6, -row + 0.45, meaning, va="center", fontsize=SMALL)
    ax.text(-0.2, 1.3, "offset", ha="right", fontsize=SMALL, fontweight="bold")
    ax.text(3.3, 1.3, "example", fontsize=SMALL, fontweight="bold")
    ax.text(0, -len(fields) - 0.2, f"{EVTCHN_FIFO_CONTROL_BLOCK_SIZE} bytes, one per vCPU, at a guest-chosen offset "
            f"in a guest page (EVTCHNOP_init_control). Example: fifo-basics, step '{TIMER}':\n"
            f"{example_caption(values)}. Only Xen writes HEAD; TAIL is Xen's alone.", fontsize=SMALL, va="top")
    ax.set_xlim(-2.2, 15.5)
    ax.set_ylim(-len(fields) - 1.6, 2.0)
    ax.set_title("struct evtchn_fifo_control_block: ready, _rsvd, head[16]", fontsize=10)


# ---------------------------------------------------------------------------------------------
# 3. One queue: HEAD -> ... -> TAIL


def draw_queue(ax: Axes) -> None:
    """Queue 7 of vCPU0 in fifo-basics: HEAD in the control block, LINKs in event words, TAIL in Xen."""
    guest = fifo_basics_guest(QUEUED)
    queue = next(q for q in guest.queues if q.ports)
    ports = {p.port: p for p in guest.ports}
    box(ax, 0, 1, 2.4, 1, COLOURS["control_block"], f"head[{queue.priority}] = {queue.head}", color="white")
    ax.text(1.2, 2.25, f"control block, vCPU{queue.vcpu}\n(guest memory)", ha="center", fontsize=SMALL)
    x = 3.4
    for i, port in enumerate(queue.ports):
        word = ports[port].word or 0
        arrow(ax, (x - 1.0, 1.5), (x, 1.5))
        box(ax, x, 1, 2.6, 1, COLOURS["pending"],
            f"port {port} ({ports[port].label})\n{flag_letters(word)}\nLINK = {word & EVTCHN_FIFO_LINK_MASK}")
        x += 3.6
    last = x - 3.6 + 1.3
    box(ax, last - 1.3, -1.2, 2.6, 0.8, PALE, f"tail = {queue.tail}")
    arrow(ax, (last, -0.4), (last, 1.0))
    ax.text(last - 1.3, -1.5, "struct evtchn_fifo_queue in Xen\n(never in guest memory)", fontsize=SMALL, va="top")
    ax.text(0, -0.1, "Event words live in the event array (guest memory): LINK chains the queue, 0 ends it.\n"
            "Xen appends behind TAIL while TAIL's word is still LINKED;\notherwise it writes HEAD and sets READY "
            "(evtchn_fifo_set_pending).", fontsize=SMALL, va="top")
    ax.set_xlim(-0.3, x + 0.2)
    ax.set_ylim(-2.4, 2.9)
    ax.set_title(f"One FIFO queue (priority {queue.priority}) in the fifo-basics scenario: HEAD \u2192 ... \u2192 TAIL",
                 fontsize=10)


# ---------------------------------------------------------------------------------------------
# 4. The hibernation sequence as a swimlane


LANES = ("host A: Xen {old_xen}", "host B: xl", "boot kernel", "resumed kernel", "Xen {xen} on host B")
STEP_LANES = {
    "create the guest on the old host": 0, "original kernel boots": 0, "traffic on the old host": 0,
    "hibernate: the image is written": 0, "create the guest on the new host": 1, "boot kernel starts": 2,
    "boot kernel issues EVTCHNOP_reset": 2, "image loaded over guest memory": 2,
    "resumed kernel re-establishes channels": 3, "traffic on the new host": 3,
}
XEN = 4


def step_detail(before: Record | None, record: Record) -> str:
    """A second line for the acting lane: init_control's answer, or events delivered."""
    rcs = sorted({c.rc for c in record.calls if c.op == "init_control"})
    if rcs:
        return "init_control \u2192 " + ", ".join(errno_name(rc) for rc in rcs)
    sent = record.sent - (before.sent if before else 0)
    if sent:
        return f"{record.delivered - (before.delivered if before else 0)} of {sent} events delivered"
    return ""


def xen_detail(before: Record | None, record: Record) -> str:
    """What Xen on host B did in this step that the lesson needs: ABI switch, stray writes."""
    lines = []
    now = {d.name: d for d in record.domains}
    old = {d.name: d for d in before.domains} if before else {}
    for name, d in now.items():
        if d.host == "B" and name in old and old[name].abi != d.abi:
            lines.append(f"domain switched to {d.abi.upper() if d.abi == 'fifo' else d.abi}")
        mapped = [f for f in d.frames if f.xen_mapping and "image" in f.content]
        if d.host == "B" and mapped and "image" in record.step:
            lines.append(f"still maps {len(mapped)} image frames as its FIFO pages")
    writes = record.stray_writes - (before.stray_writes if before else 0)
    if writes:
        lines.append(f"{writes} writes into image frames")
    return "\n".join(lines)


def draw_swimlane(ax: Axes, trace: Trace) -> None:
    """Steps left to right, one lane per actor; vermillion where Xen writes into the image."""
    for lane, name in enumerate(LANES):
        ax.axhspan(-lane - 0.5, -lane + 0.5, color=PALE if lane % 2 else "white", zorder=0)
        ax.text(-0.6, -lane, name.format(**dict(trace.params)), ha="right", va="center", fontsize=FONT,
                fontweight="bold")
    previous = None
    for record in trace.records:
        lane = STEP_LANES[record.step]
        text = textwrap.fill(record.step, 16) + "\n" + textwrap.fill(step_detail(previous, record), 18)
        box(ax, record.index - 0.46, -lane - 0.42, 0.92, 0.84, "white", text.strip(), fontsize=7)
        xen = xen_detail(previous, record)
        if xen:
            hazard = record.stray_writes > (previous.stray_writes if previous else 0)
            face = COLOURS["hazard"] if hazard else COLOURS["fifo"]
            box(ax, record.index - 0.46, -XEN - 0.42, 0.92, 0.84, face, textwrap.fill(xen, 15), fontsize=7,
                color="white")
        previous = record
    move = next(r.index for r in trace.records if r.host == "B") - 0.5
    ax.axvline(move, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=1)
    ax.text(move, 0.62, "the image moves to host B", ha="center", fontsize=SMALL, color=OKABE_ITO["vermillion"])
    ax.set_xlim(-2.1, len(trace.records) - 0.4)
    ax.set_ylim(-len(LANES) + 0.4, 0.9)
    params = dict(trace.params)
    ax.set_title(f"Hibernate on Xen {params['old_xen']}, resume on Xen {params['xen']}: outcome "
                 f"{trace.outcome.verdict} ({trace.outcome.delivered}/{trace.outcome.sent} events delivered)",
                 fontsize=10)


# ---------------------------------------------------------------------------------------------
# 5. A send, end to end (notebook 1)


SEND_PATH = (
    ("dom0 (a backend)", "EVTCHNOP_send(port)\nevtchn_send", "calls"),
    ("Xen", "the peer's port:\nevtchn_port_set_pending\n(2-level or FIFO ops)", "fifo"),
    ("guest memory", "pending bit in shared_info\nor event word + queue", "event_array"),
    ("guest vCPU", "evtchn_upcall_pending = 1\ncallback IRQ (upcall)", "pending"),
    ("guest kernel", "__xen_evtchn_do_upcall:\nscan, ack, run the\nport's IRQ handler", "shared_info"),
)


def draw_send_path(ax: Axes) -> None:
    """Who touches what when dom0 notifies a guest."""
    for i, (who, what, key) in enumerate(SEND_PATH):
        x = i * 2.2
        ax.text(x + 0.9, 1.25, who, ha="center", fontsize=FONT, fontweight="bold")
        box(ax, x, 0, 1.8, 1, COLOURS[key], what, color="white" if key in ("fifo", "shared_info") else "black")
        if i:
            arrow(ax, (x - 0.4, 0.5), (x, 0.5))
    ax.text(0, -0.25, "Nothing is copied but a bit: a second send before the guest looks finds the bit already set "
            "and changes nothing.", fontsize=SMALL, va="top")
    ax.set_xlim(-0.1, len(SEND_PATH) * 2.2 - 0.3)
    ax.set_ylim(-0.7, 1.6)
    ax.set_title("One notification, from a backend in dom0 to a guest", fontsize=10)


# ---------------------------------------------------------------------------------------------
# 6. The 2-level layout in shared_info (notebook 2)


NOTIFIED = "dom0 notifies xenstore"  # two-level-basics: one pending, unmasked port


def bit_row(ax: Axes, y: float, value: int, bits: int, key: str) -> None:
    """``bits`` cells for one word, bit 0 on the left, coloured where ``value`` has a 1."""
    for b in range(bits):
        face = COLOURS[key] if value >> b & 1 else "white"
        ax.add_patch(Rectangle((b * 0.2, y), 0.2, 0.8, facecolor=face, edgecolor="#CCCCCC", linewidth=0.4))


def draw_two_level_layout(ax: Axes) -> None:
    """vcpu_info's upcall flag and selector over shared_info's word 0, from two-level-basics."""
    trace = run_scenario("two-level-basics")
    guest = next(r for r in trace.records if r.step == NOTIFIED).domain("guest")
    bits, vcpu = guest.bits_per_word, guest.vcpus[0]
    rows = ((f"vcpu_info[0].evtchn_upcall_pending\nbyte 0 of vcpu_info (at {VCPU_INFO_SIZE} \u00d7 vCPU)",
             vcpu.upcall_pending, 1, "pending"),
            (f"vcpu_info[0].evtchn_pending_sel\nbyte {LAYOUT_64.pending_sel_offset}: bit w = look at word w",
             vcpu.pending_sel, bits, "pending"),
            (f"shared_info.evtchn_pending[0]\nbyte {SHINFO_PENDING_OFFSET} + 8w: bit b = port {bits}w+b pending",
             guest.evtchn_pending[0], bits, "pending"),
            (f"shared_info.evtchn_mask[0]\nbyte {LAYOUT_64.mask_offset} + 8w: bit b = port {bits}w+b masked",
             guest.evtchn_mask[0], bits, "masked"))
    for i, (name, value, width, key) in enumerate(rows):
        y = -1.3 * i
        ax.text(-0.3, y + 0.4, name, ha="right", va="center", fontsize=SMALL, family="monospace")
        bit_row(ax, y, value, width, key)
    for b in range(0, bits, 8):
        ax.text(b * 0.2 + 0.1, -1.3 * len(rows) + 1.1, str(b), ha="center", va="top", fontsize=SMALL - 1,
                color="#555555")
    ax.text(bits * 0.2 + 0.1, -1.3 * len(rows) + 1.1, "bit", va="top", fontsize=SMALL - 1, color="#555555")
    arrow(ax, (0.1, -0.05), (0.1, -0.45))
    arrow(ax, (0.1, -1.35), (0.1, -1.75))
    bound = ", ".join(f"{p.port} {p.label}" for p in guest.ports)
    ax.text(-6.5, -4.5, textwrap.fill(f"two-level-basics, step '{NOTIFIED}': port 1 pending and unmasked, so Xen set "
                                   "selector bit 0 and the upcall flag (evtchn_2l_set_pending). Linux masks every "
                                   f"port at boot and unmasks the ones it binds: {bound}.", 160), fontsize=SMALL,
            va="top")
    ax.text(-6.5, -5.3, f"{bits} words \u00d7 {bits} bits = {bits * bits} ports for a 64-bit guest (32 \u00d7 32 = "
            "1024 for a 32-bit one): EVTCHN_2L_NR_CHANNELS.", fontsize=FONT, va="top")
    ax.set_xlim(-6.6, bits * 0.2 + 0.6)
    ax.set_ylim(-5.8, 1.0)
    ax.set_title("The 2-level ABI in guest memory: an upcall flag and a selector per vCPU, pending and mask "
                 "bitmaps in shared_info", fontsize=10)


# ---------------------------------------------------------------------------------------------


DIAGRAMS: dict[str, tuple[tuple[float, float], Callable[[Axes], None]]] = {
    "event-word.png": ((9.0, 2.9), draw_event_word),
    "control-block.png": ((9.0, 5.4), draw_control_block),
    "fifo-queue.png": ((9.0, 2.9), draw_queue),
    "hibernation-swimlane.png": ((11.0, 5.0), lambda ax: draw_swimlane(ax, run_scenario("hibernation"))),
    "send-path.png": ((11.0, 2.2), draw_send_path),
    "two-level-layout.png": ((10.0, 3.8), draw_two_level_layout),
}


def main(out: Path = OUT) -> list[Path]:
    """Draw every diagram into ``out`` and return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (size, draw) in DIAGRAMS.items():
        ax = new_axes(*size)
        draw(ax)
        path = out / name
        ax.figure.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: stable bytes
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in main():
        sys.stdout.write(f"{p}\n")
