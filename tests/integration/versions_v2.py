"""Version 2 of the workflow ``order`` of test_versions.py, for the CLI (a process of its own)."""

from __future__ import annotations

from cerebelum import approval, step, workflow


@step
async def prepare(ctx, inputs):
    return {"items": inputs["items"]}


@step
async def ship(ctx, prepare, review):
    return {"shipped": prepare["items"], "approved": review["approved"]}


@step
async def notify(ctx, ship):
    return {"notified": ship["shipped"]}


@workflow(version="2")
def order(wf):
    wf.timeline(prepare >> approval("review") >> ship >> notify)
