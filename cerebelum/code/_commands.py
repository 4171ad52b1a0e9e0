"""The other awaitables of a code workflow: sleep, signal, child, and recorded values."""

from __future__ import annotations

import datetime as _dt
import logging
import uuid as _uuid
from dataclasses import dataclass
from typing import Any

from cerebelum.engine._context import current_activity, current_runtime
from cerebelum.errors import CerebelumError

__all__ = [
    "Decision",
    "child",
    "get_logger",
    "now",
    "patched",
    "random",
    "signal",
    "sleep",
    "uuid4",
]


@dataclass(frozen=True)
class Decision:
    """The outcome of ``await approval(...)`` in a code workflow."""

    approved: bool
    data: Any = None
    timed_out: bool = False


def _runtime(what: str) -> Any:
    runtime = current_runtime.get()
    if runtime is None:
        raise CerebelumError(
            f"{what} is for code workflows: call it inside an 'async def' decorated with @workflow"
        )
    return runtime


def sleep(
    duration: _dt.timedelta | float | None = None,
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
    weeks: float = 0,
) -> Any:
    """A durable timer: ``await sleep(days=1)``, kept by the engine across restarts."""
    runtime = _runtime("sleep()")
    total = _dt.timedelta(
        seconds=seconds, minutes=minutes, hours=hours, days=days, weeks=weeks
    ).total_seconds()
    if isinstance(duration, _dt.timedelta):
        total += duration.total_seconds()
    elif duration is not None:
        total += float(duration)
    if total < 0:
        raise CerebelumError(f"sleep() cannot last a negative time ({total}s)")
    return runtime.sleep(total)


def signal(name: str, *, timeout: _dt.timedelta | float | None = None) -> Any:
    """Wait for ``engine.signal(id, name, payload)``; return the payload.

    A signal sent before the workflow waits for it is kept until it does.

    Raises:
        SignalTimeoutError: ``timeout`` passed first.
    """
    runtime = _runtime("signal()")
    seconds = timeout.total_seconds() if isinstance(timeout, _dt.timedelta) else timeout
    return runtime.signal(name, seconds)


def child(wf: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Start ``wf`` (graph or code) as a child execution and wait for its output.

    Works in a code workflow and in a graph workflow's step. Cancelling the parent
    cancels its children.

    Raises:
        ChildFailedError: the child failed or was cancelled.
    """
    runtime = current_runtime.get()
    if runtime is not None:
        return runtime.child(wf, args, kwargs)
    info = current_activity.get()
    if info is not None and info.engine is not None:
        info.children += 1
        return info.engine.run_child(
            wf, args, kwargs, f"{info.idempotency_key}.child{info.children}", info.execution_id
        )
    raise CerebelumError("child() is for code workflows and graph steps")


def now() -> _dt.datetime:
    """The current time, recorded: recovery sees the same value."""
    return _dt.datetime.fromtimestamp(_runtime("now()").marker("now"), _dt.UTC)


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded: recovery sees the same value."""
    return _uuid.UUID(_runtime("uuid4()").marker("uuid4"))


def random() -> float:
    """A random float in [0, 1), recorded: recovery sees the same value."""
    return float(_runtime("random()").marker("random"))


def patched(name: str) -> bool:
    """``if patched("new-reminder"):`` new code's path; executions begun before it keep the old.

    True for executions that reach this point with the new code; False while an
    execution that started on the old code replays the part it already ran.
    """
    return bool(_runtime("patched()").patched(name))


class _QuietDuringReplay(logging.LoggerAdapter):  # type: ignore[type-arg]
    def isEnabledFor(self, level: int) -> bool:
        runtime = current_runtime.get()
        if runtime is not None and runtime.replaying:
            return False
        return self.logger.isEnabledFor(level)


def get_logger(name: str = "cerebelum.workflow") -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for workflow code that stays quiet while a workflow replays its journal.

    Without it, every line a workflow logs before a crash is logged again when it is
    rebuilt from its journal.
    """
    return _QuietDuringReplay(logging.getLogger(name), {})
