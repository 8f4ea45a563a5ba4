"""The shared structures at Xen's x86 offsets: shared_info, vcpu_info, vcpu_time_info.

Sizes and offsets are the headers' (xen/include/public/xen.h, arch-x86/xen.h,
xen-x86_64.h, xen-x86_32.h): vcpu_info is 64 bytes on x86, vcpu_time_info 32, and
shared_info is 3136 bytes for a 64-bit guest and 2344 for a 32-bit one (the compat layout).
Each view is checked against bytes put into the frame with ``struct``, not against itself.
"""

from __future__ import annotations

import struct

import pytest

from evtsim import Xen
from evtsim.layouts import SHARED_INFO_32, SHARED_INFO_64, VCPU_INFO_32, VCPU_INFO_64, VCPU_TIME_INFO

# (layout, field, offset, size) straight from the C declarations.
OFFSETS = [
    (VCPU_INFO_64, "evtchn_upcall_pending", 0, 1),
    (VCPU_INFO_64, "evtchn_upcall_mask", 1, 1),
    (VCPU_INFO_64, "evtchn_pending_sel", 8, 8),
    (VCPU_INFO_64, "arch.cr2", 16, 8),
    (VCPU_INFO_64, "arch.pad", 24, 8),
    (VCPU_INFO_64, "time.version", 32, 4),
    (VCPU_INFO_32, "evtchn_pending_sel", 4, 4),
    (VCPU_INFO_32, "arch.cr2", 8, 4),
    (VCPU_INFO_32, "arch.pad", 12, 20),  # unsigned long pad[5]
    (VCPU_INFO_32, "time.version", 32, 4),
    (VCPU_TIME_INFO, "tsc_timestamp", 8, 8),
    (VCPU_TIME_INFO, "system_time", 16, 8),
    (VCPU_TIME_INFO, "tsc_to_system_mul", 24, 4),
    (VCPU_TIME_INFO, "tsc_shift", 28, 1),
    (VCPU_TIME_INFO, "flags", 29, 1),
    (SHARED_INFO_64, "evtchn_pending", 2048, 512),
    (SHARED_INFO_64, "evtchn_mask", 2560, 512),
    (SHARED_INFO_64, "wc_version", 3072, 4),
    (SHARED_INFO_64, "wc_sec", 3076, 4),
    (SHARED_INFO_64, "wc_nsec", 3080, 4),
    (SHARED_INFO_64, "wc_sec_hi", 3084, 4),
    (SHARED_INFO_64, "arch.max_pfn", 3088, 8),
    (SHARED_INFO_64, "arch.pfn_to_mfn_frame_list_list", 3096, 8),
    (SHARED_INFO_64, "arch.nmi_reason", 3104, 8),
    (SHARED_INFO_64, "arch.p2m_cr3", 3112, 8),
    (SHARED_INFO_64, "arch.p2m_vaddr", 3120, 8),
    (SHARED_INFO_64, "arch.p2m_generation", 3128, 8),
    (SHARED_INFO_32, "evtchn_pending", 2048, 128),
    (SHARED_INFO_32, "evtchn_mask", 2176, 128),
    (SHARED_INFO_32, "wc_version", 2304, 4),
    (SHARED_INFO_32, "wc_sec", 2308, 4),
    (SHARED_INFO_32, "wc_nsec", 2312, 4),
    (SHARED_INFO_32, "arch.max_pfn", 2316, 4),
    (SHARED_INFO_32, "arch.p2m_generation", 2336, 4),
    (SHARED_INFO_32, "arch.wc_sec_hi", 2340, 4),
]


@pytest.mark.parametrize("layout, name, offset, size", OFFSETS, ids=lambda x: getattr(x, "name", str(x)))
def test_each_member_sits_at_its_c_offset_with_its_c_size(layout, name, offset, size):
    field = layout.field(name)
    assert (field.offset, field.size) == (offset, size)


@pytest.mark.parametrize("layout, size", [(VCPU_INFO_64, 64), (VCPU_INFO_32, 64), (VCPU_TIME_INFO, 32),
                                          (SHARED_INFO_64, 3136), (SHARED_INFO_32, 2344)])
def test_members_do_not_overlap_and_end_within_the_struct(layout, size):
    """Members in offset order, each starting at or after the previous one's end."""
    assert layout.size == size
    end = 0
    for field in layout.fields:
        assert field.offset >= end, f"{field.name} overlaps the member before it"
        end = field.offset + field.size
    assert end <= size


def test_a_32_bit_shared_info_has_no_generic_wc_sec_hi():
    with pytest.raises(KeyError):
        SHARED_INFO_32.field("wc_sec_hi")
    with pytest.raises(KeyError):
        SHARED_INFO_64.field("arch.wc_sec_hi")


@pytest.mark.parametrize("compat, sel_offset, fmt", [(False, 8, "<Q"), (True, 4, "<I")])
def test_vcpu_info_views_read_the_bytes_a_guest_wrote(compat, sel_offset, fmt):
    d = Xen().domain_create(vcpus=2, compat=compat)
    info = d.vcpus[1].vcpu_info
    base = 64  # vcpu_info[1]
    data = info.frame.data
    struct.pack_into("<BB", data, base, 1, 1)
    struct.pack_into(fmt, data, base + sel_offset, 0b101)
    struct.pack_into(fmt, data, base + sel_offset + struct.calcsize(fmt), 0xCAFE)  # arch.cr2
    assert (info.evtchn_upcall_pending, info.evtchn_upcall_mask, info.evtchn_pending_sel) == (1, 1, 0b101)
    assert info.fields["arch.cr2"] == 0xCAFE
    assert info.fields["time.version"] == info.time["version"] == struct.unpack_from("<I", data, base + 32)[0]


def test_shared_info_fields_see_the_bitmaps_the_engine_views_write():
    d = Xen().domain_create()
    d.shared_info.evtchn_mask[3] = 0xF0
    assert d.shared_info.fields["evtchn_mask"][3] == 0xF0
    assert struct.unpack_from("<Q", d.shared_info.frame.data, 2560 + 3 * 8)[0] == 0xF0


def test_a_struct_view_names_what_exists_when_asked_for_what_does_not():
    d = Xen().domain_create()
    with pytest.raises(KeyError, match="wc_sec"):
        d.shared_info.fields["wallclock"]
