"""The nodes of a graph workflow and how ``>>`` joins them into chains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Union

from cerebelum.errors import DefinitionError

__all__ = ["ApprovalNode", "Chain", "Node", "WaitNode", "approval", "wait"]

Stage = tuple["Node", ...]
Linkable = Union["Node", "Chain", Sequence["Node"]]


@dataclass(eq=False)
class Node:
    """Something a timeline can hold: a step, a wait or an approval."""

    name: str
    kind: ClassVar[str] = "node"

    def __rshift__(self, other: Linkable) -> Chain:
        return Chain.of(self) >> other

    def __rrshift__(self, other: Linkable) -> Chain:
        return Chain.of(other) >> self


class Chain:
    """Stages run one after the other; the nodes of one stage run at the same time."""

    __slots__ = ("stages",)

    def __init__(self, stages: tuple[Stage, ...]) -> None:
        self.stages = stages

    @classmethod
    def of(cls, item: Linkable) -> Chain:
        if isinstance(item, Chain):
            return item
        if isinstance(item, Node):
            return cls(((item,),))
        if isinstance(item, list | tuple):
            if not item:
                raise DefinitionError("a parallel group cannot be empty")
            for member in item:
                if not isinstance(member, Node):
                    raise DefinitionError(
                        f"a parallel group holds steps, waits or approvals, not {member!r}"
                    )
            return cls((tuple(item),))
        raise DefinitionError(
            f"{item!r} cannot be part of a timeline: use @step functions, wait() or approval()"
        )

    def __rshift__(self, other: Linkable) -> Chain:
        return Chain(self.stages + Chain.of(other).stages)

    def __rrshift__(self, other: Linkable) -> Chain:
        return Chain(Chain.of(other).stages + self.stages)

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def nodes(self) -> list[Node]:
        return [n for stage in self.stages for n in stage]

    def __repr__(self) -> str:
        def show(stage: Stage) -> str:
            return (
                stage[0].name if len(stage) == 1 else "[" + ", ".join(n.name for n in stage) + "]"
            )

        return " >> ".join(show(s) for s in self.stages)


@dataclass(eq=False)
class WaitNode(Node):
    """A durable pause: ``seconds`` (plus calendar ``months``), or until ``until``."""

    seconds: float = 0.0
    months: int = 0
    until: float | None = None
    named: bool = False
    kind: ClassVar[str] = "wait"


@dataclass(eq=False)
class ApprovalNode(Node):
    """A durable wait for ``engine.approve(id, name)`` or ``engine.reject(id, name)``.

    On a graph's timeline it is a node; inside a code workflow, ``await approval(...)``
    waits there and returns a :class:`~cerebelum.code.Decision`.
    """

    timeout: float | None = None
    kind: ClassVar[str] = "approval"

    def __await__(self) -> Any:
        from cerebelum.engine._context import current_runtime

        runtime = current_runtime.get()
        if runtime is None:
            raise DefinitionError(
                f"approval({self.name!r}) was awaited outside a code workflow; in a graph "
                "workflow, put it on a timeline: wf.timeline(a >> approval(...) >> b)"
            )
        return runtime.approval(self.name, self.timeout).__await__()


def wait(
    duration: timedelta | None = None,
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
    weeks: float = 0,
    months: int = 0,
    until: datetime | None = None,
    name: str | None = None,
) -> WaitNode:
    """A node that pauses the execution durably, surviving restarts.

    ``wait(days=1)``, ``wait(timedelta(hours=3))``, ``wait(months=1)`` (calendar months,
    counted from when the wait begins) or ``wait(until=datetime)``.

    Args:
        name: the node's name, for diverges and for the steps that take its result
            (default: from the duration, e.g. ``wait_1d``).
    """
    if not isinstance(months, int) or months < 0:
        raise DefinitionError(f"wait(months=...) takes a whole number >= 0, not {months!r}")
    total = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days, weeks=weeks)
    if duration is not None:
        if not isinstance(duration, timedelta):
            raise DefinitionError(f"wait() takes a timedelta, not {duration!r}")
        total += duration
    secs = total.total_seconds()
    if until is not None:
        if until.tzinfo is None:
            raise DefinitionError("wait(until=...) needs a timezone-aware datetime")
        if secs or months:
            raise DefinitionError("wait() takes either a duration or until=, not both")
    elif secs < 0:
        raise DefinitionError(f"wait() cannot last a negative time ({total})")
    elif not secs and not months:
        raise DefinitionError("wait() needs a duration, e.g. wait(days=1)")
    label = name or _label(secs, months, until)
    return WaitNode(
        name=label,
        seconds=secs,
        months=months,
        until=until.timestamp() if until else None,
        named=name is not None,
    )


def approval(name: str, *, timeout: timedelta | float | None = None) -> ApprovalNode:
    """A node that waits until someone approves or rejects it.

    The decision reaches the steps after it as ``{"approved": bool, "data": ...}``
    (a step takes it through a parameter named after the approval). When ``timeout``
    passes first, the node fails with the error ``"timeout"``, which a diverge can route:
    ``wf.diverge(node).when("timeout", target=escalate)``.

    Args:
        name: the approval's name, as given to ``engine.approve(id, name)``.
        timeout: how long to wait (timedelta or seconds); no limit by default.
    """
    from ._step import seconds_of

    if not isinstance(name, str) or not name.isidentifier():
        raise DefinitionError(f"approval() needs a name that is an identifier, not {name!r}")
    return ApprovalNode(name=name, timeout=seconds_of(timeout, f"approval {name!r}: timeout"))


def _label(seconds: float, months: int, until: datetime | None) -> str:
    if until is not None:
        return "wait_until_" + until.strftime("%Y%m%dT%H%M%S")
    parts = [f"{months}mo"] if months else []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if seconds != int(seconds):
        parts.append(f"{round((seconds % 1) * 1000)}ms")
    return "wait_" + "".join(parts)


def describe(value: Any) -> str:
    """How an error message names a node-ish value."""
    return repr(value.name) if isinstance(value, Node) else repr(value)
