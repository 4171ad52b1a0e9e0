"""``cerebelum server`` with ``cerebelum worker`` processes: steps and activities run apart.

Every process here is real: the server and the workers are started with
``python -m cerebelum``, and the crash tests SIGKILL them. The steps count their own
runs in a file (tests/integration/worker_workflows.py), across processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from cerebelum import Client, InvalidRequestError
from cerebelum import events as ev
from tests.integration.servers import (
    free_port,
    runs,
    server_process,
    until,
    wait_healthy,
    worker_process,
)

FLOWS = "tests.integration.worker_workflows"
LEASE = "1.5"  # seconds: a dead worker's task is offered again soon after


def start_server(procs, db, env, *args):
    proc, url = server_process(db, FLOWS, free_port(), "--task-lease", LEASE, *args, env=env)
    procs.append(proc)
    return proc, url


def start_worker(procs, url, env, *args):
    proc = worker_process(url, FLOWS, *args, env=env)
    procs.append(proc)
    return proc


def workers_of(history) -> dict[str, str]:
    return {e.step: e.worker for e in history if isinstance(e, ev.StepStarted)}


async def test_steps_split_between_two_workers_by_queue(store_url, env, procs, scratch):
    server, url = start_server(procs, store_url, env)
    left = start_worker(procs, url, env, "--queue", "left")
    right = start_worker(procs, url, env, "--queue", "right")
    async with Client(url) as client:
        handles = [await client.start("split", {"n": i}, id=f"split-{i}") for i in range(20)]
        results = [await h.result(timeout=30) for h in handles]
        assert [r.output for r in results] == [{"n": (i + 1) * 2} for i in range(20)]
        ran = workers_of(await client.history("split-3"))
    assert ran["first"] != ran["second"]
    pids = {
        name: {pid for _, n, _, _, pid in runs(scratch) if n == name}
        for name in ("first", "second")
    }
    assert pids == {"first": {left.pid}, "second": {right.pid}}
    assert Counter(n for _, n, _, _, _ in runs(scratch)) == {"first": 20, "second": 20}
    left.stop(), right.stop(), server.stop()


async def test_a_killed_worker_s_step_runs_again_on_the_other_with_the_same_key(
    store_url, env, procs, scratch
):
    server, url = start_server(procs, store_url, env)
    a = start_worker(procs, url, env)
    async with Client(url) as client:
        handle = await client.start("holding", {"n": 7}, id="hold-1")
        await until(lambda: any(w == "start" and n == "hold" for w, n, *_ in runs(scratch)))
        [(_, _, key, attempt, pid)] = [r for r in runs(scratch) if r[1] == "hold"]
        assert pid == a.pid
        b = start_worker(procs, url, env)
        a.kill()  # mid-step: its lease runs out, and the task goes to b
        await until(lambda: any(r[1] == "hold" and r[4] == b.pid for r in runs(scratch)))
        (scratch / "release").touch()
        result = await handle.result(timeout=30)
        assert (result.status, result.output) == ("completed", {"n": 107})
        history = await client.history("hold-1")
    holds = [r for r in runs(scratch) if r[1] == "hold"]
    assert [(w, k, at, p) for w, _, k, at, p in holds] == [
        ("start", key, attempt, a.pid), ("start", key, attempt, b.pid), ("done", key, attempt, b.pid)
    ]  # fmt: skip
    done = Counter(n for w, n, *_ in runs(scratch) if w == "done")
    assert done == {"prepare": 1, "hold": 1, "finish": 1}  # no completed step twice
    assert workers_of(history)["hold"].split(":")[1] == str(b.pid)
    b.stop(), server.stop()


async def test_a_result_held_while_the_server_is_down_is_handed_over_after_its_restart(
    sqlite_url, env, procs, scratch
):
    port = free_port()
    server, url = server_process(sqlite_url, FLOWS, port, "--task-lease", "30", env=env)
    procs.append(server)
    worker = start_worker(procs, url, env)
    async with Client(url) as client:
        await client.start("holding", {"n": 1}, id="hold-2")
    await until(lambda: any(r[0] == "start" and r[1] == "hold" for r in runs(scratch)))
    server.kill()
    (scratch / "release").touch()  # the step ends while nobody can take its result
    await until(lambda: any(r[0] == "done" and r[1] == "hold" for r in runs(scratch)))
    await asyncio.sleep(0.5)  # the worker tries, fails, and keeps the result
    server.start()
    wait_healthy(url, server)
    async with Client(url) as client:
        result = await client.result("hold-2", timeout=30)
    assert (result.status, result.output) == ("completed", {"n": 101})
    done = Counter(n for w, n, *_ in runs(scratch) if w == "done")
    assert done == {"prepare": 1, "hold": 1, "finish": 1}
    worker.stop(), server.stop()


async def test_a_code_workflow_s_activity_finishes_on_the_other_worker(
    store_url, env, procs, scratch
):
    server, url = start_server(procs, store_url, env)
    a = start_worker(procs, url, env)
    async with Client(url) as client:
        handle = await client.start("shouting", "hey", id="shout-1")
        await until(lambda: any(r[1] == "slow_upper" for r in runs(scratch)))
        b = start_worker(procs, url, env)
        a.kill()
        await until(lambda: any(r[1] == "slow_upper" and r[4] == b.pid for r in runs(scratch)))
        (scratch / "release").touch()
        result = await handle.result(timeout=30)
    assert (result.status, result.output) == ("completed", "HEY!")
    keys = {r[2] for r in runs(scratch) if r[1] == "slow_upper"}
    assert keys == {"shout-1:0"}
    b.stop(), server.stop()


async def test_failures_cross_as_data_retry_and_route_by_exception_type(sqlite_url, env, procs):
    server, url = start_server(procs, sqlite_url, env)
    worker = start_worker(procs, url, env)
    async with Client(url) as client:
        flaky = await client.execute("payment", {"card": "flaky"})
        declined = await client.execute("payment", {"card": "declined"})
        history = await client.history(declined.id)
    assert (flaky.status, flaky.output) == ("completed", {"charged": True})
    assert (declined.status, declined.output) == ("completed", {"declined": "declined"})
    [failed] = [e for e in history if isinstance(e, ev.StepFailed)]
    assert failed.error["type"] == "tests.integration.worker_workflows.CardDeclined"
    assert failed.error["cause"]["name"] == "KeyError"  # the cause chain crossed too
    assert "insufficient funds" in failed.error["traceback"]
    assert failed.retryable is False  # non_retryable, by name
    worker.stop(), server.stop()


async def test_sigterm_finishes_the_tasks_a_worker_holds_before_it_exits(
    sqlite_url, env, procs, scratch
):
    server, url = start_server(procs, sqlite_url, env)
    worker = start_worker(procs, url, env)
    async with Client(url) as client:
        handle = await client.start("holding", {"n": 2}, id="hold-3")
        await until(lambda: any(r[0] == "start" and r[1] == "hold" for r in runs(scratch)))
        assert worker.proc is not None
        worker.proc.terminate()
        await asyncio.sleep(0.3)
        assert worker.proc.poll() is None  # still finishing the step it holds
        (scratch / "release").touch()
        await until(lambda: worker.proc.poll() is not None)
        worker.stop()  # exited 0, no traceback
        status = await client.status("hold-3")
        assert [s.status for s in status.steps][:2] == ["completed", "completed"]
        assert status.status == "running"  # finish waits for a worker: nobody runs it
        again = start_worker(procs, url, env)
        assert (await handle.result(timeout=30)).output == {"n": 102}
    again.stop(), server.stop()


async def test_worker_endpoints_want_the_worker_token_and_refuse_bad_requests(
    sqlite_url, procs, env
):
    env = {**env, "CEREBELUM_WORKER_TOKEN": "w-secret"}
    server, url = start_server(procs, sqlite_url, env)
    reg = {"worker_id": "w1", "steps": ["holding.hold"], "queues": ["default"]}
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/v1/worker/register", json=reg)).status_code == 401
        auth = {"authorization": "Bearer w-secret"}
        bad = await http.post("/v1/worker/register", json={**reg, "concurrency": 0}, headers=auth)
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "concurrency"
        unknown = await http.post("/v1/worker/poll", json={"worker_id": "nobody", "wait": 0},
                                  headers=auth)  # fmt: skip
        assert (unknown.status_code, unknown.json()["error"]["type"]) == (404, "UnknownWorkerError")
        ok = await http.post("/v1/worker/register", json=reg, headers=auth)
        assert ok.status_code == 200 and ok.json()["lease"] == float(LEASE)
        two = {
            "worker_id": "w1",
            "results": [{"task_id": "t", "attempt": 1, "value": 1, "error": {"name": "E"}}],
        }
        refused = await http.post("/v1/worker/report", json=two, headers=auth)
        assert refused.status_code == 422 and "exactly one of" in refused.json()["error"]["message"]
        poll = await http.post("/v1/worker/poll", json={"worker_id": "w1", "wait": 0}, headers=auth)
        assert poll.json().get("tasks", []) == []
    server.stop()


async def test_two_servers_on_one_postgres_one_killed_the_other_finishes_everything(
    postgres_url, env, procs, scratch
):
    a, url_a = start_server(procs, postgres_url, env, "--lease", "2")
    b, url_b = start_server(procs, postgres_url, env, "--lease", "2")
    start_worker(procs, url_a, env)
    start_worker(procs, url_b, env)
    async with Client(url_a) as client:
        ids = [(await client.start("napping", {"n": i}, id=f"nap-{i}")).id for i in range(30)]
        async with asyncio.timeout(20):  # some have ended, others are mid-step
            while len(await client.list(status="completed")) < 3:
                await asyncio.sleep(0.02)
    a.kill()  # its executions and the tasks it handed out go on through b
    killed_at = time.time()
    async with Client(url_b) as client:
        results = [await client.result(i, timeout=60) for i in ids]
        histories = [await client.history(i) for i in ids]
    assert [(r.status, r.output) for r in results] == [
        ("completed", {"n": i * 10}) for i in range(30)
    ]
    for history in histories:
        done = Counter(e.step for e in history if isinstance(e, ev.StepCompleted))
        assert done == {"nap_a": 1, "nap_b": 1}
    before = [f"{i}:{e.step}" for i, h in zip(ids, histories, strict=True) for e in h
              if isinstance(e, ev.StepCompleted) and e.at < killed_at]  # fmt: skip
    starts = Counter(key for what, _, key, _, _ in runs(scratch) if what == "start")
    assert before and all(starts[key] == 1 for key in before)  # recorded: never run again
    b.stop()


async def test_a_queue_s_concurrency_holds_across_workers(store_url, env, procs, scratch):
    server, url = start_server(procs, store_url, env)
    start_worker(procs, url, env, "--queue", "left")  # each execution runs on both workers
    start_worker(procs, url, env, "--queue", "right")
    async with Client(url) as client:
        handles = [await client.start("counted", {"n": i}, queue="duo") for i in range(12)]
        results = [await h.result(timeout=60) for h in handles]
        with pytest.raises(InvalidRequestError) as err:  # not declared by the server
            await client.start("counted", {"n": 0}, queue="nowhere")
        assert err.value.field == "queue"
    assert [r.output for r in results] == list(range(12))
    inside, most = 0, 0
    for what, *_ in runs(scratch):  # counted by the steps, in the order they wrote
        inside += {"enter": 1, "leave": -1}[what]
        most = max(most, inside)
    assert most == 2
    assert len({r[4] for r in runs(scratch)}) == 2
    server.stop()


async def test_a_code_workflow_s_coroutine_runs_on_a_worker_and_survives_losing_it(
    store_url, env, procs, scratch
):
    server, url = start_server(procs, store_url, env)
    a = start_worker(procs, url, env)
    async with Client(url) as client:
        handle = await client.start("where_it_runs", "hey", id="where-1")
        await until(lambda: any(r[1] == "slow_upper" for r in runs(scratch)))
        b = start_worker(procs, url, env)
        a.kill()  # the activity's task goes to b; the coroutine is rebuilt there from its history
        await until(lambda: any(r[1] == "slow_upper" and r[4] == b.pid for r in runs(scratch)))
        (scratch / "release").touch()
        result = await handle.result(timeout=30)
    assert result.status == "completed" and result.output["loud"] == "HEY"
    assert server.pid not in result.output["pids"]
    assert set(result.output["pids"]) <= {a.pid, b.pid}
    b.stop(), server.stop()


async def test_a_worker_whose_code_no_longer_matches_the_history_stops_it_as_stuck(
    sqlite_url, env, procs, scratch
):
    server, url = start_server(procs, sqlite_url, env)
    old = start_worker(procs, url, env)
    async with Client(url) as client:
        handle = await client.start("changing", "hey", id="changing-1")
        await until(lambda: any(r[1] == "slow_upper" for r in runs(scratch)))
        old.kill()
        start_worker(procs, url, {**env, "WORKER_TEST_FLAVOUR": "new"})
        (scratch / "release").touch()  # the activity's result comes back: a new activation

        async def stuck() -> bool:
            return (await client.status("changing-1")).status == "stuck"

        async with asyncio.timeout(30):
            while not await stuck():
                await asyncio.sleep(0.05)
        history = await handle.history()
    [event] = [e for e in history if isinstance(e, ev.ExecutionStuck)]
    assert event.error["kind"] == "non_determinism"
    assert "slow_upper" in event.error["recorded"] and "plain" in event.error["requested"]
    server.stop()


async def test_a_worker_keeps_a_coroutine_between_activations(sqlite_url, env, procs, scratch):
    server, url = start_server(procs, sqlite_url, env)
    start_worker(procs, url, env)
    async with Client(url) as client:
        results = [await client.execute("three_steps", f"t{i}") for i in range(5)]
    assert [r.output for r in results] == [f"t{i}..." for i in range(5)]
    # four activations each (the start, then each activity's result): built once each
    begins = Counter(key for what, _, key, _, _ in runs(scratch) if what == "begin")
    assert begins == {f"t{i}": 1 for i in range(5)}
    server.stop()


async def test_a_poll_its_worker_cut_gives_back_what_it_was_handed(sqlite_url, env, procs):
    # a long lease: without the give-back, the task would wait 30 s for nobody
    server, url = server_process(sqlite_url, FLOWS, free_port(), "--task-lease", "30", env=env)
    procs.append(server)
    reg = {"worker_id": "leaving", "steps": ["split.first"], "queues": ["left"]}
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/v1/worker/register", json=reg)).status_code == 200
        poll = asyncio.create_task(http.post("/v1/worker/poll", json={"worker_id": "leaving",
                                                                      "max_tasks": 1, "wait": 20}))  # fmt: skip
        await asyncio.sleep(0.3)
        poll.cancel()  # the worker stops: its connection closes mid-poll
        with pytest.raises(asyncio.CancelledError):
            await poll
        await asyncio.sleep(0.3)  # the server has seen it go
        async with Client(url) as client:
            await client.start("split", {"n": 1}, id="cut-1")
            other = {**reg, "worker_id": "staying"}
            assert (await http.post("/v1/worker/register", json=other)).status_code == 200
            answer = await http.post("/v1/worker/poll", json={"worker_id": "staying",
                                                              "max_tasks": 1, "wait": 10})  # fmt: skip
            tasks = answer.json()["tasks"]
            assert [(t["name"], t["execution_id"]) for t in tasks] == [("split.first", "cut-1")]
            assert [t.worker for t in await client.tasks("cut-1")] == ["staying"]
    server.stop()
