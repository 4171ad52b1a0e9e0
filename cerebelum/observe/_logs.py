"""Log lines that say which execution, step and attempt they are about.

The engine and the workers set a context (execution id, workflow, step or activity,
attempt) around the work of one execution; :class:`LogContext`, a logging filter,
copies it onto every record logged meanwhile, by Cerebelum or by the step's own code,
unless the call gave those fields itself (``extra=``). The formatters show them: as
``key=value`` after the message (``text``), or as fields of one JSON object a line
(``json``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ._observer import Observer

__all__ = [
    "FIELDS",
    "EventLog",
    "JsonFormatter",
    "LogContext",
    "TextFormatter",
    "configure_logging",
    "log_context",
]

#: The fields a record may carry about the work it belongs to, in the order shown.
FIELDS = ("execution_id", "workflow", "step", "activity", "attempt", "task_id", "worker_id")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "cerebelum_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Log every line inside this block with ``fields`` (added to the context around it).

    Example::

        with log_context(execution_id="42", step="fetch"):
            logger.info("fetching")   # carries execution_id=42 step=fetch
    """
    outer = _context.get()
    token = _context.set({**outer, **fields} if outer else fields)
    try:
        yield
    finally:
        _context.reset(token)


def set_log_context(**fields: Any) -> None:
    """Add ``fields`` to the context of the running task from here on (no block to leave:
    for a task whose whole life is one attempt)."""
    outer = _context.get()
    _context.set({**outer, **fields} if outer else fields)


class LogContext(logging.Filter):
    """A filter that copies the current context's fields onto each record.

    Put it on a handler: ``handler.addFilter(LogContext())``. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value...``, one record a line (and its traceback)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        head, nl, rest = text.partition("\n")  # after the message, before a traceback
        return f"{head} {tail}{nl}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the context's fields, and ``exception`` (the traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int | str = logging.INFO) -> logging.Handler:
    """Log to stderr in ``fmt`` (``"text"`` or ``"json"``), with the context's fields.

    Replaces the root logger's handlers: for processes Cerebelum runs itself
    (``cerebelum server``, ``cerebelum worker``); an application that configures its own
    logging adds :class:`LogContext` and a formatter to its handlers instead.

    Raises:
        ValueError: ``fmt`` is neither ``"text"`` nor ``"json"``.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"the log format is 'text' or 'json', not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(LogContext())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class EventLog(Observer):
    """Logs what went wrong as it is recorded: failed attempts and executions (WARNING),
    stuck executions (ERROR), starts and ends (DEBUG); each line with its context.

    An observer (see :class:`cerebelum.observe.Observer`) the engine adds for itself when
    its logger is enabled for INFO as it opens.
    """

    def __init__(self) -> None:
        self.log = logging.getLogger("cerebelum.engine")

    def on_commit(self, batch: list[Any], seconds: float) -> None:
        from cerebelum import events as ev

        debug = self.log.isEnabledFor(logging.DEBUG)
        for c in batch:
            for e in c.events:
                t = type(e)
                if t is ev.StepFailed or t is ev.ActivityFailed:
                    self._failed(c, e)
                elif t is ev.ExecutionFailed:
                    self.log.warning("execution %s of %s failed: %s", c.execution_id, c.workflow,
                                     e.error.get("message", ""), extra=self._ids(c))  # fmt: skip
                elif t is ev.ExecutionStuck:
                    self.log.error("execution %s of %s is stuck: %s", c.execution_id, c.workflow,
                                   e.error.get("message", ""), extra=self._ids(c))  # fmt: skip
                elif debug and t in (ev.ExecutionStarted, ev.ExecutionCompleted,
                                     ev.ExecutionCancelled):  # fmt: skip
                    self.log.debug("execution %s of %s: %s", c.execution_id, c.workflow,
                                   t.__name__, extra=self._ids(c))  # fmt: skip

    def _failed(self, c: Any, e: Any) -> None:
        if hasattr(e, "step"):
            what, name = "step", e.step
        else:
            what, name = "activity", c.activities.get(e.position, f"#{e.position}")
        self.log.warning(
            "%s %s of execution %s failed (attempt %d): %s", what, name, c.execution_id,
            e.attempt, e.error.get("message", ""),
            extra={**self._ids(c), what: name, "attempt": e.attempt},
        )  # fmt: skip

    @staticmethod
    def _ids(c: Any) -> dict[str, Any]:
        return {"execution_id": c.execution_id, "workflow": c.workflow}
