"""One execution as the engine holds it in memory, and the handle callers get."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from cerebelum import events as ev
from cerebelum.errors import InvalidRequestError

from ._results import ExecutionInfo, ExecutionResult
from ._state import ExecutionState, ExecutionStatus

if TYPE_CHECKING:
    from cerebelum.code._activity import ActivityDef
    from cerebelum.code._workflow import CodeWorkflow
    from cerebelum.dsl._workflow import Workflow
    from cerebelum.store import TaskRow

    from ._code import WorkflowRuntime
    from ._code_state import CodeState
    from ._engine import Engine

__all__ = ["MAX_ID_LENGTH", "Handle", "Run", "check_id"]

#: The longest execution id accepted.
MAX_ID_LENGTH = 1000


class Run:
    """An execution this engine owns: its folded state, its buffered events, its tasks."""

    __slots__ = (
        "activation", "activities", "again", "buffer", "children", "creating", "dirty", "done",
        "enqueue", "evicting",
        "finished", "heartbeats", "id", "inbox", "inbox_seen", "kind", "launched", "parent_id",
        "persisted_status", "persisted_timers", "remote", "runtime", "state", "task", "tasks",
        "waiters", "wf",
    )  # fmt: skip

    def __init__(
        self, execution_id: str, wf: Workflow | CodeWorkflow, state: ExecutionState | CodeState
    ) -> None:
        self.id = execution_id
        self.wf = wf
        self.kind = wf.kind
        self.state: Any = state
        self.parent_id: str | None = None
        # code workflows: the coroutine, its runtime, its activities by position
        self.runtime: WorkflowRuntime | None = None
        self.task: asyncio.Task[None] | None = None
        self.activities: dict[int, ActivityDef] = {}
        self.launched: set[int] = set()  # positions whose activity or child runs in this process
        self.heartbeats: dict[int, Any] = {}
        self.evicting = False
        self.children: set[str] = set()  # children started by this execution's steps
        self.buffer: list[ev.Event] = []  # folded into state, not committed yet
        self.dirty = False
        self.creating = False
        self.persisted_status: ExecutionStatus | None = None
        self.persisted_timers: dict[str, float] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # tasks for workers: to enqueue and to complete in the next write; those still out
        self.enqueue: list[TaskRow] = []
        self.finished: list[str] = []
        self.remote: dict[str, TaskRow] = {}
        # code workflows on workers: the activation out, and whether another is due after it
        self.activation: str | None = None
        self.again = False
        self.waiters: list[asyncio.Future[None]] = []
        self.inbox: list[int] = []
        self.inbox_seen: set[int] = set()
        self.done: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()

    def committed(self) -> asyncio.Future[None]:
        """A future that resolves once what is buffered now is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        return fut

    def take_waiters(self) -> list[asyncio.Future[None]]:
        waiters, self.waiters = self.waiters, []
        return waiters

    def take_inbox(self) -> list[int]:
        inbox, self.inbox = self.inbox, []
        return inbox

    def launch(self, key: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` (a step's or an activity's attempt) as a task of this execution."""
        task = asyncio.create_task(coro, name=f"cerebelum-{self.id}-{key}")
        self.tasks[key] = task
        task.add_done_callback(
            lambda t: self.tasks.pop(key, None) if self.tasks.get(key) is t else None
        )

    def cancel_tasks(self) -> None:
        """Stop the steps, activities and coroutine of this execution that run here."""
        current = asyncio.current_task()
        for task in [*self.tasks.values(), self.task]:
            if task is not None and task is not current:
                task.cancel()
        self.tasks.clear()

    def resolve(self, result: ExecutionResult) -> None:
        if not self.done.done():
            self.done.set_result(result)

    def abandon(self, exc: BaseException) -> None:
        self.cancel_tasks()
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: nobody may be waiting


class Handle:
    """A started execution: ``await handle.result()``."""

    def __init__(self, engine: Engine, execution_id: str) -> None:
        self.engine = engine
        self.id = execution_id

    async def result(self, timeout: float | None = None) -> ExecutionResult:
        """Wait until the execution ends; return its status, output or error."""
        return await self.engine.result(self.id, timeout)

    async def status(self) -> ExecutionInfo:
        return await self.engine.status(self.id)

    async def history(self) -> list[ev.Event]:
        return await self.engine.history(self.id)

    async def cancel(self, reason: str = "") -> None:
        await self.engine.cancel(self.id, reason)

    def __repr__(self) -> str:
        return f"<Handle {self.id}>"


def check_id(execution_id: object) -> None:
    """Refuse an execution id no store can hold, before it reaches one.

    Raises:
        InvalidRequestError: not a non-empty string, too long, or holding NUL or a lone
            surrogate (text neither SQLite nor PostgreSQL stores as given).
    """
    if not isinstance(execution_id, str) or not execution_id:
        raise InvalidRequestError(f"an execution id is a non-empty string, not {execution_id!r}")
    if len(execution_id) > MAX_ID_LENGTH:
        raise InvalidRequestError(
            f"an execution id has at most {MAX_ID_LENGTH} characters, not {len(execution_id)} "
            f"({execution_id[:40]!r}...)"
        )
    if "\x00" in execution_id:
        raise InvalidRequestError(f"an execution id cannot hold a NUL character: {execution_id!r}")
    try:
        execution_id.encode()
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"an execution id must be valid Unicode text: {execution_id!r} holds "
            f"{exc.object[exc.start : exc.end]!r} at {exc.start}"
        ) from None
