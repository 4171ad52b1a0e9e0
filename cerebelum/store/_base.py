"""The storage contract: what the engine needs from a database, and nothing more."""

from __future__ import annotations

import abc
import builtins  # list[...] in a class with a method list() would name the method
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cerebelum.events import Event

__all__ = [
    "ExecutionRecord",
    "InboxItem",
    "Store",
    "StoredBlueprint",
    "TaskCounts",
    "TaskRow",
    "Write",
]


@dataclass(frozen=True)
class ExecutionRecord:
    """One row of the executions table."""

    id: str
    workflow: str
    version: str
    kind: str
    status: str
    inputs: bytes
    output: bytes | None
    error: dict[str, Any] | None
    parent_id: str | None
    owner: str | None
    created_at: float
    updated_at: float
    #: What a graph execution no engine can run waits for ("version 1 (3f2a...)"), else None.
    waiting_for: str | None = None
    #: The queue it was started on (it waits, ``queued``, until the queue admits it),
    #: its priority there, and its dedup id (one live execution per id and queue).
    queue: str | None = None
    priority: int = 0
    dedup_id: str | None = None


@dataclass(frozen=True)
class StoredBlueprint:
    """A blueprint some execution was started on, kept so a later engine can compare."""

    version: str
    workflow: str
    label: str
    blueprint: bytes
    created_at: float


@dataclass(frozen=True)
class InboxItem:
    """A request for an execution made from outside its engine: approve, reject, cancel."""

    id: int
    execution_id: str
    kind: str  # approve | reject | signal | cancel | migrate
    name: str
    payload: bytes
    created_at: float


@dataclass(frozen=True)
class TaskRow:
    """One row of the tasks table: a step, an activity or a code workflow's activation,
    to be run by a worker.

    A task is enqueued in the commit that records why it runs, and done in the commit
    that records its result. A lease that runs out offers the same row again: same id,
    same attempt, same idempotency key (a retry after a failure is a new task, with the
    next attempt and its own key).
    """

    id: str
    execution_id: str
    kind: str  # step | activity | workflow
    name: str
    queue: str
    attempt: int
    #: What the worker passes on to the outside world, so that a run repeated after a
    #: lost lease is recognised there as the same run.
    idempotency_key: str
    inputs: bytes
    created_at: float
    #: Not claimed before this time (a retry's backoff); ``created_at`` when it may run at once.
    available_at: float
    #: Higher first; among equals, the one available longest.
    priority: int = 0
    #: Seconds one run may take, and may go without a heartbeat (None: no limit).
    timeout: float | None = None
    heartbeat_timeout: float | None = None
    status: str = "ready"  # ready | leased | done
    #: Who holds (or last held) the task, and until when its lease runs.
    worker_id: str | None = None
    lease_until: float | None = None
    #: How many times the task was handed to a worker: more than one means a lease ran out
    #: (or was given back) before the task was done.
    claims: int = 0


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``(low, high)``: the ids that start with ``prefix`` are ``low <= id < high`` in code
    point order (UTF-8 byte order), so that the primary key's index finds them; ``high`` is
    None when no string bounds them (a prefix of nothing but U+10FFFF)."""
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if code == 0xD800:
            code = 0xE000  # past the surrogates, which no stored id holds
        if code <= 0x10FFFF:
            return prefix, prefix[:i] + chr(code)
    return prefix, None


def claim_order(tasks: Iterable[TaskRow]) -> list[TaskRow]:
    """Claimed tasks in the order they are taken (RETURNING keeps none): priority, then age."""
    return sorted(tasks, key=lambda t: (-t.priority, t.available_at, t.id))


@dataclass(frozen=True)
class TaskCounts:
    """How many unfinished tasks a queue holds, for observability."""

    ready: int  #: claimable now (ready and available, or under a lease that ran out)
    delayed: int  #: ready, but not available before a later time (a backoff)
    leased: int  #: held by a worker under a live lease


@dataclass
class Write:
    """One execution's part of a group commit: its new events and what they cause.

    Attributes:
        execution_id: whose write this is.
        events: to append to its history, in order.
        create: the execution's row, when this write starts it.
        status: the execution's new status, when it changed (with output/error when it ended).
        timers_set: timers started, ``(timer, fire_at)``.
        timers_cleared: timers fired or dropped; ``["*"]`` drops them all.
        inbox_done: inbox items this write consumes.
        tasks_enqueued: tasks of this execution to enqueue, as given: ``ready``, or
            already ``leased`` to a worker that has the task in hand.
        tasks_done: ids of tasks whose result this write records; done whoever holds them.
    """

    execution_id: str
    events: list[Event]
    create: ExecutionRecord | None = None
    status: str | None = None
    output: bytes | None = None
    error: dict[str, Any] | None = None
    timers_set: list[tuple[str, float]] = field(default_factory=list)
    timers_cleared: list[str] = field(default_factory=list)
    inbox_done: list[int] = field(default_factory=list)
    updated_at: float = 0.0
    tasks_enqueued: list[TaskRow] = field(default_factory=list)
    tasks_done: list[str] = field(default_factory=list)


class Store(abc.ABC):
    """Where histories, executions, timers and the inbox live.

    Implementations: :class:`~cerebelum.store.sqlite.SQLiteStore` (embedded, the default)
    and :class:`~cerebelum.store.postgres.PostgresStore`.
    """

    #: The store's address, with any password hidden: for error messages and logs.
    url: str
    #: True when one engine process at a time has the store (SQLite): it owns every execution.
    exclusive: bool = False

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection(s) and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection(s)."""

    @abc.abstractmethod
    async def commit(self, writes: list[Write]) -> set[str]:
        """Write all in one transaction; return the ids of creates that already existed.

        A write whose ``create`` conflicts with an existing execution is left out whole
        (its events, timers and tasks too); the others are written. A task enqueued and
        done in the same commit is recorded as done.
        """

    @abc.abstractmethod
    async def history(self, execution_id: str) -> list[Event]:
        """The execution's events in order (empty when there is no such execution)."""

    @abc.abstractmethod
    async def get(self, execution_id: str) -> ExecutionRecord | None:
        """The execution's row."""

    @abc.abstractmethod
    async def list(
        self, status: str | None = None, workflow: str | None = None, limit: int = 100, *,
        id_prefix: str | None = None, before: tuple[float, str] | None = None,
    ) -> list[ExecutionRecord]:  # fmt: skip
        """Executions, newest first (by ``created_at``, then ``id``), a page at a time.

        Args:
            status: only those of this status.
            workflow: only those of this workflow.
            limit: at most this many.
            id_prefix: only those whose id starts with this.
            before: only those after this ``(created_at, id)`` in the order, the last row
                of the page before: a keyset, which an index serves however deep the page.
        """

    @abc.abstractmethod
    async def get_many(self, ids: builtins.list[str]) -> builtins.list[ExecutionRecord]:
        """The rows of those of ``ids`` that exist, in any order."""

    @abc.abstractmethod
    async def events_at(self, keys: builtins.list[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
        """The encoded events at ``(execution_id, seq)``, for those that exist.

        How an engine learns whether a commit whose answer was lost was recorded.
        """

    @abc.abstractmethod
    async def claim(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[ExecutionRecord]:
        """Take ownership of executions with work in flight whose owner is gone; return them.

        Only ``running`` and ``stuck`` executions: one that only waits (a timer, an
        approval, a signal) is claimed with :meth:`claim_one` when it wakes. Only
        executions of the workflows in ``runnable`` (name to blueprint version) are
        claimed: an engine never takes what it cannot run.
        """

    @abc.abstractmethod
    async def claim_one(
        self, engine_id: str, execution_id: str, now: float, lease: float, runnable: dict[str, str]
    ) -> ExecutionRecord | None:
        """Take ownership of one unfinished execution, unless a live engine owns it."""

    @abc.abstractmethod
    async def due_timers(
        self, engine_id: str, now: float, lease: float, until: float, limit: int,
        runnable: dict[str, str],
    ) -> builtins.list[tuple[str, str, float]]:  # fmt: skip
        """``(execution_id, timer, fire_at)`` due by ``until``, earliest first, of executions
        ``engine_id`` owns or may claim."""

    @abc.abstractmethod
    async def heartbeat(self, engine_id: str, now: float, info: str) -> None:
        """Say that ``engine_id`` is alive (registering it the first time)."""

    @abc.abstractmethod
    async def engines(self) -> builtins.list[tuple[str, str, float]]:
        """Every registered engine: ``(id, info, heartbeat_at)``."""

    @abc.abstractmethod
    async def release(self, engine_id: str) -> None:
        """Give up ``engine_id``'s executions and forget the engine (clean shutdown)."""

    @abc.abstractmethod
    async def send(
        self, execution_id: str, kind: str, name: str, payload: bytes, now: float
    ) -> None:
        """Put a request for an execution in the inbox."""

    @abc.abstractmethod
    async def receive(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[InboxItem]:
        """Inbox items, oldest first, for executions ``engine_id`` owns or may claim."""

    @abc.abstractmethod
    async def drop_stale(self, limit: int) -> builtins.list[InboxItem]:
        """Delete and return requests whose execution has ended (nothing would take them)."""

    # --- versions of graph workflows (cerebelum/engine/_migrate.py) ----------------------

    @abc.abstractmethod
    async def save_blueprint(
        self, version: str, workflow: str, label: str, blueprint: bytes, now: float
    ) -> None:
        """Keep the blueprint ``version`` (its hash); a version already kept is left as it is."""

    @abc.abstractmethod
    async def blueprint(self, version: str) -> StoredBlueprint | None:
        """The blueprint kept under ``version``."""

    @abc.abstractmethod
    async def stranded(
        self, engine_id: str, now: float, lease: float, limit: int,
        runnable: dict[str, str], everything: bool,
    ) -> builtins.list[ExecutionRecord]:  # fmt: skip
        """Unfinished graph executions of the workflows in ``runnable`` at other versions.

        Only those no live engine holds (but ``engine_id``); with ``everything`` false,
        only those not yet marked as waiting for their version.
        """

    @abc.abstractmethod
    async def set_waiting(
        self, execution_id: str, waiting_for: str | None, owner: str | None
    ) -> None:
        """Say what the execution waits for; ``owner``, when given, holds it meanwhile."""

    @abc.abstractmethod
    async def move(
        self, execution_id: str, from_version: str, to_version: str, event: Event,
        owner: str | None, now: float, lease: float,
    ) -> bool:  # fmt: skip
        """Put the execution on ``to_version`` and append ``event`` (ExecutionMigrated), at once.

        Only while it is unfinished, at ``from_version``, and held by no live engine but
        ``owner``; ``owner`` (when given) takes it. False when that no longer holds.
        """

    @abc.abstractmethod
    async def engine_alive(self, engine_id: str, now: float, lease: float) -> bool:
        """Whether ``engine_id`` heartbeat within the last ``lease`` seconds."""

    # --- tasks for workers (enqueued and done through commit) ---------------------------

    @abc.abstractmethod
    async def claim_tasks(
        self, worker_id: str, queues: builtins.list[str],
        names_by_kind: dict[str, builtins.list[str]], now: float, lease: float, limit: int,
    ) -> builtins.list[TaskRow]:  # fmt: skip
        """Lease to ``worker_id`` up to ``limit`` claimable tasks of ``queues`` and the names
        it hosts, by priority then age; no two claimers get one task.

        Claimable: ``ready`` and available by ``now``, or ``leased`` under a lease that
        ran out (offered again unchanged: same attempt, same idempotency key).
        """

    @abc.abstractmethod
    async def heartbeat_task(self, task_id: str, worker_id: str, now: float, lease: float) -> bool:
        """Extend ``worker_id``'s lease to ``now + lease``; False when the task is not its own."""

    @abc.abstractmethod
    async def release_tasks(
        self, worker_id: str, task_ids: builtins.list[str] | None = None
    ) -> None:
        """Give back the tasks ``worker_id`` holds (those of ``task_ids``, else every one),
        ready at once: a worker stopping cleanly, or a poll it left before the answer."""

    # --- queues of executions ----------------------------------------------------------

    @abc.abstractmethod
    async def admit(
        self, engine_id: str, queue: str, now: float, concurrency: int, rate: int,
        period: float, most: int,
    ) -> builtins.list[str]:  # fmt: skip
        """Take for ``engine_id`` the queued executions of ``queue`` that may run now, and
        mark them running (admitted at ``now``): highest priority first, then oldest, no
        more than ``concurrency`` of the queue's admitted executions unfinished at once,
        no more than ``rate`` admitted within ``period`` seconds, at most ``most``. Two
        engines admitting for one queue take turns."""

    @abc.abstractmethod
    async def live_dedup(self, queue: str, dedup_id: str) -> str | None:
        """The unfinished execution of ``queue`` started with ``dedup_id``, if any."""

    @abc.abstractmethod
    async def get_task(self, task_id: str) -> TaskRow | None:
        """The task ``task_id`` as it stands now, done or not; ``None`` when there is none."""

    @abc.abstractmethod
    async def tasks_in_flight(self, execution_ids: builtins.list[str]) -> builtins.list[TaskRow]:
        """The unfinished (ready or leased) tasks of those executions, oldest first."""

    @abc.abstractmethod
    async def unfinished_tasks(self, limit: int) -> builtins.list[TaskRow]:
        """Up to ``limit`` unfinished (ready or leased) tasks of any execution, oldest first."""

    @abc.abstractmethod
    async def task_counts(self, now: float) -> dict[str, TaskCounts]:
        """Unfinished tasks by queue: ready, delayed, leased (queues with none are left out)."""

    async def listen(self, me: str, notice: Callable[[str, str], None]) -> None:  # noqa: B027
        """Call ``notice(kind, sender)`` when another process commits what this one may want
        at once: ``tasks`` (ready for workers), ``inbox`` (a request), ``ended`` (an
        execution ended). ``me`` names this process in its own commits, which it is not
        told about. A store that only one process writes (SQLite) has nothing to say.
        """

    async def lock(self) -> None:  # noqa: B027 - a hook with a do-nothing default
        """Become the only engine on this store, where the store needs that (SQLite)."""

    async def __aenter__(self) -> Store:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
