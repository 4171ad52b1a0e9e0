"""The task protocol between an engine and its workers: typed messages, encoded as JSON.

The engine records every event and decides what runs next; a worker runs only what
it is handed. What passes between them is one of these messages:

- :class:`Register`: a worker says who it is, what it hosts and on which queues.
- :class:`Poll` / :class:`PollResponse`: a worker asks for tasks, the engine hands some.
- :class:`Task`: one attempt of a step, an activity, or a code workflow's activation.
- :class:`Heartbeat` / :class:`HeartbeatResponse`: a long task is alive; its lease is
  extended, and the worker learns whether the task is still its own.
- :class:`TaskResult`: how the attempt ended: a value, an :class:`ErrorInfo`, or the
  :data:`Command` list a code workflow's activation gave.

Messages are msgspec Structs; :func:`encode` and :func:`decode` turn them into JSON
bytes and back, and :func:`json_schema` describes them all for other languages
(``python -m cerebelum.protocol`` prints it; ``docs/protocol.schema.json`` is its
committed copy). Payloads (inputs, values, details) stay raw JSON, encoded once
where they are produced and decoded only where they are read.

What a worker sends is checked at the door: an unknown field, a missing one, a wrong
type or a result with two outcomes is refused with a :class:`ProtocolError` that
names the field. What the engine sends tolerates fields it does not know, so that an
engine may add one without breaking the workers already deployed.
"""

from __future__ import annotations

import builtins
import enum
import inspect
import json
import re
import sys
import traceback
from typing import Annotated, Any, TypeVar, overload

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

from cerebelum.errors import InvalidRequestError
from cerebelum.events import Event, decode_events
from cerebelum.serde import storable_text

__all__ = [
    "ApplyPatch",
    "AwaitSignal",
    "Command",
    "CompleteWorkflow",
    "ErrorInfo",
    "FailWorkflow",
    "Heartbeat",
    "HeartbeatResponse",
    "Message",
    "Poll",
    "PollResponse",
    "ProtocolError",
    "RecordMarker",
    "Register",
    "Registered",
    "Report",
    "ReportNonDeterminism",
    "ReportResponse",
    "RequestApproval",
    "RetryPolicy",
    "ScheduleActivity",
    "StartChild",
    "StartTimer",
    "Task",
    "TaskKind",
    "TaskResult",
    "decode",
    "encode",
    "json_schema",
    "schema_text",
]

T = TypeVar("T")

NULL = Raw(b"null")

#: How many causes :meth:`ErrorInfo.from_exception` follows before it stops.
MAX_CAUSES = 8

Seconds = Annotated[float, Meta(gt=0)]
Attempt = Annotated[int, Meta(ge=1, description="The attempt's number, from 1.")]
Position = Annotated[
    int, Meta(ge=0, description="The command's place in the workflow's program order, from 0.")
]
Name = Annotated[str, Meta(min_length=1)]


def _null() -> Raw:
    """A payload's default, JSON ``null`` (a factory: the JSON Schema cannot show a Raw)."""
    return NULL


def _doc(text: str) -> Meta:
    """A field's description: in the docstring's place, and in the JSON Schema."""
    return Meta(description=text)


class ProtocolError(InvalidRequestError):
    """The message does not fit the task protocol.

    ``err.path`` is where in the message the fault lies (``$.error.cause.name``; ``$``
    for the message as a whole) and ``err.message_type`` the message it was read as.
    """

    path: str = "$"
    message_type: str = ""


class TaskKind(enum.StrEnum):
    """What a task runs."""

    STEP = "step"  #: One attempt of a graph workflow's step.
    ACTIVITY = "activity"  #: One attempt of an activity a code workflow asked for.
    WORKFLOW = "workflow"  #: An activation of a code workflow: results in, commands out.


class _FromWorker(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):  # fmt: skip
    """What a worker sends: checked at the door, an unknown field included (a typo)."""


class _FromEngine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the engine sends: a worker ignores the fields it does not know, so that an
    engine may add one without breaking the workers already deployed."""


# --- errors ---------------------------------------------------------------------------


class ErrorInfo(_FromWorker, frozen=True, kw_only=True):
    """How an attempt failed, as data: it crosses processes and languages.

    Diverge rules route a failure by the strings recorded here, never by a live class
    (a worker in another language has none to give). A rule ``on="payment_failed"``
    (a name) matches when that name is one of :meth:`names`: ``name``, the last dotted
    part of ``type`` and of each of ``bases``, and ``"timeout"`` for ``kind`` timeout;
    a Python exception's names are its class's and its bases' ``__name__``, as the
    engine matches a local exception. A rule on an exception class ``C`` matches when
    :meth:`is_a` says so: ``C``'s qualified name (``module.QualName``) is ``type`` or
    one of ``bases``, which is ``isinstance`` for an exception raised in Python, and
    an exact match of the qualified name for anything else.
    """

    kind: Annotated[
        str,
        _doc(
            "How the attempt failed: `exception` (it raised), `error` (it returned an "
            "Error: `name` and `data` say which), `timeout`, `unserialisable` (its "
            "result could not be stored); the engine records others of its own."
        ),
    ] = "exception"
    name: Annotated[
        Name, _doc("The error's name: the exception class's `__name__`, an Error's name.")
    ]
    type: Annotated[
        str, _doc("The exception type's qualified name, `module.QualName`; empty for an Error.")
    ] = ""
    bases: Annotated[
        list[str],
        _doc("The qualified names of the type's bases, nearest first (Python's MRO after it)."),
    ] = []
    message: Annotated[str, _doc("What went wrong, for people.")] = ""
    traceback: Annotated[
        str, _doc("Where it went wrong: this error's own stack, without its causes.")
    ] = ""
    data: Annotated[
        Raw | UnsetType, _doc("The JSON data a returned Error carries, for rules and handlers.")
    ] = UNSET
    cause: Annotated[
        ErrorInfo | None,
        _doc("The error this one was raised from or while handling, with its own cause."),
    ] = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, kind: str = "exception", depth: int = MAX_CAUSES
    ) -> ErrorInfo:
        """The error ``exc`` as data, with its causes.

        The chain follows ``__cause__`` (``raise ... from``), else ``__context__``
        unless suppressed (``from None``), at most ``depth`` links deep; a cycle ends it.

        Args:
            exc: the exception.
            kind: the recorded kind (``exception``, ``timeout``, ...).
            depth: how many causes to follow.
        """
        chain: list[BaseException] = [exc]
        while len(chain) <= depth:
            nxt = chain[-1].__cause__
            if nxt is None and not chain[-1].__suppress_context__:
                nxt = chain[-1].__context__
            if nxt is None or any(nxt is seen for seen in chain):
                break
            chain.append(nxt)
        info: ErrorInfo | None = None
        for link in reversed(chain):
            info = cls._one(link, kind if link is exc else "exception", info)
        assert info is not None
        return info

    @classmethod
    def _one(cls, exc: BaseException, kind: str, cause: ErrorInfo | None) -> ErrorInfo:
        t = type(exc)
        return cls(
            kind=kind,
            name=t.__name__,
            type=_qualified(t),
            bases=[_qualified(b) for b in t.__mro__[1:]],
            message=storable_text(str(exc) or t.__name__),
            traceback=storable_text("".join(traceback.format_exception(exc, chain=False))),
            cause=cause,
        )

    def names(self) -> tuple[str, ...]:
        """The names a rule ``on="name"`` matches, as the engine sees a local exception's."""
        found = [self.name]
        for qualified in (self.type, *self.bases):
            short = qualified.rsplit(".", 1)[-1]
            if short and short not in found:
                found.append(short)
        if self.kind == "timeout":
            found.insert(0, "timeout")
        return tuple(found)

    def is_a(self, cls: builtins.type[BaseException]) -> bool:
        """Whether a rule on the exception class ``cls`` matches this error."""
        qualified = _qualified(cls)
        return self.type == qualified or qualified in self.bases

    def to_dict(self) -> dict[str, Any]:
        """The shape histories record (``StepFailed.error``, ``ActivityFailed.error``).

        Keys ``kind``, ``name``, ``message``, and when set ``type``, ``bases``,
        ``traceback``, ``data`` (decoded) and ``cause`` (the same shape).
        """
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.type:
            out["type"] = self.type
        if self.bases:
            out["bases"] = list(self.bases)
        out["message"] = self.message
        if self.traceback:
            out["traceback"] = self.traceback
        if not isinstance(self.data, UnsetType):
            out["data"] = msgspec.json.decode(self.data)
        if self.cause is not None:
            out["cause"] = self.cause.to_dict()
        return out

    @classmethod
    def from_dict(cls, error: dict[str, Any]) -> ErrorInfo:
        """An error recorded in a history (see :meth:`to_dict`), as data again.

        A recorded error without a name (an engine's own, such as ``non_determinism``)
        takes its kind as its name.
        """
        cause = error.get("cause")
        return cls(
            kind=str(error.get("kind", "exception")),
            name=str(error.get("name") or error.get("kind") or "error"),
            type=str(error.get("type", "")),
            bases=[str(b) for b in error.get("bases", ())],
            message=str(error.get("message", "")),
            traceback=str(error.get("traceback", "")),
            data=Raw(msgspec.json.encode(error["data"])) if "data" in error else UNSET,
            cause=cls.from_dict(cause) if isinstance(cause, dict) else None,
        )

    def format(self) -> str:
        """The error and its causes, for people: each traceback, then what caused it."""
        parts: list[str] = []
        info: ErrorInfo | None = self
        while info is not None:
            parts.append(info.traceback or f"{info.name}: {info.message}\n")
            info = info.cause
            if info is not None:
                parts.append("\nCaused by:\n\n")
        return "".join(parts)


def _qualified(t: builtins.type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


# --- commands: what a code workflow's activation asks the engine for ------------------


class RetryPolicy(_FromWorker, frozen=True, kw_only=True):
    """How an activity is retried; the engine decides retries from it (``Retry.to_spec()``)."""

    max_attempts: Annotated[int, Meta(ge=1), _doc("Attempts in all, the first included.")] = 3
    backoff: Annotated[float, Meta(ge=1), _doc("Each delay is the last one times this.")] = 2.0
    initial: Annotated[float, Meta(ge=0), _doc("Seconds before the second attempt.")] = 1.0
    max_interval: Annotated[
        Annotated[float, Meta(ge=0)] | None,
        _doc("The longest delay, in seconds; none: no limit."),
    ] = None
    non_retryable: Annotated[
        list[str], _doc("Error names (see ErrorInfo.names) that end the retries at once.")
    ] = []


class _Command(_FromWorker, frozen=True, kw_only=True, tag=True):
    """A command; ``type`` is its class name."""


class ScheduleActivity(_Command, frozen=True, kw_only=True):
    """Run an activity (``await activity(fn, ...)``); the engine records ``ActivityScheduled``."""

    position: Position
    activity: Annotated[Name, _doc("The activity's name, as workers host it.")]
    args: Annotated[Raw, _doc('The call: `{"args": [...], "kwargs": {...}}`.')] = msgspec.field(
        default_factory=_null
    )
    queue: Annotated[str, _doc("The queue its tasks go to; empty for the workflow's own.")] = ""
    retry: Annotated[RetryPolicy | None, _doc("Its retry policy; none runs it once.")] = None
    start_to_close_timeout: Annotated[
        Seconds | None, _doc("Seconds one attempt may take, from when a worker starts it.")
    ] = None
    heartbeat_timeout: Annotated[
        Seconds | None, _doc("Seconds an attempt may go without a heartbeat.")
    ] = None


class StartTimer(_Command, frozen=True, kw_only=True):
    """Sleep (``await sleep(...)``); the engine records ``TimerStarted`` at its own clock's time."""

    position: Position
    seconds: Annotated[float, Meta(ge=0), _doc("How long, from when the engine records it.")]


class RequestApproval(_Command, frozen=True, kw_only=True):
    """Wait for an approval (``await approval(name)``); the engine records ``ApprovalRequested``."""

    position: Position
    name: Annotated[Name, _doc("The approval's name, as `approve`/`reject` address it.")]
    timeout: Annotated[Seconds | None, _doc("Seconds before it times out; none waits.")] = None


class AwaitSignal(_Command, frozen=True, kw_only=True):
    """Wait for a signal (``await signal(name)``); the engine records ``SignalAwaited``.

    A signal that arrived before is handed over at once (``SignalDelivered``).
    """

    position: Position
    name: Annotated[Name, _doc("The signal's name.")]
    timeout: Annotated[Seconds | None, _doc("Seconds before it times out; none waits.")] = None


class StartChild(_Command, frozen=True, kw_only=True):
    """Start a child execution (``await child(wf, ...)``); the engine records ``ChildStarted``.

    Its id is the parent's id and the position (``parent.3``), so starting it again is
    the same child.
    """

    position: Position
    workflow: Annotated[Name, _doc("The child's workflow name.")]
    args: Annotated[Raw, _doc('The call: `{"args": [...], "kwargs": {...}}`.')] = msgspec.field(
        default_factory=_null
    )


class RecordMarker(_Command, frozen=True, kw_only=True):
    """Record a value the workflow made (``now()``, ``uuid4()``, ``random()``).

    The engine records ``MarkerRecorded``; a rebuilt coroutine reads it back from there.
    """

    position: Position
    kind: Annotated[Name, _doc("What the value is: `now`, `uuid4`, `random`.")]
    value: Annotated[Raw, _doc("The value, as JSON.")] = msgspec.field(default_factory=_null)


class ApplyPatch(_Command, frozen=True, kw_only=True):
    """Take the new path of ``patched(name)`` from here on; the engine records ``PatchApplied``."""

    name: Annotated[Name, _doc("The patch's name.")]


class CompleteWorkflow(_Command, frozen=True, kw_only=True):
    """The workflow returned; the engine records ``ExecutionCompleted``."""

    output: Annotated[Raw, _doc("What it returned, as JSON.")] = msgspec.field(
        default_factory=_null
    )


class FailWorkflow(_Command, frozen=True, kw_only=True):
    """The workflow raised; the engine records ``ExecutionFailed``."""

    error: Annotated[ErrorInfo, _doc("What it raised.")]


class ReportNonDeterminism(_Command, frozen=True, kw_only=True):
    """The code asked for something other than the history holds at ``position``.

    The engine records ``ExecutionStuck``: the execution stops, unfinished, and a worker
    running code that matches its history resumes it.
    """

    position: Position
    recorded: Annotated[str, _doc("What the history holds there (`activity 'charge'`).")]
    requested: Annotated[str, _doc("What the code asked for instead.")]
    message: Annotated[str, _doc("The whole account, for people.")] = ""


Command = (
    ScheduleActivity
    | StartTimer
    | RequestApproval
    | AwaitSignal
    | StartChild
    | RecordMarker
    | ApplyPatch
    | CompleteWorkflow
    | FailWorkflow
    | ReportNonDeterminism
)
"""What a code workflow's activation asks for; JSON objects tagged by ``type``."""

COMMANDS: tuple[type[_Command], ...] = Command.__args__


# --- tasks ---------------------------------------------------------------------------


class Task(_FromEngine, frozen=True, kw_only=True):
    """One attempt of a step or an activity, or one activation of a code workflow.

    A step's ``inputs`` are its parameters by name (``{"inputs": ..., "fetch": ...}``:
    the workflow's inputs and the results of the steps it depends on); an activity's
    and a workflow's are the call, ``{"args": [...], "kwargs": {...}}``. An activation
    carries the ``events`` that came since the worker's last one (all of them when it
    must rebuild the coroutine: ``from_start``); it ends with a :class:`TaskResult`
    holding the commands the coroutine gave until it blocked.
    """

    task_id: Annotated[Name, _doc("The task's id: a result or a heartbeat names it.")]
    execution_id: Annotated[Name, _doc("The execution the task belongs to.")]
    kind: Annotated[TaskKind, _doc("What the task runs.")]
    name: Annotated[Name, _doc("The step's, the activity's or the workflow's name.")]
    workflow: Annotated[str, _doc("The execution's workflow (for a step or an activity).")] = ""
    queue: Annotated[str, _doc("The queue it was enqueued on.")] = "default"
    attempt: Attempt = 1
    iteration: Annotated[
        int, Meta(ge=0), _doc("For a step: how many times a `back_to` loop has come back to it.")
    ] = 0
    idempotency_key: Annotated[
        str, _doc("The same on every attempt of this step or activity, for exactly-once effects.")
    ] = ""
    inputs: Annotated[Raw, _doc("What the attempt runs with, as JSON (see above).")] = (
        msgspec.field(default_factory=_null)
    )
    start_to_close_timeout: Annotated[
        Seconds | None, _doc("Seconds the attempt may take; the worker stops it then.")
    ] = None
    heartbeat_timeout: Annotated[
        Seconds | None,
        _doc(
            "Seconds without a heartbeat after which the lease runs out and the task is re-offered."
        ),
    ] = None
    heartbeat_details: Annotated[
        Raw | UnsetType, _doc("The details the last attempt's last heartbeat sent, if any.")
    ] = UNSET
    events: Annotated[
        list[Raw],
        _doc(
            "For an activation: the history events the worker has not seen, in order, "
            "each as the history stores it (an object tagged by `type`, see cerebelum.events)."
        ),
    ] = []
    from_start: Annotated[
        bool, _doc("For an activation: `events` is the whole history; rebuild the coroutine.")
    ] = False
    now: Annotated[
        float | None,
        _doc("For an activation: the engine's clock (epoch seconds), what `now()` records."),
    ] = None
    traceparent: Annotated[
        str | None,
        _doc(
            "The W3C trace context of the execution's span, when the engine traces: a worker "
            "that traces runs the attempt in a span whose parent it is."
        ),
    ] = None

    def history(self) -> list[Event]:
        """``events``, decoded."""
        return decode_events([bytes(e) for e in self.events])


class TaskResult(_FromWorker, frozen=True, kw_only=True):
    """How an attempt ended: exactly one of ``value``, ``error``, ``commands``."""

    task_id: Annotated[Name, _doc("The task it answers.")]
    attempt: Attempt
    started_at: Annotated[
        float | None, _doc("When the worker began the attempt (epoch seconds), for the history.")
    ] = None
    value: Annotated[
        Raw | UnsetType, _doc("A step's or an activity's result, as JSON (`null` included).")
    ] = UNSET
    error: Annotated[ErrorInfo | None, _doc("How the step or the activity failed.")] = None
    commands: Annotated[
        list[Command] | None,  # type: ignore[valid-type]
        _doc("What a workflow activation asks for, in program order (empty: it waits)."),
    ] = None

    def __post_init__(self) -> None:
        given = [
            field
            for field, absent in (
                ("value", isinstance(self.value, UnsetType)),
                ("error", self.error is None),
                ("commands", self.commands is None),
            )
            if not absent
        ]
        if len(given) != 1:
            has = " and ".join(given) if given else "none of them"
            raise ValueError(
                f"a TaskResult carries exactly one of `value`, `error`, `commands`; "
                f"this one has {has}"
            )


class Heartbeat(_FromWorker, frozen=True, kw_only=True):
    """A long attempt is alive: its lease is extended."""

    worker_id: Annotated[Name, _doc("The worker that holds the task, as registered.")]
    task_id: Annotated[Name, _doc("The task.")]
    attempt: Attempt
    details: Annotated[
        Raw, _doc("Progress as JSON; the next attempt gets it if this one fails.")
    ] = msgspec.field(default_factory=_null)


class HeartbeatResponse(_FromEngine, frozen=True, kw_only=True):
    """The engine's answer to a heartbeat."""

    cancelled: Annotated[
        bool,
        _doc(
            "The attempt is no longer wanted (its execution was cancelled, or its lease ran "
            "out and the task went to another worker): stop it; a result will be ignored."
        ),
    ] = False


# --- workers -------------------------------------------------------------------------


class Register(_FromWorker, frozen=True, kw_only=True):
    """A worker joins: what it hosts, the queues it takes tasks from, how many at once.

    It is offered only tasks on one of its queues whose name it hosts for that kind.
    Registering again with the same id replaces what it said before.
    """

    worker_id: Annotated[Name, _doc("Unique among live workers; chosen by the worker.")]
    steps: Annotated[list[str], _doc("The steps it runs, by the name tasks give them.")] = []
    activities: Annotated[list[str], _doc("The activities it runs.")] = []
    workflows: Annotated[list[str], _doc("The code workflows whose coroutines it hosts.")] = []
    queues: Annotated[list[Name], Meta(min_length=1), _doc("The queues it takes tasks from.")] = (
        msgspec.field(default_factory=lambda: ["default"])
    )
    concurrency: Annotated[int, Meta(ge=1), _doc("How many tasks it runs at once.")] = 1


class Poll(_FromWorker, frozen=True, kw_only=True):
    """A registered worker asks for tasks; the answer waits until there is one or ``wait`` passes."""

    worker_id: Annotated[Name, _doc("As registered.")]
    max_tasks: Annotated[int, Meta(ge=1), _doc("How many it takes now: its free slots.")] = 1
    wait: Annotated[
        float, Meta(ge=0, le=60), _doc("Seconds to wait for a task before answering with none.")
    ] = 30.0


class PollResponse(_FromEngine, frozen=True, kw_only=True):
    """The tasks claimed for the worker, each under a lease; none when ``wait`` passed."""

    tasks: Annotated[list[Task], _doc("At most `max_tasks`.")] = []


class Registered(_FromEngine, frozen=True, kw_only=True):
    """The engine's answer to :class:`Register`."""

    worker_id: Annotated[Name, _doc("As registered.")]
    lease: Annotated[
        Seconds,
        _doc(
            "Seconds a task stays the worker's without a heartbeat: heartbeat each task it "
            "holds well within this (a third of it), or it is offered to another worker."
        ),
    ]


class Report(_FromWorker, frozen=True, kw_only=True):
    """Results a worker hands back, one or many at once; it keeps each until acknowledged."""

    worker_id: Annotated[Name, _doc("As registered.")]
    results: Annotated[list[TaskResult], Meta(min_length=1), _doc("The results, any order.")]
    max_tasks: Annotated[
        int,
        Meta(ge=0),
        _doc(
            "How many new tasks the worker takes in the answer: those these results make "
            "ready (the next step of the same execution, say) come back at once, without "
            "a poll. 0: none."
        ),
    ] = 0


class ReportResponse(_FromEngine, frozen=True, kw_only=True):
    """Which results are recorded (or were not wanted): the worker may forget those; and
    the tasks it takes now, leased to it, as a :class:`PollResponse` has them."""

    acknowledged: Annotated[list[str], _doc("Task ids the worker may forget.")] = []
    tasks: Annotated[list[Task], _doc("At most `max_tasks`: the worker runs these too.")] = []


Message = (
    Task | TaskResult | Heartbeat | HeartbeatResponse | Register | Registered | Poll
    | PollResponse | Report | ReportResponse
)  # fmt: skip
MESSAGES: tuple[type[msgspec.Struct], ...] = Message.__args__


# --- encoding ------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_AT = re.compile(r" - at `(?P<path>\$[^`]*)`$")


def encode(message: Any) -> bytes:
    """A message (or a :data:`Command`, an :class:`ErrorInfo`) as JSON bytes."""
    return _encoder.encode(message)


@overload
def decode(data: bytes | str, type_: type[T]) -> T: ...
@overload
def decode(data: bytes | str, type_: Any) -> Any: ...


def decode(data: bytes | str, type_: Any) -> Any:
    """Read the JSON ``data`` as a ``type_`` message, checking it.

    ``type_`` is a message class, :class:`ErrorInfo`, or :data:`Command` (the union).

    Raises:
        ProtocolError: ``data`` is not JSON, or not a valid ``type_``; the error
            names the field (``err.path``).
    """
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        path = match["path"] if match else "$"
        name = getattr(type_, "__name__", "Command")
        raise ProtocolError(f"invalid {name}: {text}", path=path, message_type=name) from None
    except msgspec.DecodeError as exc:
        name = getattr(type_, "__name__", "Command")
        raise ProtocolError(f"invalid {name}: {exc}", path="$", message_type=name) from None


# --- the JSON Schema -----------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """One JSON Schema document with every message (and ``Command``) under ``$defs``."""
    roots: list[Any] = [*MESSAGES, ErrorInfo, Command]
    schemas, components = msgspec.json.schema_components(roots, ref_template="#/$defs/{name}")
    components["Command"] = {
        "title": "Command",
        "description": "What a code workflow's activation asks for; tagged by `type`.",
        **schemas[-1],
    }
    for component in components.values():  # docstrings keep their indentation in msgspec's
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Cerebelum task protocol",
        "description": (__doc__ or "").strip().split("\n\n")[0],
        "$defs": dict(sorted(components.items())),
    }


def schema_text() -> str:
    """:func:`json_schema` as the text ``docs/protocol.schema.json`` holds."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
