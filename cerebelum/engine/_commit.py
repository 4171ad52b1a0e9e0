"""Group commit: the buffered events of many executions, one transaction, and what follows.

One flusher commits the buffers of every execution that has something new, in one
transaction, one commit at a time (which keeps each history in order). The callers
waiting for those events are answered only after the commit, and only then does the
engine act on them.

When the store goes away, nothing is dropped:

- A commit the store refused without writing anything (SQLite rolls back; a full disk
  says so) is retried with backoff until writes succeed again. The executions that
  were being *started* by a caller of :meth:`Engine.start` are the exception: nothing
  of them exists anywhere yet, so the caller gets the store's error at once.
- A commit whose answer was lost (a PostgreSQL connection that broke mid-commit) may
  or may not have been recorded. The engine waits until the store answers again and
  reads back the events it sent: those recorded are taken as committed, the others
  are sent again. Retrying blindly would collide with its own rows and look like
  another engine's write.
- A write that collides with another engine's events (that engine took the execution
  over) drops the execution from this engine; callers waiting for its result go on
  waiting on the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from cerebelum import events as ev
from cerebelum.errors import (
    CerebelumError,
    OwnershipLostError,
    StoreError,
    StoreUnavailableError,
)
from cerebelum.store import ExecutionRecord, Write

from ._base import EngineBase
from ._state import TERMINAL, ExecutionStatus

if TYPE_CHECKING:
    from ._run import Run

__all__ = ["Committer", "Duplicate", "Moved", "Pending"]

logger = logging.getLogger("cerebelum.engine")

#: How long the engine waits between two tries of a commit the store did not take, at most.
MAX_BACKOFF = 5.0


class Duplicate(Exception):
    """The id was taken by an execution started at the same moment."""


class Moved(Exception):
    """Another engine runs the execution now; its result is read from the store."""


class Pending:
    """A write on its way to the store, with the callers waiting for it."""

    __slots__ = ("run", "waiters", "write")

    def __init__(self, run: Run, write: Write, waiters: list[asyncio.Future[None]]) -> None:
        self.run, self.write, self.waiters = run, write, waiters

    def settle(self, exc: BaseException | None) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)


class Committer(EngineBase):
    """The group-commit half of :class:`~cerebelum.engine.Engine`."""

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        """Commit every buffered write, many executions to a transaction."""
        async with self._commit_lock:  # one commit at a time keeps each history in order
            while self._dirty:
                runs, self._dirty = self._dirty, []
                await self._commit([self._take_write(r) for r in runs])

    def _take_write(self, run: Run) -> Pending:
        state = run.state
        events, run.buffer = run.buffer, []
        run.dirty = False
        now = self.clock.timestamp()
        status = state.live_status()
        w = Write(run.id, events, updated_at=now, inbox_done=run.take_inbox())
        if run.enqueue or run.finished or (run.remote and status in TERMINAL):
            w.tasks_enqueued, w.tasks_done = self._tasks_to_write(run, status in TERMINAL)
        if status != run.persisted_status:
            w.status = status
            if status is ExecutionStatus.COMPLETED:
                w.output = bytes(state.output or ev.NULL)
            elif status in TERMINAL:
                w.error = state.error
            elif status is ExecutionStatus.STUCK:
                w.error = state.stuck
        timers = state.timers
        if timers or run.persisted_timers:
            for timer, fire_at in timers.items():
                if run.persisted_timers.get(timer) != fire_at:
                    w.timers_set.append((timer, fire_at))
            w.timers_cleared = [t for t in run.persisted_timers if t not in timers]
            run.persisted_timers = dict(timers)
        run.persisted_status = status
        if run.creating:
            run.creating = False
            first = events[0]
            started = first if isinstance(first, ev.ExecutionStarted) else None
            queue = started.queue if started is not None else ""
            w.create = ExecutionRecord(
                id=run.id, workflow=run.wf.name, version=run.wf.version, kind=run.wf.kind,
                status=status, inputs=bytes(state.inputs), output=None, error=None,
                parent_id=run.parent_id, owner=None if queue else self.id, created_at=now,
                updated_at=now, queue=queue or None,
                priority=started.priority if started is not None else 0,
                dedup_id=(started.dedup_id or None) if started is not None else None,
            )  # fmt: skip
        return Pending(run, w, run.take_waiters())

    async def _commit(self, batch: list[Pending]) -> None:
        delay = 0.05
        while batch:
            began = time.perf_counter() if self._observers else 0.0
            try:
                conflicts = await self.store.commit([p.write for p in batch])
            except StoreUnavailableError as exc:
                if self._closing:
                    self._lose(batch, exc)
                    return
                self._store_trouble(exc)
                if exc.maybe_committed:
                    batch = await self._resolve(batch, delay)
                else:
                    batch = self._refuse_starts(batch, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            except Exception as exc:
                if len(batch) == 1:
                    self._lose(batch, exc)
                    return
                for p in batch:  # isolate the write at fault; the others go through
                    await self._commit([p])
                return
            self._store_back()
            if self._observers:
                self._observe_commit(batch, time.perf_counter() - began)
            for p in batch:
                if p.run.id in conflicts:
                    self._drop(p.run, Duplicate())
                    p.settle(Duplicate())
                else:
                    self._committed(p)
            return

    def _committed(self, p: Pending) -> None:
        p.settle(None)
        self._after_commit(p.run, p.write)

    def _store_trouble(self, exc: StoreUnavailableError) -> None:
        now = self._wall.timestamp()
        if self._trouble_since is None:
            self._trouble_since = now
            logger.warning("engine %s: %s; retrying until it answers", self.id, exc.message)
        elif now - self._trouble_logged >= 30:
            logger.warning(
                "engine %s: still cannot record events (for %.0fs): %s",
                self.id, now - self._trouble_since, exc.message,
            )  # fmt: skip
        else:
            return
        self._trouble_logged = now

    def _store_back(self) -> None:
        if self._trouble_since is not None:
            logger.warning(
                "engine %s: the store records events again after %.1fs",
                self.id, self._wall.timestamp() - self._trouble_since,
            )  # fmt: skip
            self._trouble_since = None

    def _refuse_starts(self, batch: list[Pending], exc: StoreError) -> list[Pending]:
        """Fail the ``start()`` calls of a batch that was not written; keep the rest."""
        keep = []
        for p in batch:
            if p.write.create is not None and p.run.parent_id is None:  # a start() waits
                self._drop(p.run, exc)
                p.settle(exc)
            else:
                keep.append(p)
        return keep

    async def _resolve(self, batch: list[Pending], delay: float) -> list[Pending]:
        """After a commit whose answer was lost: settle what was recorded, return the rest."""
        while True:
            try:
                found = await self.store.events_at(
                    [
                        (p.write.execution_id, p.write.events[-1].seq)
                        for p in batch
                        if p.write.events
                    ]
                )
                break
            except StoreUnavailableError as exc:
                if self._closing:
                    self._lose(batch, exc)
                    return []
                self._store_trouble(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        retry = []
        for p in batch:
            w = p.write
            if not w.events:
                retry.append(p)  # no events: its status, timers and inbox writes are idempotent
                continue
            recorded = found.get((w.execution_id, w.events[-1].seq))
            if recorded is None:
                retry.append(p)
            elif recorded == ev.encode_event(w.events[-1]):
                logger.info("execution %s: the lost commit was recorded", w.execution_id)
                self._committed(p)
            elif w.create is not None:
                self._drop(p.run, Duplicate())
                p.settle(Duplicate())
            else:
                self._drop(p.run, Moved())
                p.settle(OwnershipLostError(f"execution {w.execution_id!r} was taken over by "
                                            "another engine", execution_id=w.execution_id))  # fmt: skip
        return retry

    def _drop(self, run: Run, why: BaseException) -> None:
        """Forget ``run`` here: its events were not recorded, and will not be."""
        if self._runs.get(run.id) is run:
            del self._runs[run.id]
        if run.dirty:
            run.dirty = False
            self._dirty = [r for r in self._dirty if r is not run]
        run.cancel_tasks()
        run.abandon(why)

    def _lose(self, batch: list[Pending], exc: BaseException) -> None:
        moved = isinstance(exc, OwnershipLostError)
        err: BaseException = (
            exc
            if isinstance(exc, CerebelumError)
            else StoreError(f"could not record events: {exc}")
        )
        for p in batch:
            if moved:
                logger.warning("execution %s: %s; this engine lets it go", p.run.id, exc)
            else:
                logger.error("could not record events of execution %s; dropping it from this "
                             "engine: %s", p.run.id, exc)  # fmt: skip
            self._drop(p.run, Moved() if moved else err)
            p.settle(err)
