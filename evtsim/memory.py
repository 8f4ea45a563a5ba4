"""Guest physical memory: 4 KiB frames by gfn, typed views at Xen's real layouts, and a
record of every write Xen makes into them.

Shared memory is the lesson of the hibernation story: Xen keeps writing a FIFO control
block into whatever frame the guest once registered, even after that frame holds
something else. So each frame says what the guest last put there (``content``), what
Xen has it mapped as (``xen_mapping``), and how often Xen wrote it.

Layouts (xen/include/public/xen.h, event_channel.h):

* shared_info: ``vcpu_info[32]`` (64 bytes each), then ``evtchn_pending`` at byte 2048
  and ``evtchn_mask`` after it: 64 x 64-bit words (mask at 2560) for a 64-bit guest,
  32 x 32-bit words (mask at 2176) for a 32-bit one.
* vcpu_info: ``evtchn_upcall_pending`` (u8 at 0), ``evtchn_upcall_mask`` (u8 at 1),
  ``evtchn_pending_sel`` (xen_ulong_t at 8, or at 4 in the 32-bit layout).
* FIFO control block, 72 bytes at a guest-chosen offset: ``ready``, ``_rsvd``, ``head[16]``.
* event-array page: 1024 32-bit event words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .abi import EVTCHN_FIFO_CONTROL_BLOCK_SIZE, PAGE_SIZE, DomId, Gfn

VCPU_INFO_SIZE = 64
SHINFO_PENDING_OFFSET = 2048


class Structure(str, Enum):
    """What Xen believes a frame (or part of one) holds when it writes there."""

    SHARED_INFO = "shared_info"
    VCPU_INFO = "vcpu_info"
    CONTROL_BLOCK = "control_block"
    EVENT_ARRAY = "event_array"


class Recording(str, Enum):
    """How much of Xen's guest-memory writes to keep.

    ``COUNTS`` (the cheapest) keeps, per frame, how many writes Xen made and the clock of the
    last one: enough to find writes after a hand-over. ``FULL`` also keeps every write.
    """

    COUNTS = "counts"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class XenWrite:
    """One write Xen made into guest memory (kept with ``Recording.FULL``)."""

    clock: int
    domid: DomId
    gfn: Gfn
    offset: int
    structure: Structure
    content: str  # what the guest held in the frame at the time
    value: int


@dataclass(eq=False, slots=True)
class Frame:
    """One 4 KiB guest frame. ``content`` is the guest's label for what it keeps here."""

    gfn: Gfn
    data: bytearray = field(default_factory=lambda: bytearray(PAGE_SIZE))
    content: str = "ram"
    xen_mapping: Structure | None = None
    xen_writes: int = 0
    last_xen_write: int = -1


class WriteLog:
    """Xen's record of its writes into guest memory; the ``Xen`` object owns one.

    A write is one step of Xen's that changes a word of guest memory: each atomic operation
    (test-and-set, clear, cmpxchg) or store, in the order Xen performs them. A step that
    leaves the word as it was (a test-and-set finding its bit already set, a store of the
    value already there) changes nothing a guest could see, corrupts nothing, and is not
    recorded.
    """

    __slots__ = ("level", "full", "clock", "writes")

    def __init__(self, level: Recording = Recording.COUNTS) -> None:
        self.level = Recording(level)
        self.full = self.level is Recording.FULL
        self.clock = 0
        self.writes: list[XenWrite] = []

    def wrote(self, domid: DomId, frame: Frame, offset: int, structure: Structure, value: int) -> None:
        """Account one Xen write of ``value`` at ``offset`` in ``frame``: count it, stamp it
        with the clock, and keep it if ``full``.

        The one definition of write accounting. Only the two engines' set_pending hot paths
        repeat its three lines inline, because a call per write costs 15-18% of an event.
        """
        frame.xen_writes += 1
        frame.last_xen_write = self.clock
        if self.full:
            self.keep(domid, frame, offset, structure, value)

    def keep(self, domid: DomId, frame: Frame, offset: int, structure: Structure, value: int) -> None:
        """Keep one write in ``writes`` (``Recording.FULL`` only)."""
        self.writes.append(XenWrite(self.clock, domid, frame.gfn, offset, structure, frame.content, value))


class GuestMemory:
    """A domain's guest-physical address space: frames created on first touch."""

    def __init__(self) -> None:
        self.frames: dict[Gfn, Frame] = {}

    def frame(self, gfn: Gfn) -> Frame:
        """The frame at ``gfn``, populated (zeroed, content "ram") if it was never touched."""
        frame = self.frames.get(gfn)
        if frame is None:
            frame = self.frames[gfn] = Frame(gfn)
        return frame

    def fill(self, gfn: Gfn, data: bytes, content: str) -> Frame:
        """A guest-side write of a whole frame (e.g. a hibernation image page): not Xen's."""
        if len(data) != PAGE_SIZE:
            raise ValueError(f"a frame holds {PAGE_SIZE} bytes, got {len(data)}")
        frame = self.frame(gfn)
        frame.data[:] = data
        frame.content = content
        return frame


@dataclass(frozen=True)
class SharedInfoLayout:
    """Offsets of the event-channel fields of shared_info/vcpu_info for one guest width."""

    bits_per_word: int  # BITS_PER_EVTCHN_WORD: 64, or 32 for a compat (32-bit) guest
    word_format: str  # struct format of xen_ulong_t
    mask_offset: int
    pending_sel_offset: int

    @property
    def nr_channels(self) -> int:
        """EVTCHN_2L_NR_CHANNELS for this width (4096 or 1024)."""
        return self.bits_per_word * self.bits_per_word


LAYOUT_64 = SharedInfoLayout(64, "Q", SHINFO_PENDING_OFFSET + 64 * 8, 8)
LAYOUT_32 = SharedInfoLayout(32, "I", SHINFO_PENDING_OFFSET + 32 * 4, 4)


class SharedInfoView:
    """Typed words of shared_info: ``evtchn_pending`` and ``evtchn_mask`` bitmaps.

    Both Xen and the guest use this view; the memoryviews alias the frame's bytes, so an
    image load that overwrites the frame is seen at once.
    """

    __slots__ = ("frame", "layout", "evtchn_pending", "evtchn_mask")

    def __init__(self, frame: Frame, layout: SharedInfoLayout) -> None:
        words = layout.bits_per_word
        size = words * words // 8
        buf = memoryview(frame.data)
        self.frame = frame
        self.layout = layout
        self.evtchn_pending = buf[SHINFO_PENDING_OFFSET : SHINFO_PENDING_OFFSET + size].cast(
            layout.word_format
        )
        self.evtchn_mask = buf[layout.mask_offset : layout.mask_offset + size].cast(layout.word_format)


class VcpuInfoView:
    """Typed fields of one vcpu_info: upcall pending/mask bytes and ``evtchn_pending_sel``."""

    __slots__ = ("frame", "offset", "bytes", "sel")

    UPCALL_PENDING = 0
    UPCALL_MASK = 1

    def __init__(self, frame: Frame, offset: int, layout: SharedInfoLayout) -> None:
        self.frame = frame
        self.offset = offset
        self.bytes = memoryview(frame.data)[offset : offset + VCPU_INFO_SIZE]
        start = layout.pending_sel_offset
        width = layout.bits_per_word // 8
        self.sel = self.bytes[start : start + width].cast(layout.word_format)

    @property
    def evtchn_upcall_pending(self) -> int:
        return self.bytes[self.UPCALL_PENDING]

    @property
    def evtchn_upcall_mask(self) -> int:
        return self.bytes[self.UPCALL_MASK]

    @property
    def evtchn_pending_sel(self) -> int:
        return self.sel[0]


class ControlBlockView:
    """struct evtchn_fifo_control_block: ``words[0]`` is ``ready``, ``words[2 + q]`` is ``head[q]``."""

    __slots__ = ("frame", "offset", "words")

    READY = 0
    HEAD0 = 2

    def __init__(self, frame: Frame, offset: int) -> None:
        self.frame = frame
        self.offset = offset
        self.words = memoryview(frame.data)[offset : offset + EVTCHN_FIFO_CONTROL_BLOCK_SIZE].cast("I")

    @property
    def ready(self) -> int:
        return self.words[self.READY]

    def head(self, priority: int) -> int:
        """HEAD of queue ``priority`` as the guest sees it."""
        return self.words[self.HEAD0 + priority]


def event_words(frame: Frame) -> memoryview:
    """An event-array page as its 1024 ``event_word_t`` (uint32) words."""
    return memoryview(frame.data).cast("I")
