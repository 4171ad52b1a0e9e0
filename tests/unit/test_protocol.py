"""The task protocol: messages round-trip, bad ones are refused naming the field, the
published schema and the documentation's examples match the types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cerebelum import events as ev
from cerebelum import protocol as p
from cerebelum.engine._match import Outcome
from cerebelum.errors import InvalidRequestError
from cerebelum.worker._local import exception_error

DOCS = Path(__file__).resolve().parents[2] / "docs"

ERROR = p.ErrorInfo(
    name="PaymentDeclined",
    type="billing.PaymentDeclined",
    bases=["builtins.Exception"],
    message="declined",
    traceback="Traceback ...",
    cause=p.ErrorInfo(name="OSError", type="builtins.OSError", message="reset"),
)
RAW = msgspec.Raw(b'{"a":[1,2.5,"x",null,true]}')

EXAMPLES: list[Any] = [
    p.Register(
        worker_id="w1", steps=["a"], activities=["b"], workflows=["c"], queues=["q"], concurrency=3
    ),
    p.Register(worker_id="w1"),
    p.Poll(worker_id="w1", max_tasks=2, wait=0.0),
    p.PollResponse(),
    p.PollResponse(
        tasks=[p.Task(task_id="t", execution_id="e", kind=p.TaskKind.STEP, name="s", inputs=RAW)]
    ),
    p.Task(
        task_id="t",
        execution_id="e",
        kind=p.TaskKind.ACTIVITY,
        name="act",
        workflow="wf",
        queue="gpu",
        attempt=3,
        idempotency_key="e:0",
        inputs=RAW,
        start_to_close_timeout=1.5,
        heartbeat_timeout=2.0,
        heartbeat_details=msgspec.Raw(b"null"),
    ),
    p.Task(
        task_id="t",
        execution_id="e",
        kind=p.TaskKind.WORKFLOW,
        name="wf",
        events=[msgspec.Raw(ev.encode_event(ev.TimerFired(seq=4, at=1.0, timer="sleep:2")))],
        from_start=True,
        now=12.5,
    ),
    p.Heartbeat(worker_id="w", task_id="t", attempt=1, details=RAW),
    p.Registered(worker_id="w", lease=30.0),
    p.Report(
        worker_id="w",
        results=[p.TaskResult(task_id="t", attempt=1, started_at=1.5, value=msgspec.Raw(b"1"))],
    ),
    p.ReportResponse(acknowledged=["t"]),
    p.HeartbeatResponse(cancelled=True),
    p.TaskResult(task_id="t", attempt=1, value=msgspec.Raw(b"null")),
    p.TaskResult(task_id="t", attempt=2, error=ERROR),
    p.TaskResult(task_id="t", attempt=1, commands=[]),
    p.TaskResult(
        task_id="t",
        attempt=1,
        commands=[
            p.ScheduleActivity(
                position=0,
                activity="charge",
                args=RAW,
                queue="payments",
                retry=p.RetryPolicy(max_attempts=5, non_retryable=["CardExpired"]),
                start_to_close_timeout=3.0,
                heartbeat_timeout=1.0,
            ),
            p.StartTimer(position=1, seconds=0.0),
            p.RequestApproval(position=2, name="manager", timeout=10.0),
            p.AwaitSignal(position=3, name="go"),
            p.StartChild(position=4, workflow="child", args=RAW),
            p.RecordMarker(position=5, kind="uuid4", value=msgspec.Raw(b'"u"')),
            p.ApplyPatch(name="fix"),
            p.ReportNonDeterminism(position=6, recorded="a", requested="b", message="m"),
            p.CompleteWorkflow(output=RAW),
            p.FailWorkflow(error=ERROR),
        ],
    ),
    ERROR,
]


def same(a: Any, b: Any) -> bool:
    """Equal as messages: the same JSON (Raw payloads compare by their bytes)."""
    return msgspec.json.encode(a) == msgspec.json.encode(b) and type(a) is type(b)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Any) -> None:
    data = p.encode(message)
    back = p.decode(data, type(message))
    assert back == message
    assert p.encode(back) == data


def test_every_message_and_command_has_an_example() -> None:
    covered = {type(m) for m in EXAMPLES}
    for m in EXAMPLES:
        if isinstance(m, p.TaskResult) and m.commands:
            covered |= {type(c) for c in m.commands}
    assert set(p.MESSAGES) | set(p.COMMANDS) | {p.ErrorInfo} <= covered


def test_a_command_decodes_by_its_type_tag() -> None:
    cmd = p.decode(b'{"type": "StartTimer", "position": 2, "seconds": 60}', p.Command)
    assert cmd == p.StartTimer(position=2, seconds=60)


def test_a_retry_policy_with_no_max_interval_crosses_as_a_worker_sends_it() -> None:
    # Retry() leaves max_interval unset (no limit): a worker sends it as null
    from cerebelum import Retry

    policy = p.RetryPolicy(**Retry(max_attempts=3).to_spec())
    result = p.TaskResult(task_id="t-1", attempt=1, commands=[
        p.ScheduleActivity(position=0, activity="charge", retry=policy)])  # fmt: skip
    back = p.decode(p.encode(result), p.TaskResult)
    assert back.commands[0].retry.max_interval is None
    assert p.decode(b'{"max_interval": null}', p.RetryPolicy) == p.RetryPolicy()


def test_an_activation_gives_its_events() -> None:
    fired = ev.TimerFired(seq=4, at=1.0, timer="sleep:2")
    task = p.Task(
        task_id="t",
        execution_id="e",
        kind=p.TaskKind.WORKFLOW,
        name="wf",
        events=[msgspec.Raw(ev.encode_event(fired))],
    )
    assert p.decode(p.encode(task), p.Task).history() == [fired]


# --- generated messages ---------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
raws = json_values.map(lambda v: msgspec.Raw(msgspec.json.encode(v)))
names = st.text(min_size=1, max_size=12)
positions = st.integers(0, 10_000)
attempts = st.integers(1, 100)
seconds = st.floats(min_value=0.001, max_value=1e9, allow_nan=False)
maybe_seconds = st.none() | seconds


def error_infos(depth: int = 2) -> st.SearchStrategy[p.ErrorInfo]:
    cause = st.none() if depth == 0 else st.none() | error_infos(depth - 1)
    return st.builds(
        p.ErrorInfo,
        kind=st.sampled_from(["exception", "error", "timeout", "unserialisable"]),
        name=names,
        type=st.text(max_size=20),
        bases=st.lists(st.text(max_size=20), max_size=3),
        message=st.text(),
        traceback=st.text(),
        data=st.just(msgspec.UNSET) | raws,
        cause=cause,
    )


commands = st.one_of(
    st.builds(
        p.ScheduleActivity,
        position=positions,
        activity=names,
        args=raws,
        queue=st.text(max_size=8),
        retry=st.none()
        | st.builds(
            p.RetryPolicy,
            max_attempts=st.integers(1, 10),
            backoff=st.floats(1, 10),
            initial=st.floats(0, 100),
            max_interval=st.floats(0, 1000),
            non_retryable=st.lists(names, max_size=2),
        ),
        start_to_close_timeout=maybe_seconds,
        heartbeat_timeout=maybe_seconds,
    ),
    st.builds(p.StartTimer, position=positions, seconds=st.floats(0, 1e9)),
    st.builds(p.RequestApproval, position=positions, name=names, timeout=maybe_seconds),
    st.builds(p.AwaitSignal, position=positions, name=names, timeout=maybe_seconds),
    st.builds(p.StartChild, position=positions, workflow=names, args=raws),
    st.builds(p.RecordMarker, position=positions, kind=names, value=raws),
    st.builds(p.ApplyPatch, name=names),
    st.builds(p.CompleteWorkflow, output=raws),
    st.builds(p.FailWorkflow, error=error_infos(1)),
    st.builds(
        p.ReportNonDeterminism,
        position=positions,
        recorded=st.text(),
        requested=st.text(),
        message=st.text(),
    ),
)
tasks = st.builds(
    p.Task,
    task_id=names,
    execution_id=names,
    kind=st.sampled_from(p.TaskKind),
    name=names,
    workflow=st.text(max_size=8),
    queue=st.text(max_size=8),
    attempt=attempts,
    idempotency_key=st.text(max_size=20),
    inputs=raws,
    start_to_close_timeout=maybe_seconds,
    heartbeat_timeout=maybe_seconds,
    heartbeat_details=st.just(msgspec.UNSET) | raws,
    events=st.lists(raws, max_size=3),
    from_start=st.booleans(),
    now=st.none() | st.floats(0, 1e10),
)
results = st.one_of(
    st.builds(p.TaskResult, task_id=names, attempt=attempts, value=raws),
    st.builds(p.TaskResult, task_id=names, attempt=attempts, error=error_infos()),
    st.builds(
        p.TaskResult, task_id=names, attempt=attempts, commands=st.lists(commands, max_size=4)
    ),
)
messages = st.one_of(
    tasks,
    results,
    st.builds(p.Heartbeat, worker_id=names, task_id=names, attempt=attempts, details=raws),
    st.builds(p.Registered, worker_id=names, lease=st.floats(0.001, 1e6)),
    st.builds(p.Report, worker_id=names, results=st.lists(results, min_size=1, max_size=3)),
    st.builds(p.ReportResponse, acknowledged=st.lists(names, max_size=3)),
    st.builds(p.HeartbeatResponse, cancelled=st.booleans()),
    st.builds(
        p.Register,
        worker_id=names,
        steps=st.lists(names, max_size=3),
        activities=st.lists(names, max_size=3),
        workflows=st.lists(names, max_size=3),
        queues=st.lists(names, min_size=1, max_size=3),
        concurrency=st.integers(1, 1000),
    ),
    st.builds(p.Poll, worker_id=names, max_tasks=st.integers(1, 100), wait=st.floats(0, 60)),
    st.builds(p.PollResponse, tasks=st.lists(tasks, max_size=2)),
)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_encode_then_decode_is_the_identity(message: Any) -> None:
    data = p.encode(message)
    back = p.decode(data, type(message))
    assert back == message
    assert p.encode(back) == data


# --- refused at the door --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "type_", "path", "says"),
    [
        (b'{"attempt": 1, "value": 1}', p.TaskResult, "$", "missing required field `task_id`"),
        (b'{"task_id": "t", "attempt": "1", "value": 1}', p.TaskResult, "$.attempt", "`int`"),
        (b'{"task_id": "t", "attempt": 0, "value": 1}', p.TaskResult, "$.attempt", ">= 1"),
        (
            b'{"task_id": "t", "attempt": 1, "value": 1, "error": {"name": "E"}}',
            p.TaskResult,
            "$",
            "exactly one of `value`, `error`, `commands`; this one has value and error",
        ),
        (b'{"task_id": "t", "attempt": 1}', p.TaskResult, "$", "this one has none of them"),
        (
            b'{"task_id": "t", "attempt": 1, "error": {"name": "E", "cause": {"message": "x"}}}',
            p.TaskResult,
            "$.error.cause",
            "missing required field `name`",
        ),
        (
            b'{"task_id": "t", "attempt": 1, "commands": [{"type": "Launch", "position": 0}]}',
            p.TaskResult,
            "$.commands[0].type",
            "'Launch'",
        ),
        (
            b'{"task_id": "t", "attempt": 1, "commands": [{"type": "StartTimer", "position": 1}]}',
            p.TaskResult,
            "$.commands[0]",
            "missing required field `seconds`",
        ),
        (
            b'{"task_id": "t", "execution_id": "e", "kind": "job", "name": "n"}',
            p.Task,
            "$.kind",
            "Invalid enum value 'job'",
        ),
        (b'{"worker_id": "w", "concurency": 3}', p.Register, "$", "unknown field `concurency`"),
        (b'{"worker_id": "w", "queues": []}', p.Register, "$.queues", "length >= 1"),
        (b'{"worker_id": "w", "wait": 3600}', p.Poll, "$.wait", "<= 60"),
        (b'{"task_id": "t", "attempt": 1, "details": 1', p.Heartbeat, "$", "truncated"),
    ],
)
def test_bad_messages_are_refused_naming_the_field(
    data: bytes, type_: Any, path: str, says: str
) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode(data, type_)
    err = caught.value
    assert isinstance(err, InvalidRequestError)
    assert err.path == path
    assert says in err.message
    assert err.message_type == type_.__name__
    if path != "$":
        assert f"`{path}`" in err.message


def test_a_result_cannot_be_built_with_two_outcomes() -> None:
    with pytest.raises(ValueError, match="has value and error"):
        p.TaskResult(task_id="t", attempt=1, value=RAW, error=ERROR)


def test_the_engine_side_messages_tolerate_new_fields() -> None:
    task = p.decode(
        b'{"task_id": "t", "execution_id": "e", "kind": "step", "name": "s", "later": 1}', p.Task
    )
    assert task.name == "s"
    assert p.decode(b'{"cancelled": true, "lease": 30}', p.HeartbeatResponse).cancelled


# --- errors as data -------------------------------------------------------------------


class GatewayError(Exception):
    pass


class PaymentDeclined(GatewayError):
    pass


def raise_chained() -> None:
    try:
        try:
            {}["card"]
        except KeyError:
            raise OSError("connection reset") from None
    except OSError as exc:
        try:
            raise PaymentDeclined("declined") from exc
        except PaymentDeclined:
            raise RuntimeError("charging failed")  # noqa: B904  (the implicit context)


def test_from_exception_follows_causes_and_context() -> None:
    with pytest.raises(RuntimeError) as caught:
        raise_chained()
    info = p.ErrorInfo.from_exception(caught.value)
    chain = []
    link: p.ErrorInfo | None = info
    while link is not None:
        chain.append(link)
        link = link.cause
    # RuntimeError during PaymentDeclined (context), from OSError (cause); the KeyError
    # was suppressed with `from None`
    assert [e.name for e in chain] == ["RuntimeError", "PaymentDeclined", "OSError"]
    assert chain[1].type == f"{__name__}.PaymentDeclined"
    assert chain[1].bases[0] == f"{__name__}.GatewayError"
    assert chain[1].message == "declined"
    assert "raise PaymentDeclined" in chain[1].traceback
    assert "connection reset" not in chain[0].traceback  # each has its own stack only
    assert "Caused by" in info.format() and "connection reset" in info.format()


def test_from_exception_is_bounded_and_survives_cycles() -> None:
    exc: BaseException = ValueError("0")
    for i in range(1, 20):
        nxt = ValueError(str(i))
        nxt.__cause__ = exc
        exc = nxt
    depth = 0
    link: p.ErrorInfo | None = p.ErrorInfo.from_exception(exc, depth=5)
    while link is not None:
        depth += 1
        link = link.cause
    assert depth == 6  # the error and five causes

    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    info = p.ErrorInfo.from_exception(a)
    assert info.cause is not None and info.cause.cause is None


def test_names_and_types_route_as_a_local_exception_does() -> None:
    with pytest.raises(PaymentDeclined) as caught:
        raise PaymentDeclined("no")
    exc = caught.value
    info = p.decode(p.encode(p.ErrorInfo.from_exception(exc)), p.ErrorInfo)  # as sent
    assert info.names() == Outcome.from_exception(exc).names
    assert info.is_a(PaymentDeclined) and info.is_a(GatewayError) and info.is_a(Exception)
    assert not info.is_a(ValueError)

    timeout = p.ErrorInfo.from_exception(TimeoutError(), kind="timeout")
    assert timeout.names() == Outcome.from_exception(TimeoutError()).names

    remote = p.ErrorInfo(kind="error", name="payment_failed", message="x")  # from TypeScript
    assert remote.names() == ("payment_failed",)
    assert not remote.is_a(Exception)


def test_to_dict_is_the_recorded_shape() -> None:
    with pytest.raises(PaymentDeclined) as caught:
        raise PaymentDeclined("no")
    recorded = exception_error(caught.value, "timeout")
    as_dict = p.ErrorInfo.from_exception(caught.value, kind="timeout").to_dict()
    assert {k: as_dict[k] for k in recorded} == recorded
    assert set(as_dict) - set(recorded) == {"bases"}

    returned = {"kind": "error", "name": "payment_failed", "message": "m", "data": {"x": [1]}}
    assert p.ErrorInfo.from_dict(returned).to_dict() == returned
    unserialisable = {"kind": "unserialisable", "name": "SerializationError", "message": "m"}
    assert p.ErrorInfo.from_dict(unserialisable).to_dict() == unserialisable
    assert p.ErrorInfo.from_dict(ERROR.to_dict()) == ERROR
    stuck = p.ErrorInfo.from_dict({"kind": "non_determinism", "message": "m"})
    assert stuck.name == "non_determinism"


def test_an_error_message_is_always_storable() -> None:
    info = p.ErrorInfo.from_exception(ValueError("bad \udc80 byte"))
    assert "\\udc80" in info.message
    p.encode(info)


# --- the published schema and the documentation ----------------------------------------


def test_the_committed_schema_matches_the_types() -> None:
    committed = (DOCS / "protocol.schema.json").read_text()
    assert committed == p.schema_text(), (
        "docs/protocol.schema.json is out of date; regenerate it with "
        "`python -m cerebelum.protocol > docs/protocol.schema.json`"
    )


def test_the_schema_defines_every_message() -> None:
    defs = p.json_schema()["$defs"]
    for cls in (*p.MESSAGES, *p.COMMANDS, p.ErrorInfo, p.RetryPolicy, p.TaskKind):
        assert cls.__name__ in defs
    assert "Command" in defs
    assert defs["TaskResult"]["additionalProperties"] is False
    assert "additionalProperties" not in defs["Task"]
    # every field says what it is for
    for name, schema in defs.items():
        for field, prop in schema.get("properties", {}).items():
            if field != "type":  # a command's tag
                assert prop.get("description"), f"{name}.{field} has no description"


EXAMPLE = re.compile(r"```json (\w+)\n(.*?)```", re.S)


def test_the_documentation_examples_are_valid_messages() -> None:
    found: set[str] = set()
    for type_name, body in EXAMPLE.findall((DOCS / "protocol.md").read_text()):
        type_ = getattr(p, type_name)
        message = p.decode(body.encode(), type_)
        assert p.decode(p.encode(message), type_) == message
        if isinstance(message, p.Task):
            message.history()  # the events are events
        found.add(type(message).__name__)
        if isinstance(message, p.TaskResult) and message.commands:
            found |= {type(c).__name__ for c in message.commands}
    expected = {c.__name__ for c in (*p.MESSAGES, *p.COMMANDS)}
    assert expected <= found, f"protocol.md shows no example of {sorted(expected - found)}"
