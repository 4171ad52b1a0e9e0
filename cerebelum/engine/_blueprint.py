"""The blueprint: a compiled graph workflow as plain, JSON-serialisable data.

The decider reads only this. Predicates and exception types are referred to by
name; their live objects stay with the workflow definition and are used only when an
outcome happens, never when a history is folded.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import msgspec

__all__ = ["Blueprint", "NodeSpec", "RuleSpec"]


class RuleSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One diverge or branch rule of a node, in the order it is tried."""

    pattern: dict[str, Any]
    action: str  # goto | retry | back_to | skip_to | fail | proceed
    target: str | None = None
    limit: int | None = None  # retry: attempts; back_to: iterations
    delay: float = 0.0
    reason: str = ""

    def label(self) -> str:
        """What it matches and does, for people (``payment_failed``, ``timeout retry x3``):
        the labels of ``cerebelum graph`` and of the web UI's graph."""
        p = self.pattern
        kind = p.get("kind")
        if kind == "name":
            what = str(p["name"])
        elif kind == "subset":
            what = ", ".join(f"{k}={v!r}" for k, v in p["value"].items()) or "{}"
        elif kind in ("exception", "predicate"):
            what = str(p["type" if kind == "exception" else "ref"]).rsplit(".", 1)[-1]
        else:
            what = "otherwise"
        action = self.action if self.action not in ("goto", "fail") else ""
        if self.limit is not None and self.action in ("retry", "back_to"):
            action += f" x{self.limit}"
        return f"{what} {action}".strip()


class NodeSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A step, wait or approval of the workflow."""

    name: str
    kind: str = "step"  # step | wait | approval
    after: list[str] = []  # nodes that lead here in sequence (timeline, chains)
    routes_in: list[tuple[str, int]] = []  # (node, rule index) whose match leads here
    params: list[tuple[str, bool]] = []  # (name, defaults to None) after the context
    timeline: bool = False
    retry: dict[str, Any] | None = None
    timeout: float | None = None
    wait_seconds: float = 0.0
    wait_months: int = 0
    wait_until: float | None = None
    approval_timeout: float | None = None
    task: str = ""  # a remote step's task name (workers host it by this name)


class Blueprint(msgspec.Struct, kw_only=True, dict=True):
    """A graph workflow: its nodes in topological order and their rules."""

    name: str
    version: str = ""
    kind: str = "graph"
    nodes: list[NodeSpec]
    rules: dict[str, list[RuleSpec]] = {}

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, raw: bytes) -> Blueprint:
        return msgspec.json.decode(raw, type=cls)

    # --- derived indexes, computed once per blueprint -------------------------------

    @cached_property
    def node(self) -> dict[str, NodeSpec]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def order(self) -> dict[str, int]:
        return {n.name: i for i, n in enumerate(self.nodes)}

    @cached_property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Every node a node must wait for: sequence, route sources and data."""
        out = {}
        for n in self.nodes:
            names = dict.fromkeys([*n.after, *(s for s, _ in n.routes_in)])
            names.update(dict.fromkeys(p for p, _ in n.params if p != "inputs"))
            out[n.name] = tuple(names)
        return out

    @cached_property
    def dependents(self) -> dict[str, tuple[str, ...]]:
        """The nodes to look at again when a node is resolved."""
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for name, deps in self.deps.items():
            for d in deps:
                out[d].append(name)
        return {k: tuple(sorted(v, key=self.order.__getitem__)) for k, v in out.items()}

    @cached_property
    def terminal(self) -> frozenset[str]:
        """Nodes off the timeline, reached by a route, that nothing follows.

        Completing one ends the execution, with its result as the output.
        """
        followed = {a for n in self.nodes for a in n.after}
        routed = set()
        frontier = [n.name for n in self.nodes if n.routes_in]
        while frontier:
            name = frontier.pop()
            if name in routed:
                continue
            routed.add(name)
            frontier.extend(n.name for n in self.nodes if name in n.after)
        return frozenset(
            n.name
            for n in self.nodes
            if n.name in routed and not n.timeline and n.name not in followed
        )

    def downstream(self, start: str) -> list[str]:
        """``start`` and every node that depends on it, directly or not, in order."""
        seen = {start}
        frontier = [start]
        while frontier:
            for d in self.dependents[frontier.pop()]:
                if d not in seen:
                    seen.add(d)
                    frontier.append(d)
        return sorted(seen, key=self.order.__getitem__)
