"""Workflows the queue tests start (module level: stable names)."""

from __future__ import annotations

import asyncio

from cerebelum import Queue, step, workflow

pairs = Queue("pairs", concurrency=2)
single = Queue("single", concurrency=1)
rated = Queue("rated", limit=2, period=3600)

#: what the steps saw: executions in a step now, the most at once, the order they began
state = {"now": 0, "most": 0, "order": []}
gate = asyncio.Event()


@step
async def hold(context, inputs):
    state["now"] += 1
    state["most"] = max(state["most"], state["now"])
    state["order"].append(inputs["name"])
    try:
        await gate.wait()
    finally:
        state["now"] -= 1
    return inputs["name"]


@workflow
def held(wf):
    wf.timeline(hold)


def reset() -> None:
    global gate
    state.update(now=0, most=0, order=[])
    gate = asyncio.Event()  # an event belongs to the loop that first waits on it: one per test
