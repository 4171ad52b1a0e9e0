"""Ownership: what an engine does about other processes sharing its store.

Once per ``poll_interval`` (and at once on a notice: PostgreSQL's NOTIFY) the poller
heartbeats, takes over the executions of engines that died (at once when they ran on
this machine, else after their lease), takes the requests other processes left in the
inbox, fires the due timers of executions that wait in the store, answers the waits for
executions that run elsewhere, and admits queued executions. ``_resume`` claims the
executions with work in flight that nobody runs and ``_revive`` folds one back into
memory.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from typing import Any

from cerebelum import events as ev
from cerebelum.errors import StoreUnavailableError
from cerebelum.store import ExecutionRecord

from ._base import EngineBase
from ._code_state import fold_code
from ._neighbours import gone
from ._queues import declared_queues
from ._run import Run
from ._state import ExecutionStatus, fold

__all__ = ["Ownership"]

logger = logging.getLogger("cerebelum.engine")

#: How often (seconds) an engine on a shared store looks for dead engines on its machine.
_NEIGHBOURS_EVERY = 1.0


class Ownership(EngineBase):
    """The ownership half of :class:`~cerebelum.engine.Engine`: the store's other users."""

    def _notice(self, kind: str, sender: str) -> None:
        """What another process committed that this engine should act on at once (the
        store's NOTIFYs on PostgreSQL); the poller looks at everything anyway, once per
        ``poll_interval``, should a notice be lost."""
        if kind == "tasks":
            self._tasks_elsewhere()
        elif kind in ("inbox", "listening") or (
            kind == "ended" and (self._watched or declared_queues())
        ):
            self._wanted.add(kind)
            self._poke.set()

    async def _poller(self) -> None:
        last_beat = last_look = self._wall.timestamp()
        loop = asyncio.get_running_loop()
        due = loop.time() + self.poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._poke.wait()
            self._poke.clear()
            wanted, self._wanted = self._wanted, set()
            if loop.time() < due and "listening" not in wanted:  # a notice: only what it is about
                try:
                    if "inbox" in wanted:
                        await self._take_requests()
                    if "ended" in wanted:
                        await self._poll_watched()
                    if "admit" in wanted or "ended" in wanted:
                        await self._admit()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.debug("engine %s: acting on a notice failed: %s", self.id, exc)
                continue
            due = loop.time() + self.poll_interval
            try:
                now = self._wall.timestamp()
                if not self.store.exclusive and now - last_look >= _NEIGHBOURS_EVERY:
                    last_look = now
                    await self._release_dead_neighbours()
                if now - last_beat >= self.lease / 3:
                    await self.store.heartbeat(self.id, now, self._info())
                    last_beat = now
                    if not self.store.exclusive:
                        await self._resume()
                    for item in await self.store.drop_stale(1000):
                        logger.warning(
                            "dropped a request (%s %r) for execution %s: it had ended",
                            item.kind, item.name, item.execution_id,
                        )  # fmt: skip
                await self._take_requests()
                await self._scan_timers()
                await self._poll_watched()
                await self._admit()
            except asyncio.CancelledError:
                raise
            except StoreUnavailableError as exc:
                logger.debug("engine %s: the store does not answer: %s", self.id, exc)
            except Exception:
                logger.warning("engine %s: polling the store failed", self.id, exc_info=True)

    async def _release_dead_neighbours(self) -> None:
        """Take over at once from engines that ran on this machine and whose process is gone."""
        dead = [e for e, info, _ in await self.store.engines() if e != self.id and gone(info)]
        for engine_id in dead:
            logger.warning("engine %s ran here and its process is gone: taking its executions "
                           "over now, without waiting for its lease", engine_id)  # fmt: skip
            await self.store.release(engine_id)
        if dead:
            await self._resume()

    def _runnable_versions(self) -> dict[str, str]:
        return {name: wf.version for name, wf in self._runnable().items()}

    async def _take_requests(self) -> None:
        """Requests from other processes for executions this engine owns or may claim."""
        items = await self.store.receive(
            self.id, self._wall.timestamp(), self.lease, 100, self._runnable_versions()
        )
        for item in items:
            try:
                if item.kind == "migrate":
                    await self._take_migrate(item)
                elif item.kind == "result":
                    await self._take_result_request(item)
                elif item.execution_id in self._runs or await self._load(item.execution_id):
                    self._receive(item)
            except StoreUnavailableError:
                raise
            except Exception:  # one execution that cannot be loaded must not hold up the rest
                logger.exception("engine %s: cannot take request %s %r for execution %s",
                                 self.id, item.kind, item.name, item.execution_id)  # fmt: skip

    async def _scan_timers(self) -> None:
        """Fire the due timers of executions that wait in the store, not in memory."""
        due = await self.store.due_timers(
            self.id, self._wall.timestamp(), self.lease, self.clock.timestamp(), 500,
            self._runnable_versions(),
        )  # fmt: skip
        for eid, timer, fire_at in due:
            if eid not in self._runs:
                self._fire_unloaded(eid, timer, fire_at)

    async def _resume(self) -> None:
        """Claim the executions with work in flight that nobody runs; fold, and carry on.

        Those that only wait (a timer, an approval, a signal) stay in the store until
        they wake: a store with a million sleeping executions opens as fast as an empty one.
        """
        records = await self.store.claim(
            self.id, self._wall.timestamp(), self.lease, 10_000, self._runnable_versions()
        )
        for rec in records:
            if rec.id in self._runs or rec.id in self._loading:
                continue
            try:
                self._revive(rec, await self.store.history(rec.id))
            except StoreUnavailableError:
                raise
            except Exception:  # one execution that cannot be revived must not hold up the rest
                logger.exception("engine %s: cannot resume execution %s", self.id, rec.id)
        await self._adopt_stranded(self._runnable())  # executions left at other versions

    def _revive(self, rec: ExecutionRecord, history: builtins.list[ev.Event]) -> Run:
        wf = self.workflow(rec.workflow)
        if wf.kind == "code":
            state: Any = fold_code(history, rec.id)
        else:
            state = fold(wf.blueprint, history, rec.id)
        run = Run(rec.id, wf, state)
        run.parent_id = rec.parent_id
        run.persisted_status = ExecutionStatus(rec.status)
        run.persisted_timers = dict(state.timers)
        self._runs[rec.id] = run
        logger.info("resuming execution %s of %s at event %d", rec.id, wf.name, state.seq,
                    extra={"execution_id": rec.id, "workflow": wf.name})  # fmt: skip
        if self._observers:
            self._observe_load(run, history)
        for timer, fire_at in state.timers.items():
            self._timers.push(fire_at, rec.id, timer)
        if state.queued:  # admitted (it was claimed) but not recorded so: do it now
            self._admitted(run)
        elif wf.kind == "code":
            self._start_coroutine(run)  # replays the journal; in-flight activities run again
        elif self.dispatch == "local":
            for step in state.in_flight():
                self._buffer_started(run, step, state.node(step).attempt + 1)
        if self.dispatch == "workers":  # the tasks of its attempts in flight are in the store
            task = asyncio.create_task(self._adopt_tasks(run), name=f"cerebelum-adopt-{rec.id}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if wf.kind == "graph":
            self._after_migration(run, history)
        return run
