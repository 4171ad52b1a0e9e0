"""Time, read in one place.

The engine never calls ``datetime.now`` or ``time.time`` itself: it asks its clock.
Tests swap in :class:`VirtualClock` so that a workflow waiting a week runs at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time, timezone-aware (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """Seconds since the epoch; the cheap form of :meth:`now` for hot paths."""
        return time.time()


class VirtualClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime(2030, 1, 1, tzinfo=UTC)).timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def timestamp(self) -> float:
        return self._now

    def advance(self, delta: timedelta | float) -> None:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a virtual clock cannot go back")
        self._now += seconds

    def set(self, ts: float) -> None:
        """Jump to ``ts`` (seconds since the epoch) if it lies ahead."""
        self._now = max(self._now, ts)
