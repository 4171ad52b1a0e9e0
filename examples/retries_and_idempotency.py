"""Retries, timeouts and idempotency keys: charging a card exactly once with an at-least-once step.

A step (or an activity) may run more than once: it is retried after a failure, and
one that was in flight when the process died runs again. Its idempotency key is the
same on every attempt, so a service that deduplicates on it (as payment APIs do)
makes the side effect happen once.

Here the payment provider charges the card and then answers too slowly: the step's
timeout ends the attempt, the retry policy tries again after a backoff, and the
provider recognises the key and returns the first charge instead of charging again.
A card the provider rejects raises an exception listed as ``non_retryable``, so the
execution fails at once, with a structured error.

The second half does the same in a code workflow: an activity with options for one
call (``with_options``), and ``activity_info()`` for its attempt and key.

Run it: ``python examples/retries_and_idempotency.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
"""

import asyncio

from cerebelum import (
    ActivityError,
    Engine,
    Retry,
    activity,
    activity_info,
    step,
    with_options,
    workflow,
)


class CardRejected(Exception):
    """The provider refuses this card; trying again will not help."""


class PaymentProvider:
    """A stand-in for a payment API that deduplicates requests on an idempotency key."""

    def __init__(self):
        self.charges = {}  # idempotency key -> charge
        self.calls = 0

    async def charge(self, key, card, amount, slow):
        self.calls += 1
        if card == "rejected":
            raise CardRejected(f"card {card!r} refused by the issuer")
        if key not in self.charges:
            self.charges[key] = {"id": f"ch_{len(self.charges) + 1}", "amount": amount}
        if slow:
            await asyncio.sleep(1)  # charged, but the answer comes too late
        return self.charges[key]


provider = PaymentProvider()


@step(
    retry=Retry(max_attempts=4, initial=0.05, backoff=2.0, non_retryable=[CardRejected]),
    timeout=0.2,
)
async def charge_card(context, inputs):
    slow = context.attempt == 1 and inputs.get("slow_first_answer", False)
    print(f"  attempt {context.attempt} with key {context.idempotency_key}")
    return await provider.charge(context.idempotency_key, inputs["card"], inputs["amount"], slow)


@step
async def send_receipt(context, charge_card):
    return {"receipt_for": charge_card["id"], "amount": charge_card["amount"]}


@workflow
def checkout(wf):
    wf.timeline(charge_card >> send_receipt)


async def charge_activity(card, amount):
    info = activity_info()
    print(f"  activity attempt {info.attempt} with key {info.idempotency_key}")
    return await provider.charge(info.idempotency_key, card, amount, slow=info.attempt == 1)


@workflow
async def code_checkout(card: str, amount: int):
    charging = with_options(charge_activity, retry=Retry(max_attempts=3, initial=0.05), timeout=0.2)
    try:
        charge = await activity(charging, card, amount)
    except ActivityError as exc:
        return {"charged": False, "why": exc.error["message"]}
    return {"charged": True, "charge": charge}


async def main():
    async with Engine() as engine:
        print("graph: the first answer is lost to a timeout, the retry finds the charge")
        result = await engine.execute(
            checkout, {"card": "4242", "amount": 30, "slow_first_answer": True}
        )
        print(f"  -> {result.status}: {result.output}")
        print(f"  provider calls: {provider.calls}, charges made: {len(provider.charges)}")
        history = await engine.history(result.id)
        print("  history: " + " ".join(e.type for e in history))

        print("graph: a rejected card is not retried")
        result = await engine.execute(checkout, {"card": "rejected", "amount": 30})
        err = result.error
        print(
            f"  -> {result.status}: {err.kind} at {err.step!r}, {err.data['name']}: {err.message}"
        )
        print(
            f"     after {err.data['attempts']} attempt(s); traceback kept: {bool(err.traceback)}"
        )

        print("code: the same with an activity")
        result = await engine.execute(code_checkout, "5555", 12)
        print(f"  -> {result.status}: {result.output}")
        print(f"  provider calls: {provider.calls}, charges made: {len(provider.charges)}")


if __name__ == "__main__":
    asyncio.run(main())
