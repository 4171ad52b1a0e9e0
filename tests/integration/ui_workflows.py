"""Workflows that the web UI's browser tests run on a real ``cerebelum server``."""

from __future__ import annotations

import asyncio

from cerebelum import Queue, activity, approval, child, signal, step, workflow


@step
async def load(context, inputs):
    return {"note": inputs.get("note", ""), "items": [1, 2, 3]}


@step
async def count(context, load):
    return len(load["items"])


@step
async def total(context, load):
    return sum(load["items"])


@step
async def report(context, load, count, total):
    return {"note": load["note"], "count": count, "total": total}


@workflow
def ui_pipeline(wf):
    wf.timeline(load >> [count, total] >> report)


@step
async def explode(context, load):
    raise ValueError(f"cannot ship {load['items']!r}")


@workflow
def ui_broken(wf):
    wf.timeline(load >> explode)


manager = approval("manager")


@step
async def publish(context, load, manager):
    return {"published": manager["approved"], "by": (manager.get("data") or {}).get("by")}


@step
async def escalate(context, load):
    return {"escalated": load["note"]}


@workflow
def ui_review(wf):
    wf.timeline(load >> [count, total] >> manager >> publish)
    wf.diverge(load).when({"note": "urgent"}, target=escalate)


def double(n: int) -> int:
    return n * 2


@workflow
async def ui_code(n: int) -> int:
    first = await activity(double, n)
    return await activity(double, first)


@workflow
async def ui_greeter(name: str) -> str:
    greeting = await signal("greeting")
    return f"{greeting['word']}, {name}"


@workflow
async def ui_parent(n: int) -> int:
    await child(ui_pipeline, {"note": "from a parent"})
    return await child(ui_code, n)


@step(queue="reports")
async def slow_report(context, inputs):
    await asyncio.sleep(inputs.get("seconds", 30))
    return "written"


@step(queue="gpu")
async def render(context, slow_report):
    return "rendered"


@workflow
def ui_slow(wf):
    wf.timeline(slow_report >> render)


#: An execution queue, shown on the workers page with its limits.
nightly = Queue("nightly", concurrency=2, limit=10, period=60)
