"""What the engine tells its callers: results, execution summaries, step timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cerebelum import events as ev
from cerebelum.declared import read_output
from cerebelum.serde import decode_json
from cerebelum.store import ExecutionRecord, TaskRow

__all__ = [
    "ExecutionError",
    "ExecutionInfo",
    "ExecutionResult",
    "StepInfo",
    "TaskInfo",
    "summarize_steps",
]


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution failed.

    Attributes:
        kind: ``exception``, ``error`` (a returned Error), ``timeout``, ``unserialisable``,
            ``failed_by_rule``, ``retries_exhausted``, ``max_iterations``, ``cancelled``...
        step: the step it failed at, if any.
        message: what went wrong.
        traceback: the step's traceback, for exceptions.
        data: everything the history recorded about it.
    """

    kind: str
    step: str | None
    message: str
    traceback: str | None
    data: dict[str, Any]

    @classmethod
    def from_dict(cls, error: dict[str, Any] | None) -> ExecutionError | None:
        if error is None:
            return None
        return cls(
            kind=error.get("kind", "unknown"),
            step=error.get("step"),
            message=error.get("message", ""),
            traceback=error.get("traceback"),
            data=error,
        )

    def __str__(self) -> str:
        where = f" at step {self.step!r}" if self.step else ""
        return f"{self.kind}{where}: {self.message}"


@dataclass(frozen=True)
class ExecutionResult:
    """How an execution ended: ``status`` is completed, failed or cancelled."""

    id: str
    workflow: str
    status: str
    output: Any
    error: ExecutionError | None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @classmethod
    def from_record(cls, rec: ExecutionRecord) -> ExecutionResult:
        return cls(
            id=rec.id,
            workflow=rec.workflow,
            status=rec.status,
            output=read_output(rec.workflow, rec.output) if rec.output else None,
            error=ExecutionError.from_dict(rec.error),
        )


@dataclass(frozen=True)
class TaskInfo:
    """A task of an execution that no worker has finished: what it waits for, or who runs it.

    Attributes:
        id: the task's id.
        kind: ``step``, ``activity`` or ``workflow`` (a code workflow's activation).
        name: the name workers host it by.
        queue: the queue it is on.
        attempt: which attempt it is.
        status: ``ready`` (waiting for a worker to take it) or ``leased`` (a worker runs it).
        worker: the worker that holds it (or last held it).
        since: when it was enqueued.
        lease_until: when the worker's lease runs out, unless it heartbeats.
        claims: how many times a worker took it (more than one: a lease ran out).
        hosted_by: the connected workers that would take it; ``None`` when not known
            (read from the store, not from the server the workers talk to).
    """

    id: str
    kind: str
    name: str
    queue: str
    attempt: int
    status: str
    worker: str | None
    since: datetime
    lease_until: datetime | None = None
    claims: int = 0
    hosted_by: list[str] | None = None

    @classmethod
    def from_row(cls, row: TaskRow, hosted_by: list[str] | None = None) -> TaskInfo:
        lease = row.lease_until if row.status == "leased" else None
        return cls(
            id=row.id, kind=row.kind, name=row.name, queue=row.queue, attempt=row.attempt,
            status=row.status, worker=row.worker_id, since=datetime.fromtimestamp(row.created_at, UTC),
            lease_until=datetime.fromtimestamp(lease, UTC) if lease is not None else None,
            claims=row.claims, hosted_by=hosted_by,
        )  # fmt: skip

    def describe(self) -> str:
        """What it does, for people: ``waiting for a worker ... (none connected hosts it)``."""
        where = f"{self.kind} {self.name!r} on queue {self.queue!r}, attempt {self.attempt}"
        if self.status == "leased":
            return f"{where}: running on worker {self.worker}"
        if self.hosted_by is None:
            hosts = ""
        elif self.hosted_by:
            hosts = f" (hosted by {', '.join(self.hosted_by)})"
        else:
            hosts = " (no connected worker hosts it on that queue)"
        return f"{where}: waiting for a worker{hosts}"


@dataclass(frozen=True)
class StepInfo:
    """One node of an execution, as its history tells it."""

    name: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class ExecutionInfo:
    """An execution's row: what ``engine.status`` and ``engine.list`` give."""

    id: str
    workflow: str
    version: str
    kind: str
    status: str
    created_at: datetime
    updated_at: datetime
    output: Any = None
    error: ExecutionError | None = None
    owner: str | None = None
    steps: list[StepInfo] = field(default_factory=list)
    #: What it waits for when no engine here runs its version ("version 1@3f2a..."), else None.
    waiting_for: str | None = None

    @classmethod
    def from_record(
        cls, rec: ExecutionRecord, steps: list[StepInfo] | None = None
    ) -> ExecutionInfo:
        return cls(
            id=rec.id,
            workflow=rec.workflow,
            version=rec.version,
            kind=rec.kind,
            status=rec.status,
            created_at=datetime.fromtimestamp(rec.created_at, UTC),
            updated_at=datetime.fromtimestamp(rec.updated_at, UTC),
            output=decode_json(rec.output) if rec.output else None,
            error=ExecutionError.from_dict(rec.error),
            owner=rec.owner,
            steps=steps or [],
            waiting_for=rec.waiting_for,
        )


def summarize_steps(history: list[ev.Event]) -> list[StepInfo]:
    """Each node's latest status, attempts and timings, in the order they first appeared."""
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str) -> dict[str, Any]:
        return rows.setdefault(
            name, {"status": "pending", "attempts": 0, "start": None, "end": None}
        )

    for e in history:
        match e:
            case ev.StepScheduled(step=name):
                r = row(name)
                r.update(status="scheduled", end=None)
                r["start"] = r["start"] or e.at
            case ev.StepStarted(step=name, attempt=attempt):
                r = row(name)
                r.update(status="running", attempts=max(r["attempts"], attempt))
                r["start"] = r["start"] or e.at
            case ev.StepCompleted(step=name):
                row(name).update(status="completed", end=e.at)
            case ev.TimerFired(timer=timer) if timer.startswith("wait:"):
                row(timer[5:]).update(status="completed", end=e.at)
            case ev.StepFailed(step=name):
                row(name).update(status="failed", end=e.at)
            case ev.StepRetryScheduled(step=name):
                row(name).update(status="retrying")
            case ev.StepSkipped(step=name):
                row(name).update(status="skipped", end=e.at)
            case ev.TimerStarted(timer=timer) if timer.startswith("wait:"):
                r = row(timer[5:])
                r.update(status="waiting", start=r["start"] or e.at)
            case ev.ApprovalRequested(step=name):
                r = row(name)
                r.update(status="awaiting approval", start=r["start"] or e.at)
            case ev.ApprovalResolved(step=name, approved=approved, timed_out=timed_out):
                status = "timed out" if timed_out else ("approved" if approved else "rejected")
                row(name).update(status=status, end=e.at)

    def ts(value: float | None) -> datetime | None:
        return datetime.fromtimestamp(value, UTC) if value else None

    return [
        StepInfo(name, r["status"], r["attempts"], ts(r["start"]), ts(r["end"]))
        for name, r in rows.items()
    ]
