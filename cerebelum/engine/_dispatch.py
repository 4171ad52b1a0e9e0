"""Dispatch: where a ready step or activity runs.

An engine opened with ``dispatch="local"`` (the embedded default) runs each ready
attempt in its own process: the ``StepStarted`` event is the record, and the attempt
starts right after the commit. With ``dispatch="workers"`` (``cerebelum server``)
each ready attempt is a row of the tasks table, enqueued in the commit that records
the event that made it ready, and run by a worker that polls for it:

- A worker waiting in a poll that hosts the task's name on the task's queue gets it
  handed over: the row is enqueued already leased to that worker, and the task goes to
  it the moment the commit returns. No second write, no polling of the table.
- Otherwise the row waits, ``ready``, for the next poll that can take it, which claims
  it from the store. A poll also claims from the store once a second while it waits:
  leases that ran out (a worker died) and tasks enqueued by another server.
- The result comes back in a :class:`~cerebelum.protocol.Report`. The engine records
  the outcome (``StepStarted`` with the worker and when it began, then
  ``StepCompleted``/``StepFailed``, or the activity's) and completes the task, in one
  commit, and acknowledges it only then: a worker keeps a result until it is
  acknowledged, so a result is never lost, and a result for an attempt that is no
  longer current (the execution ended, or the task went to another worker and that
  one finished first) is acknowledged and ignored.
- An execution that ends completes its unfinished tasks in the commit that ends it:
  no worker takes them again, and a worker that holds one learns at its next
  heartbeat that it is no longer wanted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgspec

from cerebelum import events as ev
from cerebelum import protocol as p
from cerebelum.errors import ExecutionNotFoundError, InvalidRequestError, UnknownWorkerError
from cerebelum.serde import encode
from cerebelum.store import TaskRow

from ._base import EngineBase
from ._results import TaskInfo
from ._state import TERMINAL, NodeStatus

if TYPE_CHECKING:
    from cerebelum.dsl._workflow import Workflow
    from cerebelum.store import InboxItem

    from ._run import Run

__all__ = ["Dispatch", "WorkerEntry", "step_of_task", "step_task_name"]

logger = logging.getLogger("cerebelum.engine")

#: While a poll waits, how often (seconds) it looks in the store for tasks nobody handed it.
CLAIM_EVERY = 1.0
#: A worker not heard from for this many leases is forgotten (it registers again).
FORGET_AFTER = 4


@dataclass
class WorkerEntry:
    """A registered worker, as this engine knows it."""

    id: str
    hosts: dict[str, list[str]]  # kind -> names
    queues: list[str]
    concurrency: int
    seen: float
    names: set[tuple[str, str]] = field(default_factory=set)  # (kind, name)

    def takes(self, row: TaskRow) -> bool:
        return row.queue in self.queues and (row.kind, row.name) in self.names


class _Poll:
    """A poll waiting for tasks: how many more it takes, and those handed to it."""

    __slots__ = ("fut", "reserved", "room", "tasks", "worker")

    def __init__(self, worker: WorkerEntry, room: int) -> None:
        self.worker = worker
        self.room = room
        self.reserved = 0  # leased to it in a write not committed yet
        self.tasks: list[p.Task] = []
        self.fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def deliver(self, task: p.Task) -> None:
        self.tasks.append(task)
        if len(self.tasks) >= self.reserved and not self.fut.done():
            self.fut.set_result(None)


def step_task_name(wf: Workflow, step: str) -> str:
    """The name a step's tasks carry: ``workflow.step``, since step names are unique only
    within their workflow; a remote step's own task name."""
    return wf.steps[step].task or f"{wf.name}.{step}"


def step_of_task(execution_id: str, row: TaskRow) -> tuple[str, int]:
    """The node and ``back_to`` iteration a step task runs, from its idempotency key
    (``execution:step``, ``execution:step#N``): its name may be a remote step's task."""
    rest = row.idempotency_key[len(execution_id) + 1 :]
    head, sep, tail = rest.rpartition("#")
    return (head, int(tail)) if sep and tail.isdigit() else (rest, 0)


class Dispatch(EngineBase):
    """The dispatch half of :class:`~cerebelum.engine.Engine`: tasks for workers."""

    dispatch: str
    task_lease: float
    _workers: dict[str, WorkerEntry]
    _polls: list[_Poll]
    _handing: dict[str, _Poll]
    _unclaimed: int
    _polls_ended: bool
    _task_runs: dict[str, Run]  # the tasks still out, to the execution they belong to

    # --- enqueueing (in the write of the event that makes the attempt ready) -----------

    def _ready(self, run: Run, key: str | int, attempt: int) -> None:
        """Start a ready attempt: here, or as a task for a worker."""
        if self.dispatch == "local":
            self._buffer_started(run, key, attempt)
        else:
            self._enqueue(run, key, attempt)

    def _enqueue(self, run: Run, key: str | int, attempt: int) -> None:
        now = self.clock.timestamp()
        if run.kind == "graph":
            row = self._step_row(run, str(key), attempt, now)
        else:
            row = self._activity_row(run, int(key), attempt, now)
        self._offer(run, row)

    def _offer(self, run: Run, row: TaskRow) -> None:
        """Enqueue ``row`` in ``run``'s next write, leased already to a poll waiting for it."""
        wall = self._wall.timestamp()
        poll = next((q for q in self._polls if q.room > 0 and q.worker.takes(row)), None)
        if poll is not None:  # a worker waits for it: lease it in this very write
            row = TaskRow(**{**vars(row), "status": "leased", "worker_id": poll.worker.id,
                             "lease_until": wall + self.task_lease, "claims": 1})  # fmt: skip
            poll.room -= 1
            poll.reserved += 1
            if poll.room == 0:
                self._polls.remove(poll)
            self._handing[row.id] = poll
        run.enqueue.append(row)
        run.remote[row.id] = row
        self._task_runs[row.id] = run
        self._mark_dirty(run)

    def _activate(self, run: Run) -> None:
        """Have a worker run ``run``'s coroutine against its history (a code workflow where
        workers run the code): one activation out at a time, another once it is back."""
        if run.state.ended or run.state.queued:
            return
        if run.activation is not None:
            run.again = True
            return
        now = self.clock.timestamp()
        row = TaskRow(
            id=uuid.uuid4().hex, execution_id=run.id, kind="workflow", name=run.wf.name,
            queue="default", attempt=1, idempotency_key=f"{run.id}:activation",
            inputs=b"null", created_at=now, available_at=self._wall.timestamp(),
        )  # fmt: skip
        run.activation = row.id
        self._offer(run, row)

    def _step_row(self, run: Run, step: str, attempt: int, now: float) -> TaskRow:
        wf = cast("Workflow", run.wf)
        state = run.state
        sd = wf.steps[step]
        node = state.node(step)
        parts = [b'{"inputs":', bytes(state.inputs)]
        for param in sd.params:
            if param.name == "inputs":
                continue
            n = state.node(param.name)
            done = n.status is NodeStatus.COMPLETED and n.result
            parts += [b",", encode(param.name, "a parameter name"), b":",
                      bytes(n.result) if done else b"null"]  # fmt: skip
        parts.append(b"}")
        suffix = f"#{node.iteration}" if node.iteration else ""
        return TaskRow(
            id=uuid.uuid4().hex, execution_id=run.id, kind="step",
            name=step_task_name(wf, step), queue=sd.queue, attempt=attempt,
            idempotency_key=f"{run.id}:{step}{suffix}", inputs=b"".join(parts),
            created_at=now, available_at=self._wall.timestamp(), timeout=sd.timeout,
        )  # fmt: skip

    def _activity_row(self, run: Run, position: int, attempt: int, now: float) -> TaskRow:
        cmd = run.state.commands[position]
        adef = run.activities.get(position)
        return TaskRow(
            id=uuid.uuid4().hex, execution_id=run.id, kind="activity", name=cmd.name,
            queue=adef.queue if adef is not None else "default", attempt=attempt,
            idempotency_key=f"{run.id}:{position}", inputs=bytes(cmd.args or ev.NULL),
            created_at=now, available_at=self._wall.timestamp(),
            timeout=adef.timeout if adef is not None else None,
            heartbeat_timeout=adef.heartbeat_timeout if adef is not None else None,
        )  # fmt: skip

    def _handed_over(self, run: Run, rows: list[TaskRow]) -> None:
        """After the commit that enqueued ``rows``: hand the leased ones to their polls."""
        for row in rows:
            poll = self._handing.pop(row.id, None)
            if poll is not None:
                poll.deliver(self._task(row, run.wf.name, run))
            else:
                self._unclaimed += 1

    async def _adopt_tasks(self, run: Run) -> None:
        """After a restart: learn the tasks in the store of an execution brought back, and
        enqueue those its attempts in flight lack (started by an engine that ran them
        itself, or lost with it)."""
        try:
            rows = await self.store.tasks_in_flight([run.id])
        except Exception:
            logger.warning("cannot read the tasks of execution %s", run.id, exc_info=True)
            return
        if self._runs.get(run.id) is not run or run.state.ended:
            return
        for row in rows:
            run.remote.setdefault(row.id, row)
            self._task_runs[row.id] = run
        have = {(r.name, r.attempt) for r in run.remote.values()}
        if run.kind == "graph":
            for step in run.state.in_flight():
                attempt = run.state.node(step).attempt
                if (step_task_name(cast("Workflow", run.wf), step), attempt) not in have:
                    self._enqueue(run, step, attempt)
        else:
            for position in run.state.in_flight():
                cmd = run.state.commands[position]
                if (cmd.name, cmd.attempt) not in have:
                    self._enqueue(run, position, max(cmd.attempt, 1))

    # --- workers -------------------------------------------------------------------------

    def register_worker(self, reg: p.Register) -> p.Registered:
        """A worker joins (or joins again): what it hosts, on which queues."""
        self._require_open()
        if self.dispatch != "workers":
            raise InvalidRequestError(
                "this engine runs every step itself (dispatch='local'): it hands no tasks to "
                "workers; start the server with dispatch to workers"
            )
        hosts = {"step": list(reg.steps), "activity": list(reg.activities),
                 "workflow": list(reg.workflows)}  # fmt: skip
        entry = WorkerEntry(reg.worker_id, hosts, list(reg.queues), reg.concurrency,
                            self._wall.timestamp())  # fmt: skip
        entry.names = {(kind, name) for kind, names in hosts.items() for name in names}
        self._workers[reg.worker_id] = entry
        logger.info("worker %s registered: %d steps, %d activities, %d workflows, queues %s",
                    reg.worker_id, len(reg.steps), len(reg.activities), len(reg.workflows),
                    ", ".join(reg.queues))  # fmt: skip
        return p.Registered(worker_id=reg.worker_id, lease=self.task_lease)

    async def tasks(self, execution_id: str) -> list[TaskInfo]:
        """The unfinished tasks of an execution: each waits for a worker, or a worker runs
        it; ``hosted_by`` names the workers connected here that would take a waiting one.

        Raises:
            ExecutionNotFoundError: no execution has this id.
        """
        self._require_open()
        if await self.store.get(execution_id) is None:
            raise ExecutionNotFoundError(
                f"no execution has the id {execution_id!r}", execution_id=execution_id
            )
        rows = await self.store.tasks_in_flight([execution_id])
        if self.dispatch != "workers":
            return [TaskInfo.from_row(r) for r in rows]
        workers = self.workers()
        return [TaskInfo.from_row(r, [w.id for w in workers if w.takes(r)]) for r in rows]

    def end_polls(self) -> None:
        """Answer every poll now, and each new one at once: the server is shutting down."""
        self._polls_ended = True
        for poll in self._polls:
            if not poll.fut.done():
                poll.fut.set_result(None)

    def workers(self) -> list[WorkerEntry]:
        """The workers heard from lately."""
        self._forget_workers()
        return list(self._workers.values())

    def _forget_workers(self) -> None:
        limit = self._wall.timestamp() - FORGET_AFTER * self.task_lease
        for wid in [w.id for w in self._workers.values() if w.seen < limit]:
            del self._workers[wid]

    def _worker(self, worker_id: str) -> WorkerEntry:
        entry = self._workers.get(worker_id)
        if entry is None:
            raise UnknownWorkerError(f"no worker {worker_id!r} is registered here: register first")
        entry.seen = self._wall.timestamp()
        return entry

    async def poll_tasks(
        self, poll: p.Poll, gone: asyncio.Future[Any] | None = None
    ) -> list[p.Task]:
        """Tasks for the worker, leased to it; waits up to ``poll.wait`` seconds for one.

        ``gone``, done when the worker has gone (its connection closed: it stopped, or
        cut the poll), ends the wait; what was handed to the poll meanwhile is given back
        at once rather than left leased to nobody until the lease runs out.
        """
        self._require_open()
        worker = self._worker(poll.worker_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + poll.wait
        # the store, only when it may hold what nobody handed over: tasks enqueued while no
        # poll waited, or (once a second below) leases that ran out and other servers' tasks
        claimed = await self._claim(worker, poll.max_tasks, force=poll.wait == 0)
        if claimed or poll.wait == 0 or self._polls_ended:
            return await self._with_history(claimed)
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return []
            waiting = _Poll(worker, poll.max_tasks)
            self._polls.append(waiting)
            try:  # until a task is handed over, another server says it enqueued some, or a while
                watched: set[asyncio.Future[Any]] = {waiting.fut}
                if gone is not None:
                    watched.add(gone)
                await asyncio.wait(
                    watched, timeout=min(left, CLAIM_EVERY), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                if waiting in self._polls:
                    self._polls.remove(waiting)  # from here on, nothing more is leased to it
            if gone is not None and gone.done():
                if waiting.reserved:
                    await self.give_back(worker.id, await self._collect(waiting))
                return []
            if waiting.reserved:
                return await self._with_history(await self._collect(waiting))
            if self._polls_ended:
                return []
            claimed = await self._claim(worker, poll.max_tasks, force=True)
            if claimed:
                return await self._with_history(claimed)

    async def give_back(self, worker_id: str, tasks: list[p.Task]) -> None:
        """Tasks leased to a worker that will never see them (it left before the answer
        reached it): ready again at once, for the next poll."""
        if not tasks:
            return
        await self.store.release_tasks(worker_id, [t.task_id for t in tasks])
        logger.info("worker %s left before it took %d tasks: they are offered again",
                    worker_id, len(tasks))  # fmt: skip
        self._unclaimed += len(tasks)
        self._tasks_elsewhere()

    def _tasks_elsewhere(self) -> None:
        """Another server enqueued tasks: the polls waiting here look in the store now."""
        for poll in self._polls:
            if not poll.reserved and not poll.fut.done():
                poll.fut.set_result(None)

    async def _claim(self, worker: WorkerEntry, limit: int, force: bool) -> list[p.Task]:
        if not force and self._unclaimed <= 0:
            return []
        rows = await self.store.claim_tasks(worker.id, worker.queues, worker.hosts,
                                            self._wall.timestamp(), self.task_lease, limit)  # fmt: skip
        if len(rows) < limit:
            self._unclaimed = 0
        tasks = []
        for row in rows:
            run = self._runs.get(row.execution_id)
            workflow = run.wf.name if run is not None else ""
            tasks.append(self._task(row, workflow, run))
        return tasks

    def _task(self, row: TaskRow, workflow: str, run: Run | None) -> p.Task:
        details: Any = msgspec.UNSET
        iteration = 0
        if row.kind == "activity" and run is not None:
            position = int(row.idempotency_key.rpartition(":")[2])
            if run.heartbeats.get(position) is not None:
                details = msgspec.Raw(encode(run.heartbeats[position], "heartbeat details"))
        elif row.kind == "step":
            iteration = step_of_task(row.execution_id, row)[1]
        task = p.Task(
            task_id=row.id, execution_id=row.execution_id, kind=p.TaskKind(row.kind),
            name=row.name, workflow=workflow, queue=row.queue, attempt=row.attempt,
            iteration=iteration, idempotency_key=row.idempotency_key,
            inputs=msgspec.Raw(row.inputs), start_to_close_timeout=row.timeout or None,
            heartbeat_timeout=row.heartbeat_timeout or None, heartbeat_details=details,
        )  # fmt: skip
        return self._observe_task(task) if self._observers else task

    async def heartbeat_task(self, hb: p.Heartbeat) -> p.HeartbeatResponse:
        """Extend a task's lease; ``cancelled`` when the worker should stop it."""
        self._require_open()
        self._worker(hb.worker_id)
        mine = await self.store.heartbeat_task(
            hb.task_id, hb.worker_id, self._wall.timestamp(), self.task_lease
        )
        run = self._task_runs.get(hb.task_id)
        row = run.remote.get(hb.task_id) if run is not None else None
        if mine and run is not None and row is not None and row.kind == "activity":
            position = int(row.idempotency_key.rpartition(":")[2])
            run.heartbeats[position] = msgspec.json.decode(hb.details)
        return p.HeartbeatResponse(cancelled=not mine)

    # --- results ---------------------------------------------------------------------------

    async def report(self, report: p.Report) -> p.ReportResponse:
        """Record the results a worker hands back; the ids it may forget, and the tasks
        (up to ``max_tasks``) these results made ready, leased to it."""
        self._require_open()
        worker = self._worker(report.worker_id)
        taking = None
        if report.max_tasks and not self._polls_ended:
            taking = _Poll(worker, report.max_tasks)
            self._polls.insert(0, taking)  # before its long poll: the next step goes back here
        try:
            outcomes = await asyncio.gather(
                *(self._take_result(worker.id, r) for r in report.results)
            )
        finally:
            if taking is not None and taking in self._polls:
                self._polls.remove(taking)
        tasks = await self._with_history(await self._collect(taking)) if taking else []
        return p.ReportResponse(acknowledged=[i for i in outcomes if i is not None], tasks=tasks)

    async def _with_history(self, tasks: list[p.Task]) -> list[p.Task]:
        """An activation carries the execution's whole history: read it as it goes out
        (its cause is committed by then), with the engine's clock for ``now()``."""
        out = []
        for task in tasks:
            if task.kind is p.TaskKind.WORKFLOW:
                history = await self.store.history(task.execution_id)
                task = msgspec.structs.replace(
                    task, events=[msgspec.Raw(ev.encode_event(e)) for e in history],
                    from_start=True, now=self.clock.timestamp(),
                )  # fmt: skip
            out.append(task)
        return out

    async def _collect(self, poll: _Poll) -> list[p.Task]:
        """The tasks leased to ``poll`` (no longer offered more), once their writes commit."""
        loop = asyncio.get_running_loop()
        while len(poll.tasks) < poll.reserved:
            poll.fut = loop.create_future()
            try:
                async with asyncio.timeout(self.task_lease):
                    await asyncio.shield(poll.fut)
            except TimeoutError:
                break
        return poll.tasks

    async def _take_result(self, worker_id: str, result: p.TaskResult) -> str | None:
        held = self._task_runs.get(result.task_id)  # the common case: a task of our own
        if held is not None and self._runs.get(held.id) is not held:  # it left memory
            self._task_runs.pop(result.task_id, None)
            held = None
        row = held.remote.get(result.task_id) if held is not None else None
        if row is None:
            row = await self.store.get_task(result.task_id)
        if row is None:
            logger.warning("worker %s reported task %s, which does not exist: ignored",
                           worker_id, result.task_id)  # fmt: skip
            return result.task_id
        if row.attempt != result.attempt:
            raise InvalidRequestError(
                f"task {row.id!r} is attempt {row.attempt}, not {result.attempt}",
                execution_id=row.execution_id,
            )
        run = self._runs.get(row.execution_id) or await self._load(row.execution_id)
        if run is None:
            rec = await self.store.get(row.execution_id)
            if rec is not None and rec.status not in TERMINAL:  # another engine runs it
                await self.store.send(row.execution_id, "result", worker_id, p.encode(result),
                                      self.clock.timestamp())  # fmt: skip
            return result.task_id
        self._record_result(run, row, worker_id, result)
        await run.committed()
        return result.task_id

    async def _take_result_request(self, item: InboxItem) -> None:
        """A result another server received for an execution this engine runs."""
        result = p.decode(item.payload, p.TaskResult)
        run = self._runs.get(item.execution_id) or await self._load(item.execution_id)
        row = await self.store.get_task(result.task_id)
        if run is None or row is None:
            return
        self._record_result(run, row, item.name, result)
        run.inbox.append(item.id)
        self._mark_dirty(run)

    def _record_result(self, run: Run, row: TaskRow, worker_id: str, r: p.TaskResult) -> None:
        """Record an attempt's outcome, if it is still the current one, and complete its task."""
        run.remote.pop(row.id, None)
        self._task_runs.pop(row.id, None)
        run.finished.append(row.id)
        self._mark_dirty(run)
        state = run.state
        if row.kind == "workflow":
            self._activated(run, row, r)
            return
        if r.commands is not None:
            raise InvalidRequestError(
                f"task {row.id!r} is a {row.kind}: its result is a value or an error, not commands"
            )
        raw = bytes(r.value) if not isinstance(r.value, msgspec.UnsetType) else None
        now = self.clock.timestamp()
        began = min(r.started_at, now) if r.started_at is not None else now
        if state.ended or row.status == "done":
            return
        if row.kind == "step":
            from cerebelum.worker._local import step_outcome

            wf = cast("Workflow", run.wf)
            step = step_of_task(run.id, row)[0]
            if step not in wf.steps:
                return
            node = state.node(step)
            if node.status is not NodeStatus.ACTIVE or node.attempt != row.attempt:
                return
            self._buffer(run, ev.StepStarted, began, step=step, attempt=row.attempt,
                         worker=worker_id)  # fmt: skip
            cls, fields = step_outcome(wf, step, row.attempt, raw, r.error)
        else:
            from ._code import activity_outcome

            position = int(row.idempotency_key.rpartition(":")[2])
            cmd = state.commands.get(position)
            if cmd is None or cmd.settled or cmd.attempt != row.attempt:
                return
            self._buffer(run, ev.ActivityStarted, began, position=position,
                         attempt=row.attempt, worker=worker_id)  # fmt: skip
            cls, fields = activity_outcome(
                run.activities.get(position), position, row.attempt, raw, r.error
            )
        self._apply(run, cls, **fields)

    def _activated(self, run: Run, row: TaskRow, r: p.TaskResult) -> None:
        """An activation is back: record the commands the coroutine gave, in order."""
        if run.activation == row.id:
            run.activation = None
        if run.state.ended or row.status == "done":  # or a late answer to one offered again
            return
        if r.commands is None:  # the worker could not run it at all
            error = r.error.to_dict() if r.error is not None else {"message": "no commands"}
            message = f"a worker could not run the workflow's code: {error.get('message', '')}"
            self._apply(run, ev.ExecutionStuck, error={**error, "message": message})
            return
        from ._commands import apply_commands

        apply_commands(self, run, r.commands)
        if run.again and run.activation is None:
            run.again = False
            self._activate(run)

    def _buffer(self, run: Run, cls: type[ev.Event], at: float, **fields: Any) -> None:
        """Fold and buffer one event that decides nothing (a start, recorded late)."""
        from ._code_state import evolve_code
        from ._state import evolve

        e = cls(seq=run.state.seq + 1, at=at, **fields)
        (evolve if run.kind == "graph" else evolve_code)(run.state, e)
        run.buffer.append(e)

    def _tasks_to_write(self, run: Run, ended: bool) -> tuple[list[TaskRow], list[str]]:
        """The tasks a write of ``run`` enqueues and completes (all of them once it ends)."""
        enqueue, run.enqueue = run.enqueue, []
        done, run.finished = run.finished, []
        if ended and run.remote:
            done += list(run.remote)
            for task_id in run.remote:
                self._task_runs.pop(task_id, None)
            run.remote.clear()
        return enqueue, done
