"""Version 3 of the workflow ``order`` of test_versions.py (``prepare`` has a timeout), for the CLI."""

from __future__ import annotations

from cerebelum import approval, step, workflow


@step(timeout=30)
async def prepare(ctx, inputs):
    return {"items": inputs["items"]}


@step
async def ship(ctx, prepare, review):
    return {"shipped": prepare["items"], "approved": review["approved"]}


@workflow(version="3")
def order(wf):
    wf.timeline(prepare >> approval("review") >> ship)
