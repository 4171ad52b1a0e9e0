"""What code running inside the engine can ask for: its workflow runtime, its activity.

Context variables, set by the engine around a code workflow's coroutine, a step and
an activity; the awaitables of :mod:`cerebelum.code` read them.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._code import WorkflowRuntime
    from ._engine import Engine

__all__ = ["ActivityInfo", "current_activity", "current_runtime", "current_step"]


@dataclass
class ActivityInfo:
    """What an activity (or a step) knows of the attempt it runs in.

    Attributes:
        execution_id: the execution that asked for it.
        name: the activity's (or step's) name.
        attempt: 1 on the first try, then 2, 3, ...
        idempotency_key: the same on every attempt: use it to make side effects exactly-once.
        heartbeat_details: what the last attempt passed to ``heartbeat()`` before it failed.
    """

    execution_id: str
    name: str
    attempt: int
    idempotency_key: str
    heartbeat_details: Any = None
    last_heartbeat: float = 0.0
    engine: Engine | None = field(default=None, repr=False)
    children: int = 0


current_runtime: contextvars.ContextVar[WorkflowRuntime | None] = contextvars.ContextVar(
    "cerebelum_runtime", default=None
)
current_activity: contextvars.ContextVar[ActivityInfo | None] = contextvars.ContextVar(
    "cerebelum_activity", default=None
)
current_step = current_activity  # a graph step runs with the same kind of info
