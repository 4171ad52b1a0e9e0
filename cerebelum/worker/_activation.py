"""A code workflow's activation on a worker: its history in, the commands it gives out.

The worker rebuilds the coroutine from the history the task carries, with the same
runtime the embedded engine uses: every recorded command is returned from the journal,
and a command asked for at a position the history holds something else at is a
``NonDeterminismError``, exactly as in the engine's own process. It runs the coroutine
until it waits on something not recorded yet (or ends), and answers with the commands it
asked for on the way, in program order: the engine records them as events
(``ScheduleActivity`` becomes ``ActivityScheduled``...), and sends the next activation
once one of them has an outcome.

The coroutine is rebuilt for every activation (no coroutine is kept between two): any
worker that hosts the workflow can take any activation, and one that dies loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec

from cerebelum import events as ev
from cerebelum import protocol as p
from cerebelum.clock import VirtualClock
from cerebelum.dsl._workflow import lookup_workflow
from cerebelum.engine._code import WorkflowRuntime, drive
from cerebelum.engine._code_state import CodeState, evolve_code, fold_code

__all__ = ["activate"]

#: The longest an activation may run the workflow's own code (it should only await).
MAX_ACTIVATION = 60.0


class _Run:
    """What the runtime reads of an execution (the engine's Run, reduced to that)."""

    def __init__(self, execution_id: str, wf: Any, state: CodeState) -> None:
        self.id = execution_id
        self.wf = wf
        self.kind = "code"
        self.state = state
        self.runtime: WorkflowRuntime | None = None
        self.task: asyncio.Task[None] | None = None
        self.activities: dict[int, Any] = {}
        self.launched: set[int] = set()
        self.heartbeats: dict[int, Any] = {}
        self.evicting = False


class _Recorder:
    """What the runtime asks of an engine, on a worker: each event it records becomes a
    command; nothing runs here but the workflow's own code."""

    dispatch = "workers"  # activities in flight are the engine's to run again, not ours
    _closing = False

    def __init__(self, now: float) -> None:
        self.clock = VirtualClock()
        self.clock.set(now)
        self.commands: list[Any] = []

    def workflow(self, wf: Any) -> Any:
        return wf if hasattr(wf, "kind") else lookup_workflow(wf)

    def _buffer_started(self, run: Any, key: Any, attempt: int) -> None:
        pass

    def _watch_child(self, *args: Any) -> None:
        pass

    def _apply(self, run: _Run, cls: type[ev.Event], **fields: Any) -> None:
        event = cls(seq=run.state.seq + 1, at=self.clock.timestamp(), **fields)
        evolve_code(run.state, event)
        command = _command(run, event, self.clock.timestamp())
        if command is not None:
            self.commands.append(command)


def _command(run: _Run, e: ev.Event, now: float) -> Any:
    """The command that asks the engine to record ``e``; ``None`` for what another one
    carries already (an approval's or a signal's timeout timer)."""
    match e:
        case ev.ActivityScheduled(position=pos, activity=name, args=args, retry=retry):
            adef = run.activities.get(pos)
            policy = p.RetryPolicy(**retry) if retry else None
            return p.ScheduleActivity(
                position=pos, activity=name, args=msgspec.Raw(bytes(args)),
                queue=getattr(adef, "queue", "") or "", retry=policy,
                start_to_close_timeout=getattr(adef, "timeout", None) or None,
                heartbeat_timeout=getattr(adef, "heartbeat_timeout", None) or None,
            )  # fmt: skip
        case ev.TimerStarted(timer=timer, fire_at=fire_at):
            what, _, where = timer.partition(":")
            if what != "sleep":
                return None
            return p.StartTimer(position=int(where), seconds=max(0.0, fire_at - now))
        case ev.ApprovalRequested(step=step, name=name, timeout_at=timeout_at):
            timeout = timeout_at - now if timeout_at is not None else None
            return p.RequestApproval(position=int(step), name=name, timeout=_positive(timeout))
        case ev.SignalAwaited(position=pos, name=name, timeout_at=timeout_at):
            timeout = timeout_at - now if timeout_at is not None else None
            return p.AwaitSignal(position=pos, name=name, timeout=_positive(timeout))
        case ev.SignalDelivered(position=pos, name=name):
            return p.AwaitSignal(position=pos, name=name)  # the engine hands it over again
        case ev.ChildStarted(position=pos, workflow=workflow, args=args):
            return p.StartChild(position=pos, workflow=workflow, args=msgspec.Raw(bytes(args)))
        case ev.MarkerRecorded(position=pos, kind=kind, value=value):
            return p.RecordMarker(position=pos, kind=kind, value=msgspec.Raw(bytes(value)))
        case ev.PatchApplied(name=name):
            return p.ApplyPatch(name=name)
        case ev.ExecutionCompleted(output=output):
            return p.CompleteWorkflow(output=msgspec.Raw(bytes(output)))
        case ev.ExecutionFailed(error=error):
            return p.FailWorkflow(error=p.ErrorInfo.from_dict(error))
        case ev.ExecutionStuck(error=error):
            return p.ReportNonDeterminism(
                position=int(error.get("position") or 0), recorded=str(error.get("recorded", "")),
                requested=str(error.get("requested", "")), message=str(error.get("message", "")),
            )  # fmt: skip
    return None


def _positive(seconds: float | None) -> float | None:
    return None if seconds is None else max(seconds, 1e-3)


async def activate(wf: Any, task: p.Task) -> list[Any]:
    """Run the code workflow ``wf`` against the history ``task`` carries; its new commands."""
    recorder = _Recorder(task.now if task.now is not None else time.time())
    run = _Run(task.execution_id, wf, fold_code(task.history(), task.execution_id))
    run.runtime = WorkflowRuntime(recorder, run)  # type: ignore[arg-type]
    run.task = asyncio.create_task(drive(recorder, run), name=f"cerebelum-activation-{run.id}")  # type: ignore[arg-type]
    deadline = time.monotonic() + MAX_ACTIVATION
    try:
        while not run.task.done() and not run.runtime.blocked():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"workflow {wf.name!r} ran its own code for {MAX_ACTIVATION:g}s without "
                    "waiting on a command: a workflow only awaits activities, sleeps, "
                    "approvals, signals and children"
                )
            await asyncio.sleep(0)
        if run.task.done():
            run.task.result()  # what drive() could not record, raised here
    finally:
        if not run.task.done():
            run.evicting = True  # drive() ends quietly: this coroutine is done with
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
    return recorder.commands
