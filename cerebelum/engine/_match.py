"""Matching an outcome against a rule's pattern (the pattern kinds of a blueprint).

Patterns are plain data in the blueprint; exception types and predicates need their
live object, which only the process that defines the workflow has. Matching happens
when an outcome happens, and the index of the matched rule is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cerebelum.errors import StepTimeoutError

if TYPE_CHECKING:
    from cerebelum.protocol import ErrorInfo

__all__ = ["Outcome", "is_subset", "matches"]


@dataclass
class Outcome:
    """What a node's attempt ended with, as rules see it."""

    ok: bool
    value: Any = None  # the decoded result when ok
    error_name: str | None = None  # Error.name, the exception's class name, or "timeout"
    exception: BaseException | None = None
    names: tuple[str, ...] = field(default=())
    info: ErrorInfo | None = None  # a failure as data: its type and bases by name

    @classmethod
    def from_error(cls, info: ErrorInfo) -> Outcome:
        """A failure as recorded, from whichever process or language it came."""
        names = info.names()
        return cls(ok=False, error_name=names[0], names=names, info=info)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Outcome:
        names = tuple(c.__name__ for c in type(exc).__mro__)
        if isinstance(exc, StepTimeoutError | TimeoutError):
            names = ("timeout", *names)
        return cls(ok=False, error_name=names[0], exception=exc, names=names)

    @classmethod
    def error(cls, name: str) -> Outcome:
        return cls(ok=False, error_name=name, names=(name,))


def is_subset(pattern: Any, value: Any) -> bool:
    """Whether every key of the dict ``pattern`` is in ``value`` with a matching value."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(k in value and is_subset(v, value[k]) for k, v in pattern.items())
    return bool(pattern == value)


def matches(spec: dict[str, Any], live: Any, outcome: Outcome) -> bool:
    """Whether ``outcome`` matches the pattern ``spec`` (with its ``live`` object).

    A predicate that raises is an error of the step, not of the engine: the caller
    turns the exception into a step failure.
    """
    kind = spec["kind"]
    if kind == "otherwise":
        return outcome.ok
    if kind == "subset":
        return outcome.ok and is_subset(spec["value"], outcome.value)
    if kind == "name":
        return not outcome.ok and spec["name"] in outcome.names
    if kind == "exception":
        if outcome.info is not None:
            return outcome.info.is_a(live)
        return outcome.exception is not None and isinstance(outcome.exception, live)
    if kind == "predicate":
        return outcome.ok and bool(live(outcome.value))
    raise ValueError(f"unknown pattern kind {kind!r}")
