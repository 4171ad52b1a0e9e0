"""``cerebelum server`` as a real process, driven by :class:`cerebelum.Client` and raw HTTP.

Each test starts ``python -m cerebelum server tests.integration.server_workflows`` on a
free port (tests/integration/servers.py), and stops it with SIGTERM at the end.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import pytest

from cerebelum import (
    Client,
    ExecutionNotFoundError,
    InvalidRequestError,
    ServerUnavailableError,
    WorkflowNotFoundError,
)
from cerebelum.errors import CerebelumError
from cerebelum.server._openapi import openapi_document
from tests.integration.servers import ROOT, command, environment, free_port, running_server


@pytest.fixture
def server(sqlite_url):
    with running_server(sqlite_url) as url:
        yield url


async def until_status(client: Client, execution_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await client.status(execution_id)).status != status:
            await asyncio.sleep(0.02)


async def test_graph_workflow_waits_for_an_approval_by_name(server):
    async with Client(server) as client:
        handle = await client.start("access_request", {"user_id": "u1"}, id="access-u1")
        assert (handle.id, handle.workflow) == ("access-u1", "access_request")
        await until_status(client, "access-u1", "waiting")
        with pytest.raises(InvalidRequestError) as err:
            await client.approve("access-u1", "finance")
        assert err.value.execution_id == "access-u1" and "'manager'" in err.value.message
        await client.approve("access-u1", "manager", data={"by": "ann"})
        result = await handle.result(timeout=10)
        assert (result.status, result.ok) == ("completed", True)
        assert result.output == {"user": "u1", "granted": True}


async def test_code_workflow_takes_a_signal(server):
    async with Client(server) as client:
        handle = await client.start("greeter", "ann", punctuation="?", id="greet-ann")
        await until_status(client, "greet-ann", "waiting")
        await client.signal("greet-ann", "greeting", "hello")
        assert (await handle.result(timeout=10)).output == "hello, ann?"
        assert (await client.execute("greeter", "bob", id="greet-ann")).output == "hello, ann?"


async def test_start_is_idempotent_by_id(server):
    async with Client(server) as client:
        first = await client.start("access_request", {"user_id": "u2"}, id="same")
        again = await client.start("access_request", {"user_id": "other"}, id="same")
        assert first.id == again.id == "same"
        assert len(await client.list(workflow="access_request")) == 1
        raw = httpx.post(f"{server}/v1/executions", json={"workflow": "access_request",
                         "input": {"user_id": "u2"}, "id": "same"})  # fmt: skip
        assert raw.status_code == 200 and raw.json()["id"] == "same"
        fresh = httpx.post(f"{server}/v1/executions",
                           json={"workflow": "access_request", "input": {"user_id": "u3"}})  # fmt: skip
        assert fresh.status_code == 201 and fresh.json()["status"] in ("running", "waiting")
        with pytest.raises(InvalidRequestError) as err:  # the id is another workflow's
            await client.start("greeter", "ann", id="same")
        assert err.value.status_code == 409 and err.value.execution_id == "same"


async def test_cancel(server):
    async with Client(server) as client:
        handle = await client.start("slow_report", None)
        await until_status(client, handle.id, "running")
        await handle.cancel("nobody reads it")
        result = await handle.result(timeout=10)
        assert result.status == "cancelled" and result.error is not None
        assert result.error.message == "nobody reads it"
        with pytest.raises(InvalidRequestError, match="is cancelled"):
            await client.cancel(handle.id)


async def test_list_status_and_history(server):
    async with Client(server) as client:
        await client.start("greeter", "ann", id="g1")
        await client.signal("g1", "greeting", "hi")
        await client.result("g1", timeout=10)
        await client.start("access_request", {"user_id": "u1"}, id="a1")
        await until_status(client, "a1", "waiting")
        info = await client.status("a1")
        assert (info.workflow, info.kind, info.status) == ("access_request", "graph", "waiting")
        assert [(s.name, s.status) for s in info.steps] == [
            ("fetch_user", "completed"), ("manager", "awaiting approval"),
        ]  # fmt: skip
        assert info.steps[0].duration is not None and info.created_at.tzinfo is not None
        assert [i.id for i in await client.list()] == ["a1", "g1"]
        assert [i.id for i in await client.list(status="completed")] == ["g1"]
        assert [i.id for i in await client.list(workflow="greeter", limit=1)] == ["g1"]
        events = await client.history("g1")
        assert events[0].type == "ExecutionStarted"
        assert events[-1].type == "ExecutionCompleted" and events[-1].seq == len(events)
        raw = httpx.get(f"{server}/v1/executions/g1/history").json()
        assert raw["events"][0]["type"] == "ExecutionStarted"
        with pytest.raises(ExecutionNotFoundError) as err:
            await client.status("no-such-id")
        assert err.value.execution_id == "no-such-id" and err.value.status_code == 404


async def test_result_long_poll_answers_202_when_not_ended(server):
    async with Client(server) as client:
        await client.start("access_request", {"user_id": "u1"}, id="poll")
        began = time.monotonic()
        response = httpx.get(f"{server}/v1/executions/poll/result", params={"wait": 0.2})
        assert response.status_code == 202
        assert response.json()["id"] == "poll" and 0.15 < time.monotonic() - began < 5
        assert httpx.get(f"{server}/v1/executions/poll/result?wait=0").status_code == 202
        with pytest.raises(TimeoutError):
            await client.result("poll", timeout=0.3)
        await until_status(client, "poll", "waiting")
        waiter = asyncio.create_task(client.result("poll", timeout=10))
        await asyncio.sleep(0.1)
        await client.approve("poll", "manager")
        assert (await waiter).status == "completed"
        answer = httpx.get(f"{server}/v1/executions/poll/result?wait=0")
        assert answer.status_code == 200 and answer.json()["status"] == "completed"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/v1/executions", {"workflow": 3}, 422, "workflow"),
        ("POST", "/v1/executions", {}, 422, "workflow"),
        ("POST", "/v1/executions", {"workflow": "greeter", "nme": "x"}, 422, "nme"),
        ("POST", "/v1/executions", {"workflow": "greeter", "args": {"a": 1}}, 422, "args"),
        ("POST", "/v1/executions", {"workflow": "greeter", "input": "ann"}, 422, "input"),
        ("POST", "/v1/executions", {"workflow": "greeter", "args": [1, 2, 3, 4]}, 422, "args"),
        ("POST", "/v1/executions", {"workflow": "access_request", "kwargs": {"a": 1}}, 422, "kwargs"),
        ("POST", "/v1/executions", {"workflow": "greeter", "args": ["a"], "id": "a\x00b"}, 422, "id"),
        ("POST", "/v1/executions", b"{not json", 422, None),
        ("POST", "/v1/executions", {"workflow": "no_such_flow"}, 404, None),
        ("GET", "/v1/executions?status=sleeping", None, 422, "status"),
        ("GET", "/v1/executions?limit=0", None, 422, "limit"),
        ("GET", "/v1/executions/nope", None, 404, None),
        ("GET", "/v1/executions/a%00b", None, 400, "id"),
        ("GET", "/v1/executions/nope/result?wait=61", None, 422, "wait"),
        ("GET", "/v1/executions/nope/result?wait=soon", None, 422, "wait"),
        ("GET", "/v1/executions/nope/history", None, 404, None),
        ("POST", "/v1/executions/nope/approve", {"name": "manager"}, 404, None),
        ("POST", "/v1/executions/nope/signal", {"payload": 1}, 422, "name"),
        ("POST", "/v1/executions/nope/cancel", {"reason": 5}, 422, "reason"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_field_and_write_nothing(server, method, path, body, status, field):
    content = body if isinstance(body, bytes) else None
    response = httpx.request(method, server + path, content=content,
                             json=None if content is not None else body)  # fmt: skip
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] and error["message"]
    assert error.get("field") == field
    assert httpx.get(f"{server}/v1/executions").json() == {"executions": []}


async def test_unknown_workflow_and_unreachable_server(server):
    async with Client(server) as client:
        with pytest.raises(WorkflowNotFoundError) as err:
            await client.start("no_such_flow")
        assert err.value.workflow == "no_such_flow"
    async with Client(f"http://127.0.0.1:{free_port()}") as gone:
        with pytest.raises(ServerUnavailableError) as down:
            await gone.status("x")
        assert down.value.url.startswith("http://127.0.0.1:")


async def test_token_is_required_when_set(sqlite_url):
    with running_server(sqlite_url, token="s3cret") as url:
        response = httpx.get(f"{url}/v1/executions")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "Unauthorized"
        wrong = httpx.get(f"{url}/v1/executions", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200
        async with Client(url) as anonymous:
            with pytest.raises(CerebelumError) as err:
                await anonymous.list()
            assert err.value.status_code == 401
        async with Client(url, token="s3cret") as client:
            await client.start("greeter", "ann", id="t1")
            await client.signal("t1", "greeting", "hey")
            assert (await client.result("t1", timeout=10)).output == "hey, ann!"


def test_refuses_a_public_address_without_a_token(sqlite_url, tmp_path):
    done = subprocess.run(
        command(sqlite_url, "--host", "0.0.0.0", "--port", str(free_port())), cwd=ROOT,
        env=environment(None), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "without a token" in done.stderr and "CEREBELUM_TOKEN" in done.stderr
    assert not (tmp_path / "cerebelum.db").exists()  # nothing was opened


def test_serves_its_openapi_document(server):
    assert httpx.get(f"{server}/openapi.json").json() == openapi_document()


@pytest.mark.postgres
async def test_on_postgres(postgres_url):
    with running_server(postgres_url) as url:
        async with Client(url) as client:
            handle = await client.start("access_request", {"user_id": "pg"}, id="pg-1")
            await until_status(client, "pg-1", "waiting")
            await client.approve("pg-1", "manager")
            assert (await handle.result(timeout=10)).output == {"user": "pg", "granted": True}
            await client.start("greeter", "ann", id="pg-2")
            await client.signal("pg-2", "greeting", "hello")
            assert (await client.result("pg-2", timeout=10)).output == "hello, ann!"
            assert [i.id for i in await client.list()] == ["pg-2", "pg-1"]
