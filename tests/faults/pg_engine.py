"""An engine process for the outage tests: starts N graph workflows, waits for them all.

    python -m tests.faults.pg_engine URL N PREFIX LOG

Each step appends ``execution step attempt key`` to LOG before it returns. Prints one
JSON line: how many completed, and the type of every exception that reached a caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import traceback

from cerebelum import Engine, step, workflow

LOG = open(sys.argv[4], "a", buffering=1) if len(sys.argv) > 4 else None  # noqa: SIM115


def note(ctx, name: str) -> None:
    assert LOG is not None
    LOG.write(f"{ctx.execution_id} {name} {ctx.attempt} {ctx.idempotency_key}\n")


@step
async def first(context, inputs):
    await asyncio.sleep(random.random() * 0.05)
    note(context, "first")
    return inputs["n"]


@step
async def second(context, first):
    await asyncio.sleep(random.random() * 0.05)
    note(context, "second")
    return first * 2


@workflow
def outage_flow(wf):
    wf.timeline(first >> second)


async def main(url: str, count: int, prefix: str) -> None:
    errors: list[str] = []
    done = 0
    async with Engine(url, workflows=[outage_flow]) as engine:

        async def one(i: int) -> None:
            nonlocal done
            try:
                handle = await engine.start(outage_flow, {"n": i}, id=f"{prefix}-{i}")
                result = await handle.result()
                done += result.status == "completed" and result.output == 2 * i
            except Exception as exc:  # what reached the caller, by type
                if not errors:  # the first one's traceback, for the test's message
                    traceback.print_exc()
                errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")

        sem = asyncio.Semaphore(200)

        async def limited(i: int) -> None:
            async with sem:
                await one(i)

        await asyncio.gather(*(limited(i) for i in range(count)))
    print(json.dumps({"completed": done, "errors": errors[:20], "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
