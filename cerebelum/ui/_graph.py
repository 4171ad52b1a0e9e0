"""A graph workflow's blueprint laid out for drawing, and each node's state in an execution.

The layout is layered by topological depth: a node sits one row below the deepest node
it waits for (in sequence, through a rule, or for data), and the nodes of a row are
spread side by side in blueprint order. Edges that go back up (``back_to`` rules) are
drawn as they are; the browser draws the SVG from these coordinates.
"""

from __future__ import annotations

from typing import Any

from cerebelum.engine import Blueprint, StepInfo

__all__ = ["NODE_STATES", "layout", "node_states"]

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 180, 46, 36, 56, 20

#: What a node shows, from what its history says (summarize_steps' statuses).
NODE_STATES = {
    "scheduled": "running",
    "running": "running",
    "retrying": "running",
    "completed": "done",
    "approved": "done",
    "rejected": "done",
    "timed out": "done",
    "failed": "failed",
    "skipped": "skipped",
    "waiting": "waiting",
    "awaiting approval": "waiting",
}


def layout(bp: Blueprint) -> dict[str, Any]:
    """Coordinates of every node and the edges between them, in SVG user units."""
    order = bp.order
    depth: dict[str, int] = {}
    for node in bp.nodes:  # in topological order: every earlier node has its depth
        before = [d for d in bp.deps[node.name] if order.get(d, len(order)) < order[node.name]]
        depth[node.name] = 1 + max((depth[d] for d in before), default=-1)
    rows: dict[int, list[str]] = {}
    for node in bp.nodes:
        rows.setdefault(depth[node.name], []).append(node.name)
    widest = max((len(r) for r in rows.values()), default=1)
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    nodes = []
    for level, names in sorted(rows.items()):
        row_width = len(names) * NODE_W + (len(names) - 1) * GAP_X
        left = (width - row_width) / 2
        for i, name in enumerate(names):
            spec = bp.node[name]
            nodes.append({
                "name": name, "kind": spec.kind, "layer": level,
                "x": left + i * (NODE_W + GAP_X), "y": MARGIN + level * (NODE_H + GAP_Y),
                "w": NODE_W, "h": NODE_H,
            })  # fmt: skip
    height = MARGIN * 2 + len(rows) * NODE_H + max(len(rows) - 1, 0) * GAP_Y
    edges = _edges(bp)
    if any(depth[e["target"]] <= depth[e["source"]] for e in edges):
        width += 120  # room on the right for the arrows that go back up, and their labels
    return {"nodes": nodes, "edges": edges, "width": width, "height": height}


def _edges(bp: Blueprint) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(source: str, target: str, kind: str, label: str = "") -> None:
        if (source, target) not in seen and source in bp.node and target in bp.node:
            seen.add((source, target))
            edges.append({"source": source, "target": target, "kind": kind, "label": label})

    for node in bp.nodes:
        for before in node.after:
            add(before, node.name, "sequence")
    for name, rules in bp.rules.items():
        for rule in rules:
            if rule.target is not None:
                add(name, rule.target, "back" if rule.action == "back_to" else "rule", rule.label())
    for node in bp.nodes:
        for param, _ in node.params:
            if param != "inputs":
                add(param, node.name, "data")
    return edges


def node_states(bp: Blueprint, steps: list[StepInfo]) -> dict[str, dict[str, Any]]:
    """Each node's state (done, running, failed, skipped, waiting, not reached) and detail."""
    seen = {s.name: s for s in steps}
    out = {}
    for node in bp.nodes:
        info = seen.get(node.name)
        if info is None:
            out[node.name] = {"state": "not reached", "detail": "not reached", "attempts": 0}
            continue
        out[node.name] = {
            "state": NODE_STATES.get(info.status, "running"),
            "detail": info.status,
            "attempts": info.attempts,
            "duration": info.duration,
        }
    return out
