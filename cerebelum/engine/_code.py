"""Code workflows in the engine: the coroutine, its commands, its activities, its children.

While the process lives, a code workflow's coroutine stays in memory: a result is
handed to it once its event is committed, and it carries on from where it awaited.
There is no replay on that path. A coroutine is rebuilt by running the function again
from the top, with every recorded result returned from the journal, in two cases
only: after a crash (or a restart), and when a long wait evicted it from memory.

Commands are matched to the journal by position, in program order. When the code asks
at a position for something other than what the history holds there, the execution
stops with a NonDeterminismError (status ``stuck``) and keeps its history, so that an
engine with fixed code resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
import uuid
from typing import TYPE_CHECKING, Any

from cerebelum import events as ev
from cerebelum.code._activity import ActivityDef
from cerebelum.code._commands import Decision
from cerebelum.declared import encode_args, inputs_of, result_type, returns
from cerebelum.errors import (
    ActivityError,
    ChildFailedError,
    NonDeterminismError,
    SerializationError,
    SignalTimeoutError,
)
from cerebelum.protocol import ErrorInfo
from cerebelum.serde import decode, decode_json, encode
from cerebelum.worker._local import activity_outcome, attempt_activity, exception_error

from ._code_state import WAITS, CodeState, Command
from ._context import ActivityInfo, current_runtime

if TYPE_CHECKING:
    from ._engine import Engine
    from ._run import Run

__all__ = [
    "WorkflowRuntime",
    "drive",
    "run_activity",
    "settle",
]

logger = logging.getLogger("cerebelum.engine")


class WorkflowRuntime:
    """What ``activity()``, ``sleep()`` and the others talk to inside one coroutine."""

    def __init__(self, engine: Engine, run: Run) -> None:
        self.engine = engine
        self.run = run
        self.position = 0
        commands = run.state.commands
        self.replay_len = max(commands) + 1 if commands else 0
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self.loop = asyncio.get_running_loop()

    @property
    def replaying(self) -> bool:
        return self.position < self.replay_len

    @property
    def state(self) -> CodeState:
        return self.run.state

    def _next(self, kind: str, name: str, args: bytes | None = None) -> tuple[int, Command | None]:
        p = self.position
        self.position += 1
        cmd = self.state.commands.get(p)
        if cmd is not None:
            same_args = args is None or cmd.args is None or bytes(cmd.args) == args
            if cmd.kind != kind or cmd.name != name or not same_args:
                recorded = f"{cmd.kind} {cmd.name!r}" + (
                    f" with {bytes(cmd.args).decode()}" if cmd.args else ""
                )
                asked = f"{kind} {name!r}" + (f" with {args.decode()}" if args else "")
                raise NonDeterminismError(
                    f"execution {self.run.id!r} is not deterministic: at position {p} its history "
                    f"holds {recorded}, but the code now asks for {asked}",
                    execution_id=self.run.id,
                    position=p,
                    recorded=recorded,
                    requested=asked,
                )
        return p, cmd

    def _future(self, p: int, cmd: Command | None) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self.loop.create_future()
        if cmd is not None and cmd.settled:
            settle(fut, cmd, result_type(self, p))
        else:
            self.futures[p] = fut
        return fut

    def _record(self, cls: type[ev.Event], **fields: Any) -> None:
        self.engine._apply(self.run, cls, **fields)

    # --- the commands ---------------------------------------------------------------

    def activity(
        self, adef: ActivityDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        raw = encode_args(adef.fn, args, kwargs, f"the arguments of activity {adef.name!r}")
        p, cmd = self._next("activity", adef.name, raw)
        self.run.activities[p] = adef
        if cmd is None:
            retry = (
                adef.retry.to_spec()
                if adef.retry is not None and adef.retry.max_attempts > 1
                else None
            )
            self._record(
                ev.ActivityScheduled, position=p, activity=adef.name, args=ev.Raw(raw), retry=retry
            )
        elif cmd.status in ("pending", "running") and p not in self.run.launched:
            # in flight when the last engine stopped: it runs again, with the same key
            # (where workers run activities, its task is in the store: see _dispatch.py)
            self.run.launched.add(p)
            if self.engine.dispatch == "local":
                self.engine._buffer_started(self.run, p, cmd.attempt + (cmd.status == "running"))
        return self._future(p, cmd)

    def sleep(self, seconds: float) -> asyncio.Future[Any]:
        p, cmd = self._next("sleep", "sleep")
        if cmd is None:
            self._record(
                ev.TimerStarted, timer=f"sleep:{p}", fire_at=self.engine.clock.timestamp() + seconds
            )
        return self._future(p, cmd)

    def approval(self, name: str, timeout: float | None) -> asyncio.Future[Any]:
        p, cmd = self._next("approval", name)
        if cmd is None:
            timeout_at = self.engine.clock.timestamp() + timeout if timeout is not None else None
            self._record(ev.ApprovalRequested, step=str(p), name=name, timeout_at=timeout_at)
            if timeout_at is not None:
                self._record(ev.TimerStarted, timer=f"approval:{p}", fire_at=timeout_at)
        return self._future(p, cmd)

    def signal(self, name: str, timeout: float | None) -> asyncio.Future[Any]:
        p, cmd = self._next("signal", name)
        if cmd is None:
            queued = next((payload for n, payload in self.state.signals if n == name), None)
            if queued is not None:
                self._record(ev.SignalDelivered, position=p, name=name, payload=queued)
            else:
                timeout_at = (
                    self.engine.clock.timestamp() + timeout if timeout is not None else None
                )
                self._record(ev.SignalAwaited, position=p, name=name, timeout_at=timeout_at)
                if timeout_at is not None:
                    self._record(ev.TimerStarted, timer=f"signal:{p}", fire_at=timeout_at)
        return self._future(p, cmd)

    def child(self, wf: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        workflow = self.engine.workflow(wf)
        raw = encode_args(
            workflow, args, kwargs, f"the arguments of child workflow {workflow.name!r}"
        )
        p, cmd = self._next("child", workflow.name, raw)
        if cmd is None:
            self._record(
                ev.ChildStarted,
                position=p,
                child_id=f"{self.run.id}.{p}",
                workflow=workflow.name,
                args=ev.Raw(raw),
            )
        elif not cmd.settled and p not in self.run.launched:
            self.run.launched.add(p)
            self.engine._watch_child(
                self.run, p, cmd.child_id or f"{self.run.id}.{p}", workflow.name, cmd.args
            )
        return self._future(p, cmd)

    def marker(self, kind: str) -> Any:
        p, cmd = self._next("marker", kind)
        if cmd is not None:
            return decode_json(cmd.result)
        value: Any
        if kind == "now":
            value = self.engine.clock.timestamp()
        elif kind == "uuid4":
            value = str(uuid.uuid4())
        else:
            value = _random.random()
        self._record(ev.MarkerRecorded, position=p, kind=kind, value=ev.Raw(encode(value, kind)))
        return value

    def patched(self, name: str) -> bool:
        if name in self.state.patches:
            return True
        if self.replaying:
            return False  # this execution ran this part on the old code: keep to it
        self._record(ev.PatchApplied, name=name)
        return True

    def blocked(self) -> bool:
        """Whether the coroutine waits on a command and has nothing to run now."""
        task = self.run.task
        if task is None or task.done() or getattr(task, "_fut_waiter", None) is None:
            return False
        return not any(f.done() for f in self.futures.values())


def settle(fut: asyncio.Future[Any], cmd: Command, declared: Any = Any) -> None:
    """Hand a command's recorded outcome, read as ``declared``, to the coroutine waiting on it."""
    if fut.done():
        return
    kind = cmd.kind
    if cmd.status == "done":
        try:
            what = f"the result of {kind} {cmd.name!r}"
            value = decode(cmd.result, declared, what) if cmd.result is not None else None
        except SerializationError as err:  # the declaration changed since it was recorded
            fut.set_exception(err)
            return
        if kind == "approval":
            value = Decision(
                approved=value["approved"], data=value["data"], timed_out=value["timed_out"]
            )
        elif kind == "sleep":
            value = None
        fut.set_result(value)
        return
    error = cmd.error or {}
    if kind == "activity":
        exc: BaseException = ActivityError(
            f"activity {cmd.name!r} failed after {cmd.attempt} attempt(s): {error.get('message', '')}",
            activity=cmd.name, error=error, attempts=cmd.attempt,
        )  # fmt: skip
    elif kind == "signal":
        exc = SignalTimeoutError(f"no signal {cmd.name!r} arrived in time", signal=cmd.name)
    else:
        exc = ChildFailedError(
            f"child {cmd.child_id!r} ({cmd.name}) did not complete: {error.get('message', '')}",
            child_id=cmd.child_id, error=error,
        )  # fmt: skip
    fut.set_exception(exc)


async def drive(engine: Engine, run: Run) -> None:
    """Run a code workflow's coroutine to its end, recording how it ended."""
    current_runtime.set(run.runtime)
    wf = run.wf
    try:
        inputs = inputs_of(wf, run.state.inputs)
        result = await wf.fn(*inputs.get("args", ()), **inputs.get("kwargs", {}))
    except NonDeterminismError as exc:
        logger.error("%s", exc.message, extra={"execution_id": run.id})
        fields = {k: getattr(exc, k, None) for k in ("position", "recorded", "requested")}
        engine._apply(
            run,
            ev.ExecutionStuck,
            error={"kind": "non_determinism", "message": exc.message, **fields},
        )
        return
    except asyncio.CancelledError:
        if run.evicting or run.state.ended or engine._closing:
            return
        raise
    except Exception as exc:
        engine._apply(run, ev.ExecutionFailed, error=exception_error(exc))
        return
    try:
        raw = encode(result, f"the output of workflow {wf.name!r}", returns(wf.fn), "-> {}")
    except SerializationError as exc:
        engine._apply(
            run, ev.ExecutionFailed, error={"kind": "unserialisable", "message": exc.message}
        )
        return
    engine._apply(run, ev.ExecutionCompleted, output=ev.Raw(raw))


async def run_activity(
    engine: Engine, run: Run, p: int, attempt: int
) -> tuple[type[ev.Event], dict[str, Any]] | None:
    """Run one attempt of the activity at position ``p`` here; return its outcome event."""
    adef = run.activities[p]
    cmd = run.state.commands[p]
    if adef.remote:  # never retried: no attempt here can go otherwise
        unhosted = ErrorInfo(
            kind="not_hosted", name="ActivityNotHosted",
            message=f"activity {adef.name!r} is called by name, no @activity of that name is "
            "declared in this process, and this engine runs the activities itself "
            "(dispatch='local'): declare it here, or run the workflow through a server whose "
            "workers host it (docs/workers.md)",
        )  # fmt: skip
        return activity_outcome(adef, p, attempt, None, unhosted)
    current_runtime.set(None)  # an activity is ordinary code, not part of the workflow
    info = ActivityInfo(
        run.id, adef.name, attempt, f"{run.id}:{p}", run.heartbeats.get(p), time.monotonic(), engine
    )
    try:
        raw, error = await attempt_activity(adef, info, cmd.args)
    except asyncio.CancelledError:
        return None
    if error is not None:
        run.heartbeats[p] = info.heartbeat_details
    return activity_outcome(adef, p, attempt, raw, error)


def waiting_only(state: CodeState) -> bool:
    """Whether everything the workflow waits on is a sleep, an approval or a signal."""
    pending = [c for c in state.commands.values() if not c.settled]
    return bool(pending) and all(c.kind in WAITS for c in pending)
