"""A subscription: a 30-day trial, then a monthly charge until the customer cancels.

A code workflow: plain async Python whose ``activity``, ``sleep`` and ``signal`` calls
the engine records. ``sleep(days=30)`` is a durable timer, and waiting a month for a
``"cancel"`` signal is one too; a workflow that sleeps that long leaves memory and is
rebuilt from its journal when it wakes, without running a recorded activity again.

The charge is an activity with a retry policy: the payment gateway fails the first
attempt of the second month, and the engine tries again five minutes later.

It runs on ``TestEngine``, whose virtual clock jumps to the next timer whenever every
execution waits on one while the program awaits a result: four months of subscription
take a fraction of a second. The
same workflow runs unchanged on ``Engine()``, where a month is a month.

Run it: ``python examples/code_subscription.py`` (an in-memory store).
"""

import asyncio
from datetime import timedelta

import cerebelum
from cerebelum import Retry, SignalTimeoutError, activity, activity_info, signal, sleep, workflow
from cerebelum.testing import TestEngine


async def send_email(customer, subject, day):
    print(f"  {day}  email {customer}: {subject}")


@activity(retry=Retry(max_attempts=3, initial=timedelta(minutes=5), backoff=2))
async def charge(customer, month, day):
    attempt = activity_info().attempt
    if month == 2 and attempt == 1:
        print(f"  {day}  charge {customer} for month {month}: gateway error, will retry")
        raise ConnectionError("payment gateway unreachable")
    print(f"  {day}  charge {customer} 9.99 EUR for month {month} (attempt {attempt})")
    return {"month": month, "amount": 9.99}


def today():
    """The date, read through cerebelum.now(): recorded, so a replay sees the same day."""
    return cerebelum.now().date().isoformat()


@workflow
async def subscription(customer: str, max_months: int):
    await activity(send_email, customer, "welcome, your trial starts", today())
    await sleep(days=30)  # the free trial
    charges = []
    for month in range(1, max_months + 1):
        charges.append(await activity(charge, customer, month, today()))
        try:
            reason = await signal("cancel", timeout=timedelta(days=30))
        except SignalTimeoutError:
            continue  # a month went by without a cancel: renew
        await activity(send_email, customer, f"cancelled ({reason})", today())
        return {"customer": customer, "months_paid": len(charges), "cancelled": reason}
    return {"customer": customer, "months_paid": len(charges), "cancelled": None}


async def main():
    async with TestEngine() as engine:
        print("ann keeps her subscription for three months:")
        result = await engine.execute(subscription, "ann", 3)
        print(f"  -> {result.output}")

        print("bob cancels before his first month is over:")
        handle = await engine.start(subscription, "bob", 12)
        # a signal sent before the workflow waits for it is kept until it does
        await engine.signal(handle.id, "cancel", "too expensive")
        result = await handle.result()
        print(f"  -> {result.output}")

        history = await engine.history(result.id)
        print(
            f"  bob's history: {len(history)} events, from {history[0].type} to {history[-1].type}"
        )


if __name__ == "__main__":
    asyncio.run(main())
