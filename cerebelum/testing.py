"""Testing workflows: an engine with virtual time on a throw-away store.

``TestEngine`` runs on an in-memory SQLite store with a :class:`VirtualClock` that moves
only while the test waits: while it awaits a result (``engine.execute``,
``engine.result``, ``handle.result``), the clock jumps to the next timer whenever
nothing runs and every execution waits; ``await engine.sleep(timedelta(days=1))`` moves
it a day on, timer by timer. A workflow that sleeps for a week finishes in milliseconds
of wall time, and a test can still act (approve, signal) between two moments::

    async with TestEngine() as engine:
        result = await engine.execute(onboarding, "123")
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any

from cerebelum.clock import VirtualClock
from cerebelum.engine._engine import Engine
from cerebelum.engine._results import ExecutionResult
from cerebelum.store import Store

__all__ = ["TestEngine", "VirtualClock"]


class TestEngine(Engine):
    """An :class:`Engine` on virtual time that skips ahead while the test waits.

    Time skips, as in Temporal's time-skipping test environment, only while the test
    awaits a result (:meth:`execute`, :meth:`result`, ``handle.result()``) or sleeps
    with :meth:`sleep`; otherwise the clock stands still, so an approval with a
    two-day timeout is still waiting when the test gets round to approving it.

    Args:
        store: default an in-memory SQLite store, gone when the engine closes.
        start: the virtual clock's starting time (default 2030-01-01 UTC).
        **options: as for :class:`Engine` (``workflows``, ``evict_after``...).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, store: str | Store | None = None, *, start: datetime | None = None, **options: Any
    ) -> None:
        options.setdefault("poll_interval", 0.01)
        super().__init__(store or "sqlite://:memory:", clock=VirtualClock(start), **options)
        self._auto_advance = True
        self._awaiting = 0  # results the test awaits: meanwhile the clock goes to any timer
        self._skip_until: float | None = None  # set by advance(): the clock goes up to here

    async def result(self, execution_id: str, timeout: float | None = None) -> ExecutionResult:
        """As :meth:`Engine.result`; virtual time skips ahead while this waits.

        ``timeout`` is in real seconds, not virtual ones.
        """
        self._awaiting += 1
        self.poke_timers()
        try:
            return await super().result(execution_id, timeout)
        finally:
            self._awaiting -= 1

    def advance(self, duration: timedelta | float) -> None:
        """Let virtual time move ``duration`` on, in the background, and return at once.

        The clock moves the way :meth:`sleep` moves it (timer by timer, the workflows
        running between two timers, and only while nothing runs); this does not wait for
        it to get there. ``await engine.sleep(duration)`` is the form that waits.
        """
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        if seconds < 0:
            raise ValueError("virtual time cannot go back")
        target = self.clock.timestamp() + seconds
        self._skip_until = max(self._skip_until or target, target)
        self.poke_timers()

    async def sleep(self, duration: timedelta | float) -> None:
        """Move virtual time ``duration`` on and return when everything has caught up.

        Timers falling due in that time fire in order, and the workflows run between them
        (an activity between two sleeps runs at its virtual moment); this returns once
        the clock has moved ``duration`` and nothing runs.
        """
        target = self.clock.timestamp() + (
            duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        )
        self.advance(duration)
        while self.clock.timestamp() < target or not await self._settled():
            await asyncio.sleep(0.001)

    def _skip_limit(self) -> float | None:
        until = self._skip_until
        if until is not None and self.clock.timestamp() >= until:
            self._skip_until = until = None  # got there
        if self._awaiting and self._timers.next_at() is not None:
            return math.inf
        return until
