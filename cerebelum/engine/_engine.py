"""The engine: runs executions, records every event, and brings them back after a crash.

How an event travels:

1. Something happens (an execution starts, a step returns, a code workflow asks for an
   activity, a timer fires, someone approves). The engine folds it into the execution's
   in-memory state and asks the pure decider what follows; the answer is more events,
   folded in the same way.
2. The events wait in the execution's buffer. One flusher task commits the buffers
   of *all* executions in one transaction (group commit): under load, hundreds of
   executions share a commit; a lone execution waits for nobody.
3. Only after the commit does the engine act on them: it runs the scheduled steps and
   activities in this process, arms the timers, hands results to code workflows and
   resolves the waiting callers. So nothing acts on an event that could still be lost.

After a crash, the next engine claims the unfinished executions, folds each history,
runs again the steps and activities that were in flight (same idempotency key),
rebuilds code workflows from their journal, and re-arms the timers, which fire at once
if they fell due while nothing ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import uuid
from typing import Any

from cerebelum import events as ev
from cerebelum.clock import Clock
from cerebelum.declared import child_args, child_output, encode_inputs, output_type, result_type
from cerebelum.dsl._workflow import lookup_workflow, registered_workflows
from cerebelum.errors import (
    CerebelumError,
    ChildFailedError,
    ExecutionNotFoundError,
    InvalidRequestError,
    NonDeterminismError,
    StoreError,
    StoreUnavailableError,
    WorkflowNotFoundError,
)
from cerebelum.serde import read
from cerebelum.store import ExecutionRecord, Store, Write, open_store
from cerebelum.worker._local import run_step

from . import _code
from ._code_state import CodeState, decide_code, evolve_code, fold_code
from ._context import ActivityInfo
from ._decide import decide
from ._requests import Requests
from ._results import ExecutionError, ExecutionInfo, ExecutionResult, summarize_steps
from ._run import Handle, Run
from ._state import TERMINAL, ExecutionState, ExecutionStatus, NodeStatus, evolve, fold
from ._timers import TimerQueue
from ._waits import Evicted, Waits

__all__ = ["Engine"]

logger = logging.getLogger("cerebelum.engine")

_STARTED = {ev.StepScheduled, ev.ActivityScheduled}
_SETTLES = (ev.ActivityCompleted, ev.ActivityFailed, ev.TimerFired, ev.ApprovalResolved,
            ev.SignalDelivered, ev.ChildEnded)  # fmt: skip


class Engine(Requests, Waits):
    """Runs workflows durably, embedded in this process.

    ``Engine()`` uses ``./cerebelum.db`` (or ``$CEREBELUM_DB``); ``Engine("postgresql://...")``
    uses PostgreSQL, where several engine processes can share the work.

    Args:
        store: a URL, a path to a SQLite file, or a :class:`~cerebelum.store.Store`.
        workflows: the workflows this engine runs and resumes (default: every workflow
            defined in this process).
        clock: where time comes from (tests pass a virtual clock).
        lease: seconds after its last heartbeat when an engine counts as gone and its
            executions may be taken over (PostgreSQL).
        poll_interval: how often to look for requests from other processes (approvals,
            cancels) and, on PostgreSQL, for executions left by a dead engine.
        evict_after: a code workflow that will wait longer than this many seconds (on
            sleeps, approvals, signals) leaves memory, to be rebuilt from its journal
            when it wakes; ``None`` keeps every coroutine in memory.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        workflows: list[Any] | None = None,
        clock: Clock | None = None,
        lease: float = 15.0,
        poll_interval: float = 0.2,
        evict_after: float | None = 60.0,
        engine_id: str | None = None,
    ) -> None:
        self.store = open_store(store)
        self.clock = clock or Clock()
        self._wall = Clock()  # leases are about real processes, never virtual time
        self.id = engine_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.poll_interval = poll_interval
        self.evict_after = evict_after
        self._auto_advance = False  # set by TestEngine: jump the virtual clock when all wait
        self._workflows = {w.name: w for w in workflows} if workflows is not None else None
        self._runs: dict[str, Run] = {}
        self._evicted: set[str] = set()  # owned, waiting, not in memory
        self._loading: dict[str, asyncio.Future[Run | None]] = {}
        self._dirty: list[Run] = []
        self._wake = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._timers = TimerQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._open = False
        self._closing = False

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, take over unfinished executions, and start running."""
        if self._open:
            return
        await self.store.connect()
        try:
            await self.store.lock()
            await self.store.heartbeat(self.id, self._wall.timestamp(), self._info())
        except BaseException:
            await self.store.close()
            raise
        self._open = True
        for loop in (self._flusher, self._timer_loop, self._poller):
            self._tasks.append(
                asyncio.create_task(loop(), name=f"cerebelum-{loop.__name__.strip('_')}")
            )
        await self._resume()

    async def close(self) -> None:
        """Stop: finish committing, stop what runs, give the executions up.

        A step or activity stopped here runs again in the next engine, with the same
        idempotency key; a code workflow is rebuilt there from its journal.
        """
        if not self._open:
            return
        self._closing = True
        for run in list(self._runs.values()):
            run.cancel_tasks()
        for task in list(self._background):
            task.cancel()
        await self._drain()
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        try:
            await self.store.release(self.id)
        except Exception:
            logger.warning("could not release executions of engine %s", self.id, exc_info=True)
        for run in self._runs.values():
            run.abandon(StoreError("the engine was closed before the execution finished"))
        self._runs.clear()
        self._evicted.clear()
        await self.store.close()
        self._open = False
        self._closing = False

    def _info(self) -> str:
        return f"pid={os.getpid()} host={socket.gethostname()}"

    def _require_open(self) -> None:
        if not self._open:
            raise CerebelumError("the engine is not open: use 'async with Engine() as engine:'")

    def workflow(self, wf: Any) -> Any:
        """The workflow object for ``wf`` (a workflow, or the name of one this engine runs)."""
        if getattr(wf, "kind", None) in ("graph", "code") and hasattr(wf, "name"):
            return wf
        if not isinstance(wf, str):
            raise InvalidRequestError(
                f"{wf!r} is not a workflow: decorate a function with @workflow"
            )
        if self._workflows is not None:
            if wf not in self._workflows:
                raise WorkflowNotFoundError(
                    f"this engine runs no workflow named {wf!r} (it runs: {', '.join(self._workflows)})",
                    workflow=wf,
                )
            return self._workflows[wf]
        return lookup_workflow(wf)

    def _runnable(self) -> dict[str, Any]:
        return dict(self._workflows) if self._workflows is not None else registered_workflows()

    # --- starting and waiting ---------------------------------------------------------

    async def start(self, wf: Any, /, *args: Any, id: str | None = None, **kwargs: Any) -> Handle:
        """Start an execution; return its handle once it is recorded.

        A graph workflow takes one input (``engine.start(wf, {"user_id": 1})``); a code
        workflow takes its function's own arguments (``engine.start(wf, "123", retries=2)``).
        Starting an ``id`` that exists returns the existing execution's handle: it never
        makes a second one.

        Raises:
            SerializationError: the inputs cannot be serialised (nothing is written).
            InvalidRequestError: wrong arguments, or ``id`` belongs to another workflow.
        """
        return await self._start(wf, args, kwargs, id, None)

    async def _start(
        self,
        wf: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        parent_id: str | None,
    ) -> Handle:
        self._require_open()
        workflow = self.workflow(wf)
        if workflow.kind == "code":
            inputs: Any = workflow.bind(args, kwargs)
        elif len(args) > 1 or kwargs:
            raise InvalidRequestError(
                f"graph workflow {workflow.name!r} takes one input (a dict, usually), "
                f"not {len(args)} arguments{' and keywords ' + ', '.join(kwargs) if kwargs else ''}",
                workflow=workflow.name,
            )
        else:
            inputs = args[0] if args else None
        raw = encode_inputs(workflow, inputs, f"the inputs of workflow {workflow.name!r}")
        if id is not None:
            if not isinstance(id, str) or not id:
                raise InvalidRequestError(f"an execution id is a non-empty string, not {id!r}")
            existing = await self._existing(id, workflow)
            if existing is not None:
                return existing
        eid = id or uuid.uuid4().hex
        run = self._new_run(eid, workflow)
        run.creating = True
        run.parent_id = parent_id
        self._runs[eid] = run
        self._apply(run, ev.ExecutionStarted, workflow=workflow.name, version=workflow.version,
                    kind=workflow.kind, inputs=ev.Raw(raw), parent_id=parent_id)  # fmt: skip
        if run.kind == "code":
            self._start_coroutine(run)
        try:
            await run.committed()
        except _Duplicate:
            existing = await self._existing(eid, workflow)
            assert existing is not None
            return existing
        return Handle(self, eid)

    def _new_run(self, eid: str, workflow: Any) -> Run:
        if workflow.kind == "code":
            return Run(eid, workflow, CodeState(eid))
        return Run(eid, workflow, ExecutionState(eid, workflow.blueprint))

    def _start_coroutine(self, run: Run) -> None:
        run.runtime = _code.WorkflowRuntime(self, run)
        run.task = asyncio.create_task(_code.drive(self, run), name=f"cerebelum-workflow-{run.id}")

    async def _existing(self, eid: str, workflow: Any) -> Handle | None:
        run = self._runs.get(eid)
        rec = None if run else await self.store.get(eid)
        name = run.wf.name if run else rec.workflow if rec else None
        if name is None:
            return None
        if name != workflow.name:
            raise InvalidRequestError(
                f"execution {eid!r} exists and runs workflow {name!r}, not {workflow.name!r}",
                execution_id=eid,
            )
        return Handle(self, eid)

    async def execute(
        self, wf: Any, /, *args: Any, id: str | None = None, **kwargs: Any
    ) -> ExecutionResult:
        """Start an execution and wait for its result."""
        handle = await self.start(wf, *args, id=id, **kwargs)
        return await handle.result()

    async def result(self, execution_id: str, timeout: float | None = None) -> ExecutionResult:
        """Wait until the execution ends; return how it ended.

        Raises:
            NonDeterminismError: the execution is stuck (its code no longer matches its history).
        """
        self._require_open()
        async with asyncio.timeout(timeout):
            while True:
                run = self._runs.get(execution_id)
                if run is not None:
                    with contextlib.suppress(Evicted):
                        return await asyncio.shield(run.done)
                    continue
                if execution_id in self._evicted or execution_id in self._loading:
                    await asyncio.sleep(self.poll_interval)
                    continue
                rec = await self._record(execution_id)
                if rec.status in TERMINAL:
                    return ExecutionResult.from_record(rec)
                if rec.status == ExecutionStatus.STUCK:
                    raise NonDeterminismError(
                        (rec.error or {}).get("message", "stuck"), execution_id=execution_id
                    )
                await asyncio.sleep(self.poll_interval)

    async def run_child(
        self, wf: Any, args: tuple[Any, ...], kwargs: dict[str, Any], child_id: str, parent_id: str
    ) -> Any:
        """Start ``wf`` as a child of ``parent_id`` (once, whatever the retries) and return its output."""
        parent = self._runs.get(parent_id)
        if parent is not None:
            parent.children.add(child_id)
        handle = await self._start(wf, args, kwargs, child_id, parent_id)
        result = await handle.result()
        if result.status != "completed":
            raise ChildFailedError(
                f"child {child_id!r} {result.status}: {result.error}", child_id=child_id
            )
        return result.output

    # --- looking at executions ------------------------------------------------------------

    async def status(self, execution_id: str) -> ExecutionInfo:
        """The execution's status, output or error, and its steps with their timings."""
        self._require_open()
        rec = await self._record(execution_id)
        return ExecutionInfo.from_record(
            rec, summarize_steps(await self.store.history(execution_id))
        )

    async def history(self, execution_id: str) -> list[ev.Event]:
        """Every event of the execution, in order."""
        self._require_open()
        await self._record(execution_id)
        return await self.store.history(execution_id)

    async def list(
        self, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[ExecutionInfo]:
        """Executions, newest first, optionally of one status or workflow."""
        self._require_open()
        if status is not None and status not in ExecutionStatus.__members__.values():
            known = ", ".join(s.value for s in ExecutionStatus)
            raise InvalidRequestError(f"{status!r} is not a status; the statuses are {known}")
        return [
            ExecutionInfo.from_record(r) for r in await self.store.list(status, workflow, limit)
        ]

    async def _record(self, execution_id: str) -> ExecutionRecord:
        rec = await self.store.get(execution_id)
        if rec is None:
            raise ExecutionNotFoundError(
                f"no execution has the id {execution_id!r}", execution_id=execution_id
            )
        return rec

    # --- the core: fold, decide, buffer ----------------------------------------------

    def _apply(self, run: Run, cls: type[ev.Event], **fields: Any) -> None:
        """Record one event for ``run`` and everything the decider says follows from it."""
        state = run.state
        if state.ended:
            return
        graph = run.kind == "graph"
        fold_one, decide_next = (evolve, decide) if graph else (evolve_code, decide_code)
        now = self.clock.timestamp()
        event = cls(seq=state.seq + 1, at=now, **fields)
        fold_one(state, event)
        buffer = run.buffer
        buffer.append(event)
        ready = [event] if cls in _STARTED else []
        for follow in decide_next(state, event, now):
            fold_one(state, follow)
            buffer.append(follow)
            if type(follow) in _STARTED:
                ready.append(follow)
        for s in ready:  # this engine's worker starts them right after the commit
            if graph:
                if state.node(s.step).status is NodeStatus.ACTIVE:
                    self._buffer_started(run, s.step, s.attempt)
            else:
                self._buffer_started(run, s.position, s.attempt)
        self._mark_dirty(run)

    def _buffer_started(self, run: Run, key: str | int, attempt: int) -> None:
        state = run.state
        now = self.clock.timestamp()
        if run.kind == "graph":
            e: ev.Event = ev.StepStarted(
                seq=state.seq + 1, at=now, step=key, attempt=attempt, worker=self.id
            )
            evolve(state, e)
        else:
            run.launched.add(int(key))
            e = ev.ActivityStarted(
                seq=state.seq + 1, at=now, position=key, attempt=attempt, worker=self.id
            )
            evolve_code(state, e)
        run.buffer.append(e)
        self._mark_dirty(run)

    def _mark_dirty(self, run: Run) -> None:
        if not run.dirty:
            run.dirty = True
            self._dirty.append(run)
            self._wake.set()

    # --- group commit -------------------------------------------------------------------

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

    def _take_write(self, run: Run) -> _Pending:
        state = run.state
        events, run.buffer = run.buffer, []
        run.dirty = False
        now = self.clock.timestamp()
        status = state.live_status()
        w = Write(run.id, events, updated_at=now, inbox_done=run.take_inbox())
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
            w.create = ExecutionRecord(
                id=run.id, workflow=run.wf.name, version=run.wf.version, kind=run.wf.kind,
                status=status, inputs=bytes(state.inputs), output=None, error=None,
                parent_id=run.parent_id, owner=self.id, created_at=now, updated_at=now,
            )  # fmt: skip
        return _Pending(run, w, run.take_waiters())

    async def _commit(self, batch: list[_Pending]) -> None:
        delay = 0.05
        while True:
            try:
                conflicts = await self.store.commit([p.write for p in batch])
                break
            except StoreUnavailableError as exc:
                if self._closing:
                    self._lose(batch, exc)
                    return
                logger.warning("commit failed, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                if len(batch) == 1:
                    self._lose(batch, exc)
                    return
                for p in batch:  # isolate the write at fault; the others go through
                    await self._commit([p])
                return
        for p in batch:
            if p.run.id in conflicts:
                self._runs.pop(p.run.id, None)
                p.run.cancel_tasks()
                p.settle(_Duplicate())
            else:
                p.settle(None)
                self._after_commit(p.run, p.write)

    def _lose(self, batch: list[_Pending], exc: BaseException) -> None:
        err = (
            exc
            if isinstance(exc, CerebelumError)
            else StoreError(f"could not record events: {exc}")
        )
        for p in batch:
            logger.error(
                "could not record events of execution %s; dropping it from this engine: %s",
                p.run.id,
                exc,
            )
            self._runs.pop(p.run.id, None)
            p.settle(err)
            p.run.abandon(err)

    def _after_commit(self, run: Run, write: Write) -> None:
        state = run.state
        runtime = run.runtime
        for e in write.events:
            t = type(e)
            if t is ev.StepStarted:
                if not state.ended:
                    run.launch(e.step, self._step_task(run, e.step, e.attempt))
            elif t is ev.ActivityStarted:
                if not state.ended:
                    run.launch(
                        f"activity-{e.position}", self._activity_task(run, e.position, e.attempt)
                    )
            elif t is ev.TimerStarted:
                self._timers.push(e.fire_at, run.id, e.timer)
            elif t is ev.ChildStarted:
                run.launched.add(e.position)
                self._watch_child(run, e.position, e.child_id, e.workflow, e.args)
            elif runtime is not None and isinstance(e, _SETTLES):
                position = int(e.step) if t is ev.ApprovalResolved else getattr(e, "position", None)
                if t is ev.TimerFired:
                    kind, _, pos = e.timer.partition(":")
                    position = int(pos) if kind == "sleep" else None
                fut = runtime.futures.get(position) if position is not None else None
                cmd = state.commands.get(position) if position is not None else None
                if fut is not None and cmd is not None and cmd.settled:
                    del runtime.futures[position]
                    _code.settle(fut, cmd, result_type(runtime, position))
        if state.ended and run.persisted_status in TERMINAL:
            self._finish(run)
        elif run.persisted_status is ExecutionStatus.STUCK:
            self._runs.pop(run.id, None)
            run.cancel_tasks()
            run.abandon(
                NonDeterminismError(state.stuck.get("message", "stuck"), execution_id=run.id)
            )
        elif runtime is not None and self.evict_after is not None:
            self._maybe_evict(run)

    def _finish(self, run: Run) -> None:
        run.cancel_tasks()
        self._runs.pop(run.id, None)
        state = run.state
        output = None
        if state.status is ExecutionStatus.COMPLETED and state.output is not None:
            output = read(state.output, output_type(run.wf))
        error = ExecutionError.from_dict(state.error)
        run.resolve(ExecutionResult(run.id, run.wf.name, state.status.value, output, error))

    # --- steps, activities, children ----------------------------------------------------------

    async def _step_task(self, run: Run, name: str, attempt: int) -> None:
        info = ActivityInfo(run.id, name, attempt, "", engine=self)
        try:
            cls, fields = await run_step(run.wf, run.state, name, attempt, info)
        except asyncio.CancelledError:
            return
        node = run.state.node(name)
        if run.state.ended or node.status is not NodeStatus.ACTIVE or node.attempt != attempt:
            return  # the execution moved on (cancelled, or ended by another branch)
        self._apply(run, cls, **fields)

    async def _activity_task(self, run: Run, position: int, attempt: int) -> None:
        outcome = await _code.run_activity(self, run, position, attempt)
        cmd = run.state.commands[position]
        if outcome is None or run.state.ended or cmd.status != "running" or cmd.attempt != attempt:
            return
        cls, fields = outcome
        self._apply(run, cls, **fields)

    def _watch_child(
        self, run: Run, position: int, child_id: str, workflow: str, args: Any
    ) -> None:
        async def watch() -> None:
            inputs = child_args(self, workflow, args)
            try:
                handle = await self._start(workflow, tuple(inputs.get("args", ())), inputs.get("kwargs", {}),
                                           child_id, run.id)  # fmt: skip
                result = await handle.result()
            except asyncio.CancelledError:
                return
            except Exception as exc:
                fields: dict[str, Any] = {
                    "status": "failed",
                    "error": {"kind": "child", "message": str(exc)},
                }
            else:
                output = child_output(self, workflow, result)
                error = result.error.data if result.error else None
                fields = {"status": result.status, "output": output, "error": error}
            parent = self._runs.get(run.id) or await self._load(run.id)
            if parent is not None and not parent.state.commands[position].settled:
                self._apply(parent, ev.ChildEnded, position=position, **fields)

        task = asyncio.create_task(watch(), name=f"cerebelum-child-{child_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- other processes: the inbox, and executions left by dead engines -------------------

    async def _poller(self) -> None:
        last_claim = self._wall.timestamp()
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                now = self._wall.timestamp()
                if now - last_claim >= self.lease / 3:
                    await self.store.heartbeat(self.id, now, self._info())
                    if not self.store.exclusive:
                        await self._resume()
                    last_claim = now
                for item in await self.store.receive(self.id, 100):
                    if item.execution_id in self._evicted:
                        await self._load(item.execution_id)
                    self._receive(item)
                for run in itertools.islice(self._runs.values(), 200):  # best effort, bounded
                    if run.runtime is not None:
                        _code.warn_foreign_wait(run)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("engine %s: polling the store failed", self.id, exc_info=True)

    async def _resume(self) -> None:
        """Claim unfinished executions this engine can run; fold, and carry on."""
        runnable = self._runnable()
        records = await self.store.claim(
            self.id, self._wall.timestamp(), self.lease, 100_000,
            {name: wf.version for name, wf in runnable.items()},
        )  # fmt: skip
        for rec in records:
            if rec.id in self._runs or rec.id in self._evicted:
                continue
            self._revive(rec, await self.store.history(rec.id), rearm=True)

    def _revive(self, rec: ExecutionRecord, history: list[ev.Event], rearm: bool) -> Run:
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
        logger.info("resuming execution %s of %s at event %d", rec.id, wf.name, state.seq)
        if rearm:
            for timer, fire_at in state.timers.items():
                self._timers.push(fire_at, rec.id, timer)
        if wf.kind == "code":
            self._start_coroutine(run)  # replays the journal; in-flight activities run again
        else:
            for step in state.in_flight():
                self._buffer_started(run, step, state.node(step).attempt + 1)
        return run


class _Pending:
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


class _Duplicate(Exception):
    """The id was taken by an execution started at the same moment."""
