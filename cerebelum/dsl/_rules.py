"""Diverge and branch rules: patterns, flow actions, and how an outcome is matched.

A rule's pattern is matched against a step's outcome *when the outcome happens*,
and the index of the rule that matched is recorded in the history. Recovery reads
that index back; it never evaluates a predicate again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cerebelum.engine._match import Outcome, is_subset, matches
from cerebelum.errors import DefinitionError

from ._nodes import Node, describe
from ._step import seconds_of

__all__ = [
    "OTHERWISE",
    "Action",
    "Outcome",
    "back_to",
    "fail",
    "is_subset",
    "matches",
    "pattern_spec",
    "proceed",
    "retry",
    "skip_to",
]


@dataclass(frozen=True)
class Action:
    """What a matched rule does instead of going to a step."""

    kind: str  # retry | back_to | skip_to | fail | proceed
    target: Node | str | None = None
    limit: int | None = None
    delay: float = 0.0
    reason: str = ""


def retry(max_attempts: int = 3, *, delay: timedelta | float = 0) -> Action:
    """Run the step again, up to ``max_attempts`` times in all for this rule."""
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise DefinitionError(f"retry(max_attempts=...) must be an int >= 1, not {max_attempts!r}")
    return Action("retry", limit=max_attempts, delay=seconds_of(delay, "retry(delay=...)") or 0.0)


def back_to(step: Node | str, *, max_iterations: int = 10) -> Action:
    """Go back to an earlier ``step`` and run it and everything after it again.

    ``max_iterations`` guards the loop: the execution fails when the rule would take
    it back more often than that.
    """
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise DefinitionError(
            f"back_to(max_iterations=...) must be an int >= 1, not {max_iterations!r}"
        )
    return Action("back_to", target=step, limit=max_iterations)


def skip_to(step: Node | str) -> Action:
    """Jump ahead to ``step``; the steps in between are recorded as skipped."""
    return Action("skip_to", target=step)


def fail(reason: str = "") -> Action:
    """Fail the execution, with ``reason`` as its error message."""
    return Action("fail", reason=reason)


def proceed() -> Action:
    """Carry on along the timeline as if nothing matched (an error counts as a ``None`` result)."""
    return Action("proceed")


class _Otherwise:
    def __repr__(self) -> str:
        return "otherwise"


OTHERWISE = _Otherwise()


def pattern_spec(pattern: Any, where: str) -> tuple[dict[str, Any], Any]:
    """The plain-data form of a pattern, and the live object needed to match it."""
    if pattern is OTHERWISE:
        return {"kind": "otherwise"}, None
    if isinstance(pattern, str):
        return {"kind": "name", "name": pattern}, None
    if isinstance(pattern, dict):
        from cerebelum.serde import decode_json, encode

        raw = encode(pattern, f"the pattern of {where}")
        return {"kind": "subset", "value": decode_json(raw)}, None
    if isinstance(pattern, type) and issubclass(pattern, BaseException):
        return {
            "kind": "exception",
            "type": f"{pattern.__module__}.{pattern.__qualname__}",
        }, pattern
    if callable(pattern) and not isinstance(pattern, Node):
        ref = f"{getattr(pattern, '__module__', '?')}.{getattr(pattern, '__qualname__', repr(pattern))}"
        return {"kind": "predicate", "ref": ref}, pattern
    raise DefinitionError(
        f"{where}: {describe(pattern)} is not a pattern; use an error name (str), a dict to match "
        "against the result, an exception type, or a predicate"
    )


Predicate = Callable[[Any], Any]
