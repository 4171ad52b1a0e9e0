"""Steps and activities hosted elsewhere, by name: ``remote_step`` and
``activity("name", ...)``, driven through the engine's worker protocol on a real store.

The worker here is this test speaking the protocol (register, poll, report) as a worker
in any language would; tests/integration/test_typescript_worker.py runs the real
TypeScript worker against a server.
"""

from __future__ import annotations

import msgspec
import pytest

from cerebelum import Engine, InvalidRequestError, remote_step, step, workflow
from cerebelum import protocol as p
from cerebelum.errors import DefinitionError
from tests.integration.remote_workflows import purchase, thumbnails


async def take(engine: Engine, worker: str, n: int = 1) -> list[p.Task]:
    tasks: list[p.Task] = []
    while len(tasks) < n:
        tasks += await engine.poll_tasks(p.Poll(worker_id=worker, max_tasks=n, wait=5))
    return tasks


async def answer(engine: Engine, worker: str, task: p.Task, value=None, error=None) -> None:
    result = p.TaskResult(
        task_id=task.task_id, attempt=task.attempt,
        value=msgspec.Raw(msgspec.json.encode(value)) if error is None else msgspec.UNSET,
        error=error,
    )  # fmt: skip
    done = await engine.report(p.Report(worker_id=worker, results=[result]))
    assert done.acknowledged == [task.task_id]


def register(engine: Engine, worker: str, steps: list[str], queues: list[str]) -> None:
    engine.register_worker(p.Register(worker_id=worker, steps=steps, queues=queues, concurrency=4))


async def test_a_remote_step_is_a_task_by_its_own_name_with_its_inputs_by_name(store_url):
    async with Engine(store_url, dispatch="workers", workflows=[purchase]) as engine:
        register(engine, "py", ["purchase.reserve", "purchase.ship"], ["default"])
        register(engine, "ts", ["charge_card", "send_receipt"], ["payments"])
        handle = await engine.start(purchase, {"order": "A-1", "amount": 120}, id="o-1")
        (t,) = await take(engine, "py")
        assert (t.name, t.queue) == ("purchase.reserve", "default")
        await answer(engine, "py", t, {"amount": 120, "order": "A-1"})
        (t,) = await take(engine, "ts")
        assert (t.kind, t.name, t.queue, t.workflow) == (
            "step",
            "charge_card",
            "payments",
            "purchase",
        )
        assert t.idempotency_key == "o-1:charge_card"
        assert msgspec.json.decode(t.inputs) == {
            "inputs": {"order": "A-1", "amount": 120},
            "reserve": {"amount": 120, "order": "A-1"},
        }
        await answer(engine, "ts", t, {"charged": 120, "order": "A-1"})
        (t,) = await take(engine, "py")
        await answer(engine, "py", t, {"shipped": "A-1", "charged": 120})
        (t,) = await take(engine, "ts")
        assert t.name == "send_receipt"
        inputs = msgspec.json.decode(t.inputs)
        assert inputs["ship"] == {"shipped": "A-1", "charged": 120}
        assert inputs["charge_card"] == {"charged": 120, "order": "A-1"}
        await answer(engine, "ts", t, {"sent": True})
        result = await handle.result(timeout=10)
        assert (result.status, result.output) == ("completed", {"sent": True})
        steps = {s.name: s.status for s in (await engine.status("o-1")).steps}
        assert steps == {"reserve": "completed", "charge_card": "completed",
                         "ship": "completed", "send_receipt": "completed",
                         "refund": "skipped"}  # fmt: skip
        workers = {e.step: e.worker for e in await engine.history("o-1") if e.type == "StepStarted"}
        assert workers["charge_card"] == "ts" and workers["reserve"] == "py"


async def test_a_returned_error_from_another_language_routes_by_its_name(sqlite_url):
    async with Engine(sqlite_url, dispatch="workers", workflows=[purchase]) as engine:
        register(
            engine,
            "w",
            ["purchase.reserve", "purchase.refund", "charge_card"],
            ["default", "payments"],
        )
        handle = await engine.start(purchase, {"order": "A-2", "amount": 5})
        (t,) = await take(engine, "w")
        await answer(engine, "w", t, {"amount": 5, "order": "A-2"})
        (t,) = await take(engine, "w")
        declined = p.ErrorInfo(kind="error", name="payment_failed", message="declined",
                               data=msgspec.Raw(b'{"code":51}'))  # fmt: skip
        await answer(engine, "w", t, error=declined)
        (t,) = await take(engine, "w")
        assert t.name == "purchase.refund"
        await answer(engine, "w", t, {"refunded": 5})
        result = await handle.result(timeout=10)
        assert result.output == {"refunded": 5}
        failed = [e for e in await handle.history() if e.type == "StepFailed"]
        assert failed[0].error["data"] == {"code": 51} and failed[0].step == "charge_card"


async def test_a_step_no_worker_hosts_waits_and_says_so(sqlite_url):
    async with Engine(sqlite_url, dispatch="workers", workflows=[purchase]) as engine:
        register(engine, "py", ["purchase.reserve"], ["default"])
        register(engine, "elsewhere", ["charge_card"], ["other"])  # the wrong queue
        await engine.start(purchase, {"order": "A-3", "amount": 1}, id="o-3")
        (t,) = await take(engine, "py")
        await answer(engine, "py", t, {"amount": 1, "order": "A-3"})
        assert await engine.poll_tasks(p.Poll(worker_id="elsewhere", max_tasks=1, wait=0)) == []
        (waiting,) = await engine.tasks("o-3")
        assert (waiting.name, waiting.status, waiting.hosted_by) == ("charge_card", "ready", [])
        assert "no connected worker hosts it" in waiting.describe()
        assert (await engine.status("o-3")).status == "running"
        register(engine, "ts", ["charge_card"], ["payments"])  # one that hosts it comes
        (t,) = await take(engine, "ts")
        assert t.name == "charge_card"
        (running,) = await engine.tasks("o-3")
        assert (running.status, running.worker) == ("leased", "ts")
        with pytest.raises(Exception, match="no execution has the id"):
            await engine.tasks("nope")


async def test_an_engine_that_runs_its_steps_itself_refuses_a_remote_step_and_writes_nothing(
    sqlite_url,
):
    async with Engine(sqlite_url, workflows=[purchase]) as engine:
        with pytest.raises(InvalidRequestError, match=r"remote steps \('charge_card'"):
            await engine.start(purchase, {"order": "A-4", "amount": 1})
        assert await engine.list() == []


def test_remote_step_definitions_are_checked():
    with pytest.raises(DefinitionError, match="task must be a non-empty string"):
        remote_step("")
    with pytest.raises(DefinitionError, match="after= takes steps or step names"):
        remote_step("x", after=[3])
    with pytest.raises(DefinitionError, match="retry must be a Retry"):
        remote_step("x", retry=3)

    @step
    async def lonely(context, inputs):
        return 1

    twice = remote_step("tally", name="tally_again", after=["lonely"])

    @workflow
    def counts(wf):
        wf.timeline(lonely >> remote_step("tally", after=[lonely]) >> twice)

    node = counts.blueprint.node["tally_again"]
    assert (node.task, node.params) == ("tally", [("lonely", False)])
    with pytest.raises(Exception, match="is a remote step"):
        twice(None)


async def test_a_code_workflow_calls_an_activity_by_name_on_its_queue(sqlite_url):
    from cerebelum.code._activity import _declared

    assert "resize_image" not in _declared  # hosted elsewhere, not here
    async with Engine(sqlite_url, workflows=[thumbnails]) as engine:
        # run here (dispatch="local"): nothing in this process hosts it: a clear failure
        result = await engine.execute(thumbnails, "https://x/a.png", 300)
        assert result.status == "failed"
        assert "'resize_image' is called by name" in result.error.message
        (scheduled,) = [e for e in await engine.history(result.id) if e.type == "ActivityScheduled"]
        assert msgspec.json.decode(scheduled.args) == {
            "args": ["https://x/a.png", 300],
            "kwargs": {},
        }
        failed = [e for e in await engine.history(result.id) if e.type == "ActivityFailed"]
        assert len(failed) == 1 and failed[0].error["kind"] == "not_hosted"
