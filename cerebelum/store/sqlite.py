"""The embedded store: one SQLite file in WAL mode, nothing to set up.

SQLite calls run on the event loop's thread. In WAL mode with ``synchronous=NORMAL`` a
commit writes to the WAL without an fsync and takes tens of microseconds, far less
than handing each call to a thread would cost. ``synchronous=NORMAL`` keeps every
committed transaction through a process crash (``kill -9``); a power cut may lose the
last few. ``sqlite:///path.db?synchronous=full`` makes every commit reach the disk.

One engine process at a time owns a SQLite store: it takes an exclusive ``flock`` on
``<file>.lock``, so a second engine fails at once with the pid of the first, and the
kernel releases the lock when the process dies however it dies. Other processes (the
CLI) may read, and may write requests to the inbox, at the same time.
"""

from __future__ import annotations

import builtins  # list[...] in a class with a method list() would name the method
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cerebelum.errors import StoreError, StoreFullError, StoreLockedError, StoreUnavailableError
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

__all__ = ["SQLiteStore"]

logger = logging.getLogger(__name__)

Q = _sql.queries("sqlite")


def _record(row: sqlite3.Row) -> ExecutionRecord:
    return ExecutionRecord(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        kind=row["kind"],
        status=row["status"],
        inputs=row["inputs"],
        output=row["output"],
        error=decode_json(row["error"]) if row["error"] else None,
        parent_id=row["parent_id"],
        owner=row["owner"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        waiting_for=row["waiting_for"],
        queue=row["queue"],
        priority=row["priority"],
        dedup_id=row["dedup_id"],
    )


def _task(row: sqlite3.Row) -> TaskRow:
    return TaskRow(**{name: row[name] for name in _TASK_COLUMNS})


_TASK_COLUMNS = tuple(TaskRow.__dataclass_fields__)


class SQLiteStore(Store):
    """A store in one SQLite file (or in memory, for ``sqlite://:memory:``)."""

    exclusive = True

    def __init__(self, url: str = "cerebelum.db", *, busy_timeout: float = 5.0) -> None:
        self.path, options = _parse(url)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = options.get("synchronous", "normal").upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"{url}: synchronous must be off, normal, full or extra")
        self.busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the store {self.url} is not connected")
        return self._db

    async def connect(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                raise StoreUnavailableError(
                    f"cannot open the SQLite store {self.url}: the folder {folder} does not exist",
                    url=self.url,
                )
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._db = db
            self._migrate()
        except sqlite3.OperationalError as exc:
            self._close_quietly(db)
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreLockedError(
                    f"the SQLite store {self.url} stayed locked for {self.busy_timeout:g}s: {exc}",
                    url=self.url,
                ) from exc
            raise StoreUnavailableError(
                f"cannot open the SQLite store {self.url}: {exc}", url=self.url
            ) from exc
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self._close_quietly(db)
            raise StoreError(
                f"cannot open the SQLite store {self.url}: the file {os.path.abspath(self.path)}"
                f" is not a usable SQLite database ({exc})",
                url=self.url,
            ) from None

    def _close_quietly(self, db: sqlite3.Connection | None) -> None:
        self._db = None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _migrate(self) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS cerebelum_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {r[0] for r in db.execute("SELECT version FROM cerebelum_migrations")}
            for version, name, sql in _sql.migrations("sqlite"):
                if version in done:
                    continue
                logger.info("applying migration %04d_%s to %s", version, name, self.url)
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO cerebelum_migrations VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def lock(self) -> None:
        if self.path == ":memory:" or self._lock_fd is not None:
            return
        lock_path = self.path + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreLockedError(
                f"the SQLite store {self.url} is in use by another engine process (pid {holder}); "
                "one engine at a time runs on a SQLite file: stop that one, or use PostgreSQL "
                "to run several",
                url=self.url,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- writing -----------------------------------------------------------------

    async def commit(self, writes: list[Write]) -> set[str]:
        db = self.db
        conflicts: set[str] = set()
        events: list[tuple[Any, ...]] = []
        tasks: list[dict[str, Any]] = []
        done: list[tuple[str]] = []
        with self._transaction():
            for w in writes:
                if w.create is not None:
                    c = w.create
                    error = encode_json(w.error) if w.error is not None else None
                    output = w.output if w.output is not None else c.output
                    cur = db.execute(
                        Q["insert_execution"],
                        (c.id, c.workflow, c.version, c.kind, w.status or c.status, c.inputs,
                         output, error, c.parent_id, c.owner, c.created_at, c.updated_at,
                         c.queue, c.priority, c.dedup_id),
                    )  # fmt: skip
                    if cur.rowcount == 0:
                        conflicts.add(w.execution_id)
                        continue
                eid = w.execution_id
                for e in w.events:
                    events.append((eid, e.seq, type(e).__name__, e.at, encode_event(e)))
                if w.status is not None and w.create is None:
                    error = encode_json(w.error) if w.error is not None else None
                    db.execute(Q["update_status"], (w.status, w.output, error, w.updated_at, eid))
                for timer in w.timers_cleared:
                    if timer == "*":
                        db.execute(Q["clear_timers"], (eid,))
                    else:
                        db.execute(Q["clear_timer"], (eid, timer))
                for timer, fire_at in w.timers_set:
                    db.execute(Q["set_timer"], (eid, timer, fire_at))
                for item in w.inbox_done:
                    db.execute(Q["delete_inbox"], (item,))
                if w.tasks_enqueued:
                    tasks.extend(vars(t) for t in w.tasks_enqueued)
                if w.tasks_done:
                    done.extend((task,) for task in w.tasks_done)
            db.executemany(Q["insert_event"], events)
            if tasks:  # all enqueued before any is done: a task may be both in one commit
                db.executemany(Q["insert_task"], tasks)
            if done:
                db.executemany(Q["task_done"], done)
        return conflicts

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        """The store error for ``exc``; a failed write here never half-happened."""
        code = getattr(exc, "sqlite_errorcode", None)
        base = (code or 0) & 0xFF
        if base == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return StoreFullError(
                f"the disk is full: {doing} the SQLite store {self.url} "
                f"(in {os.path.dirname(os.path.abspath(self.path))}): {exc}",
                url=self.url,
            )
        if base in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreLockedError(f"{doing} the SQLite store {self.url}: {exc}", url=self.url)
        if base in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            return StoreUnavailableError(
                f"{doing} the SQLite store {self.url}: {exc}", url=self.url
            )
        return StoreError(f"{doing} the SQLite store {self.url}: {exc}", url=self.url)

    async def events_at(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
        rows = self._read(Q["events_at"], {"keys": encode_json(keys)})
        return {(r[0], r[1]): bytes(r[2]) for r in rows}

    # --- reading ---------------------------------------------------------------------

    def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot read") from exc

    async def history(self, execution_id: str) -> list[Event]:
        rows = self._read(Q["history"], (execution_id,))
        return decode_events([r[0] for r in rows])

    async def get(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read(Q["get_execution"], (execution_id,))
        return _record(rows[0]) if rows else None

    async def get_many(self, ids: list[str]) -> list[ExecutionRecord]:
        rows = self._read(
            "SELECT * FROM executions WHERE id IN (SELECT value FROM json_each(?))",
            (encode_json(ids),),
        )
        return [_record(r) for r in rows]

    async def list(
        self, status: str | None = None, workflow: str | None = None, limit: int = 100, *,
        id_prefix: str | None = None, before: tuple[float, str] | None = None,
    ) -> list[ExecutionRecord]:  # fmt: skip
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if workflow is not None:
            where.append("workflow = ?")
            args.append(workflow)
        if id_prefix:
            low, high = prefix_range(id_prefix)
            where.append("id >= ?" if high is None else "id >= ? AND id < ?")
            args += [low] if high is None else [low, high]
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            args += [before[0], before[1]]
        sql = "SELECT * FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        return [_record(r) for r in self._read(sql, (*args, limit))]

    # --- ownership and the inbox --------------------------------------------------------

    def _owned(
        self, engine_id: str, now: float, lease: float, runnable: dict[str, str]
    ) -> dict[str, Any]:
        """The parameters of the queries that pick what an engine owns or may claim."""
        keys = encode_json([f"{name}@{version}" for name, version in runnable.items()])
        return {"engine": engine_id, "now": now, "lease": lease, "runnable": keys,
                "exclusive": self._exclusive}  # fmt: skip

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error, a rollback and a :class:`StoreError`.

        SQLite rolls back by itself on some errors (a full disk): only what is still open
        is rolled back, so that the cause is what the caller sees. A failed write here
        never half-happened.
        """
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "cannot write to") from exc
            raise

    def _write(
        self, sql: str, params: dict[str, Any] | tuple[Any, ...]
    ) -> builtins.list[sqlite3.Row]:
        with self._transaction() as db:
            return db.execute(sql, params).fetchall()

    async def claim(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[ExecutionRecord]:
        params = {**self._owned(engine_id, now, lease, runnable), "limit": limit}
        rows = self._write(Q["claim"], params)
        return sorted((_record(r) for r in rows), key=lambda r: r.created_at)

    async def claim_one(
        self, engine_id: str, execution_id: str, now: float, lease: float, runnable: dict[str, str]
    ) -> ExecutionRecord | None:
        params = {**self._owned(engine_id, now, lease, runnable), "id": execution_id}
        rows = self._write(Q["claim_one"], params)
        return _record(rows[0]) if rows else None

    async def due_timers(
        self, engine_id: str, now: float, lease: float, until: float, limit: int,
        runnable: dict[str, str],
    ) -> builtins.list[tuple[str, str, float]]:  # fmt: skip
        params = {**self._owned(engine_id, now, lease, runnable), "until": until, "limit": limit}
        return [(r[0], r[1], r[2]) for r in self._read(Q["due_timers"], params)]

    async def heartbeat(self, engine_id: str, now: float, info: str) -> None:
        self._write(Q["heartbeat"], {"engine": engine_id, "info": info, "now": now})

    # --- tasks ---------------------------------------------------------------------------

    async def claim_tasks(
        self, worker_id: str, queues: builtins.list[str],
        names_by_kind: dict[str, builtins.list[str]], now: float, lease: float, limit: int,
    ) -> builtins.list[TaskRow]:  # fmt: skip
        hosted = [f"{kind}:{name}" for kind, names in names_by_kind.items() for name in names]
        if not queues or not hosted or limit <= 0:
            return []
        names = sorted({name for names in names_by_kind.values() for name in names})
        params = {"worker": worker_id, "now": now, "lease": lease, "limit": limit,
                  "queues": encode_json(queues), "names": encode_json(names),
                  "hosted": encode_json(hosted)}  # fmt: skip
        return claim_order(_task(r) for r in self._write(Q["claim_tasks"], params))

    async def heartbeat_task(self, task_id: str, worker_id: str, now: float, lease: float) -> bool:
        params = {"id": task_id, "worker": worker_id, "now": now, "lease": lease}
        db = self.db
        try:
            return db.execute(Q["heartbeat_task"], params).rowcount == 1
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot write to") from exc

    async def release_tasks(
        self, worker_id: str, task_ids: builtins.list[str] | None = None
    ) -> None:
        if task_ids is None:
            self._write(Q["release_tasks"], {"worker": worker_id})
        else:
            self._write(Q["release_these"], {"worker": worker_id, "ids": encode_json(task_ids)})

    async def admit(
        self, engine_id: str, queue: str, now: float, concurrency: int, rate: int,
        period: float, most: int,
    ) -> builtins.list[str]:  # fmt: skip
        params = {"engine": engine_id, "queue": queue, "now": now, "concurrency": concurrency,
                  "rate": rate, "period": period, "most": most}  # fmt: skip
        return [r[0] for r in self._write(Q["admit"], params)]

    async def live_dedup(self, queue: str, dedup_id: str) -> str | None:
        rows = self._read(Q["live_dedup"], (queue, dedup_id))
        return str(rows[0][0]) if rows else None

    async def get_task(self, task_id: str) -> TaskRow | None:
        rows = self._read(Q["get_task"], (task_id,))
        return _task(rows[0]) if rows else None

    async def tasks_in_flight(self, execution_ids: builtins.list[str]) -> builtins.list[TaskRow]:
        rows = self._read(Q["tasks_in_flight"], {"ids": encode_json(execution_ids)})
        return [_task(r) for r in rows]

    async def unfinished_tasks(self, limit: int) -> builtins.list[TaskRow]:
        return [_task(r) for r in self._read(Q["unfinished_tasks"], {"limit": limit})]

    async def task_counts(self, now: float) -> dict[str, TaskCounts]:
        rows = self._read(Q["task_counts"], {"now": now})
        return {r[0]: TaskCounts(r[1], r[2], r[3]) for r in rows}

    @property
    def _exclusive(self) -> int:
        """1 in the engine process that holds the file: whoever owned a row before is gone."""
        return 1 if self._lock_fd is not None or self.path == ":memory:" else 0

    # --- versions ------------------------------------------------------------------------

    async def save_blueprint(
        self, version: str, workflow: str, label: str, blueprint: bytes, now: float
    ) -> None:
        self._write(Q["save_blueprint"], (version, workflow, label, blueprint, now))

    async def blueprint(self, version: str) -> StoredBlueprint | None:
        rows = self._read(Q["get_blueprint"], (version,))
        return StoredBlueprint(*tuple(rows[0])) if rows else None

    async def stranded(
        self, engine_id: str, now: float, lease: float, limit: int,
        runnable: dict[str, str], everything: bool,
    ) -> builtins.list[ExecutionRecord]:  # fmt: skip
        params = {"engine": engine_id, "now": now, "lease": lease, "limit": limit,
                  "runnable": encode_json(runnable), "all": 1 if everything else 0,
                  "exclusive": self._exclusive}  # fmt: skip
        return [_record(r) for r in self._read(Q["stranded"], params)]

    async def set_waiting(
        self, execution_id: str, waiting_for: str | None, owner: str | None
    ) -> None:
        self._write(Q["set_waiting"], (waiting_for, owner, execution_id))

    async def move(
        self, execution_id: str, from_version: str, to_version: str, event: Event,
        owner: str | None, now: float, lease: float,
    ) -> bool:  # fmt: skip
        params = {"id": execution_id, "from_version": from_version, "to_version": to_version,
                  "owner": owner, "at": now, "now": now, "lease": lease,
                  "exclusive": self._exclusive}  # fmt: skip
        try:
            with self._transaction() as db:
                if db.execute(Q["move"], params).rowcount != 1:
                    raise _Unchanged
                db.execute(Q["insert_event"], (execution_id, event.seq, type(event).__name__,
                                               event.at, encode_event(event)))  # fmt: skip
        except _Unchanged:
            return False
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):  # that seq was appended meanwhile
                return False
            raise
        return True

    async def engine_alive(self, engine_id: str, now: float, lease: float) -> bool:
        return bool(self._read(Q["engine_alive"], (engine_id, now - lease)))

    async def engines(self) -> builtins.list[tuple[str, str, float]]:
        return [(r[0], r[1], r[2]) for r in self._read(Q["engines"])]

    async def release(self, engine_id: str) -> None:
        self._write(Q["release_executions"], {"engine": engine_id})
        self._write(Q["delete_engine"], {"engine": engine_id})

    async def send(
        self, execution_id: str, kind: str, name: str, payload: bytes, now: float
    ) -> None:
        self._write(Q["send"], {"id": execution_id, "kind": kind, "name": name,
                                "payload": payload, "now": now})  # fmt: skip

    async def receive(
        self, engine_id: str, now: float, lease: float, limit: int, runnable: dict[str, str]
    ) -> builtins.list[InboxItem]:
        params = {**self._owned(engine_id, now, lease, runnable), "limit": limit}
        return [_item(r) for r in self._read(Q["receive"], params)]

    async def drop_stale(self, limit: int) -> builtins.list[InboxItem]:
        return [_item(r) for r in self._write(Q["drop_stale"], {"limit": limit})]


def _item(r: sqlite3.Row) -> InboxItem:
    return InboxItem(
        r["id"], r["execution_id"], r["kind"], r["name"], r["payload"], r["created_at"]
    )


class _Unchanged(Exception):
    """Nothing to write after all: roll back."""


def _parse(url: str) -> tuple[str, dict[str, str]]:
    """``cerebelum.db``, ``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite://:memory:``."""
    if url in ("memory://", "sqlite://:memory:", ":memory:", "sqlite:///:memory:"):
        return ":memory:", {}
    if not url.startswith("sqlite:"):
        return url, {}
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        path = parts.netloc + ("/" + path if path else "")
    options = {k: v[-1].lower() for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise StoreError(
            f"{url}: the SQLite store has no option {', '.join(map(repr, unknown))};"
            " it takes synchronous=off|normal|full|extra",
            url=url,
        )
    return path or "cerebelum.db", options


#: The query options of a ``sqlite:///`` URL.
_OPTIONS = frozenset({"synchronous"})


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
