"""A process the crash tests start and kill with SIGKILL.

    python -m tests.crash.crashy URL LOG start N    start N executions, run them
    python -m tests.crash.crashy URL LOG resume     resume what is unfinished

Each step appends ``start KEY ATTEMPT`` and ``end KEY ATTEMPT`` lines to LOG (written
with O_APPEND and fsync, so they survive the kill). When the file ``LOG.hang`` exists,
step ``b`` hangs after logging its start, so the test can kill the process inside it.
When every execution has ended the process prints ``DONE`` and exits.
"""

from __future__ import annotations

import asyncio
import os
import sys

from cerebelum import Engine, activity, activity_info, step, wait, workflow

LOG = sys.argv[2] if len(sys.argv) > 2 else "crash.log"
DELAY = float(os.environ.get("CRASHY_DELAY", "0"))


def log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def body(ctx, value):
    log(f"start {ctx.idempotency_key} {ctx.attempt}")
    if ctx.step == "b" and os.path.exists(LOG + ".hang"):
        await asyncio.sleep(3600)
    if DELAY:
        await asyncio.sleep(DELAY)
    log(f"end {ctx.idempotency_key} {ctx.attempt}")
    return value + 1


@step
async def a(ctx, inputs):
    return await body(ctx, inputs)


@step
async def b(ctx, a):
    return await body(ctx, a)


@step
async def c(ctx, b):
    return await body(ctx, b)


@workflow
def chain(wf):
    wf.timeline(a >> b >> c)


@step
async def after_wait(ctx, a):
    return await body(ctx, a)


@workflow
def sleepy(wf):
    wf.timeline(a >> wait(seconds=1) >> after_wait)


async def act(name, value):
    info = activity_info()
    log(f"start {info.idempotency_key}:{name} {info.attempt}")
    if name == "b" and os.path.exists(LOG + ".hang"):
        await asyncio.sleep(3600)
    if DELAY:
        await asyncio.sleep(DELAY)
    log(f"end {info.idempotency_key}:{name} {info.attempt}")
    return value + 1


@workflow
async def coded(start: int):
    log("body")  # one line each time the body runs (replays included)
    total = await activity(act, "a", start)
    total = await activity(act, "b", total)
    return await activity(act, "c", total)


WORKFLOWS = {"chain": chain, "sleepy": sleepy, "coded": coded}


async def main() -> None:
    db, _, mode = sys.argv[1:4]
    lease = float(os.environ.get("CRASHY_LEASE", "15"))
    async with Engine(db, lease=lease, poll_interval=0.05) as engine:
        if mode == "start":
            count = int(sys.argv[4])
            wf = WORKFLOWS[os.environ.get("CRASHY_WORKFLOW", "chain")]
            handles = await asyncio.gather(
                *(engine.start(wf, i * 10, id=f"x-{i}") for i in range(count))
            )
            print("STARTED", flush=True)
            ids = [h.id for h in handles]
        else:
            ids = [i.id for i in await engine.list(limit=100_000)]
        for eid in ids:
            await engine.result(eid)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
