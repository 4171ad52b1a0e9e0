"""Code workflows on a real engine: activities, durable waits, determinism, children."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

import cerebelum
from cerebelum import (
    CerebelumError,
    Engine,
    ExecutionStuckError,
    InvalidRequestError,
    activity,
    workflow,
)
from cerebelum.testing import TestEngine

from . import code_workflows as cw


async def test_the_readme_example_runs_three_one_day_sleeps_in_virtual_time():
    cw.calls.clear()
    started = time.monotonic()
    async with TestEngine() as engine:
        result = await engine.execute(cw.code_onboarding, "minor-1")
        history = await engine.history(result.id)
    assert result.output == {"status": "completed"}
    assert time.monotonic() - started < 5
    assert [c[0] for c in cw.calls] == [
        "fetch_user",
        "consent",
        "reminder-0",
        "reminder-1",
        "reminder-2",
    ]
    fired = [e for e in history if e.type == "TimerFired"]
    assert [round(f.at - history[0].at) for f in fired] == [86400, 172800, 259200]
    # each one-day sleep evicted the coroutine; it was rebuilt from the journal three
    # times, and no activity ran again
    assert cw.entries["minor-1"] == 4


async def test_no_replay_while_the_coroutine_stays_in_memory():
    cw.calls.clear()
    async with TestEngine(evict_after=None) as engine:
        result = await engine.execute(cw.code_onboarding, "adult-1")
    assert result.output == {"status": "completed"}
    assert cw.entries["adult-1"] == 1  # results were handed to the coroutine, not replayed
    assert [c[0] for c in cw.calls][:2] == ["fetch_user", "welcome"]


async def test_gather_returns_results_in_program_order():
    async with TestEngine() as engine:
        result = await engine.execute(cw.fan_out, 8)
    assert result.output == list(range(8))


async def test_an_activity_is_retried_with_backoff_under_the_same_key():
    async with TestEngine() as engine:
        result = await engine.execute(cw.retrying, "ok-on-3", 3)
        history = await engine.history(result.id)
    assert result.output == 3
    assert cw.attempts["ok-on-3"] == [1, 2, 3]
    delays = [round(e.fire_at - e.at) for e in history if e.type == "ActivityRetryScheduled"]
    assert delays == [60, 120]


async def test_an_activity_that_keeps_failing_raises_in_the_workflow():
    async with TestEngine() as engine:
        handled = await engine.execute(cw.retrying, "never", 99)
        unhandled = await engine.execute(cw.unhandled, "never-2")
    assert handled.output == {"gave_up": 3, "message": "attempt 3"}
    assert unhandled.status == "failed"
    assert unhandled.error.data["name"] == "ActivityError" and "flaky" in unhandled.error.message


async def test_activity_timeouts_and_missed_heartbeats(store_url):
    async with Engine(store_url) as engine:
        assert (await engine.execute(cw.timing_out)).output == "timeout"
        assert (await engine.execute(cw.heartbeats, 5)).output == "done"
        missed = await engine.execute(cw.heartbeats, 2)
    assert "sent no heartbeat for 0.1s" in missed.output


async def test_recorded_values_are_the_same_after_a_restart(store_url):
    db = store_url
    async with Engine(db) as engine:
        handle = await engine.start(cw.recorded, id="rec-1")
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)
        before = [e for e in await engine.history(handle.id) if e.type == "MarkerRecorded"]
    clock = cerebelum.VirtualClock()
    clock.set(time.time() + 7200)
    async with Engine(db, clock=clock) as engine:
        result = await engine.result("rec-1", timeout=5)
        after = [e for e in await engine.history("rec-1") if e.type == "MarkerRecorded"]
    assert after[:3] == before
    recorded_now = datetime.fromtimestamp(msgspec.json.decode(before[0].value), UTC)
    assert result.output[0] == recorded_now.isoformat()
    assert result.output[1] == msgspec.json.decode(before[1].value)


async def test_code_that_no_longer_matches_its_history_stops_and_resumes_once_fixed(store_url):
    db = store_url

    async def first_step():
        return 1

    async def other_step():
        return 2

    @workflow(name="evolving")
    async def v1():
        await activity(first_step)
        await cerebelum.sleep(hours=1)
        return "v1 done"

    async with Engine(db, workflows=[v1]) as engine:
        handle = await engine.start(v1, id="ev-1")
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)

    @workflow(name="evolving")
    async def v2_broken():
        await activity(other_step)  # position 0 held first_step
        await cerebelum.sleep(hours=1)
        return "v2 done"

    # A sleeping execution stays in the store until it wakes: the mismatch shows then.
    later = cerebelum.VirtualClock()
    later.set(time.time() + 7200)
    async with Engine(db, workflows=[v2_broken], clock=later) as engine:
        with pytest.raises(
            ExecutionStuckError, match="at position 0 its history holds activity 'first_step'"
        ):
            await engine.result("ev-1", timeout=5)
        info = await engine.status("ev-1")
        assert info.status == "stuck" and info.error.data["position"] == 0

    @workflow(name="evolving")
    async def v3_fixed():
        await activity(first_step)
        await cerebelum.sleep(hours=1)
        return "v3 done"

    clock = cerebelum.VirtualClock()
    clock.set(time.time() + 7200)
    async with Engine(db, workflows=[v3_fixed], clock=clock) as engine:
        result = await engine.result("ev-1", timeout=5)
    assert result.output == "v3 done"


async def test_patched_keeps_old_executions_on_the_old_path(store_url):
    db = store_url

    @workflow(name="patching")
    async def old():
        await cerebelum.sleep(hours=1)
        return "old"

    async with Engine(db, workflows=[old]) as engine:
        handle = await engine.start(old, id="before-patch")
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)

    @workflow(name="patching")
    async def new():
        if cerebelum.patched("skip-sleep"):
            return "new"
        await cerebelum.sleep(hours=1)
        return "old"

    clock = cerebelum.VirtualClock()
    clock.set(time.time() + 7200)
    async with Engine(db, workflows=[new], clock=clock) as engine:
        assert (await engine.result("before-patch", timeout=5)).output == "old"
        assert (await engine.execute(new)).output == "new"


async def test_approvals_in_code_carry_the_decision_and_time_out():
    async with TestEngine(evict_after=None) as engine:
        handle = await engine.start(cw.approving, 100)
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.001)
        with pytest.raises(InvalidRequestError, match="not waiting for approval 'cfo'"):
            await engine.approve(handle.id, "cfo")
        await engine.approve(handle.id, "manager", data={"by": "ann"})
        assert (await handle.result()).output == {"approved": True, "data": {"by": "ann"}}
        assert (await engine.execute(cw.approving, 5)).output == "timed out"


async def test_a_signal_sent_before_the_wait_is_kept():
    async with TestEngine() as engine:
        handle = await engine.start(cw.waiting_for_signal, None)
        await engine.signal(handle.id, "address_changed", {"city": "Lyon"})
        await engine.signal(handle.id, "address_changed", {"city": "Nantes"})
        assert (await handle.result()).output == [{"city": "Lyon"}, {"city": "Nantes"}]
        assert (await engine.execute(cw.waiting_for_signal, 60)).output == "no signal"


async def test_children_of_either_kind_from_code_and_from_a_graph_step():
    async with TestEngine() as engine:
        result = await engine.execute(cw.parent, 5, id="p-1")
        assert result.output == [10, 6]
        assert {i.id for i in await engine.list(workflow="graph_child")} == {"p-1.0"}
        assert (await engine.execute(cw.graph_parent, 3)).output == 4


async def test_cancelling_a_parent_cancels_its_children():
    async with TestEngine(evict_after=None) as engine:
        handle = await engine.start(cw.long_parent, id="lp")
        while not await engine.list(workflow="sleeper_child"):
            await asyncio.sleep(0.001)
        await engine.cancel("lp")
        assert (await handle.result()).status == "cancelled"
        child = await engine.result("lp.0", timeout=5)
    assert child.status == "cancelled"


async def test_sleeping_workflows_leave_memory_and_come_back(store_url):
    clock = cerebelum.VirtualClock()
    async with Engine(store_url, clock=clock, evict_after=60) as engine:
        handles = [await engine.start(cw.slow_start) for _ in range(20)]
        while len(await engine.list(status="waiting")) < len(handles):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert engine._runs == {}  # all asleep in the store, none in memory
        clock.advance(3600)
        engine.poke_timers()
        results = [await h.result(timeout=5) for h in handles]
    assert all(r.output is True for r in results)


async def test_bad_input_to_code_workflows():
    with pytest.raises(CerebelumError, match="outside a code workflow"):
        activity(cw.echo, 1)
    async with TestEngine() as engine:
        with pytest.raises(
            InvalidRequestError, match=r"workflow .code_onboarding. cannot take these arguments"
        ):
            await engine.start(cw.code_onboarding, "a", "b")
        assert await engine.list() == []
        result = await engine.execute(cw.bad_argument)
    assert result.status == "failed"
    assert (
        "arguments of activity 'echo'" in result.error.message and "Opaque" in result.error.message
    )


async def test_the_workflow_logger_is_quiet_while_replaying(caplog):
    log = cerebelum.code.get_logger("test.workflow")

    @workflow(name="chatty")
    async def chatty():
        log.warning("before the sleep")
        await cerebelum.sleep(days=1)
        log.warning("after the sleep")
        return "done"

    async with TestEngine() as engine:  # the one-day sleep evicts, then replays
        with caplog.at_level("WARNING", logger="test.workflow"):
            assert (await engine.execute(chatty)).output == "done"
    messages = [r.message for r in caplog.records if r.name == "test.workflow"]
    assert messages == ["before the sleep", "after the sleep"]


def _double(n: int) -> int:
    return n * 2


@workflow
async def sleeper(n: int) -> int:
    first = await activity(_double, n)
    await cerebelum.sleep(seconds=0.2)
    return await activity(_double, first)


async def test_a_thousand_workflows_on_activities_and_sleeps_log_no_warning(sqlite_url, caplog):
    # they only await activities and durable sleeps: nothing is unrecorded, so nothing
    # may be reported as awaiting "something that is not an activity"
    caplog.set_level("WARNING")
    async with Engine(sqlite_url, poll_interval=0.01) as engine:
        handles = [await engine.start(sleeper, n) for n in range(1000)]
        results = await asyncio.gather(*(h.result() for h in handles))
    assert [r.output for r in results] == [n * 4 for n in range(1000)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@workflow
async def expense_with_timeout(amount: int):
    decision = await cerebelum.approval("manager", timeout=timedelta(days=2))
    return "timed out" if decision.timed_out else decision.approved


async def test_test_engine_time_stands_still_until_the_test_waits():
    async with TestEngine() as engine:
        before = engine.clock.now()
        handle = await engine.start(expense_with_timeout, 100)
        await asyncio.sleep(0.2)  # real time: every execution waits, and the clock stays
        assert engine.clock.now() == before
        assert (await engine.status(handle.id)).status == "waiting"
        await engine.approve(handle.id, "manager")
        assert (await handle.result()).output is True
        forgotten = await engine.start(expense_with_timeout, 200)
        assert (await engine.result(forgotten.id)).output == "timed out"  # awaiting skips
        assert engine.clock.now() - before == timedelta(days=2)


ticks: list[tuple[int, datetime]] = []


def _tick(i: int, at: str) -> None:
    ticks.append((i, datetime.fromisoformat(at)))


@workflow
async def hourly(n: int):
    for i in range(n):
        await cerebelum.sleep(hours=1)
        await activity(_tick, i, cerebelum.now().isoformat())
    return n


async def test_test_engine_sleep_fires_timers_in_order_and_runs_workflows_between():
    ticks.clear()
    async with TestEngine() as engine:
        start = engine.clock.now()
        handle = await engine.start(hourly, 5)
        await engine.sleep(timedelta(hours=2, minutes=30))
        assert engine.clock.now() - start == timedelta(hours=2, minutes=30)
        assert [(i, at - start) for i, at in ticks] == [
            (0, timedelta(hours=1)),
            (1, timedelta(hours=2)),
        ]
        assert (await engine.status(handle.id)).status == "waiting"
        engine.advance(timedelta(hours=1))  # returns at once; the clock gets there by itself
        async with asyncio.timeout(5):
            while len(ticks) < 3:
                await asyncio.sleep(0.01)
        assert (await handle.result()).output == 5
        assert [at - start for _, at in ticks] == [timedelta(hours=h) for h in range(1, 6)]
