"""The ``cerebelum`` command through ``--server``: a real ``cerebelum server`` process.

Each command is run as its own process, as a user would; what it prints through the
server is compared with what it prints from the store the server runs on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from cerebelum import Client
from tests.integration.servers import ROOT, free_port, running_server


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CEREBELUM_")}
    return subprocess.run(
        [sys.executable, "-m", "cerebelum", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**base, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


async def acli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, *args, **env)


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    return done.stderr


async def until_status(client: Client, execution_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await client.status(execution_id)).status != status:
            await asyncio.sleep(0.02)


def without_times(doc: dict) -> dict:
    """``doc`` without its timestamps: the server sends them as RFC 3339 (microseconds)."""
    doc = {k: v for k, v in doc.items() if k not in ("created_at", "updated_at")}
    if "steps" in doc:
        doc["steps"] = [{k: v for k, v in s.items() if not k.endswith("ed_at")}
                        for s in doc["steps"]]  # fmt: skip
    return doc


@pytest.fixture
def server(sqlite_url):
    with running_server(sqlite_url) as url:
        yield url


async def test_list_show_approve_and_reject_through_the_server(server, sqlite_url):
    async with Client(server) as client:
        await client.start("access_request", {"user_id": "u1"}, id="a1")
        await client.start("access_request", {"user_id": "u2"}, id="a2")
        await until_status(client, "a1", "waiting")
        await until_status(client, "a2", "waiting")

        listed = await acli("list", "--json", "--server", server)
        assert listed.returncode == 0, listed.stderr
        local = await acli("--db", sqlite_url, "list", "--json")
        remote_rows = [json.loads(line) for line in listed.stdout.splitlines()]
        local_rows = [json.loads(line) for line in local.stdout.splitlines()]
        assert [r["id"] for r in remote_rows] == ["a2", "a1"]
        assert [without_times(r) for r in remote_rows] == [without_times(r) for r in local_rows]
        for remote_row, local_row in zip(remote_rows, local_rows, strict=True):
            assert remote_row["created_at"] == pytest.approx(local_row["created_at"], abs=1e-5)
        table = await acli("--server", server, "list")
        assert "a1" in table.stdout and "waiting" in table.stdout

        shown = await acli("show", "a1", "--json", "--server", server)
        assert shown.returncode == 0, shown.stderr
        local = await acli("show", "a1", "--json", "--db", sqlite_url)
        assert without_times(json.loads(shown.stdout)) == without_times(json.loads(local.stdout))
        assert json.loads(shown.stdout)["inputs"] == {"user_id": "u1"}
        text = await acli("show", "a1", "--server", server)
        assert "status   waiting\nwaiting  for approval 'manager'\n" in text.stdout

        wrong = await acli("approve", "a1", "finance", "--server", server)
        assert "'manager'" in one_error_line(wrong)
        approved = await acli("approve", "a1", "manager", "--data", '"ok"', "--server", server)
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith("approve 'manager' sent to execution a1")
        assert (await client.result("a1", timeout=10)).output == {"user": "u1", "granted": True}

        rejected = await acli("reject", "a2", "manager", "--server", server)
        assert rejected.returncode == 0, rejected.stderr
        assert (await client.result("a2", timeout=10)).output == {"user": "u2", "granted": False}
        done = await acli("show", "a2", "--json", "--server", server)
        assert json.loads(done.stdout)["status"] == "completed"


async def test_signal_and_cancel_through_the_server(server):
    async with Client(server) as client:
        await client.start("greeter", "ann", id="g1")
        await until_status(client, "g1", "waiting")
        sent = await acli("signal", "g1", "greeting", "--data", '"hello"', "--server", server)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("signal 'greeting' sent to execution g1")
        assert (await client.result("g1", timeout=10)).output == "hello, ann!"

        await client.start("slow_report", None, id="s1")
        await until_status(client, "s1", "running")
        cancelled = await acli("cancel", "s1", "--reason", "not needed", "--server", server)
        assert cancelled.returncode == 0, cancelled.stderr
        result = await client.result("s1", timeout=10)
        assert result.status == "cancelled" and result.error is not None
        assert result.error.message == "not needed"
        again = await acli("cancel", "s1", "--server", server)
        assert "is cancelled" in one_error_line(again)

        missing = await acli("show", "nope", "--server", server)
        assert f"no execution has the id 'nope' on the server at {server}" in one_error_line(
            missing
        )
        bad = await acli("signal", "g1", "greeting", "--data", "{oops", "--server", server)
        assert "--data is not JSON" in one_error_line(bad, 2)


def test_an_unreachable_server_is_one_line_naming_its_url():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("list",), ("show", "x"), ("approve", "x", "manager"), ("cancel", "x")):
        done = cli(*args, "--server", url)
        assert url in one_error_line(done), args
    from_env = cli("list", CEREBELUM_SERVER=url)
    assert url in one_error_line(from_env)


def test_a_token_is_needed_when_the_server_has_one(sqlite_url):
    with running_server(sqlite_url, token="s3cret") as url:
        anonymous = cli("list", "--server", url)
        line = one_error_line(anonymous)
        assert "401" in line and url in line and "--token" in line
        wrong = cli("--server", url, "--token", "nope", "show", "x")
        assert "401" in one_error_line(wrong)
        assert cli("list", "--server", url, "--token", "s3cret").returncode == 0
        from_env = cli("show", "x", CEREBELUM_SERVER=url, CEREBELUM_TOKEN="s3cret")
        assert "no execution has the id 'x'" in one_error_line(from_env)


def test_db_and_server_together_are_refused(sqlite_url, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    both = cli("--db", sqlite_url, "list", "--server", url)
    line = one_error_line(both, 2)
    assert "--db" in line and "--server" in line and url in line
    away = cli("run", "greeter", "--server", url)
    assert url in one_error_line(away, 1)  # it went to the server: nobody answers there
    module = cli("migrate", "some-id", "--module", "x", "--server", url)
    assert "--module is for a store" in one_error_line(module, 2)
    # an explicit --db beats $CEREBELUM_SERVER: the store is used, as before
    local = cli("--db", sqlite_url, "list", "--json", CEREBELUM_SERVER=url)
    assert local.returncode == 1 and "no store at" in local.stderr


async def test_run_and_migrate_through_the_server(server):
    ran = await asyncio.to_thread(cli, "run", "fetch_user_only", "--input", '{"user_id": "u9"}',
                                  "--server", server)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == {"id": "u9"}
    waits = await asyncio.to_thread(cli, "run", "tests.integration.server_workflows:access_request",
                                    "--input", '{"user_id": "u1"}', "--id", "run-1",
                                    "--server", server)  # fmt: skip
    assert waits.returncode == 0 and json.loads(waits.stdout)["status"] == "waiting"
    moved = await asyncio.to_thread(cli, "migrate", "run-1", "--server", server)
    assert "runs the server's version" not in moved.stderr
    assert moved.returncode == 1 and "already runs" in moved.stderr  # nothing to move
