"""A code workflow's activation on a worker: its history in, the commands it gives out.

The worker rebuilds the coroutine from the history the task carries, with the same
runtime the embedded engine uses: every recorded command is returned from the journal,
and a command asked for at a position the history holds something else at is a
``NonDeterminismError``, exactly as in the engine's own process. It runs the coroutine
until it waits on something not recorded yet (or ends), and answers with the commands it
asked for on the way, in program order: the engine records them as events
(``ScheduleActivity`` becomes ``ActivityScheduled``...), and sends the next activation
once one of them has an outcome.

A worker keeps the coroutine between activations (:class:`Coroutines`): the next
activation it takes for that execution goes on with it, with no replay. Any worker
that hosts the workflow can take any activation, though: one that does not hold the
coroutine rebuilds it from the history, and a worker that dies loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from cerebelum import events as ev
from cerebelum import protocol as p
from cerebelum.clock import VirtualClock
from cerebelum.declared import result_type
from cerebelum.dsl._workflow import lookup_workflow
from cerebelum.engine._code import WorkflowRuntime, drive, settle
from cerebelum.engine._code_state import CodeState, evolve_code, fold_code

__all__ = ["Coroutines"]

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


class Coroutines:
    """The coroutines a worker keeps between activations, at most ``keep`` of them.

    An activation for an execution whose coroutine is here goes on with it: the new
    history is folded (no code runs for that), the outcomes it brings are handed to the
    awaits they answer, and the coroutine carries on from where it waited. There is no
    replay on that path. The coroutine is rebuilt from the history instead when it is not
    here (another worker ran the last activation, or this one restarted), or when the
    history holds commands beyond where it stands (another worker moved it on).
    """

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self._held: dict[str, tuple[_Run, _Recorder]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._held)

    async def activate(self, wf: Any, task: p.Task) -> list[Any]:
        """Run ``wf``'s coroutine for ``task``; the commands it gives."""
        lock = self._locks.setdefault(task.execution_id, asyncio.Lock())
        async with lock:
            try:
                return await self._activate(wf, task)
            finally:
                if not lock._waiters:  # type: ignore[attr-defined]  # nobody queued behind
                    self._locks.pop(task.execution_id, None)

    async def _activate(self, wf: Any, task: p.Task) -> list[Any]:
        now = task.now if task.now is not None else time.time()
        state = fold_code(task.history(), task.execution_id)
        held = self._held.pop(task.execution_id, None)
        if held is not None and not _goes_on(held[0], state, wf):
            _drop(held[0])
            held = None
        if held is None:
            recorder = _Recorder(now)
            run = _Run(task.execution_id, wf, state)
            run.runtime = WorkflowRuntime(recorder, run)  # type: ignore[arg-type]
            coro = drive(recorder, run)  # type: ignore[arg-type]  # an engine's part, in small
            run.task = asyncio.create_task(coro, name=f"cerebelum-workflow-{run.id}")
        else:
            run, recorder = held
            recorder.clock.set(now)
            recorder.commands = []
            run.state = state
            assert run.runtime is not None
            for position, fut in list(run.runtime.futures.items()):
                cmd = state.commands.get(position)
                if cmd is not None and cmd.settled:
                    del run.runtime.futures[position]
                    settle(fut, cmd, result_type(run.runtime, position))
        try:
            await _until_blocked(wf, run)
        except BaseException:
            _drop(run)
            raise
        if run.task is not None and not run.task.done():
            self._held[task.execution_id] = (run, recorder)
            while len(self._held) > self.keep:  # the oldest first
                _drop(self._held.pop(next(iter(self._held)))[0])
        return recorder.commands

    def close(self) -> None:
        for run, _ in self._held.values():
            _drop(run)
        self._held.clear()


def _goes_on(run: _Run, state: CodeState, wf: Any) -> bool:
    """Whether the held coroutine can carry on with ``state``: the same workflow, and no
    command recorded at or beyond the position it has reached (another worker's)."""
    runtime = run.runtime
    if run.wf is not wf or runtime is None or run.task is None or run.task.done():
        return False
    return all(position < runtime.position for position in state.commands)


def _drop(run: _Run) -> None:
    if run.task is not None and not run.task.done():
        run.evicting = True  # drive() ends quietly
        run.task.cancel()


def _waits(run: _Run) -> bool:
    """Whether the coroutine waits on something not done yet, and nothing it awaits is
    done: what it awaited was just answered until its task has woken on it."""
    waiter = getattr(run.task, "_fut_waiter", None)
    futures = run.runtime.futures.values() if run.runtime is not None else ()
    return waiter is not None and not waiter.done() and not any(f.done() for f in futures)


async def _until_blocked(wf: Any, run: _Run) -> None:
    """Let the coroutine run until it waits on a command not answered yet, or ends."""
    assert run.task is not None and run.runtime is not None
    deadline = time.monotonic() + MAX_ACTIVATION
    while not run.task.done() and not _waits(run):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"workflow {wf.name!r} ran its own code for {MAX_ACTIVATION:g}s without "
                "waiting on a command: a workflow only awaits activities, sleeps, "
                "approvals, signals and children"
            )
        await asyncio.sleep(0)
    if run.task.done():
        run.task.result()  # what drive() could not record, raised here
