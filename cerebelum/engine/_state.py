"""The state of an execution, and how one event changes it (``evolve``, ``fold``).

``fold(blueprint, history)`` gives the state an execution is in; it does no I/O and
is what recovery, the decider and the tests all use.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from cerebelum import events as ev
from cerebelum.serde import decode_json

from ._blueprint import Blueprint

__all__ = ["ExecutionState", "ExecutionStatus", "NodeState", "NodeStatus", "evolve", "fold"]


class NodeStatus(StrEnum):
    PENDING = "pending"  #: not decided yet in this pass
    ACTIVE = "active"  #: scheduled or running on a worker
    WAITING = "waiting"  #: on a timer (wait, retry delay) or an approval
    COMPLETED = "completed"  #: done, with a result
    FAILED = "failed"  #: failed, and the failure was routed elsewhere
    SKIPPED = "skipped"  #: on a path not taken


class ExecutionStatus(StrEnum):
    QUEUED = "queued"  #: started on a queue that has not let it run yet
    RUNNING = "running"  #: a step is scheduled or running
    WAITING = "waiting"  #: nothing runs: the execution waits on a timer or an approval
    COMPLETED = "completed"  #: finished with an output
    FAILED = "failed"  #: finished with an error
    CANCELLED = "cancelled"  #: stopped by a cancel request
    STUCK = "stuck"  #: a code workflow's code no longer matches its history; resumes once fixed


TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
_RESOLVED = frozenset({NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED})


class NodeState:
    """Where one node of the graph is, in the current pass."""

    __slots__ = ("attempt", "error", "iteration", "normal", "result", "route", "status")

    def __init__(self) -> None:
        self.status = NodeStatus.PENDING
        self.attempt = 0
        self.iteration = 0
        self.route: int | None = None
        self.normal = False  # completed and went the ordinary way (no rule, or proceed)
        self.result: ev.Raw | None = None
        self.error: dict[str, Any] | None = None

    def copy(self) -> NodeState:
        n = NodeState.__new__(NodeState)
        for slot in NodeState.__slots__:
            setattr(n, slot, getattr(self, slot))
        return n

    @property
    def resolved(self) -> bool:
        return self.status in _RESOLVED

    def __repr__(self) -> str:
        return f"NodeState({self.status}, attempt={self.attempt}, iteration={self.iteration})"


class ExecutionState:
    """What folding an execution's history gives."""

    def __init__(self, execution_id: str, blueprint: Blueprint) -> None:
        self.execution_id = execution_id
        self.bp = blueprint
        self.status = ExecutionStatus.RUNNING
        self.seq = 0
        self.inputs: ev.Raw = ev.NULL
        self.nodes: dict[str, NodeState] = {n.name: NodeState() for n in blueprint.nodes}
        self.last_completed: str | None = None
        self.rule_uses: dict[str, int] = {}
        self.timers: dict[str, float] = {}
        self.output: ev.Raw | None = None
        self.error: dict[str, Any] | None = None
        self.started_at = 0.0
        self.queued = False  # started on a queue, not admitted yet
        self._inputs_value: Any = _UNSET

    # reads and writes go through node()/mut() so that a fork can copy on write
    def node(self, name: str) -> NodeState:
        return self.nodes[name]

    def mut(self, name: str) -> NodeState:
        return self.nodes[name]

    def fork(self) -> ExecutionState:
        """A scratch copy for the decider; the nodes it changes are copied, not shared."""
        return _Fork(self)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def inputs_value(self) -> Any:
        if self._inputs_value is _UNSET:
            self._inputs_value = decode_json(self.inputs)
        return self._inputs_value

    def live_status(self) -> ExecutionStatus:
        """RUNNING while any node is active, else WAITING (for an unfinished execution)."""
        if self.ended:
            return self.status
        if self.queued:
            return ExecutionStatus.QUEUED
        for n in self.nodes.values():
            if n.status is NodeStatus.ACTIVE:
                return ExecutionStatus.RUNNING
        return (
            ExecutionStatus.WAITING
            if self.timers or self._any_waiting()
            else ExecutionStatus.RUNNING
        )

    def _any_waiting(self) -> bool:
        return any(n.status is NodeStatus.WAITING for n in self.nodes.values())

    def in_flight(self) -> list[str]:
        """Steps scheduled or running: after a crash these run again."""
        return [name for name, n in self.nodes.items() if n.status is NodeStatus.ACTIVE]


_UNSET: Any = object()


class _Fork(ExecutionState):
    def __init__(self, base: ExecutionState) -> None:  # noqa: super-init-not-called
        self.__dict__.update(base.__dict__)
        self._own: dict[str, NodeState] = {}
        self.rule_uses = dict(base.rule_uses)
        self.timers = dict(base.timers)

    def node(self, name: str) -> NodeState:
        return self._own.get(name) or self.nodes[name]

    def mut(self, name: str) -> NodeState:
        n = self._own.get(name)
        if n is None:
            n = self._own[name] = self.nodes[name].copy()
        return n

    def _any_waiting(self) -> bool:
        return any(self.node(name).status is NodeStatus.WAITING for name in self.nodes)


def _complete(state: ExecutionState, name: str, result: ev.Raw, route: int | None) -> None:
    n = state.mut(name)
    n.status = NodeStatus.COMPLETED
    n.result = result
    n.route = route
    n.normal = route is None
    n.error = None
    state.last_completed = name


def _fail(state: ExecutionState, name: str, error: dict[str, Any], route: int | None) -> None:
    n = state.mut(name)
    n.status = NodeStatus.FAILED
    n.error = error
    n.route = route
    n.normal = False


def evolve(state: ExecutionState, event: ev.Event) -> ExecutionState:
    """Apply one event to ``state`` (in place) and return it."""
    state.seq = event.seq
    match event:
        case ev.StepScheduled(step=name, attempt=attempt):
            n = state.mut(name)
            n.status, n.attempt, n.route, n.normal = NodeStatus.ACTIVE, attempt, None, False
        case ev.StepStarted(step=name, attempt=attempt):
            n = state.mut(name)
            n.status, n.attempt = NodeStatus.ACTIVE, attempt
        case ev.StepCompleted(step=name, result=result, route=route):
            _complete(state, name, result, route)
        case ev.StepFailed(step=name, error=error, route=route):
            _fail(state, name, error, route)
        case ev.StepRetryScheduled(step=name):
            state.mut(name).status = NodeStatus.WAITING
        case ev.StepSkipped(step=name):
            n = state.mut(name)
            n.status, n.result, n.normal = NodeStatus.SKIPPED, None, False
        case ev.BranchTaken():
            _branch(state, event)
        case ev.TimerStarted(timer=timer, fire_at=fire_at):
            state.timers[timer] = fire_at
            kind, _, name = timer.partition(":")
            if kind == "wait":
                state.mut(name).status = NodeStatus.WAITING
        case ev.TimerFired(timer=timer):
            state.timers.pop(timer, None)
            kind, _, name = timer.partition(":")
            if kind == "wait":
                _complete(state, name, ev.NULL, None)
        case ev.ApprovalRequested(step=name):
            state.mut(name).status = NodeStatus.WAITING
        case ev.ApprovalResolved(step=name, timed_out=True, route=route):
            state.timers.pop("approval:" + name, None)
            _fail(
                state,
                name,
                {"kind": "timeout", "name": "timeout", "message": "approval timed out"},
                route,
            )
        case ev.ApprovalResolved(step=name, approved=approved, data=data, route=route):
            state.timers.pop("approval:" + name, None)
            result = ev.Raw(
                b'{"approved":%s,"data":%s}' % (b"true" if approved else b"false", bytes(data))
            )
            _complete(state, name, result, route)
        case _:
            evolve_execution(state, event)
    return state


def evolve_execution(state: Any, event: ev.Event) -> None:
    """The transitions every kind of execution shares: its start and its end."""
    match event:
        case ev.ExecutionStarted(inputs=inputs, at=at, queue=queue):
            state.inputs, state.started_at, state.status = inputs, at, ExecutionStatus.RUNNING
            state.queued = bool(queue)
        case ev.ExecutionAdmitted():
            state.queued = False
        case ev.ExecutionCompleted(output=output):
            state.status, state.output = ExecutionStatus.COMPLETED, output
            state.timers.clear()
        case ev.ExecutionFailed(error=error):
            state.status, state.error = ExecutionStatus.FAILED, error
            state.timers.clear()
        case ev.ExecutionCancelled(reason=reason):
            state.status = ExecutionStatus.CANCELLED
            state.error = {"kind": "cancelled", "message": reason or "cancelled"}
            state.timers.clear()


def _branch(state: ExecutionState, event: ev.BranchTaken) -> None:
    key = f"{event.step}#{event.rule}"
    state.rule_uses[key] = state.rule_uses.get(key, 0) + 1
    if event.action == "proceed":
        n = state.mut(event.step)
        if n.status is NodeStatus.FAILED:
            n.result = ev.NULL
        n.status, n.normal, n.error = NodeStatus.COMPLETED, True, None
        state.last_completed = event.step
    elif event.action == "back_to" and event.target:
        for name in state.bp.downstream(event.target):
            n = state.mut(name)
            iteration = n.iteration + 1
            fresh = NodeState()
            for slot in NodeState.__slots__:
                setattr(n, slot, getattr(fresh, slot))
            n.iteration = iteration
            for timer in [t for t in state.timers if t.partition(":")[2] == name]:
                del state.timers[timer]
            for rule_key in [
                k for k in state.rule_uses if k.rpartition("#")[0] == name and k != key
            ]:
                del state.rule_uses[rule_key]


def fold(blueprint: Blueprint, history: list[ev.Event], execution_id: str = "") -> ExecutionState:
    """The state that ``history`` leaves an execution in."""
    state = ExecutionState(execution_id, blueprint)
    for event in history:
        evolve(state, event)
    return state
