"""The hooks an engine calls for whoever observes it: metrics, traces, logs.

The engine calls an :class:`Observer`'s methods at a few points of its work (a group
commit, an execution starting or coming back into memory, a task handed to a worker,
an attempt run in its own process) and does not know what listens. An engine with no
observer skips the hooks altogether: each call site checks ``if self._observers``
first, so the hot path pays one truth test.

An observer must be quick and must not raise: the engine logs what one raises and
goes on (a broken exporter never stops a workflow).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cerebelum import events as ev
    from cerebelum.protocol import Task

__all__ = ["Attempt", "Committed", "Observer"]


@dataclass(frozen=True, slots=True)
class Committed:
    """The events one execution had recorded by a group commit.

    Attributes:
        execution_id: the execution.
        workflow: its workflow's name.
        events: the events the commit recorded for it, in order.
        activities: for a code workflow, the activity name at each position it knows
            (an ``ActivityCompleted`` names its position, not its activity).
    """

    execution_id: str
    workflow: str
    events: list[ev.Event]
    activities: dict[int, str]


@dataclass(slots=True)
class Attempt:
    """One attempt of a step or an activity, as an observer sees it run.

    Attributes:
        execution_id: the execution it belongs to.
        workflow: the execution's workflow.
        kind: ``"step"``, ``"activity"`` or ``"workflow"`` (a code workflow's activation).
        name: the step's or the activity's name.
        attempt: 1 on the first try, then 2, 3, ...
        traceparent: the W3C trace context the attempt runs under, if any.
        error: how it failed (``kind``, ``name``, ``message``, ``traceback``), once it did.
    """

    execution_id: str
    workflow: str
    kind: str
    name: str
    attempt: int
    traceparent: str | None = None
    error: dict[str, Any] | None = None


class Observer:
    """What an engine tells its observers; every method does nothing unless overridden."""

    def on_start(self, execution_id: str, workflow: str, parent_id: str | None) -> str | None:
        """An execution is being started here; its first event is not committed yet.

        Returns:
            A W3C ``traceparent`` to record in the execution's history (it joins every
            later span of the execution, on any engine), or ``None``.
        """
        return None

    def on_load(self, execution_id: str, workflow: str, history: list[ev.Event]) -> None:
        """An execution started elsewhere (or earlier) is in this engine's memory now."""

    def on_commit(self, batch: list[Committed], seconds: float) -> None:
        """A group commit recorded ``batch`` in ``seconds``; the engine acts on it next."""

    def on_dispatch(self, task: Task) -> Task:
        """A task goes to a worker; return it, or a copy with more in it (a traceparent)."""
        return task

    def attempt(self, attempt: Attempt) -> contextlib.AbstractContextManager[None]:
        """The scope one attempt runs in, in the engine's own process (``dispatch="local"``).

        ``attempt.error`` is set before the scope exits when the attempt failed.
        """
        return contextlib.nullcontext()

    def on_close(self) -> None:
        """The engine is closing: the executions still in its memory leave it."""


@contextlib.contextmanager
def nested(scopes: list[contextlib.AbstractContextManager[None]]) -> Iterator[None]:
    """Enter every scope in order; leave them in reverse."""
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(scope)
        yield
