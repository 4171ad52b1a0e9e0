"""Graph workflows that change while executions are in flight: move them, or say why not.

Each version of the workflow ``order`` is declared under the same name (a later
declaration in one module replaces the earlier one, as a new deploy would); each
engine runs the version it is given, one engine after the other on the same store.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from cerebelum import Engine, VersionMismatchError, approval, step, workflow
from cerebelum import events as ev
from cerebelum.errors import InvalidRequestError
from cerebelum.store import open_store
from tests.integration.test_cli import acli, cli

V2 = "tests.integration.versions_v2"
V3 = "tests.integration.versions_v3"
V4 = "tests.integration.versions_v4"


@step
async def prepare(ctx, inputs):
    return {"items": inputs["items"]}


@step
async def ship(ctx, prepare, review):
    return {"shipped": prepare["items"], "approved": review["approved"]}


@step
async def notify(ctx, ship):
    return {"notified": ship["shipped"]}


@step(name="prepare", timeout=30)  # the same step, now with a timeout: defined otherwise
async def prepare_with_timeout(ctx, inputs):
    return {"items": inputs["items"]}


@step
async def check(ctx, inputs):
    return {"items": inputs["items"]}


@step(name="ship")
async def ship_checked(ctx, check, review):
    return {"shipped": check["items"], "approved": review["approved"]}


@workflow(name="order", version="1")
def order_v1(wf):
    wf.timeline(prepare >> approval("review") >> ship)


@workflow(name="order", version="2")
def order_v2(wf):  # a step added after the approval: executions waiting on it can follow
    wf.timeline(prepare >> approval("review") >> ship >> notify)


@workflow(name="order", version="3")
def order_v3(wf):  # a completed step defined otherwise: not by itself, but by an operator
    wf.timeline(prepare_with_timeout >> approval("review") >> ship)


@workflow(name="order", version="4")
def order_v4(wf):  # the completed step is gone: never
    wf.timeline(check >> approval("review") >> ship_checked)


async def wait_for_approval(engine: Engine, eid: str) -> None:
    for _ in range(500):
        if (await engine.status(eid)).status == "waiting":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{eid} never waited")


async def start_on_v1(url: str, *ids: str) -> str:
    async with Engine(url, workflows=[order_v1], poll_interval=0.05) as engine:
        for eid in ids:
            await engine.start(order_v1, {"items": [eid]}, id=eid)
            await wait_for_approval(engine, eid)
    return order_v1.version


def test_versions_are_the_label_beside_the_blueprint_hash():
    assert order_v1.label == "1" and order_v2.label == "2"
    assert order_v1.version != order_v2.version != order_v3.version
    assert "version 2, " in repr(order_v2)


async def test_a_step_added_after_an_approval_runs_when_the_execution_moves(store_url, caplog):
    old = await start_on_v1(store_url, "o1")
    caplog.set_level(logging.INFO, logger="cerebelum.engine")
    async with Engine(store_url, workflows=[order_v2], poll_interval=0.05) as engine:
        assert (await engine.status("o1")).version == order_v2.version
        await engine.approve("o1", "review")
        result = await engine.result("o1", timeout=10)
        assert result.status == "completed"
        assert result.output == {"notified": ["o1"]}
        history = await engine.history("o1")
    started = history[0]
    assert isinstance(started, ev.ExecutionStarted) and started.label == "1"
    moved = [e for e in history if isinstance(e, ev.ExecutionMigrated)]
    assert len(moved) == 1
    assert (moved[0].from_version, moved[0].to_version) == (old, order_v2.version)
    assert (moved[0].from_label, moved[0].to_label, moved[0].forced) == ("1", "2", False)
    assert [e.step for e in history if isinstance(e, ev.StepCompleted)] == [
        "prepare", "ship", "notify"
    ]  # fmt: skip
    assert f"moves from version 1@{old} to 2@{order_v2.version}" in caplog.text
    async with open_store(store_url) as store:
        kept = await store.blueprint(old)
        assert kept is not None and kept.label == "1" and kept.workflow == "order"


async def test_an_execution_that_cannot_follow_waits_for_its_version_and_nothing_hangs(
    store_url, caplog
):
    old = await start_on_v1(store_url, "o2", "o3")
    caplog.set_level(logging.WARNING, logger="cerebelum.engine")
    async with Engine(store_url, workflows=[order_v4], poll_interval=0.05) as engine:
        warning = (
            f"2 executions of workflow order cannot run here: at versions 1@{old} (2); "
            f"the current version is 4@{order_v4.version}"
        )
        assert warning in caplog.text
        info = await engine.status("o2")
        assert info.waiting_for == f"version 1@{old}" and info.version == old
        with pytest.raises(VersionMismatchError, match=f"waits for version 1@{old}") as err:
            await engine.result("o2", timeout=5)
        assert err.value.execution_id == "o2"
        with pytest.raises(InvalidRequestError, match="'prepare', which it went through, is not"):
            await engine.migrate("o2")
        shown = await acli(store_url, "show", "o2")
        assert f"waiting for version 1@{old}" in shown.stdout, shown.stdout
        listed = await acli(store_url, "list")
        assert listed.stdout.count(f"waiting for version 1@{old}") == 2, listed.stdout
        approved = await acli(store_url, "approve", "o3", "review")
        assert approved.returncode == 1 and "move it first" in approved.stderr
        as_json = await acli(store_url, "list", "--json")
        assert {json.loads(line)["waiting_for"] for line in as_json.stdout.splitlines()} == {
            f"version 1@{old}"
        }
    # an engine on the old version takes them again and finishes them
    async with Engine(store_url, workflows=[order_v1], poll_interval=0.05) as engine:
        assert (await engine.status("o2")).waiting_for is None
        await engine.approve("o2", "review")
        assert (await engine.result("o2", timeout=10)).status == "completed"


async def test_an_operator_moves_an_execution_whose_completed_step_changed(store_url):
    old = await start_on_v1(store_url, "o4")
    async with Engine(store_url, workflows=[order_v3], poll_interval=0.05) as engine:
        assert (await engine.status("o4")).waiting_for == f"version 1@{old}"
        assert await engine.migrate("o4") == order_v3.version
        await engine.approve("o4", "review")
        result = await engine.result("o4", timeout=10)
        assert result.output == {"shipped": ["o4"], "approved": True}
        moved = [e for e in await engine.history("o4") if isinstance(e, ev.ExecutionMigrated)]
    assert len(moved) == 1 and moved[0].forced and moved[0].changed == ["prepare"]
    assert moved[0].by.startswith("engine ")


async def test_a_change_to_a_step_not_run_yet_moves_by_itself(store_url):
    await start_on_v1(store_url, "o5")
    async with Engine(store_url, workflows=[order_v2], poll_interval=0.05) as engine:
        assert (await engine.status("o5")).waiting_for is None
        with pytest.raises(InvalidRequestError, match="already runs version 2@"):
            await engine.migrate("o5")


def test_cli_migrate_refuses_or_moves_and_records_who(store_url):
    old = asyncio.run(start_on_v1(store_url, "c1"))
    refused = cli(store_url, "migrate", "c1", "--module", V4)
    assert refused.returncode == 1
    assert "cannot move to version" in refused.stderr and "'prepare'" in refused.stderr
    moved = cli(store_url, "migrate", "c1", "--module", V2)
    assert moved.returncode == 0, moved.stderr
    assert f"execution c1 of order moved from version 1@{old} to 2@{order_v2.version}" in (
        moved.stdout
    )
    again = cli(store_url, "migrate", "c1", "--module", V2)
    assert again.returncode == 1 and "already runs version 2@" in again.stderr
    history = asyncio.run(_history(store_url, "c1"))
    assert isinstance(history[-1], ev.ExecutionMigrated) and history[-1].forced
    assert "pid " in history[-1].by and "@" in history[-1].by
    assert cli(store_url, "approve", "c1", "review").returncode == 0
    ran = cli(store_url, "run", f"{V2}:order", "--id", "c1")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1])["output"] == {"notified": ["c1"]}


async def test_cli_migrate_reaches_the_engine_that_holds_the_execution(store_url):
    old = await start_on_v1(store_url, "c2")
    # lease 3: on PostgreSQL the engine looks for executions to take every second
    async with Engine(store_url, workflows=[order_v3], poll_interval=0.05, lease=3) as engine:
        assert (await engine.status("c2")).waiting_for == f"version 1@{old}"
        moved = await acli(store_url, "migrate", "c2", "--module", V3)
        assert moved.returncode == 0, moved.stderr
        for _ in range(500):
            if (await engine.status("c2")).version == order_v3.version:
                break
            await asyncio.sleep(0.01)
        await engine.approve("c2", "review")
        assert (await engine.result("c2", timeout=10)).status == "completed"


async def _history(url: str, eid: str) -> list[ev.Event]:
    async with open_store(url) as store:
        return await store.history(eid)


def test_run_id_of_an_execution_no_engine_can_run_exits_with_a_message(store_url):
    old = asyncio.run(start_on_v1(store_url, "c3"))
    ran = cli(store_url, "run", f"{V4}:order", "--id", "c3")
    assert ran.returncode == 1
    assert f"waits for version 1@{old}" in ran.stderr and "cerebelum migrate c3" in ran.stderr
