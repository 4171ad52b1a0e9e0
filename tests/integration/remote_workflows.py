"""Workflows with steps and activities hosted elsewhere, by name (tests/integration/
test_remote_steps.py, and the cross-language test with the TypeScript worker)."""

from __future__ import annotations

import os
from pathlib import Path

from cerebelum import activity, remote_step, step, workflow


def _log(what: str, key: str, attempt: int) -> None:
    folder = os.environ.get("WORKER_TEST_DIR")
    if folder:
        with (Path(folder) / "runs.log").open("a") as f:
            f.write(f"py {what} {key} {attempt} {os.getpid()}\n")


@step
async def reserve(context, inputs):
    _log("reserve", context.idempotency_key, context.attempt)
    return {"amount": inputs["amount"], "order": inputs["order"]}


charge_card = remote_step("charge_card", after=[reserve], queue="payments")


@step
async def ship(context, charge_card):
    _log("ship", context.idempotency_key, context.attempt)
    return {"shipped": charge_card["order"], "charged": charge_card["charged"]}


receipt = remote_step("send_receipt", after=[ship, charge_card], queue="payments")


@step
async def refund(context, reserve):
    return {"refunded": reserve["amount"]}


@workflow
def purchase(wf):
    """Python and another language, step by step: reserve (py) >> charge_card (remote)
    >> ship (py) >> send_receipt (remote); a payment that fails (a returned error, or a
    thrown CardDeclined) goes to refund."""
    wf.timeline(reserve >> charge_card >> ship >> receipt)
    wf.diverge(charge_card).when("payment_failed", target=refund).when(
        "CardDeclined", target=refund
    )


@workflow
async def thumbnails(url: str, width: int) -> dict:
    """A code workflow that calls an activity hosted elsewhere, by name."""
    resized = await activity("resize_image", url, width, queue="images")
    return {"thumbnail": resized}
