"""Version 4 of the workflow ``order`` of test_versions.py (``prepare`` is gone), for the CLI."""

from __future__ import annotations

from cerebelum import approval, step, workflow


@step
async def check(ctx, inputs):
    return {"items": inputs["items"]}


@step
async def ship(ctx, check, review):
    return {"shipped": check["items"], "approved": review["approved"]}


@workflow(version="4")
def order(wf):
    wf.timeline(check >> approval("review") >> ship)
