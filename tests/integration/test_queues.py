"""Queues of executions: concurrency, rate limits, priority, dedup ids, on both stores."""

from __future__ import annotations

import asyncio

import pytest

from cerebelum import DuplicateError, Engine, InvalidRequestError, Queue
from cerebelum.errors import DefinitionError

from . import queue_workflows as qw


@pytest.fixture(autouse=True)
def fresh_state():
    qw.reset()
    yield
    qw.gate.set()


async def statuses(engine: Engine, ids: list[str]) -> list[str]:
    return [(await engine.status(i)).status for i in ids]


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


async def test_a_queue_runs_no_more_than_its_concurrency_at_once(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        handles = [await engine.start(qw.held, {"name": f"e{i}"}, queue=qw.pairs)
                   for i in range(6)]  # fmt: skip
        ids = [h.id for h in handles]

        async def two_running() -> bool:
            return (await statuses(engine, ids)).count("running") == 2

        await until(two_running)
        assert sorted(await statuses(engine, ids)) == ["queued"] * 4 + ["running"] * 2
        qw.gate.set()
        results = [await h.result(timeout=10) for h in handles]
    assert [r.output for r in results] == [f"e{i}" for i in range(6)]
    assert qw.state["most"] == 2
    assert qw.state["order"] == [f"e{i}" for i in range(6)]  # oldest first


async def test_higher_priority_runs_first(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        first = await engine.start(qw.held, {"name": "first"}, queue=qw.single)
        await until(lambda: _status_is(engine, first.id, "running"))
        low = await engine.start(qw.held, {"name": "low"}, queue="single", priority=1)
        high = await engine.start(qw.held, {"name": "high"}, queue="single", priority=9)
        assert (await engine.status(low.id)).status == "queued"
        qw.gate.set()
        for h in (first, low, high):
            assert (await h.result(timeout=10)).status == "completed"
    assert qw.state["order"] == ["first", "high", "low"]


async def _status_is(engine: Engine, eid: str, status: str) -> bool:
    return (await engine.status(eid)).status == status


async def test_a_rate_limit_admits_so_many_per_period(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        handles = [await engine.start(qw.held, {"name": f"r{i}"}, queue=qw.rated)
                   for i in range(4)]  # fmt: skip
        ids = [h.id for h in handles]

        async def two_admitted() -> bool:
            return (await statuses(engine, ids)).count("running") == 2

        await until(two_admitted)
        qw.gate.set()
        assert [(await h.result(timeout=10)).status for h in handles[:2]] == ["completed"] * 2
        await asyncio.sleep(0.2)  # several polls: the next two wait for the next hour
        assert await statuses(engine, ids[2:]) == ["queued", "queued"]


async def test_a_live_dedup_id_is_refused_naming_the_execution_and_writes_nothing(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        one = await engine.start(qw.held, {"name": "a"}, queue=qw.pairs, dedup_id="user-42")
        with pytest.raises(DuplicateError) as err:
            await engine.start(qw.held, {"name": "b"}, queue=qw.pairs, dedup_id="user-42")
        assert err.value.execution_id == one.id and "'user-42'" in err.value.message
        assert len(await engine.list(workflow="held")) == 1
        qw.gate.set()
        await one.result(timeout=10)
        again = await engine.start(qw.held, {"name": "c"}, queue=qw.pairs, dedup_id="user-42")
        assert (await again.result(timeout=10)).output == "c"  # ended: the id is free again


async def test_a_queued_execution_can_be_cancelled_and_never_runs(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        busy = await engine.start(qw.held, {"name": "busy"}, queue=qw.single)
        await until(lambda: _status_is(engine, busy.id, "running"))
        waiting = await engine.start(qw.held, {"name": "never"}, queue=qw.single)
        await engine.cancel(waiting.id, "not needed")
        assert (await waiting.result(timeout=10)).status == "cancelled"
        qw.gate.set()
        await busy.result(timeout=10)
    assert qw.state["order"] == ["busy"]


async def test_a_queue_survives_a_restart_of_the_engine(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        ids = [(await engine.start(qw.held, {"name": f"s{i}"}, queue=qw.single)).id
               for i in range(3)]  # fmt: skip
        await until(lambda: _status_is(engine, ids[0], "running"))
    qw.reset()
    qw.gate.set()
    async with Engine(store_url, poll_interval=0.05) as engine:
        results = [await engine.result(i, timeout=10) for i in ids]
    assert [r.output for r in results] == ["s0", "s1", "s2"]


async def test_bad_queue_arguments_are_refused(store_url):
    async with Engine(store_url) as engine:
        with pytest.raises(InvalidRequestError, match="not a declared queue"):
            await engine.start(qw.held, {"name": "x"}, queue="nope")
        with pytest.raises(InvalidRequestError, match="give queue= too"):
            await engine.start(qw.held, {"name": "x"}, dedup_id="d")
        assert await engine.list() == []
    with pytest.raises(DefinitionError, match="declared twice"):
        Queue("pairs", concurrency=3)
    with pytest.raises(DefinitionError, match="limit and period go together"):
        Queue("odd", limit=3)
