"""Guest memory: the byte layouts of shared_info, vcpu_info, the FIFO control block and the
event array, and the record of every write Xen makes into guest frames.

Offsets come from xen-abi-facts.md sections 1.4 and 1.5 (xen/include/public/xen.h and
event_channel.h); all multi-byte fields are little-endian, as on x86. Each layout test goes
both ways: write through the typed view and read the raw bytes of ``frame.data``, and
write raw bytes and read them back through the view.
"""

from __future__ import annotations

import pytest
from conftest import op

from evtsim import (
    EVTCHNOP_bind_ipi,
    EVTCHNOP_expand_array,
    EVTCHNOP_init_control,
    EVTCHNOP_send,
    Xen,
)
from evtsim.abi import (
    COMPAT_EVTCHN_2L_NR_CHANNELS,
    EVTCHN_2L_NR_CHANNELS,
    EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_PENDING,
    EVTCHN_FIFO_PRIORITY_DEFAULT,
)
from evtsim.memory import (
    LAYOUT_32,
    LAYOUT_64,
    ControlBlockView,
    Frame,
    GuestMemory,
    Recording,
    SharedInfoView,
    Structure,
    VcpuInfoView,
    WriteLog,
    XenWrite,
    event_words,
)
from evtsim.xen import SHARED_INFO_GFN

PAGE = 4096


def raw(frame: Frame, offset: int, size: int) -> int:
    """The little-endian integer at ``offset`` in the frame's bytes."""
    return int.from_bytes(frame.data[offset:offset + size], "little")


def poke(frame: Frame, offset: int, size: int, value: int) -> None:
    """Write ``value`` as a little-endian integer straight into the frame's bytes."""
    frame.data[offset:offset + size] = value.to_bytes(size, "little")


# --- shared_info: evtchn_pending and evtchn_mask -----------------------------------------------


@pytest.mark.parametrize("layout, word_bytes, nr_words, mask_at", [
    (LAYOUT_64, 8, 64, 2560),
    (LAYOUT_32, 4, 32, 2176),
])
def test_evtchn_pending_and_mask_sit_at_their_shared_info_offsets(layout, word_bytes, nr_words, mask_at):
    """struct shared_info (xen/include/public/xen.h): vcpu_info[32] then evtchn_pending[] at 2048,
    evtchn_mask[] right after it; xen_ulong_t words, sizeof(xen_ulong_t)*8 of them."""
    frame = Frame(1)
    view = SharedInfoView(frame, layout)
    assert len(view.evtchn_pending) == nr_words and view.evtchn_pending.itemsize == word_bytes
    assert len(view.evtchn_mask) == nr_words and view.evtchn_mask.itemsize == word_bytes
    top = 1 << (8 * word_bytes - 1)
    for word in (0, 1, nr_words - 1):
        view.evtchn_pending[word] = top | word
        assert raw(frame, 2048 + word * word_bytes, word_bytes) == top | word
        view.evtchn_mask[word] = top | (word + 1)
        assert raw(frame, mask_at + word * word_bytes, word_bytes) == top | (word + 1)


@pytest.mark.parametrize("layout, word_bytes, mask_at", [(LAYOUT_64, 8, 2560), (LAYOUT_32, 4, 2176)])
def test_raw_shared_info_bytes_read_back_through_the_view(layout, word_bytes, mask_at):
    """The guest and Xen share the page: bytes written directly are what the view reads."""
    frame = Frame(1)
    view = SharedInfoView(frame, layout)
    poke(frame, 2048 + 5 * word_bytes, word_bytes, 0x0102_0304)
    poke(frame, mask_at + 7 * word_bytes, word_bytes, 0x8000_0001)
    assert view.evtchn_pending[5] == 0x0102_0304
    assert view.evtchn_mask[7] == 0x8000_0001
    assert sum(1 for w in view.evtchn_pending if w) == 1
    assert sum(1 for w in view.evtchn_mask if w) == 1


@pytest.mark.parametrize("layout, mask_at", [(LAYOUT_64, 2560), (LAYOUT_32, 2176)])
def test_pending_bitmap_and_mask_bitmap_are_adjacent_and_disjoint(layout, mask_at):
    """evtchn_pending covers exactly [2048, mask offset); evtchn_mask the same size after it."""
    frame = Frame(1)
    view = SharedInfoView(frame, layout)
    ones = (1 << layout.bits_per_word) - 1
    for word in range(len(view.evtchn_pending)):
        view.evtchn_pending[word] = ones
    assert set(frame.data[2048:mask_at]) == {0xFF}
    assert not any(frame.data[:2048]) and not any(frame.data[mask_at:])
    size = mask_at - 2048
    for word in range(len(view.evtchn_mask)):
        view.evtchn_mask[word] = ones
    assert set(frame.data[mask_at:mask_at + size]) == {0xFF}
    assert not any(frame.data[mask_at + size:])


def test_layouts_give_4096_channels_for_64_bit_and_1024_for_32_bit_guests():
    """EVTCHN_2L_NR_CHANNELS = BITS_PER_EVTCHN_WORD squared (xen/include/public/xen.h)."""
    assert LAYOUT_64.bits_per_word == 64 and LAYOUT_64.nr_channels == 4096 == EVTCHN_2L_NR_CHANNELS
    assert LAYOUT_32.bits_per_word == 32 and LAYOUT_32.nr_channels == 1024 == COMPAT_EVTCHN_2L_NR_CHANNELS


# --- vcpu_info -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, sel_at, sel_bytes", [(LAYOUT_64, 8, 8), (LAYOUT_32, 4, 4)])
@pytest.mark.parametrize("vcpu", [0, 1, 31])
def test_vcpu_info_fields_sit_at_their_offsets(layout, sel_at, sel_bytes, vcpu):
    """struct vcpu_info (64 bytes on x86): evtchn_upcall_pending u8 at 0, evtchn_upcall_mask u8 at 1,
    evtchn_pending_sel at 8 (x86-64) or 4 (32-bit compat); vcpu_info[i] at 64*i."""
    frame = Frame(1)
    base = 64 * vcpu
    info = VcpuInfoView(frame, base, layout)
    frame.data[base + 0] = 1
    assert info.evtchn_upcall_pending == 1 and info.evtchn_upcall_mask == 0
    frame.data[base + 1] = 1
    assert info.evtchn_upcall_mask == 1
    top = 1 << (8 * sel_bytes - 1)
    info.sel[0] = top | 0b101
    assert raw(frame, base + sel_at, sel_bytes) == top | 0b101
    poke(frame, base + sel_at, sel_bytes, 0b110)
    assert info.evtchn_pending_sel == 0b110
    assert not any(frame.data[:base]) and not any(frame.data[base + 64:])


def test_32_bit_selector_does_not_reach_the_64_bit_offset():
    """The compat selector is a 4-byte xen_ulong_t at +4: bytes 8..15 stay untouched."""
    frame = Frame(1)
    info = VcpuInfoView(frame, 0, LAYOUT_32)
    info.sel[0] = 0xFFFF_FFFF
    assert frame.data[4:8] == b"\xff" * 4
    assert not any(frame.data[8:64])
    assert frame.data[0] == 0 and frame.data[1] == 0


def test_domain_vcpus_see_vcpu_info_i_at_64_times_i_of_shared_info():
    """Xen's per-vCPU vcpu_info lives in shared_info (XEN_LEGACY_MAX_VCPUS = 32 on x86)."""
    xen = Xen()
    d = xen.domain_create(vcpus=3)
    for v in d.vcpus:
        assert v.vcpu_info.frame is d.shared_info.frame
        assert v.vcpu_info.offset == 64 * v.vcpu_id
        d.shared_info.frame.data[64 * v.vcpu_id] = 1
        assert v.vcpu_info.evtchn_upcall_pending == 1


# --- FIFO control block and event array ------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 64, 4096 - 72])
def test_control_block_ready_and_heads_sit_at_their_offsets(offset):
    """struct evtchn_fifo_control_block (event_channel.h): ready u32 at +0, _rsvd at +4,
    head[q] u32 at +8+4q; 72 bytes at a guest-chosen offset in the page."""
    frame = Frame(1)
    cb = ControlBlockView(frame, offset)
    assert cb.words.nbytes == 72
    poke(frame, offset, 4, 0x8001)
    assert cb.ready == 0x8001
    poke(frame, offset + 4, 4, 0xDEAD)  # _rsvd is neither ready nor a head
    assert cb.ready == 0x8001 and all(cb.head(q) == 0 for q in range(16))
    for q in range(16):
        poke(frame, offset + 8 + 4 * q, 4, 100 + q)
    assert [cb.head(q) for q in range(16)] == [100 + q for q in range(16)]
    cb.words[ControlBlockView.HEAD0 + 15] = 0x1FFFF
    assert raw(frame, offset + 8 + 4 * 15, 4) == 0x1FFFF
    assert not any(frame.data[:offset]) and not any(frame.data[offset + 72:])


def test_event_array_page_holds_1024_little_endian_words():
    """An event-array page is 1024 event_word_t (uint32); word i at byte 4*i."""
    frame = Frame(1)
    words = event_words(frame)
    assert len(words) == 1024 and words.itemsize == 4
    words[1023] = 1 << EVTCHN_FIFO_PENDING
    assert raw(frame, 4 * 1023, 4) == 1 << 31
    poke(frame, 4 * 5, 4, 0x1234)
    assert words[5] == 0x1234


def test_fifo_port_p_is_word_p_mod_1024_of_page_p_div_1024_and_head_is_at_the_chosen_offset():
    """Models evtchn_fifo_set_pending (xen/common/event_fifo.c): port 1025 is word 1 of the
    second array page; an empty queue gets HEAD[7] and READY bit 7 in the control block,
    which sits at the offset the guest passed to init_control."""
    xen = Xen()
    d = xen.domain_create(vcpus=1, max_evtchn_port=2047)
    cb_gfn, cb_offset, array_gfns = 0x100, 64, (0x200, 0x201)
    rc, _ = op(d, EVTCHNOP_init_control, control_gfn=cb_gfn, offset=cb_offset, vcpu=0)
    assert rc == 0
    for gfn in array_gfns:
        rc, _ = op(d, EVTCHNOP_expand_array, array_gfn=gfn)
        assert rc == 0
    port = 0
    while port < 1025:
        rc, arg = op(d, EVTCHNOP_bind_ipi, vcpu=0)
        assert rc == 0
        port = arg.port
    assert port == 1025
    rc, _ = op(d, EVTCHNOP_send, port=port)
    assert rc == 0
    page0, page1, cb = (d.memory.frame(g) for g in (*array_gfns, cb_gfn))
    word = raw(page1, 4 * (port % 1024), 4)
    assert word >> EVTCHN_FIFO_PENDING & 1 and word >> EVTCHN_FIFO_LINKED & 1
    assert not any(page0.data)  # port 1's word (same index, first page) untouched
    prio = EVTCHN_FIFO_PRIORITY_DEFAULT
    assert raw(cb, cb_offset + 8 + 4 * prio, 4) == port
    assert raw(cb, cb_offset, 4) == 1 << prio
    assert not any(cb.data[:cb_offset])


# --- Xen's write record ----------------------------------------------------------------------


def ipi_port(d, vcpu: int, count: int = 1) -> int:
    """Bind ``count`` IPI ports on ``vcpu``; return the last one."""
    port = 0
    for _ in range(count):
        rc, arg = op(d, EVTCHNOP_bind_ipi, vcpu=vcpu)
        assert rc == 0
        port = arg.port
    return port


def test_every_xen_write_is_counted_on_its_frame_and_kept_with_the_clock():
    """A 2-level delivery writes the pending word, the selector and evtchn_upcall_pending
    (facts 2.3): three writes into the shared_info frame, kept (FULL) with the hypercall's clock."""
    xen = Xen(recording=Recording.FULL)
    d = xen.domain_create(vcpus=1)
    port = ipi_port(d, 0)
    frame = d.shared_info.frame
    created = frame.xen_writes  # the wallclock and the vCPU's time record, written at creation
    op(d, EVTCHNOP_send, port=port)
    assert frame.xen_writes == created + 3
    assert [w.clock for w in xen.log.writes[-3:]] == [xen.clock] * 3
    first = xen.clock
    xen.tick()
    xen.tick()
    d.shared_info.evtchn_pending[0] = 0  # guest acks; selector and upcall byte stay set
    op(d, EVTCHNOP_send, port=port)
    assert frame.xen_writes == created + 4  # only the pending word changed this time
    assert xen.log.writes[-1].clock == xen.clock == first + 3


def test_counts_recording_keeps_no_individual_writes():
    """Recording.COUNTS (the default) keeps the per-frame counters only."""
    xen = Xen()
    d = xen.domain_create(vcpus=1)
    op(d, EVTCHNOP_send, port=ipi_port(d, 0))
    assert xen.log.level is Recording.COUNTS
    assert d.shared_info.frame.xen_writes > 0
    assert xen.log.writes == []


def test_full_recording_keeps_each_write_with_gfn_offset_structure_content_and_value():
    """Recording.FULL: one XenWrite per write, in the order of evtchn_2l_set_pending (pending
    word, then selector) and vcpu_mark_events_pending (upcall byte)."""
    xen = Xen(recording=Recording.FULL)
    d = xen.domain_create(vcpus=2)
    port = ipi_port(d, 1, count=70)  # port 70: word 1, bit 6; notify vCPU 1
    op(d, EVTCHNOP_send, port=port)
    at = xen.clock
    mine = [w for w in xen.log.writes if w.clock == at]
    assert mine == [
        XenWrite(at, d.domain_id, SHARED_INFO_GFN, 2048 + 8 * 1, Structure.SHARED_INFO, "shared_info", 1 << 6),
        XenWrite(at, d.domain_id, SHARED_INFO_GFN, 64 * 1 + 8, Structure.VCPU_INFO, "shared_info", 1 << 1),
        XenWrite(at, d.domain_id, SHARED_INFO_GFN, 64 * 1 + 0, Structure.VCPU_INFO, "shared_info", 1),
    ]


def test_write_log_stamps_writes_with_its_clock_and_the_frames_current_content():
    """WriteLog.wrote: the counters move and, with FULL, the write is kept as it happened."""
    log = WriteLog(Recording.FULL)
    frame = Frame(7, content="page cache")
    log.clock = 41
    log.wrote(3, frame, 16, Structure.EVENT_ARRAY, 0x8000_0000)
    assert frame.xen_writes == 1
    assert log.writes == [XenWrite(41, 3, 7, 16, Structure.EVENT_ARRAY, "page cache", 0x8000_0000)]


def test_xen_write_into_a_refilled_control_block_frame_records_the_guests_new_content():
    """The hibernation hazard (facts 4.6, 8.10): Xen keeps writing HEAD into the frame the guest
    registered with init_control, whatever the guest has put there since."""
    xen = Xen(recording=Recording.FULL)
    d = xen.domain_create(vcpus=1)
    cb_gfn = 0x100
    assert op(d, EVTCHNOP_init_control, control_gfn=cb_gfn, offset=0, vcpu=0)[0] == 0
    assert op(d, EVTCHNOP_expand_array, array_gfn=0x200)[0] == 0
    port = ipi_port(d, 0)
    d.memory.fill(cb_gfn, bytes(PAGE), "hibernation image")
    before = d.memory.frame(cb_gfn).xen_writes
    op(d, EVTCHNOP_send, port=port)
    frame = d.memory.frame(cb_gfn)
    assert frame.xen_writes > before
    head = 8 + 4 * EVTCHN_FIFO_PRIORITY_DEFAULT
    hits = [w for w in xen.log.writes if w.gfn == cb_gfn and w.offset == head]
    assert len(hits) == 1
    assert hits[0].structure is Structure.CONTROL_BLOCK
    assert hits[0].content == "hibernation image"
    assert hits[0].value == port


# --- guest-side writes -----------------------------------------------------------------------


def test_fill_is_a_guest_write_not_counted_as_xens():
    """GuestMemory.fill replaces the page and its label; Xen's counters do not move."""
    xen = Xen(recording=Recording.FULL)
    d = xen.domain_create(vcpus=1)
    op(d, EVTCHNOP_send, port=ipi_port(d, 0))
    frame = d.shared_info.frame
    writes, logged = frame.xen_writes, len(xen.log.writes)
    image = bytes(range(256)) * 16
    assert d.memory.fill(SHARED_INFO_GFN, image, "image page") is frame
    assert bytes(frame.data) == image
    assert frame.content == "image page"
    assert (frame.xen_writes, len(xen.log.writes)) == (writes, logged)


def test_fill_is_seen_at_once_through_the_views_of_that_frame():
    """The typed views alias the frame: an image load over shared_info changes what both the
    guest and Xen read, with no re-mapping."""
    xen = Xen()
    d = xen.domain_create(vcpus=1)
    image = bytearray(PAGE)
    image[2048:2056] = (0xF0).to_bytes(8, "little")  # evtchn_pending[0]
    image[8:16] = (0b1).to_bytes(8, "little")  # vcpu 0 evtchn_pending_sel
    image[0] = 1  # evtchn_upcall_pending
    d.memory.fill(SHARED_INFO_GFN, bytes(image), "image page")
    assert d.shared_info.evtchn_pending[0] == 0xF0
    assert d.vcpus[0].vcpu_info.evtchn_pending_sel == 1
    assert d.vcpus[0].vcpu_info.evtchn_upcall_pending == 1


@pytest.mark.parametrize("size", [0, PAGE - 1, PAGE + 1])
def test_fill_refuses_a_wrong_size_page(size):
    """A frame is exactly 4096 bytes; anything else is a caller bug."""
    memory = GuestMemory()
    with pytest.raises(ValueError):
        memory.fill(5, bytes(size), "junk")
    assert memory.frame(5).content == "ram"
    assert not any(memory.frame(5).data)


def test_untouched_frame_is_zeroed_ram_and_stays_the_same_object():
    """GuestMemory.frame populates on first touch: zeroed, labelled "ram", never written by Xen."""
    memory = GuestMemory()
    frame = memory.frame(0x42)
    assert frame.gfn == 0x42 and len(frame.data) == PAGE and not any(frame.data)
    assert frame.content == "ram" and frame.xen_writes == 0
    assert memory.frame(0x42) is frame
