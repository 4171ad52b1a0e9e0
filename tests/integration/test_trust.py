"""Concurrency and bad input at the engine's door, on both stores."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

import cerebelum
from cerebelum import CerebelumError, Engine, InvalidRequestError
from cerebelum.engine._requests import send_request
from cerebelum.store import open_store

from . import trust_workflows as tw


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def waits_for_sign_off(engine: Engine, eid: str) -> bool:
    return (await engine.status(eid)).status == "waiting"


async def test_a_storm_of_requests_for_an_ended_execution_never_shadows_new_ones(store_url):
    # The CLI's path: requests checked against the store, then left in the inbox. 150 of
    # them reach one execution; the first approves it, it ends, the rest are stale.
    async with Engine(store_url, poll_interval=0.02, lease=0.6) as engine:
        first = await engine.start(tw.sign_off_flow, 1, id="storm-1")
        await until(lambda: waits_for_sign_off(engine, first.id))
        async with open_store(store_url) as other:
            # all checked at the door while it still waited (as 150 CLI calls at once can
            # be), so all in the inbox
            for _ in range(150):
                await other.send(first.id, "approve", "sign_off", b"null", time.time())
            assert (await first.result(timeout=10)).output is True
            second = await engine.start(tw.sign_off_flow, 2, id="storm-2")
            await until(lambda: waits_for_sign_off(engine, second.id))
            await send_request(other, second.id, "approve", "sign_off", b"null", time.time())
            assert (await second.result(timeout=10)).output is True
            await until(lambda: inbox_empty(other), timeout=10)


async def inbox_empty(store) -> bool:
    return not await store.drop_stale(1000) and not await store.receive(
        "nobody", time.time(), 0.0, 10, {"sign_off_flow": tw.sign_off_flow.version}
    )


async def test_a_second_engine_approving_one_execution_100_times_at_once(postgres_url):
    async with Engine(postgres_url, poll_interval=0.02, lease=0.6) as owner, \
            Engine(postgres_url, poll_interval=0.02, lease=0.6) as other:  # fmt: skip
        handle = await owner.start(tw.sign_off_flow, 1, id="many-approvals")
        await until(lambda: waits_for_sign_off(owner, handle.id))
        outcomes = await asyncio.gather(
            *(other.approve(handle.id, "sign_off") for _ in range(100)), return_exceptions=True
        )
        assert all(o is None or isinstance(o, InvalidRequestError) for o in outcomes), outcomes
        assert (await handle.result(timeout=10)).output is True
        later = await owner.start(tw.sign_off_flow, 2, id="after-the-storm")
        await until(lambda: waits_for_sign_off(owner, later.id))
        await other.approve(later.id, "sign_off")
        assert (await later.result(timeout=10)).output is True
        history = await owner.history(handle.id)
        assert Counter(e.type for e in history)["ApprovalResolved"] == 1


@pytest.mark.parametrize("tasks", [10, 50])
async def test_starting_one_new_id_from_many_tasks_at_once_makes_one_execution(store_url, tasks):
    async with Engine(store_url) as engine:
        for attempt in range(10):
            eid = f"same-{tasks}-{attempt}"
            handles = await asyncio.gather(
                *(engine.start(tw.quick_flow, {"n": attempt}, id=eid) for _ in range(tasks))
            )
            assert {h.id for h in handles} == {eid}
            result = await engine.result(eid, timeout=10)
            assert (result.status, result.output) == ("completed", {"n": attempt})
            types = Counter(e.type for e in await engine.history(eid))
            assert types["ExecutionStarted"] == 1 and types["ExecutionCompleted"] == 1


async def test_two_engines_starting_one_id_at_once_make_one_execution(postgres_url):
    async with Engine(postgres_url) as a, Engine(postgres_url) as b:
        for attempt in range(5):
            eid = f"both-{attempt}"
            handles = await asyncio.gather(*(
                e.start(tw.quick_flow, {"n": attempt}, id=eid) for e in [a, b] * 10
            ))  # fmt: skip
            assert {h.id for h in handles} == {eid}
            assert (await a.result(eid, timeout=10)).output == {"n": attempt}
            assert (await b.result(eid, timeout=10)).output == {"n": attempt}
            types = Counter(e.type for e in await a.history(eid))
            assert types["ExecutionStarted"] == 1 and types["StepCompleted"] == 1


async def test_closing_right_after_starting_a_sleeping_workflow_never_hangs(tmp_path):
    for i in range(10):
        async with asyncio.timeout(10):
            async with Engine(tmp_path / f"close-{i}.db") as engine:
                await engine.start(tw.napper, i)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "", "x" * 1001])
async def test_an_id_no_store_can_hold_is_refused_at_the_door(store_url, bad):
    async with Engine(store_url) as engine:
        for call in (
            lambda: engine.start(tw.quick_flow, {}, id=bad),
            lambda: engine.result(bad, timeout=1),
            lambda: engine.status(bad),
            lambda: engine.history(bad),
            lambda: engine.approve(bad, "sign_off"),
            lambda: engine.cancel(bad),
        ):
            with pytest.raises(InvalidRequestError, match="an execution id"):
                await call()
        assert await engine.list() == []


async def test_a_stuck_execution_is_an_error_callers_can_catch():
    assert issubclass(cerebelum.ExecutionStuckError, CerebelumError)
    assert not issubclass(cerebelum.NonDeterminismError, Exception)  # inside workflows


async def test_opening_a_store_loads_only_what_has_something_to_do(store_url):
    async with Engine(store_url) as engine:
        for i in range(30):
            await engine.start(tw.napper, i, id=f"nap-{i}")
        approving = await engine.start(tw.sign_off_flow, 0, id="sign")
        await until(lambda: waits_for_sign_off(engine, approving.id))
        await until(lambda: _count_waiting(engine, 31))
    async with Engine(store_url) as engine:
        assert engine._runs == {}  # asleep or waiting: all in the store, none in memory
        await engine.approve("sign", "sign_off")  # a request loads the one it is for
        assert (await engine.result("sign", timeout=10)).output is True
        assert set(engine._runs) == set()
    later = cerebelum.VirtualClock()
    later.set(time.time() + 7200)
    async with Engine(store_url, clock=later, poll_interval=0.02) as engine:
        results = await asyncio.gather(*(engine.result(f"nap-{i}", timeout=20) for i in range(30)))
        assert [r.output for r in results] == list(range(30))


async def _count_waiting(engine: Engine, n: int) -> bool:
    return len(await engine.list(status="waiting", limit=10_000)) == n


async def test_waiting_for_results_not_in_memory_reads_the_store_once_per_poll(store_url):
    async with Engine(store_url, poll_interval=0.05, evict_after=0) as engine:
        handles = [await engine.start(tw.napper, i) for i in range(200)]
        await until(lambda: _count_waiting(engine, 200))
        await until(lambda: _empty(engine))
        reads = Counter()
        store = engine.store
        for name in ("get", "get_many", "history"):
            real = getattr(store, name)

            def counting(*args, _real=real, _name=name):
                reads[_name] += 1
                return _real(*args)

            setattr(store, name, counting)
        waits = [asyncio.create_task(h.result(timeout=1.0)) for h in handles]
        done = await asyncio.gather(*waits, return_exceptions=True)
        assert all(isinstance(d, TimeoutError) for d in done)
        # one read per caller to start with, then one read per poll for all of them
        assert reads["get"] <= 200 and reads["get_many"] <= 1.0 / 0.05 + 2, reads


async def _empty(engine: Engine) -> bool:
    return not engine._runs
