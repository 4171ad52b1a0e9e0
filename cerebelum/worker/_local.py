"""Running one attempt of a step in this process, and turning its outcome into an event.

A step's outcome is matched against its node's rules here, at the moment it
happens, and the matching rule's index goes into the event; recovery reads it back
and never calls a predicate again.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from msgspec import Raw

from cerebelum import events as ev
from cerebelum.declared import decode_args, returns, step_param
from cerebelum.dsl._step import Context, Error, StepDef, unwrap
from cerebelum.dsl._workflow import Workflow
from cerebelum.engine._context import ActivityInfo, current_activity
from cerebelum.engine._match import Outcome, matches
from cerebelum.engine._state import ExecutionState, NodeStatus
from cerebelum.errors import SerializationError, StepTimeoutError
from cerebelum.protocol import ErrorInfo
from cerebelum.serde import decode, decode_json, encode, roundtrip, storable_text

if TYPE_CHECKING:
    from cerebelum.code._activity import ActivityDef

__all__ = [
    "activity_outcome",
    "attempt_activity",
    "attempt_step",
    "exception_error",
    "route_for",
    "run_step",
    "state_reader",
    "step_arguments",
    "step_outcome",
    "unserialisable",
]


def route_for(wf: Workflow, node: str, outcome: Outcome) -> int | None:
    """The index of the first rule of ``node`` that ``outcome`` matches, if any."""
    rules = wf.blueprint.rules.get(node)
    if not rules:
        return None
    for index, rule in enumerate(rules):
        if matches(rule.pattern, wf.live.get((node, index)), outcome):
            return index
    return None


def exception_error(exc: BaseException, kind: str = "exception") -> dict[str, Any]:
    """The structured form of an exception, as histories and results carry it."""
    cls = type(exc)
    return {
        "kind": kind,
        "name": cls.__name__,
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "message": storable_text(str(exc) or cls.__name__),
        "traceback": storable_text("".join(traceback.format_exception(exc))),
    }


def step_arguments(
    wf: Workflow, sd: StepDef, inputs: Any, raw_of: Callable[[str], bytes | None]
) -> dict[str, Any]:
    """The keyword arguments of step ``sd``: the workflow's inputs, the results it reads.

    ``inputs`` is the workflow's input as plain JSON data; ``raw_of(name)`` the recorded
    result of step ``name`` (``None`` when it has none: not run, skipped, failed).
    """
    kwargs: dict[str, Any] = {}
    for p in sd.params:
        declared = step_param(wf, sd, p.name)
        if p.name == "inputs":
            raw = raw_of("inputs") if declared is not Any else None
            kwargs["inputs"] = (
                inputs
                if raw is None
                else decode(raw, declared, f"the inputs of workflow {wf.name!r}")
            )
            continue
        result = raw_of(p.name)
        kwargs[p.name] = (
            decode(result, declared, f"the result of step {p.name!r}") if result else None
        )
    return kwargs


def state_reader(state: ExecutionState) -> Callable[[str], bytes | None]:
    """``raw_of`` for :func:`step_arguments` over a folded execution."""

    def raw_of(name: str) -> bytes | None:
        if name == "inputs":
            return bytes(state.inputs)
        n = state.node(name)
        return bytes(n.result) if n.status is NodeStatus.COMPLETED and n.result else None

    return raw_of


async def attempt_step(
    wf: Workflow, name: str, ctx: Context, arguments: Callable[[], dict[str, Any]],
    timeout: float | None,
) -> tuple[bytes | None, ErrorInfo | None]:  # fmt: skip
    """Run one attempt of step ``name``: its result as JSON, or how it failed.

    The same for the engine's own worker and a remote one; what follows from the
    outcome (the rule it matches, whether it is retried) is the engine's to say, in
    :func:`step_outcome`.
    """
    sd = wf.steps[name]
    try:
        kwargs = arguments()
        call = sd.fn(ctx, **kwargs) if sd.is_async else asyncio.to_thread(sd.fn, ctx, **kwargs)
        result = await (asyncio.wait_for(call, timeout) if timeout is not None else call)
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        if timeout is not None and not str(exc):
            exc = StepTimeoutError(f"step {name!r} did not finish within {timeout:g}s", step=name)
        return None, ErrorInfo.from_exception(exc, "timeout")
    except Exception as exc:
        return None, ErrorInfo.from_exception(exc)
    value = unwrap(result)
    if isinstance(value, Error):
        try:
            data, _ = roundtrip(value.data, f"the data of the Error returned by step {name!r}")
        except SerializationError as exc:
            return None, unserialisable(exc)
        info = ErrorInfo(kind="error", name=storable_text(value.name),
                         message=storable_text(value.message or value.name), data=Raw(data))  # fmt: skip
        return None, info
    # the SDK's {"ok": v} is not what the return annotation describes
    declared = returns(sd.fn) if value is result else Any
    try:
        raw, _ = roundtrip(value, f"the result of step {name!r}", declared, "-> {}")
    except SerializationError as exc:
        return None, unserialisable(exc)
    return raw, None


def unserialisable(exc: SerializationError) -> ErrorInfo:
    """A result that cannot be stored, as the failure it is (never retried)."""
    return ErrorInfo(kind="unserialisable", name="SerializationError", message=exc.message)


def step_outcome(
    wf: Workflow, name: str, attempt: int, raw: bytes | None, error: ErrorInfo | None
) -> tuple[type[ev.Event], dict[str, Any]]:
    """The event an attempt's outcome records, with the rule it matched.

    A failure is matched by the names and types it carries as data (the same whether the
    step ran here, in another process or in another language), and retried when the
    step's policy allows it.
    """
    if error is None:
        assert raw is not None
        route = None
        if wf.blueprint.rules.get(name):
            try:
                route = route_for(wf, name, Outcome(ok=True, value=decode_json(raw)))
            except Exception as exc:
                info = exception_error(exc, kind="predicate_error")
                info["message"] = f"a rule's predicate on step {name!r} raised: {info['message']}"
                return ev.StepFailed, {"step": name, "attempt": attempt, "error": info,
                                       "retryable": False}  # fmt: skip
        return ev.StepCompleted, {"step": name, "attempt": attempt, "result": ev.Raw(raw),
                                  "route": route}  # fmt: skip
    outcome = Outcome.from_error(error)
    retryable = error.kind in ("exception", "timeout") and wf.steps[name].retry.allows_names(
        outcome.names
    )
    recorded = error.to_dict()
    try:
        route = route_for(wf, name, outcome)
    except Exception as pexc:  # a predicate never sees failures, but be safe
        recorded["message"] += f" (and a rule's predicate raised {pexc!r})"
        route = None
    return ev.StepFailed, {"step": name, "attempt": attempt, "error": recorded,
                           "retryable": retryable, "route": route}  # fmt: skip


async def run_step(
    wf: Workflow, state: ExecutionState, name: str, attempt: int, info: ActivityInfo | None = None
) -> tuple[type[ev.Event], dict[str, Any]]:
    """Run one attempt of step ``name`` here; return the outcome event's type and fields.

    ``info``, when given, is what ``activity_info()`` and ``child()`` see inside the step.
    """
    sd = wf.steps[name]
    node = state.node(name)
    ctx = Context(state.execution_id, wf.name, name, attempt, node.iteration, state.inputs_value)
    if info is not None:
        info.idempotency_key = ctx.idempotency_key
        current_activity.set(info)
    raw, error = await attempt_step(
        wf,
        name,
        ctx,
        lambda: step_arguments(wf, sd, state.inputs_value, state_reader(state)),
        sd.timeout,
    )
    return step_outcome(wf, name, attempt, raw, error)


async def attempt_activity(
    adef: ActivityDef, info: ActivityInfo, args: Any
) -> tuple[bytes | None, ErrorInfo | None]:
    """Run one attempt of an activity, here or on a worker: its result as JSON, or how it
    failed. ``args`` is the recorded call, ``{"args": [...], "kwargs": {...}}``."""
    current_activity.set(info)
    try:
        inputs = decode_args(adef.fn, args, f"the arguments of activity {adef.name!r}")
        call = (
            adef.fn(*inputs.get("args", ()), **inputs.get("kwargs", {}))
            if adef.is_async
            else asyncio.to_thread(adef.fn, *inputs.get("args", ()), **inputs.get("kwargs", {}))
        )
        result = await _watched(call, adef, info)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        kind = "timeout" if isinstance(exc, TimeoutError) else "exception"
        if isinstance(exc, TimeoutError) and not str(exc):
            exc = StepTimeoutError(
                f"activity {adef.name!r} did not finish within {adef.timeout:g}s"
            )
        return None, ErrorInfo.from_exception(exc, kind)
    try:
        raw = encode(result, f"the result of activity {adef.name!r}", returns(adef.fn), "-> {}")
    except SerializationError as exc:
        return None, unserialisable(exc)
    return raw, None


def activity_outcome(
    adef: ActivityDef | None, p: int, attempt: int, raw: bytes | None, error: ErrorInfo | None
) -> tuple[type[ev.Event], dict[str, Any]]:
    """The event an activity attempt's outcome records; a failure is retried when the
    activity's policy allows it (matched by the error's names, wherever it ran)."""
    if error is None:
        assert raw is not None
        return ev.ActivityCompleted, {"position": p, "attempt": attempt, "result": ev.Raw(raw)}
    retry = adef.retry if adef is not None else None
    retryable = error.kind in ("exception", "timeout") and (
        retry is None or retry.allows_names(error.names())
    )
    return ev.ActivityFailed, {
        "position": p,
        "attempt": attempt,
        "error": error.to_dict(),
        "retryable": retryable,
    }


async def _watched(call: Any, adef: ActivityDef, info: ActivityInfo) -> Any:
    """Await ``call`` under the activity's timeout and heartbeat timeout."""
    if adef.heartbeat_timeout is None:
        return await (asyncio.wait_for(call, adef.timeout) if adef.timeout is not None else call)
    task = asyncio.ensure_future(call)
    deadline = time.monotonic() + adef.timeout if adef.timeout is not None else None
    try:
        while True:
            await asyncio.wait({task}, timeout=adef.heartbeat_timeout / 2)
            if task.done():
                return task.result()
            now = time.monotonic()
            if now - info.last_heartbeat > adef.heartbeat_timeout:
                raise StepTimeoutError(
                    f"activity {adef.name!r} sent no heartbeat for {adef.heartbeat_timeout:g}s"
                )
            if deadline is not None and now > deadline:
                raise StepTimeoutError(
                    f"activity {adef.name!r} did not finish within {adef.timeout:g}s"
                )
    finally:
        task.cancel()
