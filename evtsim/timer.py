"""Xen's system time and its timers: ``NOW()`` in nanoseconds, advanced only when asked.

Models xen/common/timer.c (set_timer, stop_timer, and the timer softirq that runs every due
timer in deadline order) over a virtual clock: system time starts at 0 when the ``Xen`` is
created and moves only through ``SystemTime.advance``, never with the wall clock, so the same
calls give the same trace. A timer set for a deadline that has already passed runs at once,
as Xen's softirq would run it before the guest resumes. Timers due at the same nanosecond
run in the order they were set.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

SECOND = 1_000_000_000  # SECONDS(1)
MILLISECOND = 1_000_000  # MILLISECS(1)
#: Xen's s_time_t is a signed 64-bit count of nanoseconds.
STIME_MAX = (1 << 63) - 1


def s_time(value: int) -> int:
    """A guest's 64-bit bit pattern read as Xen's signed ``s_time_t``."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


class Timer:
    """struct timer: a callback and, while it is set (``active``), its deadline."""

    __slots__ = ("fn", "expires", "active", "_seq")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.expires = 0
        self.active = False
        self._seq = 0  # which set_timer the queued entry belongs to; older entries are stale

    def __repr__(self) -> str:
        state = f"at {self.expires} ns" if self.active else "stopped"
        return f"<Timer {getattr(self.fn, '__qualname__', self.fn)} {state}>"


class SystemTime:
    """System time and the timer queue of one ``Xen``."""

    __slots__ = ("now", "_queue", "_sets")

    def __init__(self) -> None:
        self.now = 0  # NOW(): nanoseconds since this Xen booted
        self._queue: list[tuple[int, int, Timer]] = []
        self._sets = 0

    def set_timer(self, timer: Timer, expires: int) -> None:
        """set_timer: (re)arm ``timer`` for ``expires``; a deadline already past runs it now."""
        self._sets += 1
        timer.expires, timer.active, timer._seq = expires, True, self._sets
        heapq.heappush(self._queue, (expires, self._sets, timer))
        if expires <= self.now:
            self._run_due(self.now)

    def stop_timer(self, timer: Timer) -> None:
        """stop_timer: the timer will not run (until it is set again)."""
        timer.active = False

    def next_deadline(self) -> int | None:
        """The deadline of the earliest timer still set, or None."""
        self._drop_stale()
        return self._queue[0][0] if self._queue else None

    def advance(self, ns: int) -> int:
        """Move system time forward by ``ns`` nanoseconds, running each timer at its deadline.

        While a timer runs, ``now`` is its deadline, so what it writes (a VIRQ, a time record)
        carries the time it was due. Returns the new ``now``.
        """
        if not isinstance(ns, int) or isinstance(ns, bool):
            raise TypeError(f"advance takes a whole number of nanoseconds, got {ns!r}")
        if ns < 0:
            raise ValueError(f"system time only moves forward, got {ns} ns")
        target = self.now + ns
        if target > STIME_MAX:
            raise ValueError(f"system time would pass s_time_t's maximum ({STIME_MAX} ns)")
        self._run_due(target)
        self.now = target
        return target

    def _run_due(self, until: int) -> None:
        """The timer softirq: run every set timer due by ``until``, earliest first."""
        queue = self._queue
        while queue and queue[0][0] <= until:
            expires, seq, timer = heapq.heappop(queue)
            if not timer.active or timer._seq != seq:
                continue  # stopped, or set again for another deadline
            timer.active = False
            self.now = max(self.now, expires)
            timer.fn()

    def _drop_stale(self) -> None:
        queue = self._queue
        while queue and (not queue[0][2].active or queue[0][2]._seq != queue[0][1]):
            heapq.heappop(queue)
