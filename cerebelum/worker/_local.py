"""Running one attempt of a step in this process, and turning its outcome into an event.

A step's outcome is matched against its node's rules here, at the moment it
happens, and the matching rule's index goes into the event; recovery reads it back
and never calls a predicate again.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from cerebelum import events as ev
from cerebelum.declared import returns, step_param
from cerebelum.dsl._step import Context, Error, StepDef, unwrap
from cerebelum.dsl._workflow import Workflow
from cerebelum.engine._context import ActivityInfo, current_activity
from cerebelum.engine._match import Outcome, matches
from cerebelum.engine._state import ExecutionState, NodeStatus
from cerebelum.errors import SerializationError, StepTimeoutError
from cerebelum.serde import decode, decode_json, roundtrip, storable_text

__all__ = ["exception_error", "route_for", "run_step"]


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


def _arguments(wf: Workflow, sd: StepDef, state: ExecutionState) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for p in sd.params:
        declared = step_param(wf, sd, p.name)
        if p.name == "inputs":
            kwargs["inputs"] = (
                state.inputs_value
                if declared is Any
                else decode(state.inputs, declared, f"the inputs of workflow {wf.name!r}")
            )
            continue
        n = state.node(p.name)
        kwargs[p.name] = (
            decode(n.result, declared, f"the result of step {p.name!r}")
            if n.status is NodeStatus.COMPLETED and n.result
            else None
        )
    return kwargs


async def run_step(
    wf: Workflow, state: ExecutionState, name: str, attempt: int, info: ActivityInfo | None = None
) -> tuple[type[ev.Event], dict[str, Any]]:
    """Run one attempt of step ``name``; return the outcome event's type and fields.

    ``info``, when given, is what ``activity_info()`` and ``child()`` see inside the step.
    """
    sd = wf.steps[name]
    node = state.node(name)
    ctx = Context(state.execution_id, wf.name, name, attempt, node.iteration, state.inputs_value)
    if info is not None:
        info.idempotency_key = ctx.idempotency_key
        current_activity.set(info)
    try:
        kwargs = _arguments(wf, sd, state)
        call = sd.fn(ctx, **kwargs) if sd.is_async else asyncio.to_thread(sd.fn, ctx, **kwargs)
        result = await (asyncio.wait_for(call, sd.timeout) if sd.timeout is not None else call)
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        if sd.timeout is not None and not str(exc):
            exc = StepTimeoutError(
                f"step {name!r} did not finish within {sd.timeout:g}s", step=name
            )
        return _failure(wf, sd, name, attempt, exc, kind="timeout")
    except Exception as exc:
        return _failure(wf, sd, name, attempt, exc)
    value = unwrap(result)
    # the SDK's {"ok": v} is not what the return annotation describes
    return _success(wf, name, attempt, value, returns(sd.fn) if value is result else Any)


def _success(
    wf: Workflow, name: str, attempt: int, result: Any, declared: Any = Any
) -> tuple[type[ev.Event], dict[str, Any]]:
    if isinstance(result, Error):
        try:
            _, data = roundtrip(result.data, f"the data of the Error returned by step {name!r}")
        except SerializationError as exc:
            return _unserialisable(name, attempt, exc)
        error = {
            "kind": "error",
            "name": storable_text(result.name),
            "message": storable_text(result.message or result.name),
            "data": data,
        }
        route = route_for(wf, name, Outcome.error(result.name))
        return ev.StepFailed, {
            "step": name,
            "attempt": attempt,
            "error": error,
            "retryable": False,
            "route": route,
        }
    try:
        raw, value = roundtrip(result, f"the result of step {name!r}", declared, "-> {}")
    except SerializationError as exc:
        return _unserialisable(name, attempt, exc)
    if declared is not Any:
        value = decode_json(raw)  # rules match the JSON form, whatever the declaration
    try:
        route = route_for(wf, name, Outcome(ok=True, value=value))
    except Exception as exc:
        error = exception_error(exc, kind="predicate_error")
        error["message"] = f"a rule's predicate on step {name!r} raised: {error['message']}"
        return ev.StepFailed, {"step": name, "attempt": attempt, "error": error, "retryable": False}
    return ev.StepCompleted, {
        "step": name,
        "attempt": attempt,
        "result": ev.Raw(raw),
        "route": route,
    }


def _unserialisable(
    name: str, attempt: int, exc: SerializationError
) -> tuple[type[ev.Event], dict[str, Any]]:
    error = {"kind": "unserialisable", "name": "SerializationError", "message": exc.message}
    return ev.StepFailed, {"step": name, "attempt": attempt, "error": error, "retryable": False}


def _failure(
    wf: Workflow, sd: StepDef, name: str, attempt: int, exc: BaseException, kind: str = "exception"
) -> tuple[type[ev.Event], dict[str, Any]]:
    error = exception_error(exc, kind)
    retryable = sd.retry.allows(exc)
    try:
        route = route_for(wf, name, Outcome.from_exception(exc))
    except Exception as pexc:  # a predicate never sees failures, but be safe
        error["message"] += f" (and a rule's predicate raised {pexc!r})"
        route = None
    fields = {
        "step": name,
        "attempt": attempt,
        "error": error,
        "retryable": retryable,
        "route": route,
    }
    return ev.StepFailed, fields
