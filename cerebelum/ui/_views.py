"""What the web UI's pages show, as plain JSON-ready data read from an engine and its store.

Every value here is data for the browser to put in the page as text: nothing is
markup, and the page never parses any of it as HTML.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from cerebelum import events as ev
from cerebelum.engine import Blueprint, Engine, declared_queues, summarize_steps
from cerebelum.errors import ExecutionNotFoundError
from cerebelum.serde import decode_json
from cerebelum.store import ExecutionRecord, TaskRow

from ._graph import layout, node_states

__all__ = [
    "TERMINAL",
    "approvals",
    "detail",
    "execution_row",
    "page_of_executions",
    "workers",
]

TERMINAL = ("completed", "failed", "cancelled")
#: How many waiting executions the approvals inbox looks through.
INBOX_SCAN = 1000

_layouts: dict[str, dict[str, Any]] = {}  # by blueprint version: a version never changes


def execution_row(rec: ExecutionRecord) -> dict[str, Any]:
    ended = rec.status in TERMINAL
    return {
        "id": rec.id, "workflow": rec.workflow, "kind": rec.kind, "status": rec.status,
        "created_at": rec.created_at, "updated_at": rec.updated_at,
        "duration": rec.updated_at - rec.created_at if ended else None,
        "parent_id": rec.parent_id, "version": rec.version, "owner": rec.owner,
        "waiting_for": rec.waiting_for, "queue": rec.queue,
    }  # fmt: skip


def cursor(rec: ExecutionRecord) -> str:
    """The keyset of the page after ``rec``: ``created_at`` and ``id``, as text."""
    return f"{rec.created_at!r}:{rec.id}"


async def page_of_executions(
    engine: Engine, *, status: str | None, workflow: str | None, id_prefix: str | None,
    before: tuple[float, str] | None, limit: int,
) -> dict[str, Any]:  # fmt: skip
    """One page, newest first; ``next`` is the cursor of the page after it, if any."""
    records = await engine.store.list(
        status, workflow, limit + 1, id_prefix=id_prefix, before=before
    )
    more = len(records) > limit
    records = records[:limit]
    return {
        "executions": [execution_row(r) for r in records],
        "next": cursor(records[-1]) if more and records else None,
        "now": time.time(),
    }


def _plain(value: Any) -> Any:
    """Events and their raw JSON fields as plain JSON values."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _json_or_none(raw: bytes | None) -> Any:
    return decode_json(raw) if raw else None


async def detail(engine: Engine, execution_id: str) -> dict[str, Any]:
    """Everything the execution page shows.

    Raises:
        ExecutionNotFoundError: no execution has this id.
    """
    rec = await engine.store.get(execution_id)
    if rec is None:
        raise ExecutionNotFoundError(
            f"no execution has the id {execution_id!r}", execution_id=execution_id
        )
    history = await engine.store.history(execution_id)
    out: dict[str, Any] = {
        "execution": execution_row(rec),
        "inputs": _json_or_none(rec.inputs),
        "output": _json_or_none(rec.output),
        "error": rec.error,
        "history": _plain(history),
        "approvals": _waiting_approvals(history),
        "signals": sorted({e.name for e in history if isinstance(e, ev.SignalAwaited)}),
        "children": await _children(engine, history),
        "tasks": [_task(t, None) for t in await engine.store.tasks_in_flight([execution_id])],
        "graph": None,
        "timeline": None,
        "now": time.time(),
    }
    if rec.kind == "graph":
        out["graph"] = await _graph(engine, rec, history)
    else:
        out["timeline"] = code_timeline(history)
    return out


async def _graph(
    engine: Engine, rec: ExecutionRecord, history: list[ev.Event]
) -> dict[str, Any] | None:
    stored = await engine.store.blueprint(rec.version)
    if stored is None:
        return None
    if rec.version not in _layouts:
        bp = Blueprint.from_json(stored.blueprint)
        _layouts[rec.version] = {"bp": bp, "layout": layout(bp)}
    cached = _layouts[rec.version]
    return {**cached["layout"], "states": node_states(cached["bp"], summarize_steps(history))}


def _waiting_approvals(history: list[ev.Event]) -> list[dict[str, Any]]:
    """The approvals the execution waits for: name, node (or position), since, timeout."""
    waiting: dict[str, ev.ApprovalRequested] = {}
    for e in history:
        if isinstance(e, ev.ApprovalRequested):
            waiting[e.step] = e
        elif isinstance(e, ev.ApprovalResolved):
            waiting.pop(e.step, None)
    return [
        {"name": e.name, "step": e.step, "since": e.at, "timeout_at": e.timeout_at}
        for e in waiting.values()
    ]


async def _children(engine: Engine, history: list[ev.Event]) -> list[dict[str, Any]]:
    ids = [e.child_id for e in history if isinstance(e, ev.ChildStarted)]
    if not ids:
        return []
    found = {r.id: r for r in await engine.store.get_many(ids)}
    return [
        {"id": i, "workflow": found[i].workflow, "status": found[i].status}
        if i in found
        else {"id": i, "workflow": "", "status": "not started"}
        for i in ids
    ]


def code_timeline(history: list[ev.Event]) -> list[dict[str, Any]]:
    """A code workflow's activities, sleeps, approvals, signals and children, by position."""
    rows: dict[str, dict[str, Any]] = {}

    def row(key: str, kind: str, name: str, at: float) -> dict[str, Any]:
        return rows.setdefault(key, {"position": key, "kind": kind, "name": name,
                                     "state": "running", "start": at, "end": None,
                                     "attempts": 0, "child_id": None})  # fmt: skip

    def end(key: str, state: str, at: float) -> None:
        if key in rows:
            rows[key].update(state=state, end=at)

    for e in history:
        match e:
            case ev.ActivityScheduled(position=p, activity=name):
                row(str(p), "activity", name, e.at)
            case ev.ActivityStarted(position=p, attempt=attempt) if str(p) in rows:
                rows[str(p)].update(attempts=attempt, state="running")
            case ev.ActivityCompleted(position=p):
                end(str(p), "done", e.at)
            case ev.ActivityFailed(position=p, retryable=retryable):
                end(str(p), "retrying" if retryable else "failed", e.at)
            case ev.ActivityRetryScheduled(position=p) if str(p) in rows:
                rows[str(p)].update(state="retrying", end=None)
            case ev.TimerStarted(timer=timer, fire_at=fire_at) if timer.startswith("sleep:"):
                r = row(timer[6:], "sleep", "sleep", e.at)
                r.update(state="waiting", until=fire_at)
            case ev.TimerFired(timer=timer) if timer.startswith("sleep:"):
                end(timer[6:], "done", e.at)
            case ev.ApprovalRequested(step=p, name=name):
                row(p, "approval", name, e.at)["state"] = "waiting"
            case ev.ApprovalResolved(step=p, approved=ok, timed_out=late):
                end(p, "timed out" if late else "approved" if ok else "rejected", e.at)
            case ev.SignalAwaited(position=p, name=name):
                row(str(p), "signal", name, e.at)["state"] = "waiting"
            case ev.SignalDelivered(position=p, timed_out=late):
                end(str(p), "timed out" if late else "done", e.at)
            case ev.ChildStarted(position=p, workflow=name, child_id=child):
                row(str(p), "child", name, e.at)["child_id"] = child
            case ev.ChildEnded(position=p, status=status):
                end(str(p), "done" if status == "completed" else status, e.at)
    return list(rows.values())


async def approvals(engine: Engine) -> list[dict[str, Any]]:
    """Every approval that a waiting execution waits for, oldest first."""
    out = []
    for rec in await engine.store.list("waiting", None, INBOX_SCAN):
        for waiting in _waiting_approvals(await engine.store.history(rec.id)):
            out.append({"execution_id": rec.id, "workflow": rec.workflow, **waiting})
    return sorted(out, key=lambda a: a["since"])


def _task(row: TaskRow, hosts: list[str] | None) -> dict[str, Any]:
    return {
        "id": row.id, "execution_id": row.execution_id, "kind": row.kind, "name": row.name,
        "queue": row.queue, "attempt": row.attempt, "status": row.status,
        "worker": row.worker_id, "since": row.created_at, "claims": row.claims,
        "lease_until": row.lease_until if row.status == "leased" else None,
        "hosted_by": hosts,
    }  # fmt: skip


async def workers(engine: Engine, limit: int = 200) -> dict[str, Any]:
    """Connected workers, tasks in flight, and each queue's depth and limits."""
    now = time.time()
    connected = engine.workers() if engine.dispatch == "workers" else []
    rows = await engine.store.unfinished_tasks(limit)
    counts = await engine.store.task_counts(now)
    declared = declared_queues()
    queues = []
    for name in sorted(set(counts) | {q for w in connected for q in w.queues}):
        c = counts.get(name)
        queues.append({"name": name, "kind": "tasks", "ready": c.ready if c else 0,
                       "delayed": c.delayed if c else 0, "leased": c.leased if c else 0})  # fmt: skip
    executions = [
        {"name": q.name, "concurrency": q.concurrency, "limit": q.limit, "period": q.period}
        for q in sorted(declared.values(), key=lambda q: q.name)
    ]
    return {
        "dispatch": engine.dispatch,
        "engine": engine.id,
        "workers": [
            {
                "id": w.id,
                "queues": w.queues,
                "hosts": w.hosts,
                "concurrency": w.concurrency,
                "last_seen": w.seen,
            }
            for w in connected
        ],
        "tasks": [
            _task(r, [w.id for w in connected if w.takes(r)] if connected else None) for r in rows
        ],
        "queues": queues,
        "execution_queues": executions,
        "now": now,
    }
