"""The shared structures of ``xen/include/public/xen.h`` at their x86 byte offsets.

``shared_info`` and ``vcpu_info`` differ between 64-bit and 32-bit x86 guests because
``xen_ulong_t`` and ``unsigned long`` are 8 or 4 bytes wide (``arch-x86/xen-x86_64.h``,
``xen-x86_32.h``); Xen keeps the 32-bit form for a guest with ``has_32bit_shinfo``. The
offsets below follow the C layout rules of each ABI, and the tests check them against the
sizes the headers state (``vcpu_info`` is 64 bytes; ``vcpu_time_info`` 32) and those of the
compat structures (``shared_info`` is 3136 bytes for x86_64, 2344 for x86_32).

A ``Field`` is a name, a byte offset and a little-endian ``struct`` format; an array field
has a count in its format (``"64Q"``). Nested structs are flattened with dotted names
(``"time.system_time"``, ``"arch.max_pfn"``), as a C expression would name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import calcsize
from typing import NamedTuple


class Field(NamedTuple):
    """One member of a C struct: its name, byte offset and ``struct`` format."""

    name: str
    offset: int
    fmt: str

    @property
    def size(self) -> int:
        return calcsize("<" + self.fmt)


@dataclass(frozen=True)
class StructLayout:
    """A C struct: its name, size and members in offset order."""

    name: str
    size: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        """The member called ``name``; a KeyError names the ones that exist."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}; it has {', '.join(f.name for f in self.fields)}")

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _nest(prefix: str, base: int, inner: StructLayout) -> tuple[Field, ...]:
    """``inner``'s members as members of an outer struct, at ``base`` and named ``prefix.x``."""
    return tuple(Field(f"{prefix}.{f.name}", base + f.offset, f.fmt) for f in inner.fields)


#: struct vcpu_time_info (xen.h): the guest's clock, written by update_vcpu_system_time.
VCPU_TIME_INFO = StructLayout("vcpu_time_info", 32, (
    Field("version", 0, "I"),  # odd while Xen rewrites the record
    Field("pad0", 4, "I"),
    Field("tsc_timestamp", 8, "Q"),  # TSC at the last update
    Field("system_time", 16, "Q"),  # ns since boot at that TSC
    Field("tsc_to_system_mul", 24, "I"),  # ns = ((tsc delta << tsc_shift) * mul) >> 32
    Field("tsc_shift", 28, "b"),
    Field("flags", 29, "B"),  # XEN_PVCLOCK_* (interface version > 0x040600)
    Field("pad1", 30, "2B"),
))

#: struct arch_vcpu_info (xen-x86_64.h / xen-x86_32.h): cr2 and padding to 64 bytes.
ARCH_VCPU_INFO_64 = StructLayout("arch_vcpu_info", 16, (Field("cr2", 0, "Q"), Field("pad", 8, "Q")))
ARCH_VCPU_INFO_32 = StructLayout("arch_vcpu_info", 24, (Field("cr2", 0, "I"), Field("pad", 4, "5I")))


def _vcpu_info(word: str, sel_offset: int, arch: StructLayout) -> StructLayout:
    """struct vcpu_info: the upcall bytes, the selector word, arch, then time at byte 32."""
    return StructLayout("vcpu_info", 64, (
        Field("evtchn_upcall_pending", 0, "B"),
        Field("evtchn_upcall_mask", 1, "B"),  # XEN_HAVE_PV_UPCALL_MASK (x86)
        Field("evtchn_pending_sel", sel_offset, word),
        *_nest("arch", sel_offset + calcsize(word), arch),
        *_nest("time", 32, VCPU_TIME_INFO),
    ))


VCPU_INFO_64 = _vcpu_info("Q", 8, ARCH_VCPU_INFO_64)
VCPU_INFO_32 = _vcpu_info("I", 4, ARCH_VCPU_INFO_32)

#: struct arch_shared_info (arch-x86/xen.h); the 32-bit one ends with wc_sec_hi, for which
#: the generic struct had no room there.
ARCH_SHARED_INFO_64 = StructLayout("arch_shared_info", 48, tuple(
    Field(name, 8 * i, "Q") for i, name in enumerate(
        ("max_pfn", "pfn_to_mfn_frame_list_list", "nmi_reason", "p2m_cr3", "p2m_vaddr", "p2m_generation"))))
ARCH_SHARED_INFO_32 = StructLayout("arch_shared_info", 28, (
    *(Field(f.name, f.offset // 2, "I") for f in ARCH_SHARED_INFO_64.fields),
    Field("wc_sec_hi", 24, "I"),
))

XEN_LEGACY_VCPU_INFOS = 32  # vcpu_info[XEN_LEGACY_MAX_VCPUS] opens shared_info
VCPU_INFO_SIZE = 64
SHINFO_PENDING_OFFSET = XEN_LEGACY_VCPU_INFOS * VCPU_INFO_SIZE  # 2048


def _shared_info(word: str, size: int, arch: StructLayout, wc_sec_hi: bool) -> StructLayout:
    """struct shared_info after its vcpu_info array: the bitmaps, the wallclock, arch."""
    bits = calcsize(word) * 8
    bitmap = f"{bits}{word}"  # sizeof(xen_ulong_t) * 8 words
    mask = SHINFO_PENDING_OFFSET + calcsize(bitmap)
    wallclock = mask + calcsize(bitmap)
    fields = [
        Field("evtchn_pending", SHINFO_PENDING_OFFSET, bitmap),
        Field("evtchn_mask", mask, bitmap),
        Field("wc_version", wallclock, "I"),
        Field("wc_sec", wallclock + 4, "I"),
        Field("wc_nsec", wallclock + 8, "I"),
    ]
    if wc_sec_hi:
        fields.append(Field("wc_sec_hi", wallclock + 12, "I"))  # since Xen 4.6, in a former hole
    arch_offset = wallclock + (16 if wc_sec_hi else 12)
    return StructLayout("shared_info", size, (*fields, *_nest("arch", arch_offset, arch)))


SHARED_INFO_64 = _shared_info("Q", 3136, ARCH_SHARED_INFO_64, wc_sec_hi=True)
SHARED_INFO_32 = _shared_info("I", 2344, ARCH_SHARED_INFO_32, wc_sec_hi=False)
