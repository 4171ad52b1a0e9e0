"""The journal of a code workflow: fold its history, and decide what the engine does.

A code workflow decides for itself what runs next; the engine only keeps its journal:
every command the workflow gave (activity, sleep, approval, signal, child, marker) at
its position in program order, and how it ended. ``decide_code`` covers what the
engine decides on the workflow's behalf: retries (from the policy recorded with the
activity), timeouts, and handing a waiting signal over.
"""

from __future__ import annotations

from typing import Any

from cerebelum import events as ev
from cerebelum.serde import decode_json

from ._decide import backoff_delay
from ._state import TERMINAL, ExecutionStatus, evolve_execution

__all__ = ["CodeState", "Command", "decide_code", "evolve_code", "fold_code"]

WAITS = frozenset({"sleep", "approval", "signal"})


class Command:
    """One command of the journal, at its position."""

    __slots__ = (
        "args",
        "attempt",
        "child_id",
        "error",
        "kind",
        "name",
        "result",
        "retry",
        "status",
    )

    def __init__(self, kind: str, name: str, args: ev.Raw | None = None) -> None:
        self.kind = kind
        self.name = name
        self.args = args
        self.status = "pending"  # pending | running | retrying | done | failed
        self.attempt = 1
        self.result: ev.Raw = ev.NULL
        self.error: dict[str, Any] | None = None
        self.retry: dict[str, Any] | None = None
        self.child_id: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in ("done", "failed")

    def __repr__(self) -> str:
        return f"Command({self.kind} {self.name!r}, {self.status})"


class CodeState:
    """What folding a code workflow's history gives."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.status = ExecutionStatus.RUNNING
        self.seq = 0
        self.inputs: ev.Raw = ev.NULL
        self.commands: dict[int, Command] = {}
        self.signals: list[tuple[str, ev.Raw]] = []  # received, not taken yet
        self.patches: set[str] = set()
        self.timers: dict[str, float] = {}
        self.output: ev.Raw | None = None
        self.error: dict[str, Any] | None = None
        self.stuck: dict[str, Any] | None = None
        self.started_at = 0.0
        self.queued = False  # started on a queue, not admitted yet

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def inputs_value(self) -> Any:
        """The workflow's arguments: ``{"args": [...], "kwargs": {...}}``."""
        return decode_json(self.inputs) or {}

    def live_status(self) -> ExecutionStatus:
        if self.ended:
            return self.status
        if self.queued:
            return ExecutionStatus.QUEUED
        if self.stuck is not None:
            return ExecutionStatus.STUCK
        pending = [c for c in self.commands.values() if not c.settled]
        if pending and all(
            c.kind in WAITS or (c.kind == "activity" and c.status == "retrying") for c in pending
        ):
            return ExecutionStatus.WAITING
        return ExecutionStatus.RUNNING

    def in_flight(self) -> list[int]:
        """Activities scheduled or running: after a crash these run again."""
        return [
            p
            for p, c in self.commands.items()
            if c.kind == "activity" and c.status in ("pending", "running")
        ]

    def children_in_flight(self) -> list[int]:
        return [p for p, c in self.commands.items() if c.kind == "child" and not c.settled]


def evolve_code(state: CodeState, event: ev.Event) -> CodeState:
    """Apply one event to a code workflow's state (in place) and return it."""
    state.seq = event.seq
    cmds = state.commands
    match event:
        case ev.ActivityScheduled(
            position=p, activity=name, args=args, attempt=attempt, retry=retry
        ):
            c = cmds.get(p) or cmds.setdefault(p, Command("activity", name, args))
            c.status, c.attempt, c.retry = "pending", attempt, retry
        case ev.ActivityStarted(position=p, attempt=attempt):
            c = cmds[p]
            c.status, c.attempt = "running", attempt
        case ev.ActivityCompleted(position=p, result=result):
            c = cmds[p]
            c.status, c.result, c.error = "done", result, None
        case ev.ActivityFailed(position=p, error=error):
            c = cmds[p]
            c.status, c.error = "failed", error
        case ev.ActivityRetryScheduled(position=p, attempt=attempt):
            cmds[p].status = "retrying"
        case ev.TimerStarted(timer=timer, fire_at=fire_at):
            state.timers[timer] = fire_at
            kind, _, pos = timer.partition(":")
            if kind == "sleep":
                cmds.setdefault(int(pos), Command("sleep", "sleep"))
        case ev.TimerFired(timer=timer):
            state.timers.pop(timer, None)
            kind, _, pos = timer.partition(":")
            if kind == "sleep":
                cmds[int(pos)].status = "done"
        case ev.ApprovalRequested(step=pos, name=name):
            cmds.setdefault(int(pos), Command("approval", name))
        case ev.ApprovalResolved(step=pos, approved=approved, data=data, timed_out=timed_out):
            state.timers.pop("approval:" + pos, None)
            c = cmds[int(pos)]
            c.status = "done"
            flags = b"true" if approved else b"false", b"true" if timed_out else b"false"
            c.result = ev.Raw(b'{"approved":%s,"timed_out":%s,"data":%s}' % (*flags, bytes(data)))
        case ev.SignalReceived(name=name, payload=payload):
            state.signals.append((name, payload))
        case ev.SignalAwaited(position=p, name=name):
            cmds.setdefault(p, Command("signal", name))
        case ev.SignalDelivered(position=p, name=name, payload=payload, timed_out=timed_out):
            state.timers.pop(f"signal:{p}", None)
            c = cmds.setdefault(p, Command("signal", name))
            c.status, c.result = ("failed", ev.NULL) if timed_out else ("done", payload)
            if not timed_out:
                index = next(i for i, (n, _) in enumerate(state.signals) if n == name)
                del state.signals[index]
        case ev.MarkerRecorded(position=p, kind=kind, value=value):
            c = cmds.setdefault(p, Command("marker", kind))
            c.status, c.result = "done", value
        case ev.PatchApplied(name=name):
            state.patches.add(name)
        case ev.ChildStarted(position=p, child_id=child_id, workflow=name, args=args):
            c = cmds.setdefault(p, Command("child", name, args))
            c.child_id = child_id
        case ev.ChildEnded(position=p, status=status, output=output, error=error):
            c = cmds[p]
            c.status, c.result, c.error = (
                ("done" if status == "completed" else "failed"),
                output,
                error,
            )
        case ev.ExecutionStuck(error=error):
            state.stuck = error
        case _:
            evolve_execution(state, event)
    if state.stuck is not None and not isinstance(event, ev.ExecutionStuck):
        state.stuck = None  # the code went on past the point it was stuck at
    return state


def fold_code(history: list[ev.Event], execution_id: str = "") -> CodeState:
    state = CodeState(execution_id)
    for event in history:
        evolve_code(state, event)
    return state


def decide_code(state: CodeState, event: ev.Event, now: float) -> list[ev.Event]:
    """What the engine does on the workflow's behalf after ``event`` (already folded in)."""
    if state.ended:
        return []
    out: list[ev.Event] = []
    seq = state.seq

    def emit(cls: type[ev.Event], **fields: Any) -> None:
        nonlocal seq
        seq += 1
        out.append(cls(seq=seq, at=now, **fields))

    match event:
        case ev.ActivityFailed(position=p, attempt=attempt, retryable=True):
            c = state.commands[p]
            if c.retry is not None and attempt < c.retry["max_attempts"]:
                delay = backoff_delay(c.retry, attempt)
                if delay > 0:
                    emit(
                        ev.ActivityRetryScheduled,
                        position=p,
                        attempt=attempt + 1,
                        fire_at=now + delay,
                    )
                    emit(ev.TimerStarted, timer=f"retry:{p}", fire_at=now + delay)
                else:
                    emit(ev.ActivityScheduled, position=p, activity=c.name, args=c.args or ev.NULL,
                         attempt=attempt + 1, retry=c.retry)  # fmt: skip
        case ev.TimerFired(timer=timer):
            kind, _, pos = timer.partition(":")
            p = int(pos) if pos.isdigit() else -1
            if kind == "retry":
                c = state.commands[p]
                emit(ev.ActivityScheduled, position=p, activity=c.name, args=c.args or ev.NULL,
                     attempt=c.attempt + 1, retry=c.retry)  # fmt: skip
            elif kind == "approval":
                emit(ev.ApprovalResolved, step=pos, approved=False, timed_out=True)
            elif kind == "signal":
                emit(ev.SignalDelivered, position=p, name=state.commands[p].name, timed_out=True)
        case ev.SignalReceived(name=name, payload=payload):
            waiting = [p for p, c in sorted(state.commands.items())
                       if c.kind == "signal" and not c.settled and c.name == name]  # fmt: skip
            if waiting:
                emit(ev.SignalDelivered, position=waiting[0], name=name, payload=payload)
    return out
