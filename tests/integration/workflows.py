"""Workflows the integration tests run (module level, so that they have stable names)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from cerebelum import (
    Error,
    Retry,
    approval,
    back_to,
    step,
    wait,
    workflow,
)

calls: dict[str, list] = {}


def record(ctx, **extra):
    calls.setdefault(ctx.step, []).append(
        {"attempt": ctx.attempt, "key": ctx.idempotency_key, "iteration": ctx.iteration, **extra}
    )


@step
async def fetch_user(ctx, inputs):
    record(ctx)
    return {"id": inputs["user_id"], "age": inputs.get("age", 30)}


@step
async def welcome(ctx, fetch_user):
    return {"sent": "welcome", "to": fetch_user["id"]}


@step
async def consent(ctx, fetch_user):
    return {"sent": "consent", "to": fetch_user["id"]}


@workflow
def onboarding(wf):
    wf.timeline(fetch_user >> welcome)
    wf.diverge(fetch_user).when({"age": 17}, target=consent)


@step
def sync_step(ctx, inputs):  # a plain function: runs in a thread
    return {"thread": threading.current_thread() is not threading.main_thread(), "ctx": repr(ctx)}


@workflow
def sync_flow(wf):
    wf.timeline(sync_step)


class Flaky(Exception):
    pass


@step(retry=Retry(max_attempts=3, initial=0.01, backoff=1.0))
async def flaky(ctx, inputs):
    record(ctx)
    if ctx.attempt < inputs["succeed_on"]:
        raise Flaky(f"attempt {ctx.attempt} failed")
    return ctx.attempt


@workflow
def flaky_flow(wf):
    wf.timeline(flaky)


@step
async def charge(ctx, inputs):
    if inputs["card"] == "expired":
        return Error("card_expired", {"card": inputs["card"]})
    if inputs["card"] == "sdk":
        return {"error": "card_expired"}
    return {"charged": True}


@step
async def ask_new_card(ctx, charge=None):
    return "asked"


@workflow
def payment(wf):
    wf.timeline(charge)
    wf.diverge(charge).when("card_expired", target=ask_new_card)


@workflow
def payment_unrouted(wf):
    wf.timeline(charge)


@step(timeout=0.05)
async def slow(ctx):
    await asyncio.sleep(5)


@step
async def on_timeout(ctx):
    return "timed out, handled"


@workflow
def timeout_flow(wf):
    wf.timeline(slow)
    wf.diverge(slow).when("timeout", target=on_timeout)


@step
async def unserialisable(ctx):
    return {"when": object()}


@workflow
def bad_result(wf):
    wf.timeline(unserialisable)


@step
async def before(ctx, inputs):
    return "before"


@step
async def after_wait(ctx, before):
    return f"{before} then after"


@workflow
def short_wait(wf):
    wf.timeline(before >> wait(seconds=0.05) >> after_wait)


@workflow
def month_wait(wf):
    wf.timeline(before >> wait(days=30) >> after_wait)


manager = approval("manager")


@step
async def decide_order(ctx, manager):
    return manager


@workflow
def approval_flow(wf):
    wf.timeline(before >> manager >> decide_order)


quick_manager = approval("quick_manager", timeout=timedelta(milliseconds=50))


@step
async def escalate(ctx):
    return "escalated"


@step
async def after_quick(ctx, quick_manager):
    return quick_manager


@workflow
def approval_timeout_flow(wf):
    wf.timeline(before >> quick_manager >> after_quick)
    wf.diverge(quick_manager).when("timeout", target=escalate)


@step
async def long_running(ctx):
    record(ctx, started=True)
    await asyncio.sleep(30)
    return "never"


@workflow
def long_flow(wf):
    wf.timeline(long_running)


@step
async def draft(ctx, inputs):
    record(ctx)
    return {"version": ctx.iteration}


@step
async def review(ctx, draft):
    return {"approved": draft["version"] >= 2}


@workflow
def review_loop(wf):
    wf.timeline(draft >> review)
    wf.diverge(review).when({"approved": False}, target=back_to(draft, max_iterations=5))


gate: dict[str, asyncio.Event] = {}


@step
async def left(ctx, inputs):
    gate.setdefault(ctx.execution_id, asyncio.Event()).set()
    return "left"


@step
async def right(ctx, inputs):
    # finishes only if `left` runs at the same time
    await asyncio.wait_for(gate.setdefault(ctx.execution_id, asyncio.Event()).wait(), 5)
    return "right"


@step
async def join(ctx, left, right):
    return [left, right]


@workflow
def parallel(wf):
    wf.timeline(before >> [left, right] >> join)
