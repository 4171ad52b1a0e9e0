"""Prometheus metrics of one engine, in a registry of its own.

Counters and histograms are fed by the commit hook: an execution started or ended,
an attempt's duration, are read from the events as they are recorded, so the numbers
count what is in the histories, not what was tried. Queue depths, workers and
executions in memory are read when the registry is collected (a scrape), from the
store and the engine.

Each engine has its own :class:`prometheus_client.CollectorRegistry` (never the
process-wide default), so that a process may open many engines, as tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from cerebelum import events as ev

from ._observer import Committed, Observer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from cerebelum.engine import Engine

__all__ = ["CONTENT_TYPE", "Metrics", "serve_metrics"]

#: The media type of the Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
_ENDED = {ev.ExecutionCompleted: "completed", ev.ExecutionFailed: "failed",
          ev.ExecutionCancelled: "cancelled"}  # fmt: skip


def _outcome(error: dict[str, Any] | None) -> str:
    if error is None:
        return "completed"
    return "timeout" if error.get("kind") == "timeout" else "failed"


class Metrics(Observer):
    """The metrics of ``engine``, registered in ``registry`` (a new one by default).

    Args:
        engine: the engine whose queues, workers and executions are read at a scrape.
        registry: where the metrics are registered.
    """

    def __init__(self, engine: Engine, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.engine = engine
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.started = Counter("cerebelum_executions_started", "Executions started, by workflow.",
                               ["workflow"], registry=r)  # fmt: skip
        self.ended = Counter(
            "cerebelum_executions_ended",
            "Executions that ended, by workflow and status (completed, failed, cancelled).",
            ["workflow", "status"], registry=r,
        )  # fmt: skip
        self.steps = Histogram(
            "cerebelum_step_attempt_seconds",
            "How long step attempts took, from start to outcome (completed, failed, timeout).",
            ["workflow", "step", "outcome"], buckets=_ATTEMPT_BUCKETS, registry=r,
        )  # fmt: skip
        self.activities = Histogram(
            "cerebelum_activity_attempt_seconds",
            "How long activity attempts took, from start to outcome (completed, failed, timeout).",
            ["workflow", "activity", "outcome"], buckets=_ATTEMPT_BUCKETS, registry=r,
        )  # fmt: skip
        self.commit_seconds = Histogram("cerebelum_commit_seconds",
                                        "How long a group commit took.",
                                        buckets=_COMMIT_BUCKETS, registry=r)  # fmt: skip
        self.commit_executions = Histogram("cerebelum_commit_executions",
                                           "Executions written by one group commit.",
                                           buckets=_SIZE_BUCKETS, registry=r)  # fmt: skip
        self.commit_events = Histogram("cerebelum_commit_events",
                                       "Events recorded by one group commit.",
                                       buckets=_SIZE_BUCKETS, registry=r)  # fmt: skip
        # attempts begun and not ended yet: execution -> step or position -> when it began
        self._began: dict[str, dict[str | int, float]] = {}
        self._live = _Live(self)
        r.register(self._live)

    # --- the commit hook ------------------------------------------------------------------

    def on_commit(self, batch: list[Committed], seconds: float) -> None:
        if self._live.loop is None:
            self._live.loop = asyncio.get_running_loop()
        self.commit_seconds.observe(seconds)
        self.commit_executions.observe(len(batch))
        self.commit_events.observe(sum(len(c.events) for c in batch))
        for c in batch:
            for e in c.events:
                self._count(c, e)

    def _count(self, c: Committed, e: ev.Event) -> None:
        t = type(e)
        if t is ev.StepStarted or t is ev.ActivityStarted:
            key = e.step if isinstance(e, ev.StepStarted) else e.position  # type: ignore[attr-defined]
            self._began.setdefault(c.execution_id, {})[key] = e.at
        elif t is ev.StepCompleted or t is ev.StepFailed:
            began = self._began.get(c.execution_id, {}).pop(e.step, None)  # type: ignore[attr-defined]
            if began is not None:
                self.steps.labels(c.workflow, e.step, _outcome(getattr(e, "error", None))).observe(  # type: ignore[attr-defined]
                    max(e.at - began, 0.0)
                )
        elif t is ev.ActivityCompleted or t is ev.ActivityFailed:
            position = e.position  # type: ignore[attr-defined]
            began = self._began.get(c.execution_id, {}).pop(position, None)
            if began is not None:
                name = c.activities.get(position, "")
                self.activities.labels(
                    c.workflow, name, _outcome(getattr(e, "error", None))
                ).observe(max(e.at - began, 0.0))
        elif t is ev.ExecutionStarted:
            self.started.labels(c.workflow).inc()
        elif t in _ENDED:
            self.ended.labels(c.workflow, _ENDED[t]).inc()
            self._began.pop(c.execution_id, None)

    # --- exposition ---------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what is measured at a scrape (queue depths) from the store now."""
        await self._live.refresh()

    async def exposition(self) -> bytes:
        """Every metric, read now, in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        from prometheus_client import generate_latest

        await self.refresh()
        return generate_latest(self.registry)


class _Live:
    """The gauges read at a scrape: tasks by queue and state, workers, executions, timers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.tasks: dict[str, Any] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    async def refresh(self) -> None:
        engine = self.metrics.engine
        self.loop = asyncio.get_running_loop()
        if engine.is_open:
            self.tasks = await engine.store.task_counts(time.time())

    def describe(self) -> Iterable[Metric]:
        return []  # no descriptions up front: the queues are known at a scrape only

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        loop = self.loop
        if loop is not None and loop.is_running() and not _on(loop):
            # scraped from another thread (serve_metrics): read the store on the engine's loop
            with contextlib.suppress(Exception):  # the last values beat no scrape at all
                asyncio.run_coroutine_threadsafe(self.refresh(), loop).result(timeout=5)
        engine = self.metrics.engine
        tasks = GaugeMetricFamily(
            "cerebelum_tasks",
            "Unfinished tasks for workers, by queue and state (ready, delayed, leased).",
            labels=["queue", "state"],
        )
        for queue, counts in sorted(self.tasks.items()):
            for state in ("ready", "delayed", "leased"):
                tasks.add_metric([queue, state], getattr(counts, state))
        yield tasks
        workers = engine.workers() if engine.dispatch == "workers" else []
        yield GaugeMetricFamily("cerebelum_workers", "Workers connected to this engine.",
                                value=len(workers))  # fmt: skip
        yield GaugeMetricFamily("cerebelum_executions_in_memory",
                                "Executions this engine holds in memory.",
                                value=len(engine._runs))  # fmt: skip
        yield GaugeMetricFamily("cerebelum_timers_armed",
                                "Timers (sleeps, retries, timeouts) this engine has armed.",
                                value=engine.timers_armed())  # fmt: skip


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def serve_metrics(engine: Engine, port: int = 9464, host: str = "127.0.0.1") -> Any:
    """Serve ``engine``'s metrics at ``http://host:port/metrics`` from a thread.

    For an embedded engine (``cerebelum server`` serves ``/metrics`` itself). The engine
    must have been opened with ``metrics=True``.

    Returns:
        The HTTP server; ``server.shutdown()`` stops it.

    Raises:
        CerebelumError: the engine has no metrics.
    """
    from prometheus_client import start_http_server

    from cerebelum.errors import CerebelumError

    if engine.metrics is None:
        raise CerebelumError("this engine keeps no metrics: open it with Engine(metrics=True)")
    server, _thread = start_http_server(port, host, registry=engine.metrics)
    return server
