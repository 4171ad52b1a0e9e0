"""What the halves of :class:`~cerebelum.engine.Engine` take from one another.

The engine is composed of halves (requests, waits, group commit, versions), each in
its own module; each uses the engine's state and calls methods another half defines.
:class:`EngineBase` declares those for the type checker, so that each half reads as a
plain class. It holds nothing at run time: ``Engine.__init__`` sets the attributes and
the engine's modules define the methods, which the type checker holds to these
declarations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from cerebelum import events as ev
    from cerebelum import protocol as p
    from cerebelum.clock import Clock
    from cerebelum.observe import Observer
    from cerebelum.store import ExecutionRecord, InboxItem, Store, TaskRow, Write

    from ._migrate import VersionState
    from ._run import Run
    from ._timers import TimerQueue

__all__ = ["EngineBase"]

T = TypeVar("T")


class EngineBase:
    """The state and methods the halves of :class:`~cerebelum.engine.Engine` share."""

    store: Store
    clock: Clock
    _wall: Clock
    id: str
    lease: float
    dispatch: str
    evict_after: float | None
    _auto_advance: bool
    _runs: dict[str, Run]
    _loading: dict[str, asyncio.Future[Run | None]]
    _firing: set[str]
    _background: set[asyncio.Task[Any]]
    _dirty: list[Run]
    _wake: asyncio.Event
    _commit_lock: asyncio.Lock
    _timers: TimerQueue
    _closing: bool
    _trouble_since: float | None
    _trouble_logged: float
    _versions: VersionState
    _wanted: set[str]
    _poke: asyncio.Event
    poll_interval: float
    _watched: dict[str, list[asyncio.Future[ExecutionRecord | None]]]
    _observers: list[Observer]

    if TYPE_CHECKING:
        # defined by Engine (_engine.py)
        def _require_open(self) -> None: ...
        def workflow(self, wf: Any) -> Any: ...
        def _runnable(self) -> dict[str, Any]: ...
        def _runnable_versions(self) -> dict[str, str]: ...
        async def _record(self, execution_id: str) -> ExecutionRecord: ...
        def _apply(self, run: Run, cls: type[ev.Event], **fields: Any) -> None: ...
        def _buffer_started(self, run: Run, key: str | int, attempt: int) -> None: ...
        def _ready(self, run: Run, key: str | int, attempt: int) -> None: ...
        def _tasks_to_write(self, run: Run, ended: bool) -> tuple[list[TaskRow], list[str]]: ...
        def _mark_dirty(self, run: Run) -> None: ...
        def _after_commit(self, run: Run, write: Write) -> None: ...
        def _revive(self, rec: ExecutionRecord, history: list[ev.Event]) -> Run: ...
        def _start_coroutine(self, run: Run) -> None: ...
        async def _patiently(self, read: Callable[[], Awaitable[T]]) -> T: ...
        def _info(self) -> str: ...
        async def _poll_watched(self) -> None: ...

        # defined by the other halves: dispatch, versions, queues, requests, waits
        def _tasks_elsewhere(self) -> None: ...
        async def _adopt_tasks(self, run: Run) -> None: ...
        async def _take_result_request(self, item: InboxItem) -> None: ...
        async def _adopt_stranded(self, runnable: dict[str, Any]) -> None: ...
        def _after_migration(self, run: Run, history: list[ev.Event]) -> None: ...
        async def _take_migrate(self, item: InboxItem) -> None: ...
        async def _admit(self) -> None: ...
        def _admitted(self, run: Run) -> None: ...
        def _receive(self, item: InboxItem) -> None: ...
        def _fire_unloaded(self, eid: str, timer: str, fire_at: float) -> None: ...

        # defined by Observing (_observing.py)
        def _observe_commit(self, batch: list[Any], seconds: float) -> None: ...
        def _observe_load(self, run: Run, history: list[ev.Event]) -> None: ...
        def _observe_task(self, task: p.Task) -> p.Task: ...

        # defined by Waits (_waits.py)
        async def _load(self, eid: str) -> Run | None: ...
