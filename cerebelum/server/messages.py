"""What the HTTP API takes and gives: msgspec Structs, from which its OpenAPI document is made.

Requests are checked at the door (an unknown field is refused too: it is a typo);
responses are what :class:`cerebelum.Client` reads back. Timestamps are RFC 3339
strings (UTC); outputs, inputs and data are plain JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "Accepted",
    "ApprovalRequest",
    "CancelRequest",
    "ErrorBody",
    "ErrorDetail",
    "ExecutionErrorView",
    "ExecutionList",
    "ExecutionView",
    "History",
    "MigrateRequest",
    "Migrated",
    "Pending",
    "ResultView",
    "SignalRequest",
    "StartRequest",
    "Started",
    "StepView",
    "TaskList",
    "TaskView",
]

Name = Annotated[str, Meta(min_length=1)]


def _doc(text: str) -> Meta:
    return Meta(description=text)


class _Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request body: an unknown field is refused, naming it."""


class _Response(msgspec.Struct, frozen=True, kw_only=True):
    """A response body: a client ignores the fields it does not know."""


# --- requests ------------------------------------------------------------------------


class StartRequest(_Request, frozen=True, kw_only=True):
    """Start an execution of ``workflow`` (by name); idempotent by ``id``.

    A graph workflow takes one ``input``; a code workflow takes its function's own
    ``args`` and ``kwargs``.
    """

    workflow: Annotated[Name, _doc("The workflow's name, as the server's modules define it.")]
    input: Annotated[Any, _doc("A graph workflow's input (a JSON object, usually).")] = UNSET
    args: Annotated[list[Any], _doc("A code workflow's positional arguments.")] = []
    kwargs: Annotated[dict[str, Any], _doc("A code workflow's keyword arguments.")] = {}
    id: Annotated[
        str | None, _doc("The execution's id; starting an id that exists returns that execution.")
    ] = None
    queue: Annotated[
        str | None,
        _doc("A queue the server declares: the execution waits, `queued`, until it may run."),
    ] = None
    priority: Annotated[int, _doc("On a queue: higher runs first.")] = 0
    dedup_id: Annotated[
        str | None, _doc("On a queue: refused (409 `DuplicateError`) while one with it is live.")
    ] = None
    wait: Annotated[
        float,
        Meta(ge=0, le=60),
        _doc(
            "Seconds to wait for the execution to end before answering: when it ends in "
            "time, the answer carries its `result` (start and result in one request)."
        ),
    ] = 0


class ApprovalRequest(_Request, frozen=True, kw_only=True):
    """Approve or reject the approval ``name`` the execution waits on."""

    name: Annotated[Name, _doc("The approval's name.")]
    data: Annotated[Any, _doc("Data for the next step, as JSON.")] = None


class SignalRequest(_Request, frozen=True, kw_only=True):
    """Send the signal ``name`` to a code workflow; it is kept until the workflow takes it."""

    name: Annotated[Name, _doc("The signal's name.")]
    payload: Annotated[Any, _doc("The signal's payload, as JSON.")] = None


class MigrateRequest(_Request, frozen=True, kw_only=True):
    """Move a graph execution onto the server's version of its workflow (see
    ``cerebelum migrate``): its operator says the change is safe for it."""


class CancelRequest(_Request, frozen=True, kw_only=True):
    """Cancel the execution and its children."""

    reason: Annotated[str, _doc("Why; recorded in the history as the error's message.")] = ""


# --- responses -----------------------------------------------------------------------


class Started(_Response, frozen=True, kw_only=True):
    """The execution is recorded (201), or existed already (200)."""

    id: str
    workflow: str
    status: str
    result: Annotated[
        ResultView | None, _doc("How it ended, when it ended within the request's `wait`.")
    ] = None


class ExecutionErrorView(_Response, frozen=True, kw_only=True):
    """Why an execution failed (see ``cerebelum.ExecutionError``)."""

    kind: str
    step: str | None = None
    message: str = ""
    traceback: str | None = None
    data: dict[str, Any] = {}


class StepView(_Response, frozen=True, kw_only=True):
    """One node of an execution, as its history tells it."""

    name: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: Annotated[float | None, _doc("Seconds, once it finished.")] = None


class ExecutionView(_Response, frozen=True, kw_only=True):
    """An execution's row (see ``cerebelum.ExecutionInfo``); ``steps`` is empty in lists."""

    id: str
    workflow: str
    version: str
    kind: Annotated[str, _doc("`graph` or `code`.")]
    status: Annotated[
        str, _doc("`running`, `waiting`, `completed`, `failed`, `cancelled` or `stuck`.")
    ]
    created_at: datetime
    updated_at: datetime
    output: Any = None
    error: ExecutionErrorView | None = None
    owner: Annotated[str | None, _doc("The engine that drives it.")] = None
    waiting_for: Annotated[
        str | None, _doc("The version it waits for when no engine here runs its own.")
    ] = None
    steps: list[StepView] = []


class TaskView(_Response, frozen=True, kw_only=True):
    """A task no worker has finished (see ``cerebelum.TaskInfo``)."""

    id: str
    kind: Annotated[str, _doc("`step`, `activity` or `workflow` (an activation).")]
    name: Annotated[str, _doc("The name workers host it by.")]
    queue: str
    attempt: int
    status: Annotated[str, _doc("`ready` (waiting for a worker) or `leased` (a worker runs it).")]
    worker: Annotated[str | None, _doc("The worker that holds it.")] = None
    since: Annotated[datetime, _doc("When it was enqueued.")]
    lease_until: datetime | None = None
    claims: Annotated[int, _doc("How many times a worker took it.")] = 0
    hosted_by: Annotated[list[str] | None, _doc("The connected workers that would take it.")] = None


class TaskList(_Response, frozen=True, kw_only=True):
    """An execution's unfinished tasks, oldest first."""

    tasks: list[TaskView]


class ExecutionList(_Response, frozen=True, kw_only=True):
    """Executions, newest first."""

    executions: list[ExecutionView]


class History(_Response, frozen=True, kw_only=True):
    """Every event of an execution, in order; each tagged by ``type`` (see cerebelum.events)."""

    id: str
    events: Annotated[
        list[dict[str, Any]],
        _doc(
            "The events, each an object tagged by `type` with `seq`, `at` (epoch seconds) "
            "and its own fields, as cerebelum.events defines them."
        ),
    ]


class ResultView(_Response, frozen=True, kw_only=True):
    """How an execution ended: ``status`` is completed, failed or cancelled."""

    id: str
    workflow: str
    status: str
    output: Any = None
    error: ExecutionErrorView | None = None


class Pending(_Response, frozen=True, kw_only=True):
    """The execution had not ended within ``wait`` (202): ask again."""

    id: str
    status: str


class Accepted(_Response, frozen=True, kw_only=True):
    """The request was checked against the execution's history and handed to its engine."""

    id: str
    request: Annotated[str, _doc("`approve`, `reject`, `signal` or `cancel`.")]
    name: str = ""


class Migrated(_Response, frozen=True, kw_only=True):
    """The execution runs the server's version of its graph workflow now (or will, once the
    engine that holds it has taken the request)."""

    id: str
    version: Annotated[str, _doc("The version (blueprint hash) it runs at.")]


class ErrorDetail(_Response, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong."""

    type: Annotated[
        str,
        _doc(
            "The error's class, as cerebelum.errors names it (`ExecutionNotFoundError`, "
            "`InvalidRequestError`, ...), or `Unauthorized`, `InternalError`."
        ),
    ]
    message: str
    execution_id: str | UnsetType = UNSET
    workflow: str | UnsetType = UNSET
    field: Annotated[
        str | UnsetType, _doc("The request's field at fault (`workflow`, `args[0]`, `wait`).")
    ] = UNSET


class ErrorBody(_Response, frozen=True, kw_only=True):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail
