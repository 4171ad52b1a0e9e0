"""The exceptions of Cerebelum.

Every error derives from :class:`CerebelumError`, whose docstring is its default
message; the ids it is about are attributes (``err.execution_id``, ``err.step``).
"""

from __future__ import annotations

from typing import Any


class CerebelumError(Exception):
    """Cerebelum failed."""

    def __init__(self, message: str | None = None, **ids: Any) -> None:
        self.message = message or (self.__doc__ or "").strip()
        for key, value in ids.items():
            setattr(self, key, value)
        super().__init__(self.message)


class DefinitionError(CerebelumError):
    """The workflow definition is not valid."""


class SerializationError(CerebelumError, TypeError):
    """A value cannot be serialised to JSON."""


class StoreError(CerebelumError):
    """The store failed."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached."""

    #: True when a commit was sent but its answer was lost: it may have been recorded.
    maybe_committed: bool = False


class StoreFullError(StoreUnavailableError):
    """The store has no room left (the disk is full); writes resume once there is room."""


class ServerUnavailableError(CerebelumError):
    """The Cerebelum server cannot be reached.

    ``err.url`` is the server's URL. What was sent may or may not have arrived: a start
    with an ``id`` can be sent again safely (it is idempotent by id).
    """


class OwnershipLostError(StoreError):
    """Another engine recorded events of this execution: it has taken the execution over."""


class StoreLockedError(StoreUnavailableError):
    """The store is locked by another process.

    A kind of unavailability: the engine retries a commit that meets a lock.
    """


class ExecutionNotFoundError(CerebelumError, LookupError):
    """No execution has that id."""


class WorkflowNotFoundError(CerebelumError, LookupError):
    """No workflow of that name is defined in this process."""


class UnknownWorkerError(CerebelumError, LookupError):
    """The worker is not registered with this server (it never was, or the server restarted):
    it registers again."""


class InvalidRequestError(CerebelumError, ValueError):
    """The request does not fit the execution's state."""


class DuplicateError(InvalidRequestError):
    """The queue has an unfinished execution started with this dedup id.

    ``err.execution_id`` is that execution.
    """


class ExecutionFailedError(CerebelumError):
    """The execution failed."""


class ExecutionCancelledError(CerebelumError):
    """The execution was cancelled."""


class StepTimeoutError(CerebelumError, TimeoutError):
    """The step did not finish within its timeout."""


class ActivityError(CerebelumError):
    """An activity failed after its retries; raised inside the code workflow that awaited it."""


class ChildFailedError(CerebelumError):
    """A child execution failed or was cancelled."""


class SignalTimeoutError(CerebelumError, TimeoutError):
    """No signal of that name arrived before the timeout."""


class ExecutionStuckError(CerebelumError):
    """The execution is stuck: its code no longer matches its history.

    What :meth:`Engine.result` raises for an execution whose workflow raised
    :class:`NonDeterminismError`; ``kind`` is ``"non_determinism"``. The execution keeps
    its history and resumes on an engine whose code matches it.
    """

    kind = "non_determinism"


class VersionMismatchError(CerebelumError):
    """The execution waits for a version of its workflow that no engine here runs.

    Its blueprint changed in a way it cannot follow by itself (a node it went through
    is defined otherwise now). ``err.waiting_for`` says which version ("version
    1@3f2a9c1d00aa1122"); an engine running that version takes it, or
    ``cerebelum migrate`` / ``engine.migrate`` moves it to the current one.
    """


class NonDeterminismError(BaseException):
    """The workflow's code asked for something other than its history holds.

    Derives from BaseException so that workflow code cannot swallow it by accident with
    ``except Exception``. The execution stops, unfinished; an engine running code that
    matches the history resumes it.
    """

    def __init__(self, message: str, **ids: object) -> None:
        self.message = message
        for key, value in ids.items():
            setattr(self, key, value)
        super().__init__(message)
