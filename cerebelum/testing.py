"""Testing workflows: an engine with virtual time on a throw-away store.

``TestEngine`` runs on an in-memory SQLite store with a :class:`VirtualClock` that jumps
to the next timer whenever nothing runs and every execution waits on a timer, so a
workflow that sleeps for a week finishes in milliseconds of wall time::

    async with TestEngine() as engine:
        result = await engine.execute(onboarding, "123")
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cerebelum.clock import VirtualClock
from cerebelum.engine._engine import Engine
from cerebelum.store import Store

__all__ = ["TestEngine", "VirtualClock"]


class TestEngine(Engine):
    """An :class:`Engine` whose clock moves on by itself when everything waits.

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
