"""A graph workflow's blueprint as a Mermaid flowchart (``cerebelum graph``).

Solid arrows are the timeline and the other sequences; dotted ones carry data only
(a step reading an earlier step's result that it does not directly follow); labelled
arrows are diverge and branch rules, labelled with the pattern and the flow action.
Steps are boxes, waits are stadiums, approvals are hexagons, a ``fail(...)`` rule ends
on a flag; the start and the end are circles. A node that no other follows in
sequence leads to the end (a rule may still route it elsewhere).

Every text is quoted and node ids are derived from the position, so a step may be
called anything, ``end`` included (a bare ``end`` breaks a Mermaid flowchart).
"""

from __future__ import annotations

import re

from cerebelum.engine._blueprint import Blueprint, NodeSpec, RuleSpec

__all__ = ["to_mermaid"]


def to_mermaid(bp: Blueprint) -> str:
    """The flowchart of ``bp``, as Mermaid text (``flowchart TD``).

    Args:
        bp: a compiled graph workflow's blueprint (``my_workflow.blueprint``).

    Returns:
        The Mermaid source, one statement per line, ending with a newline.
    """
    ids = {n.name: _id(n.name, i) for i, n in enumerate(bp.nodes)}
    lines = ["flowchart TD", '    start(("start"))']
    lines += [f"    {ids[n.name]}{_shape(n)}" for n in bp.nodes]
    lines.append('    finish(("end"))')
    followed = {before for n in bp.nodes for before in n.after}
    for node in bp.nodes:
        lines += _sequence_edges(bp, node, ids)
    for name, rules in bp.rules.items():
        for index, rule in enumerate(rules):
            lines += _rule_edges(bp, name, index, rule, ids)
    lines += [f"    {ids[n.name]} --> finish" for n in bp.nodes if n.name not in followed]
    return "\n".join(lines) + "\n"


def _sequence_edges(bp: Blueprint, node: NodeSpec, ids: dict[str, str]) -> list[str]:
    nid = ids[node.name]
    data = {p for p, _ in node.params if p != "inputs"}
    edges = []
    if not node.after and not node.routes_in and (node.timeline or not data):
        edges.append(f"    start --> {nid}")  # runs as soon as the execution starts
    edges += [f"    {ids[before]} --> {nid}" for before in node.after]
    readers = data - set(node.after) - {source for source, _ in node.routes_in}
    edges += [f"    {ids[s]} -.-> {nid}" for s in sorted(readers, key=bp.order.__getitem__)]
    return edges


def _rule_edges(
    bp: Blueprint, name: str, index: int, rule: RuleSpec, ids: dict[str, str]
) -> list[str]:
    src, label = ids[name], _text(rule.label().replace("'", ""))
    if rule.action == "back_to" and rule.target in ids:
        return [f'    {src} -.->|"{label}"| {ids[rule.target]}']
    if rule.target in ids:  # goto, skip_to
        return [f'    {src} -->|"{label}"| {ids[rule.target]}']
    if rule.action == "fail":
        flag = f"{src}_fail{index}"
        reason = _text("fail: " + rule.reason if rule.reason else "fail")
        return [f'    {flag}>"{reason}"]', f'    {src} -->|"{label}"| {flag}']
    if rule.action == "proceed":  # on along the timeline, as if nothing had matched
        nexts = [ids[n.name] for n in bp.nodes if name in n.after] or ["finish"]
        return [f'    {src} -->|"{label}"| {nxt}' for nxt in nexts]
    return [f'    {src} -->|"{label}"| {src}']  # retry: the same step again


def _id(name: str, index: int) -> str:
    return f"n{index}_" + re.sub(r"\W", "_", name)


def _text(value: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return (
        value.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("|", "#124;")
    )


def _shape(node: NodeSpec) -> str:
    name = _text(node.name)
    if node.kind == "wait":
        return f'(["{name}"])'
    if node.kind == "approval":
        extra = ""
        if node.approval_timeout is not None:
            extra = f"<br/>times out after {_duration(node.approval_timeout)}"
        return '{{"approval: ' + name + extra + '"}}'
    extra = ""
    if node.retry:
        extra = f"<br/>retry x{node.retry.get('max_attempts', '?')}"
    return f'["{name}{extra}"]'


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
