"""The recovery workload: workflows in flight, the engine process SIGKILLed, restarted.

    python -m bench.recovery start FLAVOUR URL N   start N, print STARTED, keep running
    python -m bench.recovery resume FLAVOUR URL N  resume; print seconds until all ended

Each step sleeps 50 ms so that the kill finds work in flight. After the restart every
history is checked: no step (or activity) may start again after its completion was
recorded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from cerebelum import Engine, activity, step, workflow
from cerebelum import events as ev

LEASE = 2.0  # PostgreSQL: seconds before a dead engine's executions are taken over


@step
async def r1(ctx, inputs):
    await asyncio.sleep(0.05)
    return inputs + 1


@step
async def r2(ctx, r1):
    await asyncio.sleep(0.05)
    return r1 + 1


@workflow
def recover_graph(wf):
    wf.timeline(r1 >> r2)


async def slow_plus_one(x: int) -> int:
    await asyncio.sleep(0.05)
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


async def start(flavour: str, url: str, n: int) -> None:
    async with Engine(url, lease=LEASE) as engine:
        await asyncio.gather(*(engine.start(FLOWS[flavour], i, id=f"r{i}") for i in range(n)))
        print("STARTED", flush=True)
        await asyncio.sleep(3600)


async def resume(flavour: str, url: str, n: int) -> None:
    t = time.perf_counter()
    async with Engine(url, lease=LEASE) as engine:
        results = await asyncio.gather(*(engine.result(f"r{i}") for i in range(n)))
        seconds = time.perf_counter() - t
        wrong = [r.id for i, r in enumerate(results) if r.output != i + 2]
        again = {}
        for i in range(n):
            found = ran_again(await engine.history(f"r{i}"))
            if found:
                again[f"r{i}"] = found
    print(json.dumps({"seconds": seconds, "wrong": wrong, "ran_again": again}), flush=True)


if __name__ == "__main__":
    mode, flavour, url, count = sys.argv[1:5]
    asyncio.run({"start": start, "resume": resume}[mode](flavour, url, int(count)))
