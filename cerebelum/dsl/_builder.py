"""The ``wf`` object a graph workflow's function receives: timelines, diverges, branches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerebelum.errors import DefinitionError

from ._nodes import Chain, Node, describe
from ._rules import OTHERWISE, Action

__all__ = ["Branch", "Diverge", "RuleDef", "WorkflowBuilder"]

Target = Node | Chain | Action | str


@dataclass
class RuleDef:
    """A rule as written: on ``source``'s outcome matching ``pattern``, go to ``target``."""

    source: Node | str
    pattern: Any
    target: Target
    where: str  # for error messages: "diverge(fetch_user).when({'age': 17})"


class WorkflowBuilder:
    """Collects what a graph workflow's function declares; compiled afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.timelines: list[Chain] = []
        self.rules: list[RuleDef] = []

    def timeline(self, chain: Node | Chain | list[Node]) -> WorkflowBuilder:
        """The main path: ``wf.timeline(a >> [b, c] >> d)``; steps of a group run at once."""
        self.timelines.append(Chain.of(chain))
        return self

    def diverge(self, source: Node | str) -> Diverge:
        """Rules on ``source``'s outcome: ``wf.diverge(a).when(pattern, target=...)``."""
        return Diverge(self, source)

    def branch(
        self,
        source: Node | str | None = None,
        *,
        after: Node | str | None = None,
        on: Any = None,
        when_true: Target | None = None,
        when_false: Target | None = None,
    ) -> Branch:
        """A decision on ``source``'s result.

        Two-way: ``wf.branch(after=a, on=predicate, when_true=b, when_false=c)``.
        Many-way: ``wf.branch(a).when(predicate, target=b).when(...).otherwise(c)``.
        """
        src = source if source is not None else after
        if src is None:
            raise DefinitionError(
                f"workflow {self.name!r}: branch() needs a step: branch(step) or branch(after=step)"
            )
        if source is not None and after is not None:
            raise DefinitionError(
                f"workflow {self.name!r}: branch() takes the step once, not both branch(x) and after="
            )
        b = Branch(self, src)
        if on is not None:
            if when_true is None:
                raise DefinitionError(
                    f"workflow {self.name!r}: branch(after={describe(src)}, on=...) needs when_true="
                )
            b.when(on, target=when_true)
            b.otherwise(when_false if when_false is not None else Action("proceed"))
        elif when_true is not None or when_false is not None:
            raise DefinitionError(
                f"workflow {self.name!r}: branch(when_true=/when_false=) needs on=predicate"
            )
        return b


class Diverge:
    """The rules of one diverge; ``.when`` adds one and returns the diverge again."""

    label = "diverge"

    def __init__(self, builder: WorkflowBuilder, source: Node | str) -> None:
        self._builder = builder
        self._source = source

    def when(self, pattern: Any, *, target: Target) -> Diverge:
        where = f"workflow {self._builder.name!r}: {self.label}({describe(self._source)}).when({pattern!r})"
        if target is None:
            raise DefinitionError(f"{where} needs a target")
        self._builder.rules.append(RuleDef(self._source, pattern, target, where))
        return self


class Branch(Diverge):
    """A many-way branch: rules tried in order, ``otherwise`` when none matched."""

    label = "branch"

    def otherwise(self, target: Target) -> Branch:
        where = f"workflow {self._builder.name!r}: branch({describe(self._source)}).otherwise()"
        self._builder.rules.append(RuleDef(self._source, OTHERWISE, target, where))
        return self
