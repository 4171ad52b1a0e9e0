"""Temporal workflow and activity definitions (module level, as the SDK requires)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

timeout = timedelta(seconds=60)


@activity.defn
async def plus_one(x: int) -> int:
    return x + 1


@activity.defn
async def same(i: int) -> int:
    return i


@workflow.defn(sandboxed=False)
class Two:
    @workflow.run
    async def run(self, x: int) -> int:
        x = await workflow.execute_activity(plus_one, x, start_to_close_timeout=timeout)
        return await workflow.execute_activity(plus_one, x, start_to_close_timeout=timeout)


@workflow.defn(sandboxed=False)
class Chain:
    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(10):
            x = await workflow.execute_activity(plus_one, x, start_to_close_timeout=timeout)
        return x


@workflow.defn(sandboxed=False)
class Fanout:
    @workflow.run
    async def run(self, width: int) -> int:
        return sum(await asyncio.gather(*(
            workflow.execute_activity(same, i, start_to_close_timeout=timeout)
            for i in range(width)
        )))  # fmt: skip
