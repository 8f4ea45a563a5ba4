"""System time, timers, and the clock records Xen writes into shared_info.

The time records are read back as a guest reads them: bytes at the offsets of
xen/include/public/xen.h, unpacked here with ``struct`` rather than through evtsim's views.
"""

from __future__ import annotations

import struct

import pytest

from evtsim import Recording, Xen
from evtsim.timekeeping import TSC_HZ, TimeScale, update_vcpu_system_time
from evtsim.timer import SystemTime, Timer

SECOND = 10**9
WALLCLOCK = 1_606_780_800  # evtsim's default boot wallclock: 2020-12-01 00:00:00 UTC


def u32(frame, offset):
    return struct.unpack_from("<I", frame.data, offset)[0]


def time_record(v) -> dict[str, int]:
    """vcpu_time_info at byte 32 of the vCPU's vcpu_info, as the guest reads it."""
    frame, base = v.vcpu_info.frame, v.vcpu_info.offset + 32
    version, _pad, tsc, system_time, mul, shift, flags = struct.unpack_from("<IIQQIbB", frame.data, base)
    return {"version": version, "tsc_timestamp": tsc, "system_time": system_time,
            "tsc_to_system_mul": mul, "tsc_shift": shift, "flags": flags}


def guest_clock(v, tsc: int) -> int:
    """What a pvclock guest computes: system_time + scale(tsc - tsc_timestamp)."""
    r = time_record(v)
    delta = tsc - r["tsc_timestamp"]
    delta = delta << r["tsc_shift"] if r["tsc_shift"] >= 0 else delta >> -r["tsc_shift"]
    return r["system_time"] + (delta * r["tsc_to_system_mul"] >> 32)


# --- the clock and its timers ------------------------------------------------------------


def test_system_time_starts_at_zero_and_moves_only_when_advanced():
    xen = Xen()
    assert xen.now == 0
    xen.domain_create()
    assert xen.now == 0
    assert xen.advance(1500) == 1500 == xen.now


def test_timers_fire_at_their_deadlines_in_order_with_now_set_to_each_deadline():
    clock = SystemTime()
    fired = []
    a, b, c = (Timer(lambda name=name: fired.append((name, clock.now))) for name in "abc")
    clock.set_timer(b, 300)
    clock.set_timer(a, 100)
    clock.set_timer(c, 100)  # same deadline as a, set later: runs after a
    clock.advance(250)
    assert fired == [("a", 100), ("c", 100)]
    assert clock.now == 250
    clock.advance(50)
    assert fired[-1] == ("b", 300)


def test_a_stopped_timer_does_not_fire_and_a_reset_one_fires_once_at_its_new_deadline():
    clock = SystemTime()
    fired = []
    t = Timer(lambda: fired.append(clock.now))
    clock.set_timer(t, 100)
    clock.stop_timer(t)
    clock.advance(200)
    assert fired == []
    clock.set_timer(t, 500)
    clock.set_timer(t, 300)
    clock.advance(1000)
    assert fired == [300]


def test_a_deadline_already_past_fires_at_once():
    clock = SystemTime()
    clock.advance(1000)
    fired = []
    clock.set_timer(Timer(lambda: fired.append(clock.now)), 10)
    assert fired == [1000]


def test_next_deadline_skips_stopped_timers():
    clock = SystemTime()
    early, late = Timer(lambda: None), Timer(lambda: None)
    clock.set_timer(early, 10)
    clock.set_timer(late, 20)
    clock.stop_timer(early)
    assert clock.next_deadline() == 20


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError),
                                        (1 << 63, ValueError)])
def test_advance_refuses_what_is_not_a_forward_step_in_whole_nanoseconds(bad, error):
    with pytest.raises(error):
        Xen().advance(bad)


# --- the TSC scale (set_time_scale) --------------------------------------------------------


@pytest.mark.parametrize("hz, shift, mul", [
    (2_000_000_000, 0, 1 << 31),  # 2 GHz: half a nanosecond a tick
    (1_000_000_000, 1, 1 << 31),  # 1 GHz: at most 1e9 is shifted up once
    (3_000_000_000, -1, 0xAAAAAAAA),  # 3 GHz: shifted down to 1.5e9, then 2/3 in 32-bit fixed point
])
def test_set_time_scale_brings_the_rate_into_one_to_two_ghz_then_takes_a_32_bit_fraction(hz, shift, mul):
    assert TimeScale.for_rate(hz) == TimeScale(shift, mul)


def test_the_scale_turns_a_second_of_ticks_into_a_second_to_the_nanosecond():
    assert abs(TimeScale.for_rate(TSC_HZ).scale_delta(TSC_HZ) - SECOND) <= 1


# --- vcpu_time_info: update_vcpu_system_time --------------------------------------------


def test_a_new_vcpu_finds_a_complete_time_record_with_an_even_version():
    d = Xen().domain_create(vcpus=2)
    for v in d.vcpus:
        r = time_record(v)
        assert r["version"] == 2  # 0 -> 1 (being written) -> 2 (done)
        assert (r["tsc_to_system_mul"], r["tsc_shift"]) == (0xAAAAAAAA, -1)
        assert r["system_time"] == 0 and r["tsc_timestamp"] == 0 and r["flags"] == 0


def test_calibration_restamps_running_vcpus_every_second():
    xen = Xen()
    v = xen.domain_create().vcpus[0]
    xen.advance(SECOND - 1)
    assert time_record(v)["version"] == 2
    xen.advance(1)
    r = time_record(v)
    assert r["version"] == 4 and r["system_time"] == SECOND and r["tsc_timestamp"] == 3 * SECOND


def test_the_guest_computes_now_from_its_record_and_the_tsc():
    xen = Xen()
    v = xen.domain_create().vcpus[0]
    for step in (1, 999_999, 1_234_567_891, 7):
        xen.advance(step)
        assert abs(guest_clock(v, xen.rdtsc()) - xen.now) <= 1


def test_xen_leaves_an_unchanged_record_alone():
    """__update_vcpu_system_time: "don't bother unless the record changed" - no write at all."""
    xen = Xen()
    v = xen.domain_create().vcpus[0]
    frame = v.vcpu_info.frame
    writes = frame.xen_writes
    update_vcpu_system_time(v)
    assert frame.xen_writes == writes and time_record(v)["version"] == 2


def test_an_update_goes_odd_then_even_and_writes_three_times():
    """version odd first (the guest retries while it reads odd), the record, version even."""
    xen = Xen(recording=Recording.FULL)
    v = xen.domain_create().vcpus[0]
    xen.log.writes.clear()
    xen.advance(SECOND)
    offsets = [w.offset - v.vcpu_info.offset for w in xen.log.writes if w.domid == v.domain.domain_id]
    values = [w.value for w in xen.log.writes if w.domid == v.domain.domain_id]
    assert offsets == [32, 32 + 16, 32] and values[0] == 3 and values[2] == 4


# --- the wallclock: update_domain_wallclock_time --------------------------------------------


def test_the_wallclock_base_is_in_shared_info_at_its_64_bit_offsets():
    d = Xen().domain_create()
    frame = d.shared_info.frame
    assert u32(frame, 3072) == 2  # wc_version: written once, even again
    assert u32(frame, 3076) == WALLCLOCK  # wc_sec
    assert u32(frame, 3080) == 0  # wc_nsec
    assert u32(frame, 3084) == 0  # wc_sec_hi


def test_a_32_bit_guest_keeps_wc_sec_hi_at_the_end_of_arch_shared_info():
    xen = Xen(wallclock=(5 << 32) + 7)
    d = xen.domain_create(compat=True)
    frame = d.shared_info.frame
    assert (u32(frame, 2304), u32(frame, 2308), u32(frame, 2312)) == (2, 7, 0)  # version, sec, nsec
    assert u32(frame, 2340) == 5  # arch.wc_sec_hi
    assert u32(frame, 2316) == 0  # arch.max_pfn: the wallclock did not spill into it


def test_settime_moves_the_base_so_that_base_plus_system_time_is_the_new_wallclock():
    xen = Xen()
    d = xen.domain_create()
    xen.advance(2 * SECOND + 250)
    xen.settime(2_000_000_000, 500)
    frame = d.shared_info.frame
    base = u32(frame, 3076) * SECOND + u32(frame, 3080)
    assert base + xen.now == 2_000_000_000 * SECOND + 500
    assert u32(frame, 3072) == 4


@pytest.mark.parametrize("secs, nsecs, error", [(-1, 0, ValueError), (1, SECOND, ValueError), (1.0, 0, TypeError)])
def test_settime_refuses_a_time_that_is_not_one(secs, nsecs, error):
    with pytest.raises(error):
        Xen().settime(secs, nsecs)


@pytest.mark.parametrize("wallclock, error", [(-1, ValueError), (1 << 64, ValueError), ("2020", TypeError)])
def test_a_boot_wallclock_that_is_not_a_time_is_refused(wallclock, error):
    with pytest.raises(error):
        Xen(wallclock=wallclock)
