"""Temporal workflow and activity definitions (module level, as the SDK requires)."""

from __future__ import annotations

import asyncio
import os
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


# --- the recovery workload (bench.recover.temporal) ----------------------------------------

#: Recovery after a kill waits out this timeout for the activities that were in flight.
recover_timeout = timedelta(seconds=10)


@activity.defn
async def slow_plus_one(x: int) -> int:
    from bench.recover import STEP_SECONDS, log_run

    info = activity.info()
    log_run(os.environ["BENCH_RECOVER_DIR"],
            f"{os.environ['BENCH_RECOVER_PHASE']} {info.workflow_id} {info.activity_id}")  # fmt: skip
    await asyncio.sleep(STEP_SECONDS)
    return x + 1


@workflow.defn(sandboxed=False)
class RecoverTwo:
    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(2):
            x = await workflow.execute_activity(
                slow_plus_one, x, start_to_close_timeout=recover_timeout
            )
        return x
