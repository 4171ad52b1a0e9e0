"""An order saga: reserve the stock, charge the card, ship; undo what was done when it fails.

A graph workflow. ``charge_card`` *returns* an ``Error`` when the card is declined
(no exception, no retry): a diverge routes that error to a compensation chain that
releases the stock and tells the customer. The chain is off the timeline, so the
execution ends after it and its last result is the output.

Three other rules show the flow actions: a busy payment gateway (an exception type)
is retried by ``retry(...)``; a suspected fraud fails the execution with ``fail(...)``.

Run it: ``python examples/order_saga.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
"""

import asyncio

from cerebelum import Engine, Error, fail, retry, step, workflow


class GatewayBusy(Exception):
    """The payment gateway asked us to come back later."""


@step
async def reserve_stock(context, inputs):
    print(f"  reserve {inputs['qty']} x {inputs['sku']}")
    return {"reservation": f"R-{inputs['order']}", "sku": inputs["sku"], "qty": inputs["qty"]}


@step
async def charge_card(context, inputs, reserve_stock):
    card = inputs["card"]
    if card == "busy" and context.attempt == 1:
        print(f"  charge attempt {context.attempt}: the gateway is busy")
        raise GatewayBusy("try again in a moment")
    if card == "declined":
        print("  charge: card declined")
        return Error("payment_declined", {"card": card}, "the bank declined the card")
    if card == "stolen":
        print("  charge: the card is reported stolen")
        return Error("fraud_suspected", {"card": card})
    print(f"  charge attempt {context.attempt}: ok")
    # the idempotency key is the same on every attempt: a real gateway would dedupe on it
    return {"charge_id": f"ch:{context.idempotency_key}", "amount": 20 * inputs["qty"]}


@step
async def ship_order(context, inputs, charge_card):
    print(f"  ship order {inputs['order']}")
    return {"status": "shipped", "order": inputs["order"], "charge": charge_card["charge_id"]}


@step
async def release_stock(context, reserve_stock):  # compensation of reserve_stock
    print(f"  release reservation {reserve_stock['reservation']}")
    return {"released": reserve_stock["reservation"]}


@step
async def notify_customer(context, inputs, release_stock):
    print(f"  tell the customer order {inputs['order']} is cancelled")
    return {"status": "cancelled", "order": inputs["order"], "reason": "payment_declined"}


@workflow
def order_saga(wf):
    wf.timeline(reserve_stock >> charge_card >> ship_order)
    wf.diverge(charge_card).when("payment_declined", target=release_stock >> notify_customer).when(
        GatewayBusy, target=retry(3, delay=0.05)
    ).when("fraud_suspected", target=fail("fraud suspected: order held for review"))


ORDERS = [
    {"order": "A-100", "sku": "lamp", "qty": 1, "card": "good"},
    {"order": "A-101", "sku": "desk", "qty": 2, "card": "declined"},
    {"order": "A-102", "sku": "chair", "qty": 4, "card": "busy"},
    {"order": "A-103", "sku": "sofa", "qty": 1, "card": "stolen"},
]


async def main():
    async with Engine() as engine:
        for order in ORDERS:
            print(f"order {order['order']} (card: {order['card']})")
            result = await engine.execute(order_saga, order)
            if result.ok:
                print(f"  -> {result.status}: {result.output}")
            else:
                print(f"  -> {result.status}: {result.error}")
            steps = (await engine.status(result.id)).steps
            print("  steps: " + ", ".join(f"{s.name}={s.status}" for s in steps))


if __name__ == "__main__":
    asyncio.run(main())
