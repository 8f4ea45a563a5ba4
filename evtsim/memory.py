"""Guest physical memory: 4 KiB frames by gfn, typed views at Xen's real layouts, and a
record of every write Xen makes into them.

Shared memory is the lesson of the hibernation story: Xen keeps writing a FIFO control
block into whatever frame the guest once registered, even after that frame holds
something else. So each frame says what the guest last put there (``content``), what
Xen has it mapped as (``xen_mapping``), and how often Xen wrote it.

Layouts (xen/include/public/xen.h, event_channel.h; every field in ``evtsim.layouts``):

* shared_info: ``vcpu_info[32]`` (64 bytes each), then ``evtchn_pending`` at byte 2048
  and ``evtchn_mask`` after it: 64 x 64-bit words (mask at 2560) for a 64-bit guest,
  32 x 32-bit words (mask at 2176) for a 32-bit one; then the wallclock (``wc_version``,
  ``wc_sec``, ``wc_nsec``, ``wc_sec_hi``) and ``arch``.
* vcpu_info: ``evtchn_upcall_pending`` (u8 at 0), ``evtchn_upcall_mask`` (u8 at 1),
  ``evtchn_pending_sel`` (xen_ulong_t at 8, or at 4 in the 32-bit layout), ``arch``, and
  ``time`` (struct vcpu_time_info) at byte 32.
* FIFO control block, 72 bytes at a guest-chosen offset: ``ready``, ``_rsvd``, ``head[16]``.
* event-array page: 1024 32-bit event words.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from .abi import EVTCHN_FIFO_CONTROL_BLOCK_SIZE, PAGE_SIZE, DomId, Gfn
from .layouts import (
    SHARED_INFO_32,
    SHARED_INFO_64,
    SHINFO_PENDING_OFFSET,
    VCPU_INFO_32,
    VCPU_INFO_64,
    VCPU_INFO_SIZE,
    VCPU_TIME_INFO,
    StructLayout,
)


class Structure(str, Enum):
    """What Xen believes a frame (or part of one) holds when it writes there."""

    SHARED_INFO = "shared_info"
    VCPU_INFO = "vcpu_info"
    CONTROL_BLOCK = "control_block"
    EVENT_ARRAY = "event_array"


class Recording(str, Enum):
    """How much of Xen's guest-memory writes to keep.

    ``COUNTS`` (the cheapest) keeps, per frame, how many writes Xen made: enough to find writes
    after a hand-over. ``FULL`` also keeps every write, with the clock it happened at.
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
        """Account one Xen write of ``value`` at ``offset`` in ``frame``: count it, and keep it
        (stamped with the clock) if ``full``.

        The one definition of write accounting. Only the two engines' set_pending hot paths
        repeat its lines inline, because a call per write costs 15-18% of an event.
        """
        frame.xen_writes += 1
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
    """shared_info and vcpu_info for one guest width (``has_32bit_shinfo`` or not)."""

    bits_per_word: int  # BITS_PER_EVTCHN_WORD: 64, or 32 for a compat (32-bit) guest
    word_format: str  # struct format of xen_ulong_t
    shared_info: StructLayout
    vcpu_info: StructLayout
    wc_sec_hi: str  # where the wallclock's upper 32 bits live: "wc_sec_hi" or "arch.wc_sec_hi"

    @property
    def nr_channels(self) -> int:
        """EVTCHN_2L_NR_CHANNELS for this width (4096 or 1024)."""
        return self.bits_per_word * self.bits_per_word

    @property
    def mask_offset(self) -> int:
        """Byte offset of ``evtchn_mask`` in shared_info."""
        return self.shared_info.field("evtchn_mask").offset

    @property
    def pending_sel_offset(self) -> int:
        """Byte offset of ``evtchn_pending_sel`` in vcpu_info."""
        return self.vcpu_info.field("evtchn_pending_sel").offset


LAYOUT_64 = SharedInfoLayout(64, "Q", SHARED_INFO_64, VCPU_INFO_64, "wc_sec_hi")
LAYOUT_32 = SharedInfoLayout(32, "I", SHARED_INFO_32, VCPU_INFO_32, "arch.wc_sec_hi")


class StructView:
    """The members of one C struct in a guest frame, by name: ``view["wc_sec"]``.

    Reads and writes go straight to the frame's bytes (little-endian, as on x86), so they see
    and make the same bytes a guest would. Writing through a view is the guest's own store;
    Xen's stores go through ``WriteLog`` as well (``write_field``). An array member reads as a
    tuple.
    """

    __slots__ = ("frame", "offset", "layout")

    def __init__(self, frame: Frame, offset: int, layout: StructLayout) -> None:
        self.frame = frame
        self.offset = offset
        self.layout = layout

    def __getitem__(self, name: str) -> int | tuple[int, ...]:
        f = self.layout.field(name)
        values = struct.unpack_from("<" + f.fmt, self.frame.data, self.offset + f.offset)
        return values[0] if len(values) == 1 else values

    def __setitem__(self, name: str, value: int) -> None:
        f = self.layout.field(name)
        struct.pack_into("<" + f.fmt, self.frame.data, self.offset + f.offset, value)

    def address(self, name: str) -> int:
        """Byte offset of member ``name`` in the frame."""
        return self.offset + self.layout.field(name).offset

    def as_dict(self) -> dict[str, int | tuple[int, ...]]:
        """Every member by name, in offset order."""
        return {name: self[name] for name in self.layout.names()}

    def __repr__(self) -> str:
        return f"<{self.layout.name} at gfn {self.frame.gfn:#x}+{self.offset}>"


def write_field(log: WriteLog, domid: DomId, view: StructView, name: str, value: int,
                structure: Structure) -> None:
    """Xen stores ``value`` into member ``name`` of ``view``: the bytes, then the write record."""
    view[name] = value
    log.wrote(domid, view.frame, view.address(name), structure, value)


class SharedInfoView:
    """Typed words of shared_info: ``evtchn_pending`` and ``evtchn_mask`` bitmaps.

    Both Xen and the guest use this view; the memoryviews alias the frame's bytes, so an
    image load that overwrites the frame is seen at once.
    """

    __slots__ = ("frame", "layout", "evtchn_pending", "evtchn_mask", "fields")

    def __init__(self, frame: Frame, layout: SharedInfoLayout) -> None:
        words = layout.bits_per_word
        size = words * words // 8
        buf = memoryview(frame.data)
        self.frame = frame
        self.layout = layout
        self.fields = StructView(frame, 0, layout.shared_info)  # every member, by name
        self.evtchn_pending = buf[SHINFO_PENDING_OFFSET : SHINFO_PENDING_OFFSET + size].cast(
            layout.word_format
        )
        self.evtchn_mask = buf[layout.mask_offset : layout.mask_offset + size].cast(layout.word_format)


class VcpuInfoView:
    """One vcpu_info: the upcall bytes and ``sel`` (``evtchn_pending_sel``) as fast typed views,
    every member by name in ``fields``, and the clock record in ``time``."""

    __slots__ = ("frame", "offset", "bytes", "sel", "fields", "time")

    UPCALL_PENDING = 0
    UPCALL_MASK = 1

    def __init__(self, frame: Frame, offset: int, layout: SharedInfoLayout) -> None:
        self.frame = frame
        self.offset = offset
        self.bytes = memoryview(frame.data)[offset : offset + VCPU_INFO_SIZE]
        start = layout.pending_sel_offset
        width = layout.bits_per_word // 8
        self.sel = self.bytes[start : start + width].cast(layout.word_format)
        self.fields = StructView(frame, offset, layout.vcpu_info)
        self.time = StructView(frame, offset + layout.vcpu_info.field("time.version").offset, VCPU_TIME_INFO)

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
