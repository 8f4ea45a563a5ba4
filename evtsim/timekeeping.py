"""What Xen writes for a guest's clocks: ``vcpu_time_info`` and the shared_info wallclock.

Models xen/arch/x86/time.c: set_time_scale (the TSC-to-ns scale), __update_vcpu_system_time
(a vCPU's time record, rewritten only when it changed, under the version odd/even protocol:
odd while Xen writes, even when done) and update_domain_wallclock_time (the wallclock base,
under wc_version the same way), with the calibration that restamps the time every second.

The machine is simplified, not the protocol: one constant-rate virtual TSC at ``TSC_HZ``
that reads ``NOW() * TSC_HZ / 10**9`` (so it is 0 at boot), one set of time stamps for all
physical CPUs, an HVM TSC offset of 0 and no XEN_PVCLOCK_* flags (Xen sets
TSC_STABLE only when its clocksource is the TSC). A guest computes the time from the record
as ``system_time + scale(rdtsc() - tsc_timestamp)`` and gets ``NOW()`` back (to the
nanosecond the fixed-point scale allows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .memory import Structure, write_field
from .timer import SECOND

if TYPE_CHECKING:
    from .xen import Domain, Vcpu, Xen

TSC_HZ = 3_000_000_000  # the virtual TSC: 3 GHz, constant and in step on every CPU
EPOCH = SECOND  # time calibration runs once per second (xen/arch/x86/time.c)
#: The wallclock at system time 0 unless a Xen is given another: 2020-12-01 00:00:00 UTC,
#: a week after [PATCH v5] of the series evtsim replays.
DEFAULT_BOOT_WALLCLOCK = 1_606_780_800


def version_update_begin(version: int) -> int:
    """The odd version Xen writes before the record (kept odd even if the guest meddled)."""
    return ((version + 1) | 1) & 0xFFFF_FFFF


def version_update_end(version: int) -> int:
    """The even version Xen writes after the record."""
    return (version + 1) & 0xFFFF_FFFF


@dataclass(frozen=True)
class TimeScale:
    """struct time_scale: ``ns = ((ticks << shift) * mul_frac) >> 32`` (a negative shift shifts right)."""

    shift: int
    mul_frac: int

    @classmethod
    def for_rate(cls, ticks_per_sec: int) -> TimeScale:
        """set_time_scale: bring the rate into (1e9, 2e9] by shifts, then a 32-bit fraction."""
        tps, shift = ticks_per_sec, 0
        while tps > 2 * SECOND:
            tps, shift = tps >> 1, shift - 1
        while tps <= SECOND:
            tps, shift = tps << 1, shift + 1
        return cls(shift, (SECOND << 32) // tps)

    def scale_delta(self, delta: int) -> int:
        """scale_delta: ``delta`` ticks in nanoseconds."""
        delta = delta << self.shift if self.shift >= 0 else delta >> -self.shift
        return (delta * self.mul_frac) >> 32


TSC_SCALE = TimeScale.for_rate(TSC_HZ)


def rdtsc(now: int) -> int:
    """The virtual TSC at system time ``now``."""
    return now * TSC_HZ // SECOND


class Timekeeping:
    """One Xen's time stamps (cpu_time) and the wallclock base (wc_sec, wc_nsec)."""

    def __init__(self, xen: Xen, wallclock_sec: int) -> None:
        self.xen = xen
        self.stime_stamp = 0  # stime_local_stamp: system time at the last calibration
        self.tsc_stamp = 0  # local_tsc_stamp: the TSC then
        self.wc_sec, self.wc_nsec = wallclock_sec, 0

    def calibrate(self) -> None:
        """local_time_calibration with a constant TSC: restamp, then each running vCPU's record."""
        now = self.xen.time.now
        self.stime_stamp, self.tsc_stamp = now, rdtsc(now)
        for d in self.xen.domains.values():
            for v in d.vcpus:
                if not v.blocked:
                    update_vcpu_system_time(v)

    def record(self) -> dict[str, int]:
        """The vcpu_time_info fields (all but version) Xen would write now."""
        return {"tsc_timestamp": self.tsc_stamp, "system_time": self.stime_stamp,
                "tsc_to_system_mul": TSC_SCALE.mul_frac, "tsc_shift": TSC_SCALE.shift, "flags": 0}

    def settime(self, secs: int, nsecs: int) -> None:
        """do_settime: the wallclock is ``secs``.``nsecs`` now; every domain gets the new base."""
        total = secs * SECOND + nsecs - self.xen.time.now
        self.wc_sec, self.wc_nsec = divmod(total, SECOND)
        for d in self.xen.domains.values():
            update_domain_wallclock_time(d)


def update_vcpu_system_time(v: Vcpu) -> None:
    """__update_vcpu_system_time: rewrite ``v``'s time record if it changed, version odd, then even."""
    time, fresh = v.vcpu_info.time, v.domain.xen.timekeeping.record()
    if all(time[name] == value for name, value in fresh.items()):
        return  # "don't bother unless the record changed"
    log, domid = v.domain.xen.log, v.domain.domain_id
    write_field(log, domid, time, "version", version_update_begin(time["version"]), Structure.VCPU_INFO)
    for name, value in fresh.items():
        time[name] = value
    log.wrote(domid, time.frame, time.address("system_time"), Structure.VCPU_INFO, fresh["system_time"])
    write_field(log, domid, time, "version", version_update_end(time["version"]), Structure.VCPU_INFO)


def update_domain_wallclock_time(d: Domain) -> None:
    """update_domain_wallclock_time: wc_sec, wc_nsec and wc_sec_hi under wc_version."""
    tk, shinfo, log = d.xen.timekeeping, d.shared_info, d.xen.log
    fields, domid, shared = shinfo.fields, d.domain_id, Structure.SHARED_INFO
    write_field(log, domid, fields, "wc_version", version_update_begin(fields["wc_version"]), shared)
    write_field(log, domid, fields, "wc_sec", tk.wc_sec & 0xFFFF_FFFF, shared)
    write_field(log, domid, fields, "wc_nsec", tk.wc_nsec, shared)
    write_field(log, domid, fields, shinfo.layout.wc_sec_hi, tk.wc_sec >> 32 & 0xFFFF_FFFF, shared)
    write_field(log, domid, fields, "wc_version", version_update_end(fields["wc_version"]), shared)
