"""The decider: what an execution does next, as a pure function.

``decide(state, event, now)`` takes the state *after* ``event`` was folded into it and
returns the events to append next (steps to schedule, timers to start, nodes to skip,
the execution's end). It does no I/O, reads no clock and never raises for a user's
failure: a failing step becomes a retry, a route, or an ``ExecutionFailed`` event.
The same function runs in the engine, during recovery and in the tests.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from cerebelum import events as ev

from ._blueprint import NodeSpec, RuleSpec
from ._state import ExecutionState, NodeStatus, evolve

__all__ = ["backoff_delay", "decide"]

_RESOLVED = (NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED)


def decide(state: ExecutionState, event: ev.Event, now: float) -> list[ev.Event]:
    """The events that follow ``event``; ``state`` already includes it and is not changed."""
    if state.ended and not isinstance(event, ev.TERMINAL):
        return []
    d = _Decider(state.fork(), now)
    d.react(event)
    return d.out


def backoff_delay(retry: dict[str, Any], failed_attempt: int) -> float:
    """Seconds to wait after attempt ``failed_attempt`` failed."""
    delay = (retry.get("initial") or 0.0) * (retry.get("backoff") or 1.0) ** (failed_attempt - 1)
    cap = retry.get("max_interval")
    return min(delay, cap) if cap is not None else delay


def add_months(ts: float, months: int) -> float:
    """``ts`` moved ``months`` calendar months ahead (the 31st becomes the month's last day)."""
    t = datetime.fromtimestamp(ts, UTC)
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day).timestamp()


class _Decider:
    def __init__(self, state: ExecutionState, now: float) -> None:
        self.s = state
        self.bp = state.bp
        self.now = now
        self.out: list[ev.Event] = []

    def emit(self, cls: type[ev.Event], **fields: Any) -> None:
        event = cls(seq=self.s.seq + 1, at=self.now, **fields)
        evolve(self.s, event)
        self.out.append(event)

    # --- reacting to what happened ----------------------------------------------

    def react(self, event: ev.Event) -> None:
        match event:
            case ev.ExecutionStarted(queue=queue) if queue:
                pass  # queued: the first nodes are due once it is admitted
            case ev.ExecutionStarted() | ev.ExecutionMigrated() | ev.ExecutionAdmitted():
                # after a migration, nodes the new blueprint added behind resolved ones are due
                self.propagate([n.name for n in self.bp.nodes])
            case (
                ev.StepCompleted(step=name, route=route)
                | ev.ApprovalResolved(step=name, timed_out=False, route=route)
            ):
                self.after_outcome(name, route, ok=True)
            case ev.StepFailed(step=name, route=route, retryable=retryable, attempt=attempt):
                if route is not None:
                    self.after_outcome(name, route, ok=False)
                elif retryable and self.may_retry(name, attempt):
                    self.retry_later(
                        name, attempt, self.policy_delay(name, attempt), "retry policy"
                    )
                else:
                    self.fail(name, self.s.node(name).error or {}, attempts=attempt)
            case ev.ApprovalResolved(step=name, route=route):  # timed out
                if route is not None:
                    self.after_outcome(name, route, ok=False)
                else:
                    self.fail(name, {"kind": "timeout", "message": f"approval {name!r} timed out"})
            case ev.TimerFired(timer=timer):
                kind, _, name = timer.partition(":")
                if kind == "wait":
                    self.after_resolved(name)
                elif kind == "retry":
                    n = self.s.node(name)
                    self.emit(
                        ev.StepScheduled, step=name, attempt=n.attempt + 1, iteration=n.iteration
                    )
        if not self.s.ended and not self.s.queued:
            self.finish_if_done()

    def after_outcome(self, name: str, route: int | None, ok: bool) -> None:
        if route is None:
            self.after_resolved(name)
            return
        rule = self.bp.rules[name][route]
        getattr(self, "rule_" + rule.action)(name, route, rule)

    def after_resolved(self, name: str) -> None:
        if name in self.bp.terminal and self.s.node(name).status is NodeStatus.COMPLETED:
            self.emit(ev.ExecutionCompleted, output=self.s.node(name).result or ev.NULL)
            return
        self.propagate(self.bp.dependents[name])

    # --- the rules' actions ---------------------------------------------------------

    def rule_goto(self, name: str, index: int, rule: RuleSpec) -> None:
        self.emit(ev.BranchTaken, step=name, rule=index, action="goto", target=rule.target)
        self.propagate(self.bp.dependents[name])

    rule_skip_to = rule_goto

    def rule_proceed(self, name: str, index: int, rule: RuleSpec) -> None:
        self.emit(ev.BranchTaken, step=name, rule=index, action="proceed")
        self.after_resolved(name)

    def rule_fail(self, name: str, index: int, rule: RuleSpec) -> None:
        self.emit(ev.BranchTaken, step=name, rule=index, action="fail")
        n = self.s.node(name)
        message = rule.reason or f"rule {index} of {name!r} failed the execution"
        self.emit(
            ev.ExecutionFailed,
            error={"kind": "failed_by_rule", "step": name, "message": message, "cause": n.error},
        )

    def rule_retry(self, name: str, index: int, rule: RuleSpec) -> None:
        used = self.s.rule_uses.get(f"{name}#{index}", 0)
        if used + 1 >= (rule.limit or 1):
            n = self.s.node(name)
            self.fail(
                name,
                {
                    "kind": "retries_exhausted",
                    "message": f"{name!r} matched rule {index} (retry) on each of {used + 1} attempts",
                    "cause": n.error,
                },
            )
            return
        self.emit(ev.BranchTaken, step=name, rule=index, action="retry", target=name)
        self.retry_later(name, self.s.node(name).attempt, rule.delay, f"rule {index}")

    def rule_back_to(self, name: str, index: int, rule: RuleSpec) -> None:
        used = self.s.rule_uses.get(f"{name}#{index}", 0)
        if used >= (rule.limit or 1):
            self.fail(
                name,
                {
                    "kind": "max_iterations",
                    "message": f"back_to({rule.target!r}) from {name!r} exceeded its "
                    f"max_iterations ({rule.limit})",
                },
            )
            return
        self.emit(ev.BranchTaken, step=name, rule=index, action="back_to", target=rule.target)
        self.propagate(self.bp.downstream(rule.target or name))

    # --- retries and failure ----------------------------------------------------------

    def may_retry(self, name: str, attempt: int) -> bool:
        retry = self.bp.node[name].retry
        return retry is not None and attempt < retry["max_attempts"]

    def policy_delay(self, name: str, attempt: int) -> float:
        return backoff_delay(self.bp.node[name].retry or {}, attempt)

    def retry_later(self, name: str, attempt: int, delay: float, reason: str) -> None:
        n = self.s.node(name)
        if delay <= 0:
            self.emit(ev.StepScheduled, step=name, attempt=attempt + 1, iteration=n.iteration)
            return
        fire_at = self.now + delay
        self.emit(
            ev.StepRetryScheduled, step=name, attempt=attempt + 1, fire_at=fire_at, reason=reason
        )
        self.emit(ev.TimerStarted, timer="retry:" + name, fire_at=fire_at)

    def fail(self, name: str, error: dict[str, Any], attempts: int | None = None) -> None:
        error = {**error, "step": name}
        if attempts is not None:
            error["attempts"] = attempts
        self.emit(ev.ExecutionFailed, error=error)

    # --- what becomes ready ---------------------------------------------------------

    def propagate(self, candidates: list[str] | tuple[str, ...]) -> None:
        order = self.bp.order
        work = sorted(set(candidates), key=order.__getitem__)
        queued = set(work)
        while work and not self.s.ended:
            name = work.pop(0)
            queued.discard(name)
            if self.s.node(name).status is not NodeStatus.PENDING:
                continue
            if not self.settle(self.bp.node[name]):
                continue
            for d in self.bp.dependents[name]:
                if d not in queued:
                    queued.add(d)
                    work.append(d)
            work.sort(key=order.__getitem__)

    def settle(self, spec: NodeSpec) -> bool:
        """Schedule or skip a pending node whose dependencies are all resolved."""
        node = self.s.node
        for dep in self.bp.deps[spec.name]:
            if node(dep).status not in _RESOLVED:
                return False
        if not self.enabled(spec):
            self.emit(ev.StepSkipped, step=spec.name, reason="on a path not taken")
            return True
        for param, optional in spec.params:
            if (
                param != "inputs"
                and not optional
                and node(param).status is not NodeStatus.COMPLETED
            ):
                self.emit(
                    ev.StepSkipped,
                    step=spec.name,
                    reason=f"needs {param!r}, which did not complete",
                )
                return True
        self.activate(spec)
        return True

    def enabled(self, spec: NodeSpec) -> bool:
        if not spec.after and not spec.routes_in:
            return True
        node = self.s.node
        if any(node(a).normal for a in spec.after):
            return True
        return any(node(src).route == idx and node(src).resolved for src, idx in spec.routes_in)

    def activate(self, spec: NodeSpec) -> None:
        name = spec.name
        if spec.kind == "step":
            n = self.s.node(name)
            self.emit(ev.StepScheduled, step=name, attempt=1, iteration=n.iteration)
        elif spec.kind == "wait":
            if spec.wait_until is not None:
                fire_at = spec.wait_until
            else:
                fire_at = add_months(self.now, spec.wait_months) if spec.wait_months else self.now
                fire_at += spec.wait_seconds
            self.emit(ev.TimerStarted, timer="wait:" + name, fire_at=fire_at)
        elif spec.kind == "approval":
            timeout_at = (
                self.now + spec.approval_timeout if spec.approval_timeout is not None else None
            )
            self.emit(ev.ApprovalRequested, step=name, name=name, timeout_at=timeout_at)
            if timeout_at is not None:
                self.emit(ev.TimerStarted, timer="approval:" + name, fire_at=timeout_at)

    def finish_if_done(self) -> None:
        busy = False
        for name in self.s.nodes:
            status = self.s.node(name).status
            if status is NodeStatus.PENDING:
                self.propagate([name])  # defensive: nothing should be left undecided
                status = self.s.node(name).status
            if status is NodeStatus.ACTIVE or status is NodeStatus.WAITING:
                busy = True
        if not busy and not self.s.ended:
            last = self.s.last_completed
            output = self.s.node(last).result if last else None
            self.emit(ev.ExecutionCompleted, output=output or ev.NULL)
