"""Timers, and the memory kept by long waits: firing, evicting, loading back.

A code workflow that will wait longer than ``evict_after`` leaves memory; its timers
stay in the engine's heap (a few dozen bytes each) and in the store, and when one fires
the workflow is rebuilt from its journal. TestEngine's virtual clock also moves here:
when nothing runs and everything waits, it jumps as far as the test lets it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, cast

from cerebelum import events as ev
from cerebelum.clock import VirtualClock
from cerebelum.errors import StoreUnavailableError
from cerebelum.worker._local import route_for

from . import _code
from ._base import EngineBase
from ._match import Outcome

if TYPE_CHECKING:
    from cerebelum.dsl._workflow import Workflow

    from ._run import Run

__all__ = ["Evicted", "Waits"]

logger = logging.getLogger("cerebelum.engine")


class Evicted(Exception):
    """The execution left memory to wait; it comes back when it wakes."""


class Waits(EngineBase):
    """The timer half of :class:`~cerebelum.engine.Engine`."""

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock.timestamp()
            for eid, timer, fire_at in self._timers.pop_due(now):
                run = self._runs.get(eid)
                if run is not None:
                    if run.state.timers.get(timer) == fire_at:
                        self._fire(run, timer)
                else:  # it left memory to wait: bring it back
                    self._fire_unloaded(eid, timer, fire_at)
            if self._auto_advance:
                await self._advance_when_idle()
            else:
                await self._timers.wait(self.clock)

    def _fire(self, run: Run, timer: str) -> None:
        self._apply(run, ev.TimerFired, timer=timer)
        kind, _, name = timer.partition(":")
        if kind == "approval" and run.kind == "graph":
            route = route_for(cast("Workflow", run.wf), name, Outcome.error("timeout"))
            self._apply(
                run, ev.ApprovalResolved, step=name, approved=False, timed_out=True, route=route
            )

    def _fire_unloaded(self, eid: str, timer: str, fire_at: float) -> None:
        """Load an execution that waits in the store, and fire its timer if it is still set."""
        if eid in self._firing:
            return
        self._firing.add(eid)

        async def fire() -> None:
            try:
                run = await self._load(eid)
                if run is not None and run.state.timers.get(timer) == fire_at:
                    self._fire(run, timer)
            except StoreUnavailableError as exc:
                logger.debug("cannot load execution %s to fire %s yet: %s", eid, timer, exc)
            finally:
                self._firing.discard(eid)

        task = asyncio.create_task(fire(), name=f"cerebelum-timer-{eid}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def poke_timers(self) -> None:
        """Look at the timers again now (after a virtual clock moved)."""
        self._timers.poke()

    async def _advance_when_idle(self) -> None:
        """TestEngine: when nothing runs and everything waits, move the clock on.

        As far as :meth:`_skip_limit` allows: to the next timer if it lies within the
        limit, else to the limit. One jump per call: the timer loop fires what fell due
        and lets the workflows run before the next.
        """
        await asyncio.sleep(0.001)
        limit = self._skip_limit()
        if limit is None or not isinstance(self.clock, VirtualClock) or not await self._settled():
            return
        nxt = self._timers.next_at()
        target = nxt if nxt is not None and nxt <= limit else limit
        if math.isfinite(target):
            self.clock.set(target)

    def _skip_limit(self) -> float | None:
        """How far the virtual clock may jump now (``inf``: to any timer); ``None``: not at all."""
        return None

    async def _settled(self) -> bool:
        """Whether nothing runs and no timer is due, still so after a few turns of the loop."""
        if not self._idle():
            return False
        for _ in range(3):  # let anything just woken reach its next await
            await asyncio.sleep(0)
        nxt = self._timers.next_at()
        return self._idle() and (nxt is None or nxt > self.clock.timestamp())

    def _idle(self) -> bool:
        if self._dirty or self._commit_lock.locked() or self._loading or self._firing:
            return False
        for run in self._runs.values():
            if run.tasks or (
                run.runtime is not None and not run.runtime.blocked() and not run.state.ended
            ):
                return False
        return not any(
            not t.done() for t in self._background if not t.get_name().startswith("cerebelum-child")
        )

    def _maybe_evict(self, run: Run) -> None:
        state = run.state
        if run.buffer or run.tasks or state.ended or not _code.waiting_only(state):
            return
        if run.runtime is None or not run.runtime.blocked():
            return
        wake = min(state.timers.values(), default=float("inf"))
        if wake - self.clock.timestamp() < (self.evict_after or 0):
            return
        run.evicting = True
        run.cancel_tasks()
        del self._runs[run.id]
        run.abandon(Evicted())  # callers waiting for the result wait on the reloaded run

    async def _load(self, eid: str) -> Run | None:
        """Bring an unfinished execution into memory, claiming it, unless a live engine owns it.

        Returns ``None`` when it has ended, does not exist, or belongs to a live engine.
        """
        run = self._runs.get(eid)
        if run is not None:
            return run
        pending = self._loading.get(eid)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Run | None] = asyncio.get_running_loop().create_future()
        self._loading[eid] = fut
        try:
            rec = await self.store.claim_one(
                self.id, eid, self._wall.timestamp(), self.lease, self._runnable_versions()
            )
            run = self._runs.get(eid)
            if run is None and rec is not None:
                run = self._revive(rec, await self.store.history(eid))
            fut.set_result(run)
            return run
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._loading[eid]
