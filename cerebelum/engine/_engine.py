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
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cerebelum import events as ev
from cerebelum.clock import Clock
from cerebelum.declared import child_args, child_output, encode_inputs, output_type, result_type
from cerebelum.dsl._workflow import lookup_workflow, registered_workflows
from cerebelum.errors import (
    CerebelumError,
    ChildFailedError,
    ExecutionNotFoundError,
    ExecutionStuckError,
    InvalidRequestError,
    StoreError,
    StoreUnavailableError,
    WorkflowNotFoundError,
)
from cerebelum.serde import read
from cerebelum.store import ExecutionRecord, Store, Write, open_store
from cerebelum.worker._local import run_step

from . import _code
from ._code_state import CodeState, decide_code, evolve_code
from ._commit import MAX_BACKOFF, Committer, Duplicate, Moved
from ._context import ActivityInfo
from ._decide import decide
from ._dispatch import Dispatch
from ._migrate import Versions, VersionState
from ._neighbours import describe_self
from ._observing import Observing
from ._ownership import Ownership
from ._queues import Queue, Queues, queue_of
from ._requests import Requests
from ._results import ExecutionError, ExecutionInfo, ExecutionResult, summarize_steps
from ._run import Handle, Run, check_id
from ._state import TERMINAL, ExecutionState, ExecutionStatus, NodeStatus, evolve
from ._timers import TimerQueue
from ._waits import Evicted, Waits

if TYPE_CHECKING:
    from cerebelum.dsl._workflow import Workflow

__all__ = ["Engine"]

logger = logging.getLogger("cerebelum.engine")

T = TypeVar("T")

_STARTED = {ev.StepScheduled, ev.ActivityScheduled}
_SETTLES = (ev.ActivityCompleted, ev.ActivityFailed, ev.TimerFired, ev.ApprovalResolved,
            ev.SignalDelivered, ev.ChildEnded)  # fmt: skip


class Engine(Ownership, Requests, Waits, Committer, Versions, Dispatch, Queues, Observing):
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
        dispatch: where steps and activities run: ``"local"``, in this process (the
            embedded engine); ``"workers"``, as tasks that worker processes poll for
            (``cerebelum server``, see docs/workers.md).
        task_lease: seconds a task stays a worker's without a heartbeat before it is
            offered to another worker (``dispatch="workers"``).
        metrics: keep Prometheus metrics (``True``, or a ``CollectorRegistry`` to keep
            them in): see :attr:`metrics` and docs/observability.md.
        tracing: make OpenTelemetry spans (``True`` for the global tracer provider, or a
            ``TracerProvider``); needs ``pip install 'cerebelum[otel]'``.
        observers: more :class:`cerebelum.observe.Observer` to tell what happens.
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
        dispatch: str = "local",
        task_lease: float = 30.0,
        metrics: Any = False,
        tracing: Any = False,
        observers: list[Any] | None = None,
    ) -> None:
        if dispatch not in ("local", "workers"):
            raise InvalidRequestError(f"dispatch is 'local' or 'workers', not {dispatch!r}")
        if not task_lease > 0:
            raise InvalidRequestError(f"task_lease is a number of seconds > 0, not {task_lease!r}")
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
        self._loading: dict[str, asyncio.Future[Run | None]] = {}
        self._firing: set[str] = set()  # executions being loaded because a timer fell due
        self._watched: dict[str, list[asyncio.Future[ExecutionRecord | None]]] = {}
        self._trouble_since: float | None = None  # since when the store refuses commits
        self._trouble_logged = 0.0
        self._dirty: list[Run] = []
        self._wake = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._timers = TimerQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._versions = VersionState()
        self.dispatch = dispatch
        self.task_lease = task_lease
        self._workers = {}
        self._polls = []
        self._handing = {}
        self._unclaimed = 1  # the store may hold ready tasks from before this engine opened
        self._task_runs = {}
        self._polls_ended = False
        self._poke = asyncio.Event()  # a notice came: the poller looks now
        self._wanted: set[str] = set()
        self._open = False
        self._closing = False
        self._init_observers(metrics, tracing, observers)

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
            await self.store.listen(self.id, self._notice)
        except BaseException:
            await self.store.close()
            raise
        self._open = True
        self._observe_open()
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
        self.end_polls()
        for run in list(self._runs.values()):
            run.cancel_tasks()
        for task in list(self._background):
            task.cancel()
        await self._drain()
        await _stop([*self._tasks, *self._background])
        self._tasks.clear()
        try:
            await self.store.release(self.id)
        except Exception:
            logger.warning("could not release executions of engine %s", self.id, exc_info=True)
        if self._observers:
            self._observe_close()
        for run in self._runs.values():
            run.abandon(StoreError("the engine was closed before the execution finished"))
        self._runs.clear()
        for waiters in self._watched.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(StoreError("the engine was closed"))
        self._watched.clear()
        await self.store.close()
        self._open = False
        self._closing = False

    def _info(self) -> str:
        return describe_self()

    @property
    def is_open(self) -> bool:
        """Open, and not yet told to stop (``end_polls``, as a server does when it shuts
        down): long waits (polls, the web UI's event streams) may go on."""
        return self._open and not self._closing and not self._polls_ended

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

    async def start(
        self, wf: Any, /, *args: Any, id: str | None = None, queue: Queue | str | None = None,
        priority: int = 0, dedup_id: str | None = None, **kwargs: Any,
    ) -> Handle:  # fmt: skip
        """Start an execution; return its handle once it is recorded.

        A graph workflow takes one input (``engine.start(wf, {"user_id": 1})``); a code
        workflow takes its function's own arguments (``engine.start(wf, "123", retries=2)``).
        Starting an ``id`` that exists returns the existing execution's handle: it never
        makes a second one.

        On a ``queue`` (a declared :class:`Queue`, or its name) the execution waits,
        ``queued``, until the queue lets it run: within its concurrency and rate limit,
        higher ``priority`` first, then the oldest. A ``dedup_id`` allows one unfinished
        execution per id on the queue.

        Raises:
            SerializationError: the inputs cannot be serialised (nothing is written).
            InvalidRequestError: wrong arguments, or ``id`` belongs to another workflow.
            DuplicateError: the queue has an unfinished execution with ``dedup_id``.
        """
        on = None
        if queue is not None:
            on = queue_of(queue)
            if not isinstance(priority, int) or isinstance(priority, bool):
                raise InvalidRequestError(f"priority is a whole number, not {priority!r}")
            if dedup_id is not None and (not isinstance(dedup_id, str) or not dedup_id):
                raise InvalidRequestError(f"dedup_id is a non-empty string, not {dedup_id!r}")
        elif priority or dedup_id is not None:
            raise InvalidRequestError("priority and dedup_id are for executions on a queue: "
                                      "give queue= too")  # fmt: skip
        return await self._start(wf, args, kwargs, id, None, on, priority, dedup_id)

    async def _start(
        self,
        wf: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        parent_id: str | None,
        queue: Queue | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
    ) -> Handle:
        self._require_open()
        workflow = self.workflow(wf)
        if workflow.kind == "graph" and self.dispatch == "local":
            remote = [f"{n!r} ({sd.task})" for n, sd in workflow.steps.items() if sd.task]
            if remote:
                raise InvalidRequestError(
                    f"workflow {workflow.name!r} has remote steps ({', '.join(remote)}) that "
                    "workers run, and this engine runs every step itself (dispatch='local'): "
                    "start it through a server whose workers host them (docs/workers.md)",
                    workflow=workflow.name,
                )
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
        await self._keep_blueprint(workflow)
        if id is not None:
            check_id(id)
            existing = await self._patiently(lambda: self._existing(id, workflow))
            if existing is None:  # another start() of this id may have got here meanwhile
                existing = self._running(id, workflow)
            if existing is not None:
                return existing
        if queue is not None and dedup_id is not None:
            await self._check_dedup(queue, dedup_id)
            if id is not None and (existing := self._running(id, workflow)) is not None:
                return existing  # started meanwhile
        # no await from the check above to here: two start() of one id cannot both pass
        eid = id or uuid.uuid4().hex
        run = self._new_run(eid, workflow)
        run.creating = True
        run.parent_id = parent_id
        self._runs[eid] = run
        trace = self._observe_start(eid, workflow.name, parent_id) if self._observers else ""
        self._apply(run, ev.ExecutionStarted, workflow=workflow.name, version=workflow.version,
                    kind=workflow.kind, inputs=ev.Raw(raw), parent_id=parent_id,
                    label=workflow.label, queue=queue.name if queue else "", priority=priority,
                    dedup_id=dedup_id or "", trace=trace)  # fmt: skip
        if run.kind == "code" and queue is None:
            self._start_coroutine(run)
        try:
            await run.committed()
        except Duplicate:
            existing = await self._existing(eid, workflow)
            if existing is None and queue is not None and dedup_id is not None:
                await self._check_dedup(queue, dedup_id)  # started elsewhere at this moment
            if existing is None:
                raise
            return existing
        if queue is not None:
            self._admit_soon()
        return Handle(self, eid)

    def _new_run(self, eid: str, workflow: Any) -> Run:
        if workflow.kind == "code":
            return Run(eid, workflow, CodeState(eid))
        return Run(eid, workflow, ExecutionState(eid, workflow.blueprint))

    def _start_coroutine(self, run: Run) -> None:
        if self.dispatch == "workers":  # a worker runs it, against its history
            self._activate(run)
            return
        run.runtime = _code.WorkflowRuntime(self, run)
        run.task = asyncio.create_task(_code.drive(self, run), name=f"cerebelum-workflow-{run.id}")

    async def _existing(self, eid: str, workflow: Any) -> Handle | None:
        if eid in self._runs:
            return self._running(eid, workflow)
        rec = await self.store.get(eid)
        return self._same(eid, rec.workflow, workflow) if rec else None

    def _running(self, eid: str, workflow: Any) -> Handle | None:
        run = self._runs.get(eid)
        return self._same(eid, run.wf.name, workflow) if run else None

    def _same(self, eid: str, name: str, workflow: Any) -> Handle:
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

        An execution this engine runs is waited for in memory; any other (run by
        another engine, or asleep in the store) is looked at once per ``poll_interval``,
        together with every other such wait, in one read.

        Raises:
            ExecutionNotFoundError: no such execution.
            ExecutionStuckError: its code no longer matches its history.
            TimeoutError: ``timeout`` seconds passed first.
            VersionMismatchError: the execution waits for a version of its workflow that no
                engine here runs (rather than waiting for ever); see ``migrate``.
        """
        return await self._result(execution_id, timeout)

    async def _result(self, execution_id: str, timeout: float | None = None) -> ExecutionResult:
        # the engine's own waits (a parent on its child) come here, not through result():
        # TestEngine moves its clock while its *caller* awaits a result, not while a workflow does
        self._require_open()
        check_id(execution_id)
        async with asyncio.timeout(timeout):
            while True:
                run = self._runs.get(execution_id)
                if run is not None:
                    with contextlib.suppress(Evicted, Moved, Duplicate):  # look again
                        return await asyncio.shield(run.done)
                    continue
                rec = await self._patiently(lambda: self._watch(execution_id))
                if rec is None:
                    continue  # this engine has loaded it meanwhile
                if rec.status in TERMINAL:
                    return ExecutionResult.from_record(rec)
                unrunnable = self._unrunnable(rec)
                if unrunnable is not None:
                    raise unrunnable
                raise ExecutionStuckError(
                    (rec.error or {}).get("message", "stuck"), execution_id=execution_id
                )

    async def _patiently(self, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, tried again while the store does not answer (a caller that waits anyway)."""
        delay = 0.05
        while True:
            try:
                return await read()
            except StoreUnavailableError as exc:
                if self._closing or not self._open:
                    raise
                logger.debug("engine %s: waiting for the store: %s", self.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _watch(self, execution_id: str) -> ExecutionRecord | None:
        """The execution's row once it has ended, is stuck or waits for another version;
        ``None`` once it is loaded here."""
        rec = await self._record(execution_id)
        if _settled(rec):
            return rec
        fut: asyncio.Future[ExecutionRecord | None] = asyncio.get_running_loop().create_future()
        self._watched.setdefault(execution_id, []).append(fut)
        try:
            return await fut
        finally:
            waiters = self._watched.get(execution_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._watched[execution_id]

    async def _poll_watched(self) -> None:
        """Answer every wait for an execution not in memory, with one read of the store."""
        if not self._watched:
            return
        ids = [eid for eid in self._watched if eid not in self._runs]
        ended = {r.id: r for r in (await self.store.get_many(ids) if ids else []) if _settled(r)}
        for eid, waiters in list(self._watched.items()):
            if eid in self._runs or eid in ended:
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(ended.get(eid))

    async def run_child(
        self, wf: Any, args: tuple[Any, ...], kwargs: dict[str, Any], child_id: str, parent_id: str
    ) -> Any:
        """Start ``wf`` as a child of ``parent_id`` (once, whatever the retries) and return its output."""
        parent = self._runs.get(parent_id)
        if parent is not None:
            parent.children.add(child_id)
        handle = await self._start(wf, args, kwargs, child_id, parent_id)
        result = await self._result(handle.id)
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
        check_id(execution_id)
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
        follows = decide_next(state, event, now)
        for follow in follows:
            fold_one(state, follow)
            buffer.append(follow)
            if type(follow) in _STARTED:
                ready.append(follow)
        if (
            not graph
            and self.dispatch == "workers"
            and (cls in _SETTLES or any(isinstance(f, _SETTLES) for f in follows))
        ):
            self._activate(run)  # the coroutine, on a worker, has an outcome to see
        for s in ready:  # started right after the commit, here or by a worker
            if isinstance(s, ev.StepScheduled):  # graph workflows schedule steps
                if state.node(s.step).status is NodeStatus.ACTIVE:
                    self._ready(run, s.step, s.attempt)
            elif isinstance(s, ev.ActivityScheduled):  # code workflows, activities
                self._ready(run, s.position, s.attempt)
        self._mark_dirty(run)

    def _buffer_started(self, run: Run, key: str | int, attempt: int) -> None:
        state = run.state
        now = self.clock.timestamp()
        if run.kind == "graph":
            e: ev.Event = ev.StepStarted(
                seq=state.seq + 1, at=now, step=str(key), attempt=attempt, worker=self.id
            )
            evolve(state, e)
        else:
            position = int(key)
            run.launched.add(position)
            e = ev.ActivityStarted(
                seq=state.seq + 1, at=now, position=position, attempt=attempt, worker=self.id
            )
            evolve_code(state, e)
        run.buffer.append(e)
        self._mark_dirty(run)

    def _mark_dirty(self, run: Run) -> None:
        if not run.dirty:
            run.dirty = True
            self._dirty.append(run)
            self._wake.set()

    def _after_commit(self, run: Run, write: Write) -> None:
        state = run.state
        runtime = run.runtime
        if write.tasks_enqueued:
            self._handed_over(run, write.tasks_enqueued)
        for e in write.events:
            if isinstance(e, ev.StepStarted):
                if not state.ended and e.worker == self.id:  # else a worker ran it already
                    run.launch(e.step, self._step_task(run, e.step, e.attempt))
            elif isinstance(e, ev.ActivityStarted):
                if not state.ended and e.worker == self.id:
                    run.launch(
                        f"activity-{e.position}", self._activity_task(run, e.position, e.attempt)
                    )
            elif isinstance(e, ev.TimerStarted):
                self._timers.push(e.fire_at, run.id, e.timer)
            elif isinstance(e, ev.ChildStarted):
                run.launched.add(e.position)
                self._watch_child(run, e.position, e.child_id, e.workflow, e.args)
            elif runtime is not None and isinstance(e, _SETTLES):
                position: int | None
                if isinstance(e, ev.ApprovalResolved):
                    position = int(e.step)
                elif isinstance(e, ev.TimerFired):
                    kind, _, pos = e.timer.partition(":")
                    position = int(pos) if kind == "sleep" else None
                else:
                    position = e.position
                if position is None:
                    continue
                fut = runtime.futures.get(position)
                cmd = state.commands.get(position)
                if fut is not None and cmd is not None and cmd.settled:
                    del runtime.futures[position]
                    _code.settle(fut, cmd, result_type(runtime, position))
        if state.ended and run.persisted_status in TERMINAL:
            self._finish(run)
        elif run.persisted_status is ExecutionStatus.QUEUED and self._runs.get(run.id) is run:
            # it waits in the store until its queue admits it (here or on another engine);
            # at once, before anything else runs: an admission loads it again
            del self._runs[run.id]
            run.abandon(Evicted())  # callers waiting for the result wait on the store
        elif run.persisted_status is ExecutionStatus.STUCK:
            self._runs.pop(run.id, None)
            run.cancel_tasks()
            run.abandon(
                ExecutionStuckError(state.stuck.get("message", "stuck"), execution_id=run.id)
            )
        elif runtime is not None and self.evict_after is not None:
            self._maybe_evict(run)

    def _finish(self, run: Run) -> None:
        run.cancel_tasks()
        self._runs.pop(run.id, None)
        self._admit_soon()  # a queue it ran on may have room now
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
            call = run_step(cast("Workflow", run.wf), run.state, name, attempt, info)
            outcome = await self._attempt(run, "step", name, attempt, call)
        except asyncio.CancelledError:
            return
        assert outcome is not None
        cls, fields = outcome
        node = run.state.node(name)
        if run.state.ended or node.status is not NodeStatus.ACTIVE or node.attempt != attempt:
            return  # the execution moved on (cancelled, or ended by another branch)
        self._apply(run, cls, **fields)

    async def _activity_task(self, run: Run, position: int, attempt: int) -> None:
        name = run.state.commands[position].name
        call = _code.run_activity(self, run, position, attempt)
        outcome = await self._attempt(run, "activity", name, attempt, call)
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
                result = await self._result(handle.id)
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


def _settled(rec: ExecutionRecord) -> bool:
    """Whether waiting for this execution's result can end now (one way or another)."""
    return (
        rec.status in TERMINAL or rec.status == ExecutionStatus.STUCK or rec.waiting_for is not None
    )


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended.

    Cancelling again until they end: on Python 3.11 a cancellation that meets a task
    just as what it awaits completes can be lost, and a single cancel() would leave
    close() waiting forever.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.debug("task %s ended with %r", task.get_name(), task.exception())
