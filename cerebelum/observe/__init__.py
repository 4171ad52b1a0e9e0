"""Observing an engine: Prometheus metrics, OpenTelemetry traces, and logs with context.

The engine calls the hooks of an :class:`Observer` (a commit, a start, a task handed
out, an attempt) and knows nothing of what listens; :class:`Metrics` and
:class:`Tracing` are the two it ships with (``Engine(metrics=True, tracing=True)``).
See docs/observability.md.
"""

from ._logs import (
    JsonFormatter,
    LogContext,
    TextFormatter,
    configure_logging,
    log_context,
)
from ._observer import Attempt, Committed, Observer

__all__ = [
    "Attempt",
    "Committed",
    "JsonFormatter",
    "LogContext",
    "Metrics",
    "Observer",
    "TextFormatter",
    "Tracing",
    "configure_logging",
    "log_context",
    "serve_metrics",
]


def __getattr__(name: str) -> object:
    # prometheus_client and OpenTelemetry are imported by those who use them only
    if name in ("Metrics", "serve_metrics"):
        from . import _metrics

        return getattr(_metrics, name)
    if name == "Tracing":
        from ._tracing import Tracing

        return Tracing
    raise AttributeError(f"module 'cerebelum.observe' has no attribute {name!r}")
