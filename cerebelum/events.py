"""The events of an execution's history.

Every state change of an execution is one of these, appended to its history in the
same transaction as the tasks and timers it causes. Events are msgspec Structs,
encoded as JSON with their class name as the ``type`` tag; the tag is the schema
version too: an event whose shape must change gets a new tag, and the old one stays
decodable so that old histories still fold.

Payloads (inputs, results, outputs, approval data) are kept as raw JSON
(:class:`msgspec.Raw`) so that they are encoded once, when they are produced, and
decoded only where they are read.

Timestamps (``at``, ``fire_at``) are seconds since the epoch, UTC; :attr:`Event.when`
gives the timezone-aware datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from msgspec import Raw

__all__ = [
    "ActivityCompleted",
    "ActivityFailed",
    "ActivityRetryScheduled",
    "ActivityScheduled",
    "ActivityStarted",
    "ApprovalRequested",
    "ApprovalResolved",
    "BranchTaken",
    "ChildEnded",
    "ChildStarted",
    "Event",
    "ExecutionAdmitted",
    "ExecutionCancelled",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionMigrated",
    "ExecutionStarted",
    "ExecutionStuck",
    "MarkerRecorded",
    "PatchApplied",
    "Raw",
    "SignalAwaited",
    "SignalDelivered",
    "SignalReceived",
    "StepCompleted",
    "StepFailed",
    "StepRetryScheduled",
    "StepScheduled",
    "StepSkipped",
    "StepStarted",
    "TimerFired",
    "TimerStarted",
    "decode_event",
    "decode_events",
    "encode_event",
]

NULL = Raw(b"null")


class Event(msgspec.Struct, tag=True, kw_only=True, omit_defaults=True):
    """Something that happened to an execution; ``seq`` orders its history from 1."""

    seq: int
    at: float

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def describe(self) -> str:
        """A one-line account of the event, for people (the CLI, logs)."""
        fields = {f: getattr(self, f) for f in self.__struct_fields__ if f not in ("seq", "at")}
        parts = []
        for key, value in fields.items():
            if isinstance(value, Raw):
                text = bytes(value).decode()
                value = text if len(text) <= 80 else text[:77] + "..."
            parts.append(f"{key}={value}")
        return " ".join(parts)


class ExecutionStarted(Event):
    """An execution of ``workflow`` (blueprint ``version``) began with ``inputs``.

    ``label`` is the version its author named (``@workflow(version="2")``), if any.
    """

    workflow: str
    version: str
    kind: str = "graph"
    inputs: Raw = NULL
    parent_id: str | None = None
    label: str = ""
    #: Started on a queue: nothing runs until ``ExecutionAdmitted``.
    queue: str = ""
    priority: int = 0
    dedup_id: str = ""
    #: The W3C trace context (``traceparent``) of the execution's span, when it is traced.
    trace: str = ""


class ExecutionAdmitted(Event):
    """The execution's queue let it run (within its concurrency and rate limit)."""


class ExecutionMigrated(Event):
    """From here on the execution follows blueprint ``to_version`` instead of ``from_version``.

    An engine does it by itself when every node the history touched is defined the
    same in both blueprints; an operator may force it (``forced``, with ``by`` saying
    from where: host and pid) when only the nodes' names and kinds still match;
    ``changed`` lists the touched nodes whose definition differs.
    """

    from_version: str
    to_version: str
    from_label: str = ""
    to_label: str = ""
    forced: bool = False
    by: str = ""
    changed: list[str] = []


class StepScheduled(Event):
    """``step`` is ready to run: attempt ``attempt`` of pass ``iteration``."""

    step: str
    attempt: int = 1
    iteration: int = 0


class StepStarted(Event):
    """A worker began attempt ``attempt`` of ``step``."""

    step: str
    attempt: int = 1
    worker: str = ""


class StepCompleted(Event):
    """``step`` returned ``result``; ``route`` is the index of the rule it matched."""

    step: str
    attempt: int = 1
    result: Raw = NULL
    route: int | None = None


class StepFailed(Event):
    """Attempt ``attempt`` of ``step`` failed.

    ``error`` has ``kind`` (``exception``, ``error`` for a returned Error, ``timeout``,
    ``unserialisable``), ``name``, ``message`` and, for exceptions, ``type`` and
    ``traceback``. ``retryable`` says whether the step's retry policy may try again;
    ``route`` is the index of the rule the failure matched.
    """

    step: str
    error: dict[str, Any]
    attempt: int = 1
    retryable: bool = True
    route: int | None = None


class StepRetryScheduled(Event):
    """``step`` will run again as attempt ``attempt`` at ``fire_at``."""

    step: str
    attempt: int
    fire_at: float
    reason: str = "retry policy"


class StepSkipped(Event):
    """``step`` will not run in this pass: it lies on a path not taken."""

    step: str
    reason: str = ""


class BranchTaken(Event):
    """Rule ``rule`` of ``step`` matched: the execution does ``action`` (to ``target``)."""

    step: str
    rule: int
    action: str
    target: str | None = None


class TimerStarted(Event):
    """Timer ``timer`` will fire at ``fire_at``."""

    timer: str
    fire_at: float


class TimerFired(Event):
    """Timer ``timer`` fired."""

    timer: str


class ApprovalRequested(Event):
    """``step`` waits for approval ``name``, until ``timeout_at`` if that is set."""

    step: str
    name: str
    timeout_at: float | None = None


class ApprovalResolved(Event):
    """Approval ``step`` was approved or rejected (or timed out), with ``data``."""

    step: str
    approved: bool
    data: Raw = NULL
    timed_out: bool = False
    route: int | None = None


# --- code workflows: the journal of commands, each at a position in program order ----


class ActivityScheduled(Event):
    """The workflow asked for activity ``activity`` with ``args`` at ``position``."""

    position: int
    activity: str
    args: Raw = NULL
    attempt: int = 1
    retry: dict[str, Any] | None = None  # the policy, so that retries are decided from history


class ActivityStarted(Event):
    """A worker began attempt ``attempt`` of the activity at ``position``."""

    position: int
    attempt: int = 1
    worker: str = ""


class ActivityCompleted(Event):
    """The activity at ``position`` returned ``result``."""

    position: int
    attempt: int = 1
    result: Raw = NULL


class ActivityFailed(Event):
    """Attempt ``attempt`` of the activity at ``position`` failed (see StepFailed.error)."""

    position: int
    error: dict[str, Any]
    attempt: int = 1
    retryable: bool = True


class ActivityRetryScheduled(Event):
    """The activity at ``position`` will run again as attempt ``attempt`` at ``fire_at``."""

    position: int
    attempt: int
    fire_at: float


class SignalReceived(Event):
    """Signal ``name`` arrived with ``payload``; it waits until the workflow takes it."""

    name: str
    payload: Raw = NULL


class SignalAwaited(Event):
    """The workflow waits at ``position`` for signal ``name``, until ``timeout_at`` if set."""

    position: int
    name: str
    timeout_at: float | None = None


class SignalDelivered(Event):
    """The workflow took signal ``name`` at ``position`` (or stopped waiting: ``timed_out``)."""

    position: int
    name: str
    payload: Raw = NULL
    timed_out: bool = False


class MarkerRecorded(Event):
    """A value the workflow asked for at ``position`` (``now``, ``uuid4``, ``random``)."""

    position: int
    kind: str
    value: Raw = NULL


class PatchApplied(Event):
    """From here on the execution takes the new path of ``patched(name)``."""

    name: str


class ChildStarted(Event):
    """The workflow started child execution ``child_id`` of ``workflow`` at ``position``."""

    position: int
    child_id: str
    workflow: str
    args: Raw = NULL


class ChildEnded(Event):
    """The child at ``position`` ended: ``status`` with ``output`` or ``error``."""

    position: int
    status: str
    output: Raw = NULL
    error: dict[str, Any] | None = None


class ExecutionStuck(Event):
    """Recovery found the code asking for something other than the history holds.

    The execution stops here, unfinished; an engine running fixed code resumes it.
    """

    error: dict[str, Any]


class ExecutionCompleted(Event):
    """The execution finished with ``output``."""

    output: Raw = NULL


class ExecutionFailed(Event):
    """The execution failed; ``error`` has ``kind``, ``step``, ``message``, ``traceback``."""

    error: dict[str, Any]


class ExecutionCancelled(Event):
    """The execution was cancelled."""

    reason: str = ""


AnyEvent = (
    ExecutionStarted
    | StepScheduled
    | StepStarted
    | StepCompleted
    | StepFailed
    | StepRetryScheduled
    | StepSkipped
    | BranchTaken
    | TimerStarted
    | TimerFired
    | ApprovalRequested
    | ApprovalResolved
    | ActivityScheduled
    | ActivityStarted
    | ActivityCompleted
    | ActivityFailed
    | ActivityRetryScheduled
    | SignalReceived
    | SignalAwaited
    | SignalDelivered
    | MarkerRecorded
    | PatchApplied
    | ChildStarted
    | ChildEnded
    | ExecutionStuck
    | ExecutionMigrated
    | ExecutionAdmitted
    | ExecutionCompleted
    | ExecutionFailed
    | ExecutionCancelled
)

TERMINAL = (ExecutionCompleted, ExecutionFailed, ExecutionCancelled)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)
_list_decoder = msgspec.json.Decoder(list[AnyEvent])  # type: ignore[valid-type]

encode_event = _encoder.encode
decode_event = _decoder.decode


def decode_events(rows: list[bytes]) -> list[Event]:
    """Decode a history stored as one JSON document per event."""
    if not rows:
        return []
    return cast("list[Event]", _list_decoder.decode(b"[" + b",".join(rows) + b"]"))
