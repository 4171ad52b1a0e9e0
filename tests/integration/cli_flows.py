"""Workflows the CLI tests run by reference (``tests.integration.cli_flows:NAME``)."""

from __future__ import annotations

from cerebelum import activity, approval, step, workflow


@step
async def draft(ctx, inputs):
    return {"amount": inputs["amount"]}


@step
async def book(ctx, draft, manager):
    return {"booked": draft["amount"], "approved": manager["approved"], "note": manager["data"]}


@step
async def escalate(ctx, draft):
    return {"escalated": draft["amount"]}


@workflow
def expense(wf):
    wf.timeline(draft >> approval("manager") >> book)
    wf.diverge(draft).when({"amount": 0}, target=escalate)


async def double(x):
    return x * 2


@workflow
async def doubled(x: int):
    return await activity(double, x)
