"""Cerebelum: graph workflows and code workflows, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
from collections.abc import AsyncIterator
from typing import Any

import cerebelum
from cerebelum import Engine, activity, step, workflow


def available(store: str) -> str | None:
    if store != "postgres":
        return None
    if not importlib.util.find_spec("cerebelum.store.postgres"):
        return "no PostgreSQL store in this Cerebelum"
    return None if importlib.util.find_spec("asyncpg") else "not installed: asyncpg"


def versions() -> dict[str, str]:
    return {"cerebelum": cerebelum.__version__}


# --- graph workflows -----------------------------------------------------------------------


@step
async def g1(ctx, inputs):
    return inputs + 1


@step
async def g2(ctx, g1):
    return g1 + 1


@workflow
def graph_two(wf):
    wf.timeline(g1 >> g2)


def _link(i: int) -> Any:
    async def link(ctx, **results):
        return (results[f"c{i - 1}"] if i else ctx.inputs) + 1

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if i:
        params.append(inspect.Parameter(f"c{i - 1}", inspect.Parameter.KEYWORD_ONLY))
    link.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return step(name=f"c{i}")(link)


CHAIN = [_link(i) for i in range(10)]


@workflow
def graph_chain(wf):
    chain = CHAIN[0]
    for s in CHAIN[1:]:
        chain = chain >> s
    wf.timeline(chain)


def graph_fanout(width: int) -> Any:
    def branch(i: int) -> Any:
        async def leaf(ctx):
            return i

        return step(name=f"leaf{i}")(leaf)

    leaves = [branch(i) for i in range(width)]

    async def join(ctx, **results):
        return sum(results.values())

    join.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(f"leaf{i}", inspect.Parameter.KEYWORD_ONLY) for i in range(width)]
    )
    joined = step(name="join")(join)

    async def start(ctx, inputs):
        return inputs

    first = step(name="fan")(start)

    def build(wf):
        wf.timeline(first >> leaves >> joined)

    build.__name__ = f"graph_fanout_{width}"
    return workflow(build)


# --- code workflows --------------------------------------------------------------------------


@activity  # declared: a remote worker finds it by its name
async def plus_one(x: int) -> int:
    return x + 1


@activity
async def same(i: int) -> int:
    return i


@workflow
async def code_two(x: int) -> int:
    return await activity(plus_one, await activity(plus_one, x))


@workflow
async def code_chain(x: int) -> int:
    for _ in range(10):
        x = await activity(plus_one, x)
    return x


@workflow
async def code_fanout(width: int) -> int:
    return sum(await asyncio.gather(*(activity(same, i) for i in range(width))))


class Session:
    def __init__(self, engine: Engine, kind: str, fanout: Any) -> None:
        self.engine = engine
        if kind == "graph":
            self.flows = {"two": graph_two, "chain": graph_chain, "fanout": fanout}
        else:
            self.flows = {"two": code_two, "chain": code_chain, "fanout": code_fanout}
        self.kind = kind

    async def run(self, kind: str, n: int) -> Any:
        arg = 0 if kind == "fanout" and self.kind == "graph" else n
        result = await self.engine.execute(self.flows[kind], arg)
        if result.status != "completed":
            raise AssertionError(f"{kind} execution {result.id} {result.status}: {result.error}")
        return result.output


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    fanout = graph_fanout(counts["fanout"]) if flavour == "graph" else None
    async with Engine(db_url) as engine:
        yield Session(engine, flavour, fanout)
