"""The timers of the executions an engine holds, in a heap, and the wait for the next."""

from __future__ import annotations

import asyncio
import contextlib
import heapq

from cerebelum.clock import Clock

__all__ = ["TimerQueue"]

# A timer's sleep is cut into slices of at most this many seconds, so a clock that
# jumps (a virtual clock, or a wall clock set forward) is noticed soon.
_MAX_SLEEP = 1.0


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, str]] = []
        self._count = 0
        self._wake = asyncio.Event()

    def push(self, fire_at: float, execution_id: str, timer: str) -> None:
        self._count += 1
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (fire_at, self._count, execution_id, timer))
        if earliest is None or fire_at < earliest:
            self._wake.set()

    def pop_due(self, now: float) -> list[tuple[str, str, float]]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            fire_at, _, eid, timer = heapq.heappop(self._heap)
            due.append((eid, timer, fire_at))
        return due

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def poke(self) -> None:
        self._wake.set()

    def __len__(self) -> int:
        return len(self._heap)

    async def wait(self, clock: Clock) -> None:
        """Sleep until the next timer may be due, a new earlier timer arrives, or a poke."""
        nxt = self.next_at()
        delay = _MAX_SLEEP if nxt is None else min(max(nxt - clock.timestamp(), 0.0), _MAX_SLEEP)
        if delay <= 0:
            await asyncio.sleep(0)
            return
        self._wake.clear()
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow the
        # cancellation that stops the engine when it meets the wake-up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()
