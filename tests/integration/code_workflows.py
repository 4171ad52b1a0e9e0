"""Code workflows the integration tests run (module level, so that names are stable)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import cerebelum
from cerebelum import (
    ActivityError,
    Retry,
    activity,
    activity_info,
    approval,
    child,
    heartbeat,
    signal,
    sleep,
    step,
    with_options,
    workflow,
)

calls: list[tuple] = []
entries: dict[str, int] = {}


async def fetch_user(user_id):
    calls.append(("fetch_user", user_id, activity_info().idempotency_key))
    return {"id": user_id, "age": 17 if user_id.startswith("minor") else 30}


def send(kind, user):  # a plain function: runs in a thread
    calls.append((kind, user["id"]))
    return kind


@workflow
async def code_onboarding(user_id: str):
    entries[user_id] = entries.get(user_id, 0) + 1  # counts runs of the body: no replay here
    user = await activity(fetch_user, user_id)
    if user["age"] >= 18:
        await activity(send, "welcome", user)
    else:
        await activity(send, "consent", user)
    for i in range(3):
        await sleep(days=1)
        await activity(send, f"reminder-{i}", user)
    return {"status": "completed"}


async def echo(value, delay=0.0):
    await asyncio.sleep(delay)
    return value


@workflow
async def fan_out(n: int):
    # later calls finish first; gather still returns in program order
    return await asyncio.gather(*(activity(echo, i, delay=(n - i) * 0.002) for i in range(n)))


attempts: dict[str, list[int]] = {}


@cerebelum.activity(retry=Retry(max_attempts=3, initial=60, backoff=2))
async def flaky(key, succeed_on):
    info = activity_info()
    attempts.setdefault(key, []).append(info.attempt)
    if info.attempt < succeed_on:
        raise ConnectionError(f"attempt {info.attempt}")
    return info.attempt


@workflow
async def retrying(key: str, succeed_on: int):
    try:
        return await activity(flaky, key, succeed_on)
    except ActivityError as exc:
        return {"gave_up": exc.attempts, "message": exc.error["message"]}


@workflow
async def unhandled(key: str):
    return await activity(flaky, key, 99)


async def hang():
    await asyncio.sleep(30)


@workflow
async def timing_out():
    try:
        await activity(with_options(hang, timeout=0.05))
    except ActivityError as exc:
        return exc.error["kind"]


async def beating(beats):
    for _ in range(beats):
        heartbeat("still here")
        await asyncio.sleep(0.01)
    if beats < 5:
        await asyncio.sleep(30)  # stops beating
    return "done"


@workflow
async def heartbeats(beats: int):
    try:
        return await activity(with_options(beating, heartbeat_timeout=0.1), beats)
    except ActivityError as exc:
        return exc.error["message"]


@workflow
async def recorded():
    first = (cerebelum.now().isoformat(), str(cerebelum.uuid4()), cerebelum.random())
    await sleep(hours=1)
    return [*first, cerebelum.now().isoformat()]


@workflow
async def approving(amount: int):
    decision = await approval("manager", timeout=timedelta(days=2))
    if decision.timed_out:
        return "timed out"
    return {"approved": decision.approved, "data": decision.data}


@workflow
async def waiting_for_signal(timeout: float | None):
    try:
        first = await signal("address_changed", timeout=timeout)
    except cerebelum.SignalTimeoutError:
        return "no signal"
    second = await signal("address_changed")
    return [first, second]


@step
async def graph_double(ctx, inputs):
    return inputs * 2


@cerebelum.workflow
def graph_child(wf):
    wf.timeline(graph_double)


@workflow
async def code_child(x: int):
    return await activity(echo, x + 1)


@workflow
async def parent(x: int):
    a = await child(graph_child, x)
    b = await child(code_child, x)
    return [a, b]


@step
async def starts_code_child(ctx, inputs):
    return await child(code_child, inputs)


@cerebelum.workflow
def graph_parent(wf):
    wf.timeline(starts_code_child)


@workflow
async def sleeper_child():
    await sleep(days=10)
    return "woke"


@workflow
async def long_parent():
    return await child(sleeper_child)


@workflow
async def bad_argument():
    class Opaque:
        pass

    await activity(echo, Opaque())


@workflow
async def slow_start():
    await sleep(hours=1)
    started = time.monotonic()
    return started > 0
