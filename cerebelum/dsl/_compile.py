"""Compile what a graph workflow declared into a validated :class:`Blueprint`."""

from __future__ import annotations

import hashlib
from typing import Any

from cerebelum.engine._blueprint import Blueprint, NodeSpec, RuleSpec
from cerebelum.errors import DefinitionError

from ._builder import RuleDef, WorkflowBuilder
from ._nodes import ApprovalNode, Chain, Node, WaitNode, describe
from ._rules import Action, pattern_spec
from ._step import StepDef, registered_steps

__all__ = ["Compiled", "compile_graph"]


class Compiled:
    """A blueprint plus the live objects only this process has (functions, predicates)."""

    def __init__(
        self, blueprint: Blueprint, steps: dict[str, StepDef], live: dict[tuple[str, int], Any]
    ):
        self.blueprint = blueprint
        self.steps = steps
        self.live = live


class _Graph:
    def __init__(self, wf: str) -> None:
        self.wf = wf
        self.nodes: dict[str, Node] = {}
        self.after: dict[str, dict[str, None]] = {}
        self.routes_in: dict[str, list[tuple[str, int]]] = {}
        self.timeline: set[str] = set()
        self.rules: dict[str, list[RuleSpec]] = {}
        self.live: dict[tuple[str, int], Any] = {}

    def add(self, node: Node) -> str:
        known = self.nodes.get(node.name)
        if known is None:
            self.nodes[node.name] = node
            self.after[node.name] = {}
            self.routes_in[node.name] = []
        elif known is not node and not _same_wait(known, node):
            raise DefinitionError(
                f"workflow {self.wf!r}: two different nodes are named {node.name!r}; names must be unique",
                workflow=self.wf,
                step=node.name,
            )
        return node.name

    def add_chain(self, chain: Chain, on_timeline: bool) -> None:
        previous: tuple[str, ...] = ()
        for stage in chain.stages:
            names = tuple(self.add(n) for n in stage)
            for name in names:
                if on_timeline:
                    self.timeline.add(name)
                for p in previous:
                    if p == name:
                        raise DefinitionError(
                            f"workflow {self.wf!r}: {name!r} follows itself", step=name
                        )
                    self.after[name][p] = None
            previous = names

    def resolve(self, ref: Node | str, where: str) -> str:
        name = ref.name if isinstance(ref, Node) else ref
        if not isinstance(name, str) or name not in self.nodes:
            raise DefinitionError(
                f"{where}: {describe(ref)} is unreachable: no timeline or target of this workflow "
                "leads to it",
                workflow=self.wf,
                step=name,
            )
        return name


def _same_wait(a: Node, b: Node) -> bool:
    """Two wait() calls with the same duration are the same node when they have no name."""
    return isinstance(a, WaitNode) and isinstance(b, WaitNode) and a == b


def compile_graph(builder: WorkflowBuilder) -> Compiled:
    """Compile and validate; raise :class:`DefinitionError` naming the culprit."""
    g = _Graph(builder.name)
    _name_anonymous_waits(builder)
    for chain in builder.timelines:
        g.add_chain(chain, on_timeline=True)
    if not builder.timelines:
        raise DefinitionError(
            f"workflow {builder.name!r} has no timeline: call wf.timeline(a >> b)"
        )
    for rule in builder.rules:  # targets first: a target may be the source of a later rule
        if isinstance(rule.target, Chain | Node):
            g.add_chain(Chain.of(rule.target), on_timeline=False)
    for rule in builder.rules:
        _add_rule(g, rule)
    _pull_in_dependencies(g)
    order = _topological(g)
    specs = [_node_spec(g, name) for name in order]
    bp = Blueprint(name=builder.name, nodes=specs, rules=g.rules)
    _check_back_to(bp)
    bp.version = hashlib.sha256(bp.to_json()).hexdigest()[:16]
    steps = {n: node for n, node in g.nodes.items() if isinstance(node, StepDef)}
    return Compiled(bp, steps, g.live)


def _name_anonymous_waits(builder: WorkflowBuilder) -> None:
    """Give unnamed waits of the same label distinct, stable names (wait_1d, wait_1d_2)."""
    seen: dict[str, list[WaitNode]] = {}
    chains = [*builder.timelines]
    chains += [Chain.of(r.target) for r in builder.rules if isinstance(r.target, Chain | Node)]
    for chain in chains:
        for node in chain.nodes():
            if isinstance(node, WaitNode) and not node.named:
                same = seen.setdefault(node.name, [])
                if not any(n is node for n in same):
                    same.append(node)
    for base, nodes in seen.items():
        for i, node in enumerate(nodes[1:], start=2):
            node.name = f"{base}_{i}"
            node.named = True


def _add_rule(g: _Graph, rule: RuleDef) -> None:
    source = g.resolve(rule.source, rule.where)
    rules = g.rules.setdefault(source, [])
    index = len(rules)
    pattern, live = pattern_spec(rule.pattern, rule.where)
    if live is not None:
        g.live[(source, index)] = live
    target = rule.target
    if isinstance(target, Action):
        name = g.resolve(target.target, rule.where) if target.target is not None else None
        if target.kind == "skip_to" and name is not None:
            g.routes_in[name].append((source, index))
        rules.append(
            RuleSpec(
                pattern=pattern,
                action=target.kind,
                target=name,
                limit=target.limit,
                delay=target.delay,
                reason=target.reason,
            )
        )
        return
    if isinstance(target, str):
        target = g.nodes.get(target) or target
    if not isinstance(target, Node | Chain):
        raise DefinitionError(
            f"{rule.where}: the target {describe(target)} is not registered in this workflow; "
            "use a step, a chain (a >> b), or a flow action (retry, back_to, skip_to, fail, proceed)",
            workflow=g.wf,
        )
    first = Chain.of(target).first
    for node in first:
        g.routes_in[node.name].append((source, index))
    rules.append(RuleSpec(pattern=pattern, action="goto", target=first[0].name))


def _pull_in_dependencies(g: _Graph) -> None:
    """A parameter may name a step that no timeline lists: it joins the workflow."""
    pending = list(g.nodes.values())
    while pending:
        node = pending.pop()
        if not isinstance(node, StepDef):
            continue
        for param in node.params:
            if param.name == "inputs" or param.name in g.nodes:
                continue
            found = {id(s): s for s in registered_steps(param.name)}
            if len(found) == 1:
                dep = next(iter(found.values()))
                g.add(dep)
                pending.append(dep)
                continue
            what = "names no step" if not found else "names several steps (rename one)"
            raise DefinitionError(
                f"workflow {g.wf!r}: step {node.name!r} has a parameter {param.name!r} that {what}; "
                "a parameter after the context is 'inputs' or the name of a step of the workflow",
                workflow=g.wf,
                step=node.name,
            )


def _deps(g: _Graph, name: str) -> list[str]:
    node = g.nodes[name]
    deps = [*g.after[name], *(s for s, _ in g.routes_in[name])]
    if isinstance(node, StepDef):
        deps += [p.name for p in node.params if p.name != "inputs"]
    return deps


def _topological(g: _Graph) -> list[str]:
    deps = {name: set(_deps(g, name)) for name in g.nodes}
    order: list[str] = []
    ready = [n for n in g.nodes if not deps[n]]
    done: set[str] = set()
    while ready:
        name = ready.pop(0)
        order.append(name)
        done.add(name)
        for other in g.nodes:
            if other not in done and other not in ready and deps[other] <= done:
                ready.append(other)
    if len(order) < len(g.nodes):
        left = [n for n in g.nodes if n not in done]
        cycle = _find_cycle(left, deps)
        raise DefinitionError(
            f"workflow {g.wf!r} has a cycle: {' -> '.join(cycle)}; to loop, use "
            f"wf.diverge(step).when(..., target=back_to(earlier_step))",
            workflow=g.wf,
            step=cycle[0],
        )
    return order


def _find_cycle(left: list[str], deps: dict[str, set[str]]) -> list[str]:
    path: list[str] = []
    node = left[0]
    while node not in path:
        path.append(node)
        node = next(d for d in sorted(deps[node]) if d in left)
    cycle = [*path[path.index(node) :], node]
    return list(reversed(cycle))


def _check_back_to(bp: Blueprint) -> None:
    for source, rules in bp.rules.items():
        for rule in rules:
            if rule.action == "back_to" and source not in bp.downstream(rule.target or ""):
                raise DefinitionError(
                    f"workflow {bp.name!r}: back_to({rule.target!r}) from {source!r}: "
                    f"{source!r} does not come after {rule.target!r}, so there is nothing to go back to",
                    workflow=bp.name,
                    step=source,
                )


def _node_spec(g: _Graph, name: str) -> NodeSpec:
    node = g.nodes[name]
    spec = NodeSpec(
        name=name,
        kind=node.kind,
        after=list(g.after[name]),
        routes_in=list(g.routes_in[name]),
        timeline=name in g.timeline,
    )
    if isinstance(node, StepDef):
        spec.params = [(p.name, p.optional) for p in node.params]
        spec.retry = node.retry.to_spec() if node.retry.max_attempts > 1 else None
        spec.timeout = node.timeout
        spec.task = node.task
    elif isinstance(node, WaitNode):
        spec.wait_seconds, spec.wait_months, spec.wait_until = node.seconds, node.months, node.until
    elif isinstance(node, ApprovalNode):
        spec.approval_timeout = node.timeout
    return spec
