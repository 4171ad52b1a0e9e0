"""A graph workflow's blueprint as a Mermaid flowchart (``cerebelum graph``).

Solid arrows are the timeline and the other sequences; dotted ones carry data only
(a step reading an earlier step's result that it does not directly follow); labelled
arrows are diverge and branch rules. Steps are boxes, waits are stadiums,
approvals are hexagons; the start and the end are circles. A node that no other
follows in sequence leads to the end (a rule may still route it elsewhere).
"""

from __future__ import annotations

import re
from typing import Any

from cerebelum.engine._blueprint import Blueprint, RuleSpec

__all__ = ["to_mermaid"]


def to_mermaid(bp: Blueprint) -> str:
    """The flowchart of ``bp``, as Mermaid text (``flowchart TD``)."""
    ids = {n.name: _id(n.name, i) for i, n in enumerate(bp.nodes)}
    lines = ["flowchart TD", "    start((start))"]
    for node in bp.nodes:
        lines.append(f"    {ids[node.name]}{_shape(node)}")
    lines.append("    finish((end))")
    followed: set[str] = set()
    for node in bp.nodes:
        nid = ids[node.name]
        if node.timeline and not node.after and not node.routes_in:
            lines.append(f"    start --> {nid}")
        for before in node.after:
            lines.append(f"    {ids[before]} --> {nid}")
            followed.add(before)
        readers = {p for p, _ in node.params if p != "inputs"} - set(node.after)
        readers -= {source for source, _ in node.routes_in}
        for source in sorted(readers, key=bp.order.__getitem__):
            lines.append(f"    {ids[source]} -.-> {nid}")
    for name, rules in bp.rules.items():
        for rule in rules:
            label = _label(rule)
            if rule.target is not None and rule.target in ids:
                arrow = "-. " + label + " .->" if rule.action == "back_to" else f"-- {label} -->"
                lines.append(f"    {ids[name]} {arrow} {ids[rule.target]}")
            elif rule.action in ("fail", "retry", "proceed"):
                lines.append(f"    {ids[name]} -- {label} --> {ids[name]}")
    for node in bp.nodes:
        if node.name not in followed:
            lines.append(f"    {ids[node.name]} --> finish")
    return "\n".join(lines) + "\n"


def _id(name: str, index: int) -> str:
    return f"n{index}_" + re.sub(r"\W", "_", name)


def _text(value: str) -> str:
    return value.replace('"', "#quot;")


def _shape(node: Any) -> str:
    if node.kind == "wait":
        return f'(["{_text(node.name)}"])'
    if node.kind == "approval":
        return '{{"approval: ' + _text(node.name) + '"}}'
    extra = ""
    if node.retry:
        extra = f"<br/>retry x{node.retry.get('max_attempts', '?')}"
    return f'["{_text(node.name)}{extra}"]'


def _label(rule: RuleSpec) -> str:
    p = rule.pattern
    kind = p.get("kind")
    if kind == "name":
        what = str(p["name"])
    elif kind == "subset":
        what = ", ".join(f"{k}={v!r}" for k, v in p["value"].items()) or "{}"
    elif kind == "exception":
        what = str(p["type"]).rsplit(".", 1)[-1]
    elif kind == "predicate":
        what = str(p["ref"]).rsplit(".", 1)[-1]
    else:
        what = "otherwise"
    action = rule.action if rule.action != "goto" else ""
    if rule.limit is not None and rule.action in ("retry", "back_to"):
        action += f" x{rule.limit}"
    return _text(f"{what} {action}".strip()).replace("'", "")
