"""Activities: any function a code workflow runs through ``await activity(fn, ...)``."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from cerebelum.dsl._step import Retry, seconds_of
from cerebelum.engine._context import ActivityInfo, current_activity, current_runtime
from cerebelum.errors import CerebelumError, DefinitionError

__all__ = [
    "ActivityDef",
    "activity",
    "activity_info",
    "declared_activities",
    "heartbeat",
    "with_options",
]


@dataclass(frozen=True)
class ActivityDef:
    """A function with the options it runs under as an activity."""

    fn: Callable[..., Any]
    name: str
    retry: Retry | None = None
    timeout: float | None = None
    heartbeat_timeout: float | None = None
    queue: str = "default"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def remote(self) -> bool:
        """Called by name, with no function in this process: a worker hosts it."""
        return self.fn is hosted_elsewhere

    def with_options(
        self,
        *,
        retry: Retry | None = None,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        name: str | None = None,
        queue: str | None = None,
    ) -> ActivityDef:
        """The same activity with other options, for one call."""
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise DefinitionError(
                f"activity {self.name!r}: queue must be a non-empty string, not {queue!r}"
            )
        return replace(
            self,
            name=name or self.name,
            queue=queue or self.queue,
            retry=retry if retry is not None else self.retry,
            timeout=seconds_of(timeout, f"activity {self.name!r}: timeout")
            if timeout is not None
            else self.timeout,
            heartbeat_timeout=(
                seconds_of(heartbeat_timeout, f"activity {self.name!r}: heartbeat_timeout")
                if heartbeat_timeout is not None
                else self.heartbeat_timeout
            ),
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling the activity directly calls its function (handy in unit tests)."""
        return self.fn(*args, **kwargs)

    def __await__(self) -> Any:
        raise CerebelumError(
            f"activity {self.name!r} was awaited directly: write 'await activity({self.name}, ...)' "
            "inside a code workflow"
        )


def hosted_elsewhere(*args: Any, **kwargs: Any) -> Any:
    """The function of an activity called by name: a worker runs it, not this process."""
    raise CerebelumError("this activity is called by name: a worker that hosts it runs it")


#: What ``activity("name", ..., queue=...)`` takes as the call's options, not its arguments.
_OPTIONS = ("queue", "retry", "timeout", "heartbeat_timeout")


def by_name(name: str) -> ActivityDef:
    """The activity called ``name``: the one declared here with ``@activity``, else one a
    worker hosts under that name (in any language)."""
    if not name:
        raise DefinitionError("activity(): an activity's name is a non-empty string")
    return _declared.get(name) or ActivityDef(fn=hosted_elsewhere, name=name)


def as_activity(fn: Callable[..., Any] | ActivityDef | str) -> ActivityDef:
    if isinstance(fn, ActivityDef):
        return fn
    if isinstance(fn, str):
        return by_name(fn)
    if not callable(fn):
        raise DefinitionError(f"activity() needs a function, not {fn!r}")
    return ActivityDef(fn=fn, name=getattr(fn, "__name__", repr(fn)))


def activity(fn: Any = None, /, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` as an activity of the current code workflow, or declare one.

    Inside a code workflow: ``result = await activity(fetch_user, user_id)``. The engine
    records the call and its result; after a crash the recorded result is returned
    and the function is not called again.

    By name: ``await activity("resize_image", url, 300, queue="images")`` runs the
    activity a worker hosts under that name, in any language (or the one declared here
    with ``@activity(name=...)``). Called so, the keywords ``queue``, ``retry``,
    ``timeout`` and ``heartbeat_timeout`` are the call's options; any other keyword is
    an argument.

    As a decorator: ``@activity`` or ``@activity(retry=Retry(...), timeout=30,
    heartbeat_timeout=10, name="fetch", queue="gpu")`` sets the options every call uses
    (``queue``: only workers on that queue take it, where workers run the activities).

    Raises:
        CerebelumError: called with arguments outside a code workflow.
    """
    runtime = current_runtime.get()
    if runtime is not None and isinstance(fn, str):
        options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
        return runtime.activity(by_name(fn).with_options(**options), args, kwargs)
    if runtime is not None and fn is not None:
        return runtime.activity(as_activity(fn), args, kwargs)
    if fn is None:
        return lambda f: _declare(as_activity(f).with_options(**kwargs))
    if callable(fn) and not args and not kwargs:
        return _declare(as_activity(fn))
    raise CerebelumError(
        f"activity({getattr(fn, '__name__', fn)!r}, ...) was called outside a code workflow: "
        "call it with await inside an 'async def' decorated with @workflow"
    )


_declared: dict[str, ActivityDef] = {}


def _declare(adef: ActivityDef) -> ActivityDef:
    """Remember an activity declared with ``@activity``: workers host it by its name."""
    known = _declared.get(adef.name)
    if known is not None and known.fn is not adef.fn and _where(known.fn) != _where(adef.fn):
        raise DefinitionError(
            f"two activities are named {adef.name!r} ({_where(known.fn)} and {_where(adef.fn)}): "
            "a worker finds an activity by its name; give one another with @activity(name=...)"
        )
    _declared[adef.name] = adef
    return adef


def _where(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


def declared_activities() -> dict[str, ActivityDef]:
    """The activities declared with ``@activity`` in this process, by name."""
    return dict(_declared)


def with_options(fn: Callable[..., Any] | ActivityDef | str, **options: Any) -> ActivityDef:
    """``activity(with_options(fn, timeout=5), x)``: options for one call of a function."""
    return as_activity(fn).with_options(**options)


def activity_info() -> ActivityInfo:
    """The current activity's (or step's) execution id, attempt and idempotency key."""
    info = current_activity.get()
    if info is None:
        raise CerebelumError("activity_info() is for code running as an activity or a step")
    return info


def heartbeat(details: Any = None) -> None:
    """Tell the engine a long activity is alive; ``details`` reach the next attempt if it fails."""
    info = current_activity.get()
    if info is None:
        raise CerebelumError("heartbeat() is for code running as an activity")
    info.last_heartbeat = time.monotonic()
    info.heartbeat_details = details
