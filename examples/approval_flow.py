"""An expense approval: a durable wait for a manager, approved or rejected from code, or timed out.

A graph workflow with an ``approval("manager", timeout=...)`` node on its timeline. The
execution waits there, with nothing in memory that a restart could lose, until
``engine.approve(id, "manager", data=...)`` or ``engine.reject(...)`` resolves it (the
``cerebelum approve`` command does the same from a shell). The decision and its data
reach the next step through a parameter named after the approval.

A branch sends rejected expenses to ``notify_rejected``; a diverge on the error
``"timeout"`` sends expenses nobody looked at to ``escalate``. The timeout here is half
a second so that the example finishes quickly; in real life it would be days.

Run it: ``python examples/approval_flow.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
"""

import asyncio
from datetime import timedelta

from cerebelum import Engine, approval, step, workflow


@step
async def submit_expense(context, inputs):
    print(f"  {inputs['employee']} submits {inputs['amount']} EUR for {inputs['what']!r}")
    return {"amount": inputs["amount"], "employee": inputs["employee"]}


manager = approval("manager", timeout=timedelta(seconds=0.5))


@step
async def pay_expense(context, submit_expense, manager):
    # `manager` is the decision: {"approved": True, "data": ...}
    note = manager["data"] or {}
    print(f"  pay {submit_expense['amount']} EUR to {submit_expense['employee']} ({note})")
    return {"paid": submit_expense["amount"], "approved_by": note.get("by")}


@step
async def notify_rejected(context, submit_expense, manager):
    print(f"  tell {submit_expense['employee']}: rejected ({manager['data']})")
    return {"paid": 0, "rejected": manager["data"]}


@step
async def escalate(context, submit_expense):
    print(f"  nobody answered: escalate {submit_expense['amount']} EUR to the director")
    return {"paid": 0, "escalated": True}


def rejected(decision):
    return not decision["approved"]


@workflow
def expense_approval(wf):
    wf.timeline(submit_expense >> manager >> pay_expense)
    wf.branch(after=manager, on=rejected, when_true=notify_rejected)
    wf.diverge(manager).when("timeout", target=escalate)


async def wait_for_approval(engine, execution_id):
    """Poll until the execution waits (a real approver would come along much later)."""
    while (await engine.status(execution_id)).status != "waiting":
        await asyncio.sleep(0.01)


async def main():
    async with Engine() as engine:
        print("expense 1: the manager approves")
        handle = await engine.start(
            expense_approval, {"employee": "ann", "amount": 120, "what": "train tickets"}
        )
        await wait_for_approval(engine, handle.id)
        print(f"  status: {(await engine.status(handle.id)).status}")
        await engine.approve(handle.id, "manager", data={"by": "bob"})
        print(f"  -> {(await handle.result()).output}")

        print("expense 2: the manager rejects")
        handle = await engine.start(
            expense_approval, {"employee": "carl", "amount": 900, "what": "a massage chair"}
        )
        await wait_for_approval(engine, handle.id)
        await engine.reject(handle.id, "manager", data="not a business expense")
        print(f"  -> {(await handle.result()).output}")

        print("expense 3: nobody answers within the timeout")
        result = await engine.execute(
            expense_approval, {"employee": "dora", "amount": 40, "what": "a book"}
        )
        print(f"  -> {result.output}")

        steps = (await engine.status(result.id)).steps
        print("  steps: " + ", ".join(f"{s.name}={s.status}" for s in steps))


if __name__ == "__main__":
    asyncio.run(main())
