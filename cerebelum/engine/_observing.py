"""The observing half of :class:`~cerebelum.engine.Engine`: where its hooks are called.

The engine's other halves call these methods at a few points, each behind
``if self._observers``, so that an engine nobody observes pays a truth test and no
more. What listens (metrics, traces, the log of failures) is in :mod:`cerebelum.observe`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from cerebelum import events as ev
from cerebelum.errors import InvalidRequestError
from cerebelum.observe._logs import set_log_context
from cerebelum.observe._observer import Attempt, Committed, Observer, nested

from ._base import EngineBase

if TYPE_CHECKING:
    from cerebelum import protocol as p
    from cerebelum.observe._metrics import Metrics

    from ._commit import Pending
    from ._run import Run

__all__ = ["Observing"]

logger = logging.getLogger("cerebelum.engine")

T = TypeVar("T")

_ACTIVITY_EVENTS = (ev.ActivityStarted, ev.ActivityCompleted, ev.ActivityFailed)
_FAILED = (ev.StepFailed, ev.ActivityFailed)


class Observing(EngineBase):
    """Metrics, traces and the engine's own observers."""

    _observers: list[Observer]
    _metrics: Metrics | None
    _event_log: Observer | None

    def _init_observers(self, metrics: Any, tracing: Any, observers: list[Observer] | None) -> None:
        self._observers = []
        self._metrics = None
        self._event_log = None
        if metrics is not False and metrics is not None:
            from cerebelum.observe._metrics import Metrics

            registry = None if metrics is True else metrics
            if registry is not None and not hasattr(registry, "register"):
                raise InvalidRequestError(
                    f"metrics is True, False or a prometheus_client CollectorRegistry, not {metrics!r}"
                )
            self._metrics = Metrics(self, registry)  # type: ignore[arg-type]
            self._observers.append(self._metrics)
        if tracing is not False and tracing is not None:
            from cerebelum.observe._tracing import Tracing

            self._observers.append(Tracing(None if tracing is True else tracing))
        for observer in observers or []:
            self.observe(observer)

    @property
    def metrics(self) -> Any:
        """This engine's ``prometheus_client.CollectorRegistry`` (``Engine(metrics=True)``),
        or ``None``; :func:`cerebelum.observe.serve_metrics` serves it over HTTP."""
        return self._metrics.registry if self._metrics is not None else None

    async def metrics_text(self) -> bytes:
        """Every metric of this engine, read now, in the Prometheus text format.

        Raises:
            CerebelumError: the engine keeps no metrics (open it with ``metrics=True``).
        """
        from cerebelum.errors import CerebelumError

        if self._metrics is None:
            raise CerebelumError("this engine keeps no metrics: open it with Engine(metrics=True)")
        return await self._metrics.exposition()

    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` (a :class:`cerebelum.observe.Observer`) what this engine does."""
        if not isinstance(observer, Observer):
            raise InvalidRequestError(
                f"{observer!r} is not an observer: subclass cerebelum.observe.Observer"
            )
        self._observers.append(observer)

    def timers_armed(self) -> int:
        """How many timers this engine waits for (sleeps, retries, timeouts, due ones)."""
        return len(self._timers)

    def _observe_open(self) -> None:
        # the log of failures is an observer like the others: none when nobody reads it
        if self._event_log is None and logger.isEnabledFor(logging.INFO):
            from cerebelum.observe._logs import EventLog

            self._event_log = EventLog()
            self._observers.append(self._event_log)

    def _call(self, hook: str, *args: Any) -> None:
        for observer in self._observers:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                logger.warning("observer %r failed in %s", observer, hook, exc_info=True)

    def _observe_commit(self, batch: list[Pending], seconds: float) -> None:
        seen = []
        for p in batch:
            run = p.run
            names: dict[int, str] = {}
            if run.kind == "code":
                commands = run.state.commands
                for e in p.write.events:
                    if isinstance(e, _ACTIVITY_EVENTS) and e.position in commands:
                        names[e.position] = commands[e.position].name
            seen.append(Committed(run.id, run.wf.name, p.write.events, names))
        self._call("on_commit", seen, seconds)

    def _observe_start(self, execution_id: str, workflow: str, parent_id: str | None) -> str:
        trace = ""
        for observer in self._observers:
            try:
                trace = observer.on_start(execution_id, workflow, parent_id) or trace
            except Exception:
                logger.warning("observer %r failed in on_start", observer, exc_info=True)
        return trace

    def _observe_load(self, run: Run, history: list[ev.Event]) -> None:
        self._call("on_load", run.id, run.wf.name, history)

    def _observe_task(self, task: p.Task) -> p.Task:
        for observer in self._observers:
            try:
                task = observer.on_dispatch(task)
            except Exception:
                logger.warning("observer %r failed in on_dispatch", observer, exc_info=True)
        return task

    def _observe_close(self) -> None:
        self._call("on_close")

    async def _attempt(
        self, run: Run, kind: str, name: str, attempt: int,
        call: Awaitable[tuple[type[ev.Event], dict[str, Any]] | None],
    ) -> tuple[type[ev.Event], dict[str, Any]] | None:  # fmt: skip
        """Await one attempt run here, logged with its context and in its observers' scopes."""
        set_log_context(execution_id=run.id, workflow=run.wf.name, attempt=attempt, **{kind: name})
        if not self._observers:
            return await call
        seen = Attempt(run.id, run.wf.name, kind, name, attempt)
        with nested([o.attempt(seen) for o in self._observers]):
            outcome = await call
            if outcome is not None and outcome[0] in _FAILED:
                seen.error = outcome[1].get("error")
        return outcome
