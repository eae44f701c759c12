"""The wall clock every timestamp culvert_py writes is read from, in milliseconds.

A :class:`~culvert_py.client.Client` takes a clock (any ``() -> int`` of milliseconds;
:func:`now_ms` by default): its writers stamp rows with it and its readers judge age-off
with it, so a test can move time for one client without touching the others (or the
shared meta table, whose writes always use :func:`now_ms`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: A source of "now" in milliseconds since the Unix epoch.
Clock = Callable[[], int]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the system clock."""
    return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to: for tests and benchmarks of expiry.

    :param start: the first reading in milliseconds (default: the system clock now)
    """

    def __init__(self, start: int | None = None) -> None:
        self._now = now_ms() if start is None else int(start)
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        """Move the clock forward by ``ms`` milliseconds (never backwards); return the new time.

        :raises ValueError: for a negative step (time that runs back breaks the write
            protocol's timestamps)
        """
        if ms < 0:
            raise ValueError(f"ManualClock.advance: ms={ms!r}: expected a step >= 0")
        with self._lock:
            self._now += int(ms)
            return self._now
