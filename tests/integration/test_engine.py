"""The engine on a real store: executions, routing, retries, waits, approvals, control."""

from __future__ import annotations

import asyncio

import pytest

from cerebelum import (
    Engine,
    ExecutionNotFoundError,
    InvalidRequestError,
    SerializationError,
    VirtualClock,
)

from . import workflows as w


async def test_the_quickstart_workflow_completes_and_records_its_history(engine):
    result = await engine.execute(w.onboarding, {"user_id": "u1", "age": 17})
    assert (result.status, result.output) == ("completed", {"sent": "consent", "to": "u1"})
    types = [e.type for e in await engine.history(result.id)]
    assert types == [
        "ExecutionStarted",
        "StepScheduled", "StepStarted", "StepCompleted", "BranchTaken",
        "StepSkipped", "StepScheduled", "StepStarted", "StepCompleted",
        "ExecutionCompleted",
    ]  # fmt: skip
    info = await engine.status(result.id)
    assert {s.name: s.status for s in info.steps} == {
        "fetch_user": "completed", "welcome": "skipped", "consent": "completed",
    }  # fmt: skip


async def test_the_timeline_path_when_no_rule_matches(engine):
    result = await engine.execute(w.onboarding, {"user_id": "u2", "age": 40})
    assert result.output == {"sent": "welcome", "to": "u2"}


async def test_starting_an_existing_id_returns_that_execution(engine):
    first = await engine.start(w.onboarding, {"user_id": "a"}, id="order-1")
    second = await engine.start(w.onboarding, {"user_id": "b"}, id="order-1")
    assert first.id == second.id == "order-1"
    assert (await second.result()).output["to"] == "a"
    started = [e for e in await engine.history("order-1") if e.type == "ExecutionStarted"]
    assert len(started) == 1
    with pytest.raises(InvalidRequestError, match="runs workflow 'onboarding', not 'flaky_flow'"):
        await engine.start(w.flaky_flow, {"succeed_on": 1}, id="order-1")


async def test_concurrent_starts_of_one_id_make_one_execution(engine):
    handles = await asyncio.gather(
        *(engine.start(w.onboarding, {"user_id": str(i)}, id="same") for i in range(5))
    )
    assert {h.id for h in handles} == {"same"}
    assert len(await engine.list(workflow="onboarding")) == 1


async def test_a_plain_function_step_runs_in_a_thread_with_its_context(engine):
    result = await engine.execute(w.sync_flow, None, id="sync-1")
    assert result.output["thread"] is True
    assert (
        "execution_id='sync-1'" in result.output["ctx"]
        and "step='sync_step'" in result.output["ctx"]
    )


async def test_a_failing_step_is_retried_with_the_same_idempotency_key(engine):
    w.calls.clear()
    result = await engine.execute(w.flaky_flow, {"succeed_on": 3})
    assert (result.status, result.output) == ("completed", 3)
    attempts = w.calls["flaky"]
    assert [c["attempt"] for c in attempts] == [1, 2, 3]
    assert len({c["key"] for c in attempts}) == 1
    types = [e.type for e in await engine.history(result.id)]
    assert types.count("StepRetryScheduled") == 2 and types.count("TimerFired") == 2


async def test_a_step_that_keeps_failing_fails_the_execution_with_a_structured_error(engine):
    result = await engine.execute(w.flaky_flow, {"succeed_on": 99})
    assert result.status == "failed"
    err = result.error
    assert (err.kind, err.step, err.message) == ("exception", "flaky", "attempt 3 failed")
    assert err.data["name"] == "Flaky" and err.data["attempts"] == 3
    assert 'raise Flaky(f"attempt {ctx.attempt} failed")' in err.traceback


async def test_a_returned_error_is_routed_by_its_name(engine):
    for card in ("expired", "sdk"):
        result = await engine.execute(w.payment, {"card": card})
        assert (result.status, result.output) == ("completed", "asked")
    assert (await engine.execute(w.payment, {"card": "ok"})).output == {"charged": True}


async def test_an_unrouted_returned_error_fails_the_execution(engine):
    result = await engine.execute(w.payment_unrouted, {"card": "expired"})
    assert result.status == "failed"
    assert (result.error.kind, result.error.step, result.error.data["name"]) == (
        "error",
        "charge",
        "card_expired",
    )
    assert result.error.data["data"] == {"card": "expired"}


async def test_a_step_timeout_routes_like_an_error(engine):
    result = await engine.execute(w.timeout_flow)
    assert (result.status, result.output) == ("completed", "timed out, handled")
    failed = next(e for e in await engine.history(result.id) if e.type == "StepFailed")
    assert failed.error["kind"] == "timeout" and "within 0.05s" in failed.error["message"]


async def test_a_result_that_cannot_be_serialised_names_the_step_and_the_type(engine):
    result = await engine.execute(w.bad_result)
    assert result.status == "failed" and result.error.kind == "unserialisable"
    assert "result of step 'unserialisable'" in result.error.message
    assert "object at ['when']" in result.error.message


async def test_inputs_that_cannot_be_serialised_are_refused_and_nothing_is_written(engine):
    class Opaque:
        pass

    with pytest.raises(
        SerializationError, match=r"inputs of workflow 'onboarding'.*Opaque at \['user'\]"
    ):
        await engine.start(w.onboarding, {"user": Opaque()})
    assert await engine.list() == []


async def test_unknown_ids_and_statuses_are_refused(engine):
    with pytest.raises(ExecutionNotFoundError, match="'nope'"):
        await engine.status("nope")
    with pytest.raises(ExecutionNotFoundError):
        await engine.history("nope")
    with pytest.raises(ExecutionNotFoundError):
        await engine.approve("nope", "manager")
    with pytest.raises(InvalidRequestError, match="'finished' is not a status"):
        await engine.list(status="finished")


async def test_a_wait_node_pauses_then_continues(engine):
    handle = await engine.start(w.short_wait, None)
    await asyncio.sleep(0.01)
    assert (await engine.status(handle.id)).status == "waiting"
    result = await handle.result(timeout=5)
    assert result.output == "before then after"


async def test_a_month_long_wait_runs_at_once_under_a_virtual_clock(store_url):
    clock = VirtualClock()
    async with Engine(store_url, clock=clock) as engine:
        handle = await engine.start(w.month_wait, None)
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)
        clock.advance(30 * 86400)
        engine.poke_timers()
        result = await handle.result(timeout=5)
    assert result.output == "before then after"


async def test_an_approval_carries_its_decision_and_data_to_the_next_step(engine):
    handle = await engine.start(w.approval_flow, None)
    while (await engine.status(handle.id)).status != "waiting":
        await asyncio.sleep(0.005)
    await engine.approve(handle.id, "manager", data={"by": "ann"})
    result = await handle.result(timeout=5)
    assert result.output == {"approved": True, "data": {"by": "ann"}}


async def test_a_rejection_reaches_the_next_step_too(engine):
    handle = await engine.start(w.approval_flow, None)
    while (await engine.status(handle.id)).status != "waiting":
        await asyncio.sleep(0.005)
    await engine.reject(handle.id, "manager", data="too expensive")
    assert (await handle.result(timeout=5)).output == {"approved": False, "data": "too expensive"}


async def test_approving_what_is_not_waiting_is_refused_and_writes_nothing(engine):
    handle = await engine.start(w.approval_flow, None)
    while (await engine.status(handle.id)).status != "waiting":
        await asyncio.sleep(0.005)
    before = await engine.history(handle.id)
    with pytest.raises(
        InvalidRequestError, match=r"not waiting for approval 'director'.*'manager'"
    ):
        await engine.approve(handle.id, "director")
    with pytest.raises(SerializationError):
        await engine.approve(handle.id, "manager", data=object())
    assert await engine.history(handle.id) == before
    await engine.approve(handle.id, "manager")
    await handle.result(timeout=5)
    with pytest.raises(InvalidRequestError, match="is completed"):
        await engine.approve(handle.id, "manager")


async def test_an_approval_timeout_is_routed(engine):
    result = await engine.execute(w.approval_timeout_flow, None)
    assert (result.status, result.output) == ("completed", "escalated")


async def test_cancel_stops_the_step_in_flight(engine):
    w.calls.clear()
    handle = await engine.start(w.long_flow, None)
    while "long_running" not in w.calls:
        await asyncio.sleep(0.005)
    await engine.cancel(handle.id, "no longer needed")
    result = await handle.result(timeout=5)
    assert result.status == "cancelled" and result.error.message == "no longer needed"
    assert (await engine.status(handle.id)).status == "cancelled"
    with pytest.raises(InvalidRequestError, match="is cancelled"):
        await engine.cancel(handle.id)


async def test_back_to_loops_with_a_new_idempotency_key_per_pass(engine):
    w.calls.clear()
    result = await engine.execute(w.review_loop, None, id="doc-1")
    assert result.output == {"approved": True}
    keys = [c["key"] for c in w.calls["draft"]]
    assert keys == ["doc-1:draft", "doc-1:draft#1", "doc-1:draft#2"]


async def test_steps_of_a_parallel_group_run_at_the_same_time(engine):
    result = await engine.execute(w.parallel, None)
    assert result.output == ["left", "right"]


async def test_list_filters_by_status_and_workflow(engine):
    done = await engine.execute(w.onboarding, {"user_id": "x"})
    failed = await engine.execute(w.flaky_flow, {"succeed_on": 99})
    assert [i.id for i in await engine.list(status="failed")] == [failed.id]
    assert [i.id for i in await engine.list(workflow="onboarding")] == [done.id]
    assert len(await engine.list(limit=1)) == 1


async def test_a_waiting_execution_survives_an_engine_restart(store_url):
    async with Engine(store_url) as engine:
        handle = await engine.start(w.approval_flow, None, id="restart-1")
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)
    async with Engine(store_url) as engine:
        await engine.approve("restart-1", "manager", data=1)
        result = await engine.result("restart-1", timeout=5)
    assert result.output == {"approved": True, "data": 1}
