"""Cerebelum: graph or code workflows; the engine process is the one killed.

"Ran again" is read from each history: a step (or activity) started again after its
completion was recorded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cerebelum import Engine, activity, step, workflow
from cerebelum import events as ev

from . import STEP_SECONDS, expected

LEASE = 2.0  # PostgreSQL: seconds before a dead engine's executions are taken over


@step
async def r1(ctx, inputs):
    await asyncio.sleep(STEP_SECONDS)
    return inputs + 1


@step
async def r2(ctx, r1):
    await asyncio.sleep(STEP_SECONDS)
    return r1 + 1


@workflow
def recover_graph(wf):
    wf.timeline(r1 >> r2)


async def slow_plus_one(x: int) -> int:
    await asyncio.sleep(STEP_SECONDS)
    return x + 1


@workflow
async def recover_code(x: int) -> int:
    return await activity(slow_plus_one, await activity(slow_plus_one, x))


FLOWS = {"graph": recover_graph, "code": recover_code}


def ran_again(history: list[ev.Event]) -> list[str]:
    done: set[str] = set()
    again = []
    for e in history:
        if isinstance(e, ev.StepStarted | ev.ActivityStarted):
            key = getattr(e, "step", None) or str(getattr(e, "position", ""))
            if key in done:
                again.append(key)
        elif isinstance(e, ev.StepCompleted):
            done.add(e.step)
        elif isinstance(e, ev.ActivityCompleted):
            done.add(str(e.position))
    return again


async def start(flavour: str, url: str, n: int, folder: str) -> None:
    async with Engine(url, lease=LEASE) as engine:
        await asyncio.gather(*(engine.start(FLOWS[flavour], i, id=f"r{i}") for i in range(n)))
        print("STARTED", flush=True)
        await asyncio.sleep(3600)


async def resume(flavour: str, url: str, n: int, folder: str) -> dict[str, Any]:
    t = time.perf_counter()
    async with Engine(url, lease=LEASE) as engine:
        results = await asyncio.gather(*(engine.result(f"r{i}") for i in range(n)))
        seconds = time.perf_counter() - t
        wrong = [r.id for i, r in enumerate(results) if r.output != expected(i)]
        again = {}
        for i in range(n):
            found = ran_again(await engine.history(f"r{i}"))
            if found:
                again[f"r{i}"] = found
    return {"seconds": seconds, "wrong": wrong, "ran_again": again}
