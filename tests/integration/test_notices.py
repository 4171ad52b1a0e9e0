"""Engines sharing a PostgreSQL database hear of each other's commits at once (NOTIFY).

Each engine here polls the store only once a minute, so a test that passes within its
timeout shows that what it waited for came by a notice, not by a poll.
"""

from __future__ import annotations

import asyncio

from cerebelum import Engine

from . import trust_workflows as tw

SLOW_POLL = 60.0


async def until_waiting(engine: Engine, execution_id: str) -> None:
    async with asyncio.timeout(10):
        while (await engine.status(execution_id)).status != "waiting":
            await asyncio.sleep(0.01)


async def test_a_request_sent_through_another_engine_reaches_the_owner_at_once(postgres_url):
    async with Engine(postgres_url, poll_interval=SLOW_POLL, lease=60) as owner, \
            Engine(postgres_url, poll_interval=SLOW_POLL, lease=60) as other:  # fmt: skip
        handle = await owner.start(tw.sign_off_flow, {"n": 1})
        await until_waiting(owner, handle.id)
        await other.approve(handle.id, "sign_off", data={"by": "ann"})  # owner is alive: inbox
        async with asyncio.timeout(10):
            result = await handle.result()
        assert result.status == "completed"


async def test_a_result_waited_for_on_another_engine_arrives_when_the_execution_ends(
    postgres_url,
):
    async with Engine(postgres_url, poll_interval=SLOW_POLL, lease=60) as owner, \
            Engine(postgres_url, poll_interval=SLOW_POLL, lease=60) as other:  # fmt: skip
        handle = await owner.start(tw.sign_off_flow, {"n": 2})
        await until_waiting(owner, handle.id)
        waiting = asyncio.create_task(other.result(handle.id))
        await asyncio.sleep(0.1)  # it waits on the store: the owner runs the execution
        assert not waiting.done()
        await owner.approve(handle.id, "sign_off")
        async with asyncio.timeout(10):
            result = await waiting
        assert result.status == "completed"
