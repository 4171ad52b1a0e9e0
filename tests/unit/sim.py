"""A pure driver for the decider: runs a blueprint with scripted step outcomes, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from cerebelum import events as ev
from cerebelum.engine import ExecutionState, decide, evolve

Outcome = tuple[str, Any, int | None]  # ("ok"|"fail", result-or-error, route)


class Sim:
    def __init__(self, wf: Any, inputs: Any = None, now: float = 1000.0) -> None:
        self.bp = wf.blueprint
        self.state = ExecutionState("sim", self.bp)
        self.history: list[ev.Event] = []
        self.now = now
        self.push(ev.ExecutionStarted, workflow=self.bp.name, version=self.bp.version,
                  inputs=msgspec.Raw(msgspec.json.encode(inputs)))  # fmt: skip

    def push(self, cls: type[ev.Event], **fields: Any) -> list[ev.Event]:
        e = cls(seq=self.state.seq + 1, at=self.now, **fields)
        evolve(self.state, e)
        self.history.append(e)
        follow = decide(self.state, e, self.now)
        for f in follow:
            evolve(self.state, f)
            self.history.append(f)
        return follow

    def complete(self, step: str, result: Any = None, route: int | None = None) -> list[ev.Event]:
        n = self.state.node(step)
        raw = msgspec.Raw(msgspec.json.encode(result))
        return self.push(ev.StepCompleted, step=step, attempt=n.attempt, result=raw, route=route)

    def fail(self, step: str, error: dict[str, Any] | None = None, route: int | None = None,
             retryable: bool = True) -> list[ev.Event]:  # fmt: skip
        n = self.state.node(step)
        error = error or {"kind": "exception", "name": "ValueError", "message": "boom"}
        return self.push(ev.StepFailed, step=step, attempt=n.attempt, error=error, route=route,
                         retryable=retryable)  # fmt: skip

    def fire(self, timer: str) -> list[ev.Event]:
        self.now = max(self.now, self.state.timers[timer])
        return self.push(ev.TimerFired, timer=timer)

    def run(self, script: Callable[[str], Outcome], limit: int = 1000) -> None:
        """Complete in-flight steps in order with ``script(step)`` until nothing is in flight."""
        for _ in range(limit):
            if self.state.ended:
                return
            active = self.state.in_flight()
            if not active:
                return
            kind, value, route = script(active[0])
            if kind == "ok":
                self.complete(active[0], value, route)
            else:
                self.fail(active[0], value, route)
        raise AssertionError("the simulation did not settle")

    def types(self) -> list[str]:
        return [e.type for e in self.history]

    def of(self, cls: type[ev.Event]) -> list[Any]:
        return [e for e in self.history if isinstance(e, cls)]

    def scheduled(self) -> list[str]:
        return [e.step for e in self.of(ev.StepScheduled)]

    def skipped(self) -> list[str]:
        return [e.step for e in self.of(ev.StepSkipped)]
