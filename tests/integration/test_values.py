"""Values through a real engine: stored as declared and read back as declared, or refused."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from cerebelum import Engine, SerializationError

from . import value_workflows as vw


async def test_a_lone_surrogate_in_a_result_fails_the_step_naming_the_path(store_url):
    vw.runs.clear()
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.bad_text), 10)
        history = await engine.history(result.id)
    assert result.status == "failed" and result.error.kind == "unserialisable"
    assert result.error.step == "surrogate"
    message = result.error.message
    assert "the result of step 'surrogate'" in message
    assert "['items'][1]['name']" in message and "lone surrogate" in message
    failed = [e for e in history if e.type == "StepFailed"]
    assert len(failed) == 1 and failed[0].retryable is False
    # the failure is recorded: another engine does not run the step again
    async with Engine(store_url, poll_interval=0.05) as engine:
        assert (await engine.status(result.id)).status == "failed"
        await asyncio.sleep(0.1)
    assert vw.runs["surrogate"] == 1


async def test_a_result_nested_too_deep_fails_the_step_and_ends_the_execution(store_url):
    vw.runs.clear()
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.too_deep), 10)
    assert result.status == "failed" and result.error.kind == "unserialisable"
    assert "the result of step 'nested'" in result.error.message
    assert "['tree'][0][0]" in result.error.message and "levels deep" in result.error.message
    async with Engine(store_url, poll_interval=0.05) as engine:
        await asyncio.sleep(0.1)
        assert (await engine.status(result.id)).status == "failed"
    assert vw.runs["nested"] == 1


def _deep(levels: int) -> list:
    value: list = []
    inner = value
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    return value


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"name": "x\ud800"}, r"\['name'\].*lone surrogate"),
        ({"tree": _deep(5000)}, r"\['tree'\]\[0\]\[0\].*levels deep"),
        ({"price": float("nan")}, r"NaN at \['price'\]"),
        ({"when": datetime(2030, 1, 1)}, r"a datetime comes back as a string at \['when'\]"),
        ({"ids": {1, 2}}, r"a set comes back as a list at \['ids'\]"),
        ({1: "one"}, r"int key 1 would come back as the string '1'"),
    ],
    ids=["surrogate", "deep", "nan", "datetime", "set", "int-key"],
)
async def test_inputs_that_would_not_come_back_are_refused_and_nothing_is_written(
    store_url, inputs, expected
):
    async with Engine(store_url, poll_interval=0.05) as engine:
        with pytest.raises(
            SerializationError, match=r"the inputs of workflow 'bad_text'.*" + expected
        ):
            await engine.start(vw.bad_text, inputs)
        assert await engine.list() == []


async def test_code_workflow_inputs_are_checked_by_argument(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        with pytest.raises(
            SerializationError, match=r"\(argument 'ids'\).*set comes back as a list"
        ):
            await engine.start(vw.passes_a_set, {3, 4})
        with pytest.raises(
            SerializationError, match=r"argument 'order'.*does not match the declared type Order"
        ):
            await engine.start(vw.typed_code, {"id": "nope"})
        assert await engine.list() == []


async def test_approval_data_and_signal_payloads_are_checked_too(store_url):
    from . import workflows as w

    async with Engine(store_url, poll_interval=0.05) as engine:
        handle = await engine.start(w.approval_flow, None)
        while (await engine.status(handle.id)).status != "waiting":
            await asyncio.sleep(0.005)
        before = await engine.history(handle.id)
        with pytest.raises(SerializationError, match=r"\['note'\].*lone surrogate"):
            await engine.approve(handle.id, "manager", data={"note": "\udfff"})
        with pytest.raises(SerializationError, match="a set comes back as a list"):
            await engine.approve(handle.id, "manager", data={1, 2})
        assert await engine.history(handle.id) == before
        await engine.cancel(handle.id)
        waiting = await engine.start(vw.value_signal_wait)
        while (await engine.status(waiting.id)).status != "waiting":
            await asyncio.sleep(0.005)
        before = await engine.history(waiting.id)
        with pytest.raises(
            SerializationError,
            match=r"datetime comes back as a string at \['at'\]: nothing declares",
        ):
            await engine.signal(waiting.id, "go", {"at": datetime(2030, 1, 1)})
        assert await engine.history(waiting.id) == before
        await engine.signal(waiting.id, "go", {"at": "2030-01-01"})
        assert (await waiting.result(timeout=5)).output == {"at": "2030-01-01"}


async def test_graph_steps_read_values_as_their_code_declares(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.typed_graph, vw.Line("Z-9", 3)), 10)
        history = await engine.history(result.id)
    assert result.status == "completed", result.error
    assert result.output == {"counts": {"3": 1}, "window": [1, 2]}  # a graph's output is JSON
    checked = next(e for e in history if e.type == "StepCompleted" and e.step == "check_order")
    assert bytes(checked.result) == b'{"is_order":true,"line":true,"typed":true}'


async def test_an_undeclared_set_in_a_step_result_is_refused_naming_the_path(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.undeclared_set), 10)
    assert result.status == "failed" and result.error.kind == "unserialisable"
    assert "the result of step 'tags'" in result.error.message
    assert "a set comes back as a list at ['tags']" in result.error.message


async def test_code_workflow_and_activity_values_come_back_as_declared(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.typed_code, vw.ORDER), 10)
        assert result.status == "completed", result.error
        assert result.output == vw.ORDER and isinstance(result.output, vw.Order)
        again = await engine.result(result.id)  # read from the store this time
        assert again.output == vw.ORDER
        parent = await asyncio.wait_for(engine.execute(vw.parent_of_typed, vw.ORDER), 10)
    assert parent.output == {"child_output": "Order", "same": True}, parent.error
    async with Engine(store_url, poll_interval=0.05) as engine:
        stored = await engine.result(result.id)
    assert stored.output == vw.ORDER and isinstance(stored.output.tags, set)


async def test_an_activity_result_that_would_not_come_back_fails_the_activity(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.activity_with_set), 10)
        history = await engine.history(result.id)
    assert result.status == "failed"
    failed = [e for e in history if e.type == "ActivityFailed"]
    assert len(failed) == 1 and failed[0].error["kind"] == "unserialisable"
    assert failed[0].retryable is False
    assert "the result of activity 'untyped_tags'" in failed[0].error["message"]
    assert "a set comes back as a list at ['tags']" in failed[0].error["message"]


async def test_activity_arguments_that_would_not_come_back_raise_in_the_workflow(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.passes_a_set, [1]), 10)
        history = await engine.history(result.id)
    assert result.status == "failed" and result.error.data["name"] == "SerializationError"
    assert "the arguments of activity 'echo_untyped' (argument 'value')" in result.error.message
    assert "a set comes back as a list at ['ids']" in result.error.message
    assert not [e for e in history if e.type == "ActivityScheduled"]


async def test_a_workflow_output_that_cannot_be_stored_fails_the_execution(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.returns_nan), 10)
    assert result.status == "failed" and result.error.kind == "unserialisable"
    assert "the output of workflow 'returns_nan'" in result.error.message
    assert "NaN cannot be stored" in result.error.message


async def test_an_exception_whose_message_holds_a_lone_surrogate_is_recorded_escaped(store_url):
    async with Engine(store_url, poll_interval=0.05) as engine:
        result = await asyncio.wait_for(engine.execute(vw.error_with_surrogate), 10)
    assert result.status == "failed" and result.error.kind == "exception"
    assert result.error.message == "bad \\ud800 input"
