"""The shared store: PostgreSQL, for several engine processes working on one set of executions.

Each engine heartbeats into ``engines``; an unfinished execution belongs to one engine
(``executions.owner``) and is claimed by another (``FOR UPDATE SKIP LOCKED``) only
when its owner's heartbeat is older than the lease. A group commit is one statement:
one round trip, atomic by itself. The primary key on ``(execution_id, seq)`` fences
two engines that both believe they own an execution: the second to append a given
event fails, and drops the execution.

URLs: ``postgresql://user:password@host:5432/database`` (any libpq-style URL asyncpg takes).
"""

from __future__ import annotations

import asyncio
import builtins  # list[...] in a class with a method list() would name the method
import contextlib
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from cerebelum.errors import OwnershipLostError, StoreError, StoreUnavailableError
from cerebelum.events import Event, decode_events, encode_event
from cerebelum.serde import decode_json, encode_json

from . import _sql
from ._base import (
    ExecutionRecord,
    InboxItem,
    Store,
    StoredBlueprint,
    TaskCounts,
    TaskRow,
    Write,
    claim_order,
    prefix_range,
)

__all__ = ["PostgresStore", "mask_url"]

logger = logging.getLogger(__name__)

Q = _sql.queries("postgres")
T = TypeVar("T")

#: Taken while migrating, so that engines starting together migrate once.
_MIGRATION_LOCK = 0x63657265  # "cere"


def mask_url(url: str) -> str:
    """``url`` with every password in it replaced by ``***``.

    Written for URLs that a URL parser misreads: a password holding an unescaped ``/``,
    ``#`` or ``@`` ends ``urlsplit``'s netloc early, so the user information is taken up
    to the *last* ``@`` (when the query holds an ``@`` this hides the host too, which is
    the safe side to err on). ``password=`` and ``sslpassword=`` in the query are masked
    up to the next ``&``, whatever they hold.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        userinfo, at, host = rest.rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.partition(":")[0]
            rest = f"{user}:***@{host}"
        url = scheme + sep + rest
    return _QUERY_PASSWORD.sub(r"\1***", url)


_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&]*", re.IGNORECASE)


def _secrets(url: str) -> set[str]:
    """The passwords in ``url``, as written and percent-decoded, to scrub from messages."""
    found = {m.group(0).partition("=")[2] for m in _QUERY_PASSWORD.finditer(url)}
    userinfo, at, _ = url.partition("://")[2].rpartition("@")
    if at and ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    return {s for secret in found for s in (secret, unquote(secret)) if s}


def _misread_userinfo(url: str) -> str | None:
    """Why a URL parser would misread the user information of ``url``, or ``None``.

    A password with an unescaped ``/``, ``?`` or ``#`` ends the netloc inside the
    password (``postgresql://u:pa/ss@h/d`` reads as host ``u``, port ``pa``), and one
    with an unescaped ``@`` splits at the wrong ``@``. asyncpg would then connect to a
    "host" made of the password and print it in its errors, so such a URL is refused.
    """
    netloc = urlsplit(url).netloc
    if "@" in netloc:
        if "@" in netloc.rpartition("@")[0]:
            return "the user or password holds an unescaped '@' (write it as %40)"
        return None
    after = url.partition("://")[2][len(netloc) :]
    port = netloc.rpartition(":")[2]
    if "@" in after and ":" in netloc and not port.isdigit() and not netloc.endswith("]"):
        return "the password holds an unescaped '/', '?' or '#' (write them as %2F, %3F, %23)"
    return None


def _record(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        kind=row["kind"],
        status=row["status"],
        inputs=row["inputs"],
        output=row["output"],
        error=decode_json(row["error"]) if row["error"] is not None else None,
        parent_id=row["parent_id"],
        owner=row["owner"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        waiting_for=row["waiting_for"],
        queue=row["queue"],
        priority=row["priority"],
        dedup_id=row["dedup_id"],
    )


def _error(error: dict[str, Any] | None) -> bytes | None:
    return encode_json(error) if error is not None else None


class PostgresStore(Store):
    """A store in a PostgreSQL database, shared by any number of engine processes."""

    exclusive = False

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 2,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = url.replace("postgres://", "postgresql://", 1)
        self.url = mask_url(self.dsn)
        self.min_connections = min_connections
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._pool: Any = None
        self._me = ""  # who this process is, in the NOTIFYs of its commits
        self._listening: asyncio.Task[None] | None = None

    # --- connecting --------------------------------------------------------------

    async def connect(self) -> None:
        if self._pool is not None:
            return
        import asyncpg

        misread = _misread_userinfo(self.dsn)
        if misread is not None:
            raise StoreError(f"{self.url} is not a valid PostgreSQL URL: {misread}", url=self.url)
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.min_connections,
                max_size=self.max_connections,
                timeout=self.connect_timeout,
                command_timeout=60,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise StoreUnavailableError(
                f"cannot connect to the PostgreSQL store {self.url}: {self._describe(exc)}",
                url=self.url,
            ) from exc
        except ValueError as exc:  # a malformed URL
            raise StoreError(
                f"{self.url} is not a valid PostgreSQL URL: {self._describe(exc)}", url=self.url
            ) from None
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def listen(self, me: str, notice: Callable[[str, str], None]) -> None:
        self._me = me
        if self._listening is None:
            self._listening = asyncio.create_task(self._listen(notice), name="cerebelum-listen")

    async def _listen(self, notice: Callable[[str, str], None]) -> None:
        """Hold a connection that LISTENs, and open another when it is lost."""
        import asyncpg

        def heard(conn: Any, pid: int, channel: str, payload: str) -> None:
            kind, _, sender = payload.partition(" ")
            if sender != self._me:
                notice(kind, sender)

        delay = 0.05
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                conn.add_termination_listener(functools.partial(_closed, lost))
                await conn.add_listener("cerebelum", heard)
                delay = 0.05
                notice("listening", "")  # what was said while nobody listened: look once
                await lost
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server is away: try again, with backoff
                logger.debug("cannot LISTEN on %s: %s", self.url, self._describe(exc))
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(BaseException):
                await self._listening
            self._listening = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, OSError):
                pool.terminate()

    def _describe(self, exc: BaseException) -> str:
        """``exc`` as text, without any password of this store's URL in it."""
        text = _describe(exc)
        for secret in sorted(_secrets(self.dsn), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError(f"the store {self.url} is not connected", url=self.url)
        async with self._guard(), self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def _guard(self, committing: bool = False) -> AsyncIterator[None]:
        r"""The driver's errors become :class:`StoreError`\ s; no asyncpg error reaches a caller.

        A lost connection, a server shutting down or starting up, a timeout: those are
        :class:`StoreUnavailableError` (the engine retries them). When ``committing``, the
        commit may have been recorded before its answer was lost: ``maybe_committed``.
        """
        import asyncpg

        try:
            yield
        except StoreError:
            raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(
                f"lost the PostgreSQL store {self.url}: {self._describe(exc)}",
                url=self.url,
                maybe_committed=committing,
            ) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            raise StoreError(
                f"the PostgreSQL store {self.url} refused a request: {self._describe(exc)}",
                url=self.url,
            ) from exc

    async def _run(self, call: Callable[[Any], Awaitable[T]]) -> T:
        async with self._conn() as conn:
            return await call(conn)

    async def _migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS cerebelum_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM cerebelum_migrations")}
            for version, name, sql in _sql.migrations("postgres"):
                if version in done:
                    continue
                logger.info("applying migration %04d_%s to %s", version, name, self.url)
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO cerebelum_migrations VALUES ($1, $2, $3)",
                    version,
                    name,
                    time.time(),
                )

    # --- writing -----------------------------------------------------------------

    async def commit(self, writes: list[Write]) -> set[str]:
        import asyncpg

        if self._pool is None:
            raise StoreError(f"the store {self.url} is not connected", url=self.url)
        parts: dict[str, list[list[Any]]] = {}

        def part(name: str, width: int) -> list[list[Any]]:
            return parts.setdefault(name, [[] for _ in range(width)])

        for w in writes:
            eid = w.execution_id
            if w.create is not None:
                c = w.create
                row: tuple[Any, ...] = (c.id, c.workflow, c.version, c.kind, w.status or c.status, c.inputs,
                       w.output if w.output is not None else c.output, _error(w.error),
                       c.parent_id, c.owner, c.created_at, c.queue, c.priority, c.dedup_id)  # fmt: skip
                for column, value in zip(part("created", 14), row, strict=True):
                    column.append(value)
            elif w.status is not None:
                row = (eid, w.status, w.output, _error(w.error), w.updated_at)
                for column, value in zip(part("status", 5), row, strict=True):
                    column.append(value)
            if w.events:
                ids, seqs, types, ats, datas = part("events", 5)
                for e in w.events:
                    ids.append(eid)
                    seqs.append(e.seq)
                    types.append(type(e).__name__)
                    ats.append(e.at)
                    datas.append(encode_event(e))
            if w.timers_cleared:
                ids, timers, _, _ = part("timers_cleared", 4)
                ids.extend([eid] * len(w.timers_cleared))
                timers.extend(w.timers_cleared)
            if w.timers_set:
                ids, timers, fire_ats = part("timers_set", 3)
                for timer, fire_at in w.timers_set:
                    ids.append(eid)
                    timers.append(timer)
                    fire_ats.append(fire_at)
            if w.inbox_done:
                part("inbox", 1)[0].extend(w.inbox_done)
            if w.tasks_enqueued:
                columns = part("tasks_enqueued", len(_TASK_COLUMNS))
                for task in w.tasks_enqueued:
                    for column, name in zip(columns, _TASK_COLUMNS, strict=True):
                        column.append(getattr(task, name))
            if w.tasks_done:
                ids, tasks = part("tasks_done", 2)
                ids.extend([eid] * len(w.tasks_done))
                tasks.extend(w.tasks_done)
        if not parts:
            return set()
        if "timers_cleared" in parts:  # those set again in this commit stay
            parts["timers_cleared"][2:] = parts.get("timers_set", [[], []])[:2]
        if "tasks_enqueued" in parts and "tasks_done" in parts:
            _done_at_once(parts["tasks_enqueued"], set(parts["tasks_done"][1]))
        notices = []  # what other engines should hear of at once (NOTIFY, sent on commit)
        if "tasks_enqueued" in parts:
            notices.append(f"tasks {self._me}")
        if any(w.status in _ENDED for w in writes):
            notices.append(f"ended {self._me}")
        sql = _commit_sql(tuple(name for name in _COMMIT_PARTS if name in parts), len(notices))
        args: list[Any] = [column for name in _COMMIT_PARTS for column in parts.get(name, ())]
        args += notices
        try:
            async with self._guard(committing=True), self._pool.acquire() as conn:
                rows = await conn.fetch(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise OwnershipLostError(
                f"another engine wrote to the same execution in {self.url} "
                f"({exc.detail or exc}); this engine's events were not recorded",
                url=self.url,
            ) from exc
        return {r[0] for r in rows}

    async def events_at(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
        ids = [k[0] for k in keys]
        seqs = [k[1] for k in keys]
        rows = await self._run(lambda c: c.fetch(Q["events_at"], ids, seqs))
        return {(r[0], r[1]): bytes(r[2]) for r in rows}

    # --- reading -------------------------------------------------------------------

    async def history(self, execution_id: str) -> list[Event]:
        rows = await self._run(lambda c: c.fetch(Q["history"], execution_id))
        return decode_events([r[0] for r in rows])

    async def get(self, execution_id: str) -> ExecutionRecord | None:
        row = await self._run(lambda c: c.fetchrow(Q["get_execution"], execution_id))
        return _record(row) if row else None

    async def get_many(self, ids: list[str]) -> list[ExecutionRecord]:
        rows = await self._run(lambda c: c.fetch(Q["get_many"], ids))
        return [_record(r) for r in rows]

    async def list(
        self, status: str | None = None, workflow: str | None = None, limit: int = 100, *,
        id_prefix: str | None = None, before: tuple[float, str] | None = None,
    ) -> list[ExecutionRecord]:  # fmt: skip
        # Only the filters given are in the text: a plan made for "no status" would not
        # use the status index when one is given. Ids are compared in code point order
        # (COLLATE "C"), which is what a prefix range means in any database collation.
        where: list[str] = []
        args: list[Any] = []

        def arg(value: Any, cast: str = "text") -> str:
            args.append(value)
            return f"${len(args)}::{cast}"

        if status is not None:
            where.append(f"status = {arg(status)}")
        if workflow is not None:
            where.append(f"workflow = {arg(workflow)}")
        if id_prefix:
            low, high = prefix_range(id_prefix)
            where.append(f'id COLLATE "C" >= {arg(low)}')
            if high is not None:
                where.append(f'id COLLATE "C" < {arg(high)}')
        if before is not None:
            where.append(f"(created_at, id) < ({arg(before[0], 'float8')}, {arg(before[1])})")
        sql = "SELECT * FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit, 'int')}"
        rows = await self._run(lambda c: c.fetch(sql, *args))
        return [_record(r) for r in rows]

    # --- ownership and the inbox ------------------------------------------------------

    async def claim(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[ExecutionRecord]:
        keys = _keys(runnable)
        rows = await self._run(lambda c: c.fetch(Q["claim"], engine_id, now, lease, limit, keys))
        return sorted((_record(r) for r in rows), key=lambda r: r.created_at)

    async def claim_one(
        self, engine_id: str, execution_id: str, now: float, lease: float, runnable: dict[str, str]
    ) -> ExecutionRecord | None:
        keys = _keys(runnable)
        row = await self._run(
            lambda c: c.fetchrow(Q["claim_one"], engine_id, now, lease, execution_id, keys)
        )
        return _record(row) if row else None

    async def due_timers(
        self, engine_id: str, now: float, lease: float, until: float, limit: int,
        runnable: dict[str, str],
    ) -> builtins.list[tuple[str, str, float]]:  # fmt: skip
        keys = _keys(runnable)
        rows = await self._run(
            lambda c: c.fetch(Q["due_timers"], engine_id, now, lease, until, limit, keys)
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def heartbeat(self, engine_id: str, now: float, info: str) -> None:
        await self._run(lambda c: c.execute(Q["heartbeat"], engine_id, info, now))

    # --- tasks ---------------------------------------------------------------------------

    async def claim_tasks(
        self, worker_id: str, queues: builtins.list[str],
        names_by_kind: dict[str, builtins.list[str]], now: float, lease: float, limit: int,
    ) -> builtins.list[TaskRow]:  # fmt: skip
        hosted = [f"{kind}:{name}" for kind, names in names_by_kind.items() for name in names]
        if not queues or not hosted or limit <= 0:
            return []
        names = sorted({name for names in names_by_kind.values() for name in names})
        rows = await self._run(lambda c: c.fetch(Q["claim_tasks"], worker_id, queues, now, lease,
                                                 hosted, names, limit))  # fmt: skip
        return claim_order(_task(r) for r in rows)

    async def heartbeat_task(self, task_id: str, worker_id: str, now: float, lease: float) -> bool:
        done = await self._run(
            lambda c: c.execute(Q["heartbeat_task"], task_id, worker_id, now, lease)
        )
        return bool(done == "UPDATE 1")

    async def release_tasks(
        self, worker_id: str, task_ids: builtins.list[str] | None = None
    ) -> None:
        if task_ids is None:
            await self._run(lambda c: c.execute(Q["release_tasks"], worker_id))
        else:
            await self._run(lambda c: c.execute(Q["release_these"], worker_id, task_ids))

    async def admit(
        self, engine_id: str, queue: str, now: float, concurrency: int, rate: int,
        period: float, most: int,
    ) -> builtins.list[str]:  # fmt: skip
        rows = await self._run(lambda c: c.fetch(Q["admit"], engine_id, queue, now, concurrency,
                                                 rate, period, most))  # fmt: skip
        return [r[0] for r in rows]

    async def live_dedup(self, queue: str, dedup_id: str) -> str | None:
        row = await self._run(lambda c: c.fetchrow(Q["live_dedup"], queue, dedup_id))
        return str(row[0]) if row is not None else None

    async def get_task(self, task_id: str) -> TaskRow | None:
        row = await self._run(lambda c: c.fetchrow(Q["get_task"], task_id))
        return _task(row) if row is not None else None

    async def tasks_in_flight(self, execution_ids: builtins.list[str]) -> builtins.list[TaskRow]:
        rows = await self._run(lambda c: c.fetch(Q["tasks_in_flight"], execution_ids))
        return [_task(r) for r in rows]

    async def unfinished_tasks(self, limit: int) -> builtins.list[TaskRow]:
        rows = await self._run(lambda c: c.fetch(Q["unfinished_tasks"], limit))
        return [_task(r) for r in rows]

    async def task_counts(self, now: float) -> dict[str, TaskCounts]:
        rows = await self._run(lambda c: c.fetch(Q["task_counts"], now))
        return {r[0]: TaskCounts(r[1], r[2], r[3]) for r in rows}

    # --- versions ------------------------------------------------------------------------

    async def save_blueprint(
        self, version: str, workflow: str, label: str, blueprint: bytes, now: float
    ) -> None:
        await self._run(
            lambda c: c.execute(Q["save_blueprint"], version, workflow, label, blueprint, now)
        )

    async def blueprint(self, version: str) -> StoredBlueprint | None:
        row = await self._run(lambda c: c.fetchrow(Q["get_blueprint"], version))
        return StoredBlueprint(*row.values()) if row else None

    async def stranded(
        self, engine_id: str, now: float, lease: float, limit: int,
        runnable: dict[str, str], everything: bool,
    ) -> builtins.list[ExecutionRecord]:  # fmt: skip
        names = list(runnable)
        keys = [f"{name}@{version}" for name, version in runnable.items()]
        rows = await self._run(lambda c: c.fetch(Q["stranded"], names, keys, everything,
                                                 engine_id, now, lease, limit))  # fmt: skip
        return [_record(r) for r in rows]

    async def set_waiting(
        self, execution_id: str, waiting_for: str | None, owner: str | None
    ) -> None:
        await self._run(lambda c: c.execute(Q["set_waiting"], waiting_for, owner, execution_id))

    async def move(
        self, execution_id: str, from_version: str, to_version: str, event: Event,
        owner: str | None, now: float, lease: float,
    ) -> bool:  # fmt: skip
        import asyncpg

        async def move(conn: Any) -> bool:
            async with conn.transaction():
                done = await conn.execute(
                    Q["move"], execution_id, from_version, to_version, owner, now, lease
                )
                if done != "UPDATE 1":
                    return False
                await conn.execute(Q["insert_event"], execution_id, event.seq,
                                   type(event).__name__, event.at, encode_event(event))  # fmt: skip
                return True

        try:
            return await self._run(move)
        except asyncpg.UniqueViolationError:  # someone appended that seq meanwhile
            return False

    async def engine_alive(self, engine_id: str, now: float, lease: float) -> bool:
        row = await self._run(lambda c: c.fetchrow(Q["engine_alive"], engine_id, now - lease))
        return row is not None

    async def engines(self) -> builtins.list[tuple[str, str, float]]:
        rows = await self._run(lambda c: c.fetch(Q["engines"]))
        return [(r[0], r[1], r[2]) for r in rows]

    async def release(self, engine_id: str) -> None:
        async def release(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute(Q["release_executions"], engine_id)
                await conn.execute(Q["delete_engine"], engine_id)

        await self._run(release)

    async def send(
        self, execution_id: str, kind: str, name: str, payload: bytes, now: float
    ) -> None:
        await self._run(
            lambda c: c.execute(Q["send"], execution_id, kind, name, payload, now, self._me)
        )

    async def receive(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[InboxItem]:
        keys = _keys(runnable)
        rows = await self._run(lambda c: c.fetch(Q["receive"], engine_id, now, lease, limit, keys))
        return [_item(r) for r in rows]

    async def drop_stale(self, limit: int) -> builtins.list[InboxItem]:
        rows = await self._run(lambda c: c.fetch(Q["drop_stale"], limit))
        return [_item(r) for r in rows]


#: The tasks table's columns, in the order of ``commit_tasks_enqueued``.
_TASK_COLUMNS = ("id", "execution_id", "kind", "name", "queue", "attempt", "idempotency_key",
                 "inputs", "timeout", "heartbeat_timeout", "status", "worker_id", "lease_until",
                 "claims", "created_at", "available_at", "priority")  # fmt: skip
_STATUS = _TASK_COLUMNS.index("status")
_LEASE_UNTIL = _TASK_COLUMNS.index("lease_until")


def _done_at_once(enqueued: list[list[Any]], done: set[str]) -> None:
    """Mark done the enqueued tasks this same commit completes (one statement's parts do
    not see each other's rows, so the update of ``commit_tasks_done`` would miss them)."""
    for i, task_id in enumerate(enqueued[0]):
        if task_id in done:
            enqueued[_STATUS][i] = "done"
            enqueued[_LEASE_UNTIL][i] = None


def _task(row: Any) -> TaskRow:
    return TaskRow(**{name: row[name] for name in _TASK_COLUMNS})


def _keys(runnable: dict[str, str]) -> list[str]:
    return [f"{name}@{version}" for name, version in runnable.items()]


def _item(r: Any) -> InboxItem:
    return InboxItem(
        r["id"], r["execution_id"], r["kind"], r["name"], bytes(r["payload"]), r["created_at"]
    )


_COMMIT_PARTS = ("created", "events", "status", "timers_cleared", "timers_set", "inbox",
                 "tasks_enqueued", "tasks_done")  # fmt: skip


_ENDED = frozenset({"completed", "failed", "cancelled"})


def _closed(lost: asyncio.Future[None], conn: Any) -> None:
    """A LISTEN connection was lost: its holder opens another."""
    if not lost.done():
        lost.set_result(None)


@functools.cache
def _commit_sql(names: tuple[str, ...], notices: int = 0) -> str:
    """One statement made of the commit parts ``names``, their parameters numbered in turn,
    then ``notices`` NOTIFYs whose payloads are the last parameters."""
    refused = "AND x.execution_id NOT IN (SELECT id FROM refused)" if "created" in names else ""
    ctes, offset = [], 0
    for name in names:
        sql = Q[f"commit_{name}"].replace("{refused}", refused)
        numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
        ctes.append(_renumber(sql, offset))
        offset += max(numbers)
    last = "SELECT id FROM refused" if "created" in names else "SELECT NULL::text WHERE false"
    if notices:  # MATERIALIZED and read below: evaluated, though it returns no row
        calls = ", ".join(f"pg_notify('cerebelum', ${offset + i + 1})" for i in range(notices))
        ctes.append(f"notified AS MATERIALIZED (SELECT 1 AS one, {calls})")
        last += "\nUNION ALL SELECT NULL::text FROM notified WHERE one = 0"
    return "WITH " + ",\n".join(ctes) + "\n" + last


def _renumber(sql: str, offset: int) -> str:
    """``sql`` with each parameter ``$n`` numbered ``$(n + offset)``."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + offset}", sql)


def _unavailable() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (
        TimeoutError,
        OSError,
        ConnectionError,
        asyncpg.PostgresConnectionError,  # the 08 class: connection lost, refused, ...
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,  # a connection closed under the driver
        asyncpg.InternalClientError,  # seen when a backend is terminated mid-request
        asyncpg.CannotConnectNowError,  # the server is starting or shutting down
        asyncpg.TooManyConnectionsError,
        asyncpg.AdminShutdownError,  # pg_terminate_backend, a fast or immediate shutdown
        asyncpg.CrashShutdownError,
        asyncpg.exceptions.ConnectionFailureError,
    )


_UNAVAILABLE = _unavailable()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
