"""The commands of a code workflow's activation, recorded as the events they ask for.

A worker runs the coroutine (``cerebelum/worker/_activation.py``) and answers with the
commands it gave, in program order; each becomes the event the engine's own runtime
records for it (``ScheduleActivity`` is ``ActivityScheduled``, ``StartTimer`` a
``TimerStarted`` at the engine's clock...), folded and decided as any other. A command at
a position the history already holds is one an earlier activation gave: it is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cerebelum import events as ev
from cerebelum import protocol as p
from cerebelum.code._activity import ActivityDef, hosted_elsewhere
from cerebelum.dsl._step import Retry

if TYPE_CHECKING:
    from ._base import EngineBase
    from ._run import Run

__all__ = ["apply_commands"]


def _activity(c: p.ScheduleActivity) -> ActivityDef:
    """The activity as the engine needs it: its name, queue, timeouts and retry policy."""
    retry = None
    if c.retry is not None:
        retry = Retry(max_attempts=c.retry.max_attempts, backoff=c.retry.backoff,
                      initial=c.retry.initial, max_interval=c.retry.max_interval,
                      non_retryable=tuple(c.retry.non_retryable))  # fmt: skip
    return ActivityDef(fn=hosted_elsewhere, name=c.activity, retry=retry,
                       timeout=c.start_to_close_timeout, heartbeat_timeout=c.heartbeat_timeout,
                       queue=c.queue or "default")  # fmt: skip


def apply_commands(engine: EngineBase, run: Run, commands: list[Any]) -> None:
    state = run.state
    for c in commands:
        if state.ended:
            return
        now = engine.clock.timestamp()
        position = getattr(c, "position", None)
        given = position is not None and position in state.commands
        if given and not isinstance(c, p.ReportNonDeterminism):
            continue  # given by an earlier activation already
        match c:
            case p.ScheduleActivity():
                adef = _activity(c)
                run.activities[c.position] = adef
                retry = adef.retry.to_spec() if adef.retry and adef.retry.max_attempts > 1 else None
                engine._apply(run, ev.ActivityScheduled, position=c.position, activity=c.activity,
                              args=ev.Raw(bytes(c.args)), retry=retry)  # fmt: skip
            case p.StartTimer():
                engine._apply(run, ev.TimerStarted, timer=f"sleep:{c.position}",
                              fire_at=now + c.seconds)  # fmt: skip
            case p.RequestApproval():
                timeout_at = now + c.timeout if c.timeout is not None else None
                engine._apply(run, ev.ApprovalRequested, step=str(c.position), name=c.name,
                              timeout_at=timeout_at)  # fmt: skip
                if timeout_at is not None:
                    engine._apply(run, ev.TimerStarted, timer=f"approval:{c.position}",
                                  fire_at=timeout_at)  # fmt: skip
            case p.AwaitSignal():
                queued = next((pl for name, pl in state.signals if name == c.name), None)
                if queued is not None:
                    engine._apply(run, ev.SignalDelivered, position=c.position, name=c.name,
                                  payload=queued)  # fmt: skip
                    continue
                timeout_at = now + c.timeout if c.timeout is not None else None
                engine._apply(run, ev.SignalAwaited, position=c.position, name=c.name,
                              timeout_at=timeout_at)  # fmt: skip
                if timeout_at is not None:
                    engine._apply(run, ev.TimerStarted, timer=f"signal:{c.position}",
                                  fire_at=timeout_at)  # fmt: skip
            case p.StartChild():
                engine._apply(run, ev.ChildStarted, position=c.position,
                              child_id=f"{run.id}.{c.position}", workflow=c.workflow,
                              args=ev.Raw(bytes(c.args)))  # fmt: skip
            case p.RecordMarker():
                engine._apply(run, ev.MarkerRecorded, position=c.position, kind=c.kind,
                              value=ev.Raw(bytes(c.value)))  # fmt: skip
            case p.ApplyPatch():
                if c.name not in state.patches:
                    engine._apply(run, ev.PatchApplied, name=c.name)
            case p.CompleteWorkflow():
                engine._apply(run, ev.ExecutionCompleted, output=ev.Raw(bytes(c.output)))
            case p.FailWorkflow():
                engine._apply(run, ev.ExecutionFailed, error=c.error.to_dict())
            case p.ReportNonDeterminism():
                engine._apply(run, ev.ExecutionStuck, error={
                    "kind": "non_determinism", "message": c.message, "position": c.position,
                    "recorded": c.recorded, "requested": c.requested,
                })  # fmt: skip
