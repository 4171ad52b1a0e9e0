"""Workflows the CLI tests name by reference (``tests.integration.cli_workflows:NAME``)."""

from __future__ import annotations

from datetime import timedelta

from cerebelum import activity, approval, signal, sleep, step, wait, workflow
from cerebelum.dsl import back_to, fail, proceed, retry, skip_to


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


@workflow
async def waits_for_go(x: int):
    return {"x": x, "go": await signal("go")}


@workflow
async def waits_in_turn():
    go = await signal("go", timeout=timedelta(days=7))
    decision = await approval("legal")
    await sleep(days=2)
    return {"go": go, "legal": decision.approved}


# --- a workflow with every kind of edge, for the diagram ---------------------------------


@step
async def fetch(ctx, inputs):
    return inputs


@step
async def repair(ctx, fetch):
    return fetch


@step
async def check(ctx, fetch):
    return fetch


@step
async def big(ctx, check):
    return "big"


@step
async def small(ctx, check):
    return "small"


@step
async def audit(ctx, check):
    return "audited"


@step
async def end(ctx, check):  # a bare `end` breaks a Mermaid flowchart: the name is quoted
    return "done"


def is_big(result):
    return result.get("n", 0) > 10


@workflow
def everything(wf):
    timeout = timedelta(days=2)
    wf.timeline(fetch >> check >> approval("boss", timeout=timeout) >> wait(hours=1) >> end)
    (
        wf.diverge(fetch)
        .when("rate_limited", target=retry(3))
        .when(ValueError, target=fail("bad input"))
        .when({"partial": True}, target=repair >> check)
        .when("nothing_to_check", target=skip_to(end))
        .when("warning", target=proceed())
    )
    wf.branch(after=check, on=is_big, when_true=big, when_false=small)
    wf.diverge("boss").when("timeout", target=audit)
    wf.diverge(end).when({"again": True}, target=back_to(fetch, max_iterations=3))
