"""Workflows whose values are not plain JSON (module level, so that names are stable).

The module uses ``from __future__ import annotations``: the declarations that decide
how values come back are strings here, resolved by the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from cerebelum import activity, child, signal, step, workflow

runs: dict[str, int] = {}


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int


@dataclass
class Order:
    id: UUID
    placed: datetime
    total: Decimal
    lines: list[Line]
    tags: set[str]
    tier: Tier
    receipt: bytes


class Stock(msgspec.Struct):
    counts: dict[int, int]
    window: tuple[int, int]


ORDER = Order(
    id=UUID("12345678-1234-5678-1234-567812345678"),
    placed=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    total=Decimal("19.90"),
    lines=[Line("A-1", 2), Line("B-7", 1)],
    tags={"gift", "express"},
    tier=Tier.GOLD,
    receipt=b"\x00\xffpdf",
)


# --- graph workflows ----------------------------------------------------------------


@step
async def surrogate(ctx):
    runs["surrogate"] = runs.get("surrogate", 0) + 1
    return {"items": [{"name": "ok"}, {"name": "bad \ud800"}]}


@workflow
def bad_text(wf):
    wf.timeline(surrogate)


@step
async def nested(ctx):
    runs["nested"] = runs.get("nested", 0) + 1
    value: list = []
    inner = value
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    return {"tree": value}


@workflow
def too_deep(wf):
    wf.timeline(nested)


@step
async def tags(ctx):
    return {"user": 1, "tags": {"a", "b"}}


@workflow
def undeclared_set(wf):
    wf.timeline(tags)


@step
async def make_order(ctx, inputs: Line) -> Order:
    assert isinstance(inputs, Line)
    return Order(ORDER.id, ORDER.placed, ORDER.total, [inputs], ORDER.tags, ORDER.tier, b"r")


@step
async def check_order(ctx, make_order) -> dict[str, bool]:
    # no annotation here: the producing step's '-> Order' decides
    return {
        "is_order": isinstance(make_order, Order),
        "line": make_order.lines[0] == Line("Z-9", 3),
        "typed": isinstance(make_order.placed, datetime) and isinstance(make_order.tags, set),
    }


@step
async def stock(ctx, make_order: Order) -> Stock:
    return Stock(counts={line.qty: 1 for line in make_order.lines}, window=(1, 2))


@workflow
def typed_graph(wf):
    wf.timeline(make_order >> check_order >> stock)


# --- code workflows -----------------------------------------------------------------


async def inspect_order(order: Order, tier: Tier, when: datetime, ids: set[UUID]) -> dict:
    return {
        "order": type(order).__name__,
        "line": type(order.lines[0]).__name__,
        "placed": type(order.placed).__name__,
        "total": type(order.total).__name__,
        "tags": type(order.tags).__name__,
        "tier": type(tier).__name__,
        "receipt": type(order.receipt).__name__,
        "when": type(when).__name__,
        "ids": type(ids).__name__,
    }


async def echo_order(order: Order) -> Order:
    return order


async def counts() -> dict[int, frozenset[str]]:
    return {1: frozenset({"x"}), 2: frozenset()}


@workflow
async def typed_code(order: Order, tier: Tier = Tier.SILVER) -> Order:
    seen = await activity(inspect_order, order, tier, order.placed, {order.id})
    assert seen == {
        "order": "Order", "line": "Line", "placed": "datetime", "total": "Decimal",
        "tags": "set", "tier": "Tier", "receipt": "bytes", "when": "datetime", "ids": "set",
    }, seen  # fmt: skip
    back = await activity(echo_order, order)
    assert back == order and isinstance(back.lines[0], Line)
    by_count = await activity(counts)
    assert by_count == {1: frozenset({"x"}), 2: frozenset()}
    return back


@workflow
async def parent_of_typed(order: Order) -> dict:
    out = await child(typed_code, order, Tier.GOLD)
    return {"child_output": type(out).__name__, "same": out == order}


async def untyped_tags():
    return {"tags": {1, 2}}


@workflow
async def activity_with_set():
    return await activity(untyped_tags)


@workflow
async def passes_a_set(ids):
    return await activity(echo_untyped, {"ids": {1, 2}})


async def echo_untyped(value):
    return value


@workflow
async def returns_nan() -> float:
    return float("nan")


@workflow
async def value_signal_wait():
    return await signal("go")


@step
async def shouts(ctx):
    raise ValueError("bad \ud800 input")


@workflow
def error_with_surrogate(wf):
    wf.timeline(shouts)
