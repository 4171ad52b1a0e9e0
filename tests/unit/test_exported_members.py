"""The public surface is what ``__all__`` says, and each name is there."""

from __future__ import annotations

import cerebelum
import cerebelum.server


def test_the_public_names_are_pinned():
    assert {"Client", "Engine", "ServerUnavailableError", "workflow", "step"} <= set(
        cerebelum.__all__
    )
    for name in cerebelum.__all__:
        assert getattr(cerebelum, name) is not None, name
    assert cerebelum.__all__ == PINNED


def test_the_server_package_exports():
    assert cerebelum.server.__all__ == ["check_bind", "create_app", "serve", "serving"]
    for name in cerebelum.server.__all__:
        assert callable(getattr(cerebelum.server, name))


PINNED = [
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


def test_the_observe_package_exports():
    import cerebelum.observe

    assert cerebelum.observe.__all__ == [
        "Attempt", "Committed", "JsonFormatter", "LogContext", "Metrics", "Observer",
        "TextFormatter", "Tracing", "configure_logging", "log_context", "serve_metrics",
    ]  # fmt: skip
    for name in ("Metrics", "serve_metrics", "Observer", "LogContext"):
        assert getattr(cerebelum.observe, name) is not None
