"""``@step``, its options, and the values a step returns or receives."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cerebelum.errors import CerebelumError, DefinitionError

from ._nodes import Node

__all__ = ["Context", "Error", "Retry", "StepDef", "remote_step", "step"]


def seconds_of(value: timedelta | float | int | None, what: str) -> float | None:
    """A duration given as a timedelta or a number of seconds, in seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise DefinitionError(
            f"{what} must be a timedelta or a number of seconds >= 0, not {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class Retry:
    """How a failing step is tried again.

    Args:
        max_attempts: attempts in all, the first included (1 means no retry).
        backoff: each delay is the previous one times this.
        initial: the delay before the second attempt (timedelta or seconds).
        max_interval: the longest delay between two attempts.
        non_retryable: exception types (or their names) that are never retried.
    """

    max_attempts: int = 3
    backoff: float = 2.0
    initial: timedelta | float = 1.0
    max_interval: timedelta | float | None = None
    non_retryable: tuple[type[BaseException] | str, ...] | list[Any] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise DefinitionError(
                f"Retry.max_attempts must be an int >= 1, not {self.max_attempts!r}"
            )
        if not isinstance(self.backoff, int | float) or self.backoff < 1:
            raise DefinitionError(f"Retry.backoff must be a number >= 1, not {self.backoff!r}")
        seconds_of(self.initial, "Retry.initial")
        seconds_of(self.max_interval, "Retry.max_interval")

    def allows(self, exc: BaseException) -> bool:
        """Whether this policy may retry after ``exc`` (it is not non-retryable)."""
        return self.allows_names(c.__name__ for c in type(exc).__mro__)

    def allows_names(self, names: Iterable[str]) -> bool:
        """Whether this policy may retry a failure known by ``names`` (its type's and bases')."""
        known = set(names)
        return not any(
            (n if isinstance(n, str) else n.__name__) in known for n in self.non_retryable
        )

    def to_spec(self) -> dict[str, Any]:
        names = sorted(n if isinstance(n, str) else n.__name__ for n in self.non_retryable)
        return {
            "max_attempts": self.max_attempts,
            "backoff": float(self.backoff),
            "initial": seconds_of(self.initial, "Retry.initial"),
            "max_interval": seconds_of(self.max_interval, "Retry.max_interval"),
            "non_retryable": names,
        }


NO_RETRY = Retry(max_attempts=1)


@dataclass(frozen=True)
class Error:
    """A failure a step returns instead of raising, routed by its ``name``.

    ``return Error("payment_failed", {"code": 51})`` lets a diverge rule
    ``.when("payment_failed", target=...)`` take the execution elsewhere.
    """

    name: str
    data: Any = None
    message: str = ""


def unwrap(value: Any) -> Any:
    """The SDK result dicts ``{"ok": v}`` and ``{"error": "name"}`` as a value or Error."""
    if type(value) is dict and len(value) <= 3:
        if len(value) == 1 and "ok" in value:
            return value["ok"]
        name = value.get("error")
        if isinstance(name, str) and value.keys() <= {"error", "data", "message"}:
            return Error(name, value.get("data"), value.get("message") or "")
    return value


class Context:
    """What a step knows of the execution it runs in.

    Attributes:
        execution_id: the execution's id.
        workflow: the workflow's name.
        step: this step's name.
        attempt: 1 on the first try, then 2, 3, ...
        iteration: how many times a ``back_to`` loop has brought the execution back here.
        idempotency_key: the same on every attempt of this step in this pass, so that
            a side effect can be made exactly-once.
        inputs: the workflow's input.
        logger: a logger that tags records with the execution and step.
    """

    __slots__ = ("attempt", "execution_id", "inputs", "iteration", "step", "workflow")

    def __init__(
        self, execution_id: str, workflow: str, step: str, attempt: int, iteration: int, inputs: Any
    ) -> None:
        self.execution_id = execution_id
        self.workflow = workflow
        self.step = step
        self.attempt = attempt
        self.iteration = iteration
        self.inputs = inputs

    @property
    def idempotency_key(self) -> str:
        suffix = f"#{self.iteration}" if self.iteration else ""
        return f"{self.execution_id}:{self.step}{suffix}"

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        return logging.LoggerAdapter(
            logging.getLogger("cerebelum.step"),
            {"execution_id": self.execution_id, "step": self.step, "attempt": self.attempt},
        )

    def __repr__(self) -> str:
        return (
            f"Context(execution_id={self.execution_id!r}, step={self.step!r}, "
            f"attempt={self.attempt}, iteration={self.iteration})"
        )


@dataclass(frozen=True)
class Param:
    """A parameter a step receives: ``inputs``, or the result of the node it names."""

    name: str
    optional: bool  # defaults to None: a skipped dependency gives None


@dataclass(eq=False)
class StepDef(Node):
    """A function decorated with ``@step``."""

    fn: Callable[..., Any] = field(default=lambda: None)
    retry: Retry = NO_RETRY
    timeout: float | None = None
    params: tuple[Param, ...] = ()
    is_async: bool = True
    queue: str = "default"
    #: A step hosted elsewhere (:func:`remote_step`): the name workers host it by. Empty
    #: for a step whose function is this one's ``fn``.
    task: str = ""

    kind = "step"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a step calls its function, so steps stay testable as functions."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote step {self.name} ({self.task})>" if self.task else f"<step {self.name}>"


_registry: dict[str, list[StepDef]] = {}


def registered_steps(name: str) -> list[StepDef]:
    """The steps defined in this process under ``name``."""
    return _registry.get(name, [])


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: timedelta | float | None = None,
    queue: str = "default",
) -> Any:
    """Make a function a step of graph workflows.

    The first parameter receives the :class:`Context`; every other parameter is
    injected by name: ``inputs`` is the workflow's input, any other name is the result
    of the step (or wait, or approval) of that name. A parameter that defaults to
    ``None`` receives ``None`` when that step was skipped.

    Args:
        name: the step's name (default: the function's name).
        retry: the retry policy (default: no retry).
        timeout: how long one attempt may run (timedelta or seconds).
        queue: where its tasks go when workers run the steps (``cerebelum server``):
            only workers on this queue take them.

    Raises:
        DefinitionError: the function's signature cannot be a step's.
    """

    def decorate(func: Callable[..., Any]) -> StepDef:
        if isinstance(func, StepDef):
            raise DefinitionError(f"step {func.name!r} is decorated with @step twice")
        if not callable(func):
            raise DefinitionError(f"@step needs a function, not {func!r}")
        step_name = name or func.__name__
        params = _params_of(func, step_name)
        if retry is not None and not isinstance(retry, Retry):
            raise DefinitionError(f"step {step_name!r}: retry must be a Retry, not {retry!r}")
        sd = StepDef(
            name=step_name,
            fn=func,
            retry=retry or NO_RETRY,
            timeout=seconds_of(timeout, f"step {step_name!r}: timeout"),
            params=params,
            is_async=inspect.iscoroutinefunction(func),
            queue=_queue(queue, f"step {step_name!r}"),
        )
        sd.__doc__ = func.__doc__
        sd.__wrapped__ = func  # type: ignore[attr-defined]
        same = _registry.setdefault(step_name, [])
        same[:] = [s for s in same if _origin(s.fn) != _origin(func)]
        same.append(sd)
        return sd

    return decorate(fn) if fn is not None else decorate


def remote_step(
    task: str,
    *,
    after: Iterable[Node | str] = (),
    name: str | None = None,
    retry: Retry | None = None,
    timeout: timedelta | float | None = None,
    queue: str = "default",
) -> StepDef:
    """A step that workers host by name, written in any language: no function here.

    ``remote_step("charge_card", after=[reserve], queue="payments")`` is a node of graph
    workflows like a ``@step``: it goes in timelines, rules and branches, and its result
    feeds the steps that name it. Its task carries the name ``task`` (not
    ``workflow.step``), and its inputs by name: ``inputs`` (the workflow's input) and
    the result of each step in ``after``, as a ``@step``'s parameters would receive them.
    It runs only where workers run the steps (``cerebelum server``); until a worker that
    hosts ``task`` on ``queue`` polls, it waits.

    Args:
        task: the name workers host it by (``worker.step("charge_card", ...)``).
        after: the steps (or their names) whose results it receives; it runs after them,
            and is skipped when one of them was.
        name: its node's name in the workflow (default: ``task``); two nodes of one
            workflow that run the same task need two names.
        retry: the retry policy (default: no retry), matched on the failure's names.
        timeout: how long one attempt may run (timedelta or seconds).
        queue: the queue its tasks go to.

    Raises:
        DefinitionError: a name is empty, or ``after`` holds something that is no step.
    """
    if not isinstance(task, str) or not task:
        raise DefinitionError(f"remote_step: task must be a non-empty string, not {task!r}")
    node_name = name if name is not None else task
    if not isinstance(node_name, str) or not node_name:
        raise DefinitionError(f"remote_step {task!r}: name must be a non-empty string")
    if isinstance(after, str | Node):
        after = [after]
    deps: list[str] = []
    for dep in after:
        dep_name = dep.name if isinstance(dep, Node) else dep
        if not isinstance(dep_name, str) or not dep_name or dep_name == "inputs":
            raise DefinitionError(
                f"remote_step {node_name!r}: after= takes steps or step names, not {dep!r}"
            )
        if dep_name not in deps:
            deps.append(dep_name)
    if retry is not None and not isinstance(retry, Retry):
        raise DefinitionError(f"remote_step {node_name!r}: retry must be a Retry, not {retry!r}")

    def elsewhere(context: Any, **_: Any) -> Any:
        raise CerebelumError(
            f"step {node_name!r} is a remote step: a worker that hosts {task!r} runs it, "
            "so it has no function in this process; run the workflow on a server whose "
            "workers host it (cerebelum server, docs/workers.md)"
        )

    sd = StepDef(
        name=node_name,
        fn=elsewhere,
        retry=retry or NO_RETRY,
        timeout=seconds_of(timeout, f"remote_step {node_name!r}: timeout"),
        params=tuple(Param(d, False) for d in deps),
        is_async=True,
        queue=_queue(queue, f"remote_step {node_name!r}"),
        task=task,
    )
    same = _registry.setdefault(node_name, [])
    same[:] = [s for s in same if not (s.task and s.task == task)]
    same.append(sd)
    return sd


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    return (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)))


def _params_of(func: Callable[..., Any], step_name: str) -> tuple[Param, ...]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"step {step_name!r}: cannot read its signature ({exc})") from None
    params = list(sig.parameters.values())
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise DefinitionError(
                f"step {step_name!r}: parameter {p.name!r} cannot be injected by name "
                "(no *args, **kwargs or positional-only parameters)"
            )
    if not params:
        raise DefinitionError(
            f"step {step_name!r} takes no parameter: its first parameter receives the context"
        )
    return tuple(Param(p.name, p.default is None) for p in params[1:])


def _queue(queue: Any, what: str) -> str:
    if not isinstance(queue, str) or not queue:
        raise DefinitionError(f"{what}: queue must be a non-empty string, not {queue!r}")
    return queue
