"""Cerebelum: a durable workflow engine for Python.

Two ways to write a workflow, on one engine, one history, one store:

- graph workflows: ``@step`` functions joined by ``@workflow def f(wf): wf.timeline(a >> b)``;
- code workflows: ``@workflow async def f(...)`` with ``await activity(fn, ...)``,
  ``await sleep(days=1)``, ``await approval(...)``, ``await signal(...)``.

An :class:`Engine` runs both, on SQLite (embedded, the default) or PostgreSQL; a
:class:`Client` does the same over HTTP, with ``cerebelum server`` running them.
"""

from typing import Any

from cerebelum.clock import Clock, VirtualClock
from cerebelum.code import (
    Decision,
    activity,
    activity_info,
    child,
    heartbeat,
    now,
    patched,
    random,
    signal,
    sleep,
    uuid4,
    with_options,
)
from cerebelum.dsl import (
    Context,
    Error,
    Retry,
    Workflow,
    approval,
    back_to,
    fail,
    proceed,
    remote_step,
    retry,
    skip_to,
    step,
    wait,
    workflow,
)
from cerebelum.engine import (
    Engine,
    ExecutionError,
    ExecutionInfo,
    ExecutionResult,
    Handle,
    Queue,
    TaskInfo,
)
from cerebelum.errors import (
    ActivityError,
    CerebelumError,
    ChildFailedError,
    DefinitionError,
    DuplicateError,
    ExecutionNotFoundError,
    ExecutionStuckError,
    InvalidRequestError,
    NonDeterminismError,
    OwnershipLostError,
    SerializationError,
    ServerUnavailableError,
    SignalTimeoutError,
    StepTimeoutError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreUnavailableError,
    VersionMismatchError,
    WorkflowNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "ActivityError",
    "CerebelumError",
    "ChildFailedError",
    "Client",
    "Clock",
    "Context",
    "Decision",
    "DefinitionError",
    "DuplicateError",
    "Engine",
    "Error",
    "ExecutionError",
    "ExecutionInfo",
    "ExecutionNotFoundError",
    "ExecutionResult",
    "ExecutionStuckError",
    "Handle",
    "InvalidRequestError",
    "NonDeterminismError",
    "OwnershipLostError",
    "Queue",
    "Retry",
    "SerializationError",
    "ServerUnavailableError",
    "SignalTimeoutError",
    "StepTimeoutError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TaskInfo",
    "VersionMismatchError",
    "VirtualClock",
    "Workflow",
    "WorkflowNotFoundError",
    "__version__",
    "activity",
    "activity_info",
    "approval",
    "back_to",
    "child",
    "fail",
    "heartbeat",
    "now",
    "patched",
    "proceed",
    "random",
    "remote_step",
    "retry",
    "signal",
    "skip_to",
    "sleep",
    "step",
    "uuid4",
    "wait",
    "with_options",
    "workflow",
]


def __getattr__(name: str) -> Any:
    # loaded on first use: the HTTP client's dependencies cost an embedded engine nothing
    if name == "Client":
        from cerebelum.client import Client

        return Client
    raise AttributeError(f"module 'cerebelum' has no attribute {name!r}")
