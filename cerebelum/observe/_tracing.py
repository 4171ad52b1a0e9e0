"""OpenTelemetry traces: a span per execution, and one per attempt of a step or activity.

The execution's span is opened by the engine that starts it, and its W3C trace context
(``traceparent``) is recorded in the execution's first event (``ExecutionStarted.trace``).
An execution outlives processes, a span does not: an engine that has the execution in
memory holds one span for it (its *stint*), ended when the execution ends, or when the
engine closes with it still running (``cerebelum.status = running``). An engine that
brings an execution back (after a restart, a takeover, an eviction) opens a new span
whose parent is the recorded context, so every stint, every attempt, and every span a
step's own code makes lands in one trace, whichever process ran it. A span that a
killed process held is lost with it (as is anything it had not exported).

Each attempt runs in a span of its own (``step <name>``, ``activity <name>``,
``workflow <name>`` for a code workflow's activation on a worker), whose parent is the
execution's span: in the engine's process directly, on a remote worker through the
task's ``traceparent``. The span is current while the attempt runs, so the spans the
step's code makes are its children.

OpenTelemetry is an optional dependency (``pip install 'cerebelum[otel]'``), imported
only when tracing is asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from cerebelum import events as ev
from cerebelum.errors import CerebelumError

from ._observer import Attempt, Committed, Observer

if TYPE_CHECKING:
    from cerebelum.protocol import Task

__all__ = ["Tracing", "otel", "process_provider"]

_ENDED = {ev.ExecutionCompleted: "completed", ev.ExecutionFailed: "failed",
          ev.ExecutionCancelled: "cancelled"}  # fmt: skip


def otel() -> Any:
    """``opentelemetry.trace``, or an error that says how to install it.

    Raises:
        CerebelumError: OpenTelemetry is not installed.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        raise CerebelumError(
            "tracing needs OpenTelemetry, which is not installed: pip install 'cerebelum[otel]'"
        ) from None
    return trace


def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


class Tracing(Observer):
    """Spans for executions and attempts, made with ``tracer_provider``'s tracer.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider`` (default: the global one,
            as ``opentelemetry.trace.set_tracer_provider`` or ``opentelemetry-instrument``
            set it).

    Raises:
        CerebelumError: OpenTelemetry is not installed.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        from cerebelum import __version__

        self._trace = otel()
        self.tracer = self._trace.get_tracer("cerebelum", __version__, tracer_provider)
        self._spans: dict[str, Any] = {}  # execution id -> the span of its stint here
        self._parents: dict[str, str] = {}  # execution id -> that span's traceparent

    # --- the execution's span ---------------------------------------------------------------

    def on_start(self, execution_id: str, workflow: str, parent_id: str | None) -> str | None:
        parent = self._spans.get(parent_id) if parent_id is not None else None
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        return self._open(execution_id, workflow, context, resumed=False)

    def on_load(self, execution_id: str, workflow: str, history: list[ev.Event]) -> None:
        if execution_id in self._spans:
            return  # back from an eviction: its stint here goes on
        first = history[0] if history else None
        recorded = first.trace if isinstance(first, ev.ExecutionStarted) else ""
        context = _propagator().extract({"traceparent": recorded}) if recorded else None
        self._open(execution_id, workflow, context, resumed=True)

    def _open(self, execution_id: str, workflow: str, context: Any, resumed: bool) -> str | None:
        span = self.tracer.start_span(
            f"execution {workflow}",
            context=context,
            attributes={"cerebelum.execution_id": execution_id, "cerebelum.workflow": workflow,
                        "cerebelum.resumed": resumed},
        )  # fmt: skip
        if not span.get_span_context().is_valid:
            return None  # a tracer that records nothing (no provider configured)
        self._spans[execution_id] = span
        carrier: dict[str, str] = {}
        _propagator().inject(carrier, context=self._trace.set_span_in_context(span))
        parent = carrier.get("traceparent")
        if parent:
            self._parents[execution_id] = parent
        return parent

    def on_commit(self, batch: list[Committed], seconds: float) -> None:
        for c in batch:
            for e in c.events:
                status = _ENDED.get(type(e))
                if status is not None:
                    self._end(c.execution_id, status, getattr(e, "error", None))

    def _end(self, execution_id: str, status: str, error: dict[str, Any] | None = None) -> None:
        span = self._spans.pop(execution_id, None)
        self._parents.pop(execution_id, None)
        if span is None:
            return
        span.set_attribute("cerebelum.status", status)
        if error is not None:
            _failed(span, error)
        span.end()

    def on_close(self) -> None:
        for execution_id in list(self._spans):
            self._end(execution_id, "running")  # it goes on in another engine, another stint

    # --- attempts ---------------------------------------------------------------------------

    def on_dispatch(self, task: Task) -> Task:
        parent = self._parents.get(task.execution_id)
        return msgspec.structs.replace(task, traceparent=parent) if parent else task

    def attempt(self, attempt: Attempt) -> contextlib.AbstractContextManager[None]:
        span = self._spans.get(attempt.execution_id)
        context = self._trace.set_span_in_context(span) if span is not None else None
        return self.span(attempt, context)

    def task_scope(self, attempt: Attempt) -> contextlib.AbstractContextManager[None]:
        """The span of an attempt a remote worker runs, under its task's ``traceparent``."""
        tp = attempt.traceparent
        context = _propagator().extract({"traceparent": tp}) if tp else None
        return self.span(attempt, context)

    @contextlib.contextmanager
    def span(self, attempt: Attempt, context: Any) -> Iterator[None]:
        """Run the block in ``attempt``'s span (current meanwhile), a child of ``context``."""
        attributes = {
            "cerebelum.execution_id": attempt.execution_id,
            "cerebelum.workflow": attempt.workflow,
            f"cerebelum.{attempt.kind}": attempt.name,
            "cerebelum.attempt": attempt.attempt,
        }
        with self.tracer.start_as_current_span(
            f"{attempt.kind} {attempt.name}", context=context, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                yield
            except BaseException as exc:
                span.set_attribute("cerebelum.outcome", "cancelled")
                span.record_exception(exc)
                raise
            if attempt.error is None:
                span.set_attribute("cerebelum.outcome", "completed")
            else:
                timeout = attempt.error.get("kind") == "timeout"
                span.set_attribute("cerebelum.outcome", "timeout" if timeout else "failed")
                _failed(span, attempt.error)


def _failed(span: Any, error: dict[str, Any]) -> None:
    """Mark ``span`` as failed with ``error`` (a recorded error), as an exception event."""
    from opentelemetry.trace import Status, StatusCode

    message = str(error.get("message", ""))
    span.set_status(Status(StatusCode.ERROR, message))
    attributes = {
        "exception.type": str(error.get("type") or error.get("name") or error.get("kind", "")),
        "exception.message": message,
    }
    if error.get("traceback"):
        attributes["exception.stacktrace"] = str(error["traceback"])
    span.add_event("exception", attributes)


def process_provider(service: str) -> Any:
    """The tracer provider of a process Cerebelum runs (``--traces``): the global one when
    something set it (``opentelemetry-instrument``, the application), else a new SDK
    provider that exports over OTLP (configured by the ``OTEL_EXPORTER_OTLP_*`` variables).

    Raises:
        CerebelumError: OpenTelemetry, or (with no provider set) its OTLP exporter, is not
            installed.
    """
    trace = otel()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, trace.ProxyTracerProvider):
        return provider
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise CerebelumError(
            "--traces needs a tracer provider: run under opentelemetry-instrument, or install "
            "the OTLP exporter: pip install opentelemetry-exporter-otlp-proto-http"
        ) from None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
