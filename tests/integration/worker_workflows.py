"""Workflows whose steps and activities ``cerebelum worker`` processes run in the tests.

Every step and activity appends a line to ``$WORKER_TEST_DIR/runs.log`` when it starts
and when it finishes (``start|done name key attempt pid``), so that a test counts the
runs across processes. The ``hold`` step and the ``slow_upper`` activity wait until
the file ``$WORKER_TEST_DIR/release`` exists, so that a test can kill a process while
they run.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cerebelum import Queue, Retry, activity, activity_info, step, workflow


def _dir() -> Path:
    return Path(os.environ["WORKER_TEST_DIR"])


def mark(what: str, name: str, key: str, attempt: int) -> None:
    with open(_dir() / "runs.log", "a") as log:
        log.write(f"{what} {name} {key} {attempt} {os.getpid()}\n")


async def released() -> None:
    while not (_dir() / "release").exists():
        await asyncio.sleep(0.02)


@step(queue="left")
async def first(context, inputs):
    mark("done", "first", context.idempotency_key, context.attempt)
    return {"n": inputs["n"] + 1}


@step(queue="right")
async def second(context, first):
    mark("done", "second", context.idempotency_key, context.attempt)
    return {"n": first["n"] * 2}


@workflow
def split(wf):
    wf.timeline(first >> second)


@step
async def prepare(context, inputs):
    mark("done", "prepare", context.idempotency_key, context.attempt)
    return {"n": inputs["n"]}


@step
async def hold(context, prepare):
    mark("start", "hold", context.idempotency_key, context.attempt)
    await released()
    mark("done", "hold", context.idempotency_key, context.attempt)
    return {"held": prepare["n"]}


@step
async def finish(context, hold):
    mark("done", "finish", context.idempotency_key, context.attempt)
    return {"n": hold["held"] + 100}


@workflow
def holding(wf):
    wf.timeline(prepare >> hold >> finish)


class CardDeclined(Exception):
    pass


@step(retry=Retry(max_attempts=3, initial=0.01, non_retryable=[CardDeclined]))
async def charge(context, inputs):
    mark("done", "charge", context.idempotency_key, context.attempt)
    if inputs["card"] == "flaky" and context.attempt < 3:
        raise ConnectionError("the card network timed out")
    if inputs["card"] == "declined":
        raise CardDeclined("insufficient funds") from KeyError("balance")
    return {"charged": True}


@step
async def declined(context, inputs):
    return {"declined": inputs["card"]}


@workflow
def payment(wf):
    wf.timeline(charge)
    wf.diverge(charge).when(CardDeclined, target=declined)


@activity
async def slow_upper(text: str) -> str:
    info = activity_info()
    mark("start", "slow_upper", info.idempotency_key, info.attempt)
    await released()
    mark("done", "slow_upper", info.idempotency_key, info.attempt)
    return text.upper()


@workflow
async def shouting(text: str) -> str:
    loud = await activity(slow_upper, text)
    return f"{loud}!"


@step
async def nap_a(context, inputs):
    mark("start", "nap_a", context.idempotency_key, context.attempt)
    await asyncio.sleep(0.2)
    mark("done", "nap_a", context.idempotency_key, context.attempt)
    return {"n": inputs["n"]}


@step
async def nap_b(context, nap_a):
    mark("start", "nap_b", context.idempotency_key, context.attempt)
    await asyncio.sleep(0.2)
    mark("done", "nap_b", context.idempotency_key, context.attempt)
    return {"n": nap_a["n"] * 10}


@workflow
def napping(wf):
    wf.timeline(nap_a >> nap_b)


duo = Queue("duo", concurrency=2)


@step(queue="left")
async def enter(context, inputs):
    mark("enter", "counted", context.execution_id, context.attempt)
    await asyncio.sleep(0.05)
    return inputs["n"]


@step(queue="right")
async def leave(context, enter):
    await asyncio.sleep(0.05)
    mark("leave", "counted", context.execution_id, context.attempt)
    return enter


@workflow
def counted(wf):
    wf.timeline(enter >> leave)


@workflow
async def where_it_runs(text: str) -> dict:
    first = os.getpid()  # where the coroutine ran: on a worker, not in the server
    loud = await activity(slow_upper, text)
    return {"loud": loud, "pids": sorted({first, os.getpid()})}


@activity
async def plain(text: str) -> str:
    return text


@workflow
async def changing(text: str) -> str:
    # the code a worker runs depends on how it was started: a changed deployment
    if os.environ.get("WORKER_TEST_FLAVOUR") == "new":
        return await activity(plain, text)
    return await activity(slow_upper, text)


@workflow
async def three_steps(text: str) -> str:
    mark("begin", "three_steps", text, 0)  # each time the coroutine is built (or rebuilt)
    for _ in range(3):
        text = await activity(plain, text + ".")
    return text
