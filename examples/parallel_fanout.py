"""A loan check: three independent checks at the same time, then one decision that joins them.

A graph workflow with a parallel group: ``load_application >> [credit_score,
fraud_check, income_check] >> decide``. The three checks run at the same time (each
takes 0.3 s, the group takes about 0.3 s, not 0.9 s); ``decide`` waits for all three
and receives each result through the parameter named after its step.

Run it: ``python examples/parallel_fanout.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
"""

import asyncio
import time

from cerebelum import Engine, step, workflow


@step
async def load_application(context, inputs):
    return {"applicant": inputs["applicant"], "amount": inputs["amount"]}


@step
async def credit_score(context, load_application):
    await asyncio.sleep(0.3)  # a call to a credit bureau
    return {"score": 710}


@step
async def fraud_check(context, load_application):
    await asyncio.sleep(0.3)  # a call to a fraud service
    return {"flagged": False}


@step
def income_check(context, load_application):  # a plain function runs in a thread
    time.sleep(0.3)  # a blocking call to a legacy system
    return {"monthly_income": 4200}


@step
async def decide(context, load_application, credit_score, fraud_check, income_check):
    amount = load_application["amount"]
    ok = (
        credit_score["score"] >= 650
        and not fraud_check["flagged"]
        and amount <= income_check["monthly_income"] * 12
    )
    return {"applicant": load_application["applicant"], "amount": amount, "approved": ok}


@workflow
def loan_check(wf):
    wf.timeline(load_application >> [credit_score, fraud_check, income_check] >> decide)


async def main():
    async with Engine() as engine:
        started = time.monotonic()
        result = await engine.execute(loan_check, {"applicant": "ann", "amount": 25_000})
        elapsed = time.monotonic() - started
        print(f"{result.status} in {elapsed:.2f}s: {result.output}")
        steps = (await engine.status(result.id)).steps  # timings from the history
        t0 = min(s.started_at for s in steps)
        for s in steps:
            begin = (s.started_at - t0).total_seconds()
            print(f"  {s.name:<16} {s.status:<10} from +{begin:.2f}s for {s.duration:.2f}s")
        print("the three checks ran side by side" if elapsed < 0.8 else "the checks ran one by one")


if __name__ == "__main__":
    asyncio.run(main())
