"""The web UI's data under /ui/api, on both stores, through a real engine served in-process;
and ``cerebelum ui`` as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from cerebelum import Engine
from cerebelum.server import serving
from tests.integration import ui_workflows as flows
from tests.integration.servers import ROOT, environment, free_port

WORKFLOWS = [flows.ui_pipeline, flows.ui_broken, flows.ui_review, flows.ui_code, flows.ui_parent]


async def until(engine: Engine, eid: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await engine.status(eid)).status != status:
            await asyncio.sleep(0.01)


async def test_pages_of_executions_are_filtered_and_follow_the_next_cursor(store_url):
    async with Engine(store_url, workflows=WORKFLOWS) as engine, serving(engine) as url:
        for i in range(5):
            await engine.execute(flows.ui_code, i, id=f"code-{i}")
        await engine.start(flows.ui_review, {}, id="review-1")
        await until(engine, "review-1", "waiting")
        async with httpx.AsyncClient(base_url=url) as http:
            seen, cursor = [], ""
            while True:
                page = (await http.get(f"/ui/api/executions?limit=2&before={cursor}")).json()
                seen += [x["id"] for x in page["executions"]]
                if not page["next"]:
                    break
                cursor = page["next"]
            assert seen == ["review-1", "code-4", "code-3", "code-2", "code-1", "code-0"]
            waiting = (await http.get("/ui/api/executions?status=waiting")).json()
            assert [x["id"] for x in waiting["executions"]] == ["review-1"]
            assert waiting["executions"][0]["duration"] is None
            prefix = (await http.get("/ui/api/executions?id=code-&workflow=ui_code&limit=2")).json()
            assert [x["id"] for x in prefix["executions"]] == ["code-4", "code-3"]
            for query, field in (("status=nope", "status"), ("before=yesterday", "before"),
                                 ("limit=0", "limit"), ("limit=x", "limit")):  # fmt: skip
                answer = await http.get(f"/ui/api/executions?{query}")
                assert answer.status_code == 422, query
                assert answer.json()["error"]["field"] == field


async def test_one_execution_has_its_graph_states_history_and_waiting_approvals(store_url):
    async with Engine(store_url, workflows=WORKFLOWS) as engine, serving(engine) as url:
        await engine.start(flows.ui_review, {"note": "hi"}, id="review-1")
        await until(engine, "review-1", "waiting")
        async with httpx.AsyncClient(base_url=url) as http:
            d = (await http.get("/ui/api/executions/review-1")).json()
            assert d["inputs"] == {"note": "hi"}
            assert {n: s["state"] for n, s in d["graph"]["states"].items()} == {
                "load": "done", "count": "done", "total": "done", "escalate": "skipped",
                "manager": "waiting", "publish": "not reached"}  # fmt: skip
            layers = {n["name"]: n["layer"] for n in d["graph"]["nodes"]}
            assert layers == {"load": 0, "count": 1, "total": 1, "escalate": 1, "manager": 2,
                              "publish": 3}  # fmt: skip
            [rule] = [e for e in d["graph"]["edges"] if e["kind"] == "rule"]
            assert (rule["source"], rule["target"], rule["label"]) == (
                "load", "escalate", "note='urgent'")  # fmt: skip
            assert [a["name"] for a in d["approvals"]] == ["manager"]
            assert d["history"][0]["type"] == "ExecutionStarted"
            inbox = (await http.get("/ui/api/approvals")).json()["approvals"]
            assert [(a["execution_id"], a["name"]) for a in inbox] == [("review-1", "manager")]
            missing = await http.get("/ui/api/executions/nope")
            assert missing.status_code == 404
            assert missing.json()["error"] == {"type": "ExecutionNotFoundError",
                "message": "no execution has the id 'nope'", "execution_id": "nope"}  # fmt: skip
            assert (await http.get("/executions/nope")).status_code == 404
            bad = await http.get("/ui/api/executions/" + "x" * 1001)
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "id"
            assert (await http.get("/ui/api/executions/nope/events")).status_code == 404


async def test_the_event_stream_sends_the_execution_again_when_its_history_grows(store_url):
    async with Engine(store_url, workflows=WORKFLOWS) as engine, serving(engine) as url:
        await engine.start(flows.ui_review, {}, id="review-1")
        await until(engine, "review-1", "waiting")
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            http.stream("GET", "/ui/api/executions/review-1/events") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            snapshots = []
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                snapshots.append(json.loads(line[6:]))
                if len(snapshots) == 1:
                    assert snapshots[0]["execution"]["status"] == "waiting"
                    await engine.approve("review-1", "manager", {"by": "ann"})
            # the stream ends once the execution has ended
        last = snapshots[-1]
        assert last["execution"]["status"] == "completed"
        assert last["graph"]["states"]["publish"]["state"] == "done"
        assert last["history"][-1]["type"] == "ExecutionCompleted"


async def test_a_code_execution_has_a_timeline_and_its_children_are_linked(sqlite_url):
    async with Engine(sqlite_url, workflows=WORKFLOWS) as engine, serving(engine) as url:
        await engine.execute(flows.ui_code, 2, id="code-1")
        async with httpx.AsyncClient(base_url=url) as http:
            d = (await http.get("/ui/api/executions/code-1")).json()
        assert d["graph"] is None and d["output"] == 8
        assert [(r["kind"], r["name"], r["state"]) for r in d["timeline"]] == [
            ("activity", "double", "done"), ("activity", "double", "done")]  # fmt: skip


async def test_a_parent_links_its_children_and_each_child_its_parent(store_url):
    async with Engine(store_url, workflows=WORKFLOWS) as engine, serving(engine) as url:
        await engine.execute(flows.ui_parent, 1, id="parent-1")
        async with httpx.AsyncClient(base_url=url) as http:
            parent = (await http.get("/ui/api/executions/parent-1")).json()
            kids = parent["children"]
            assert [(c["workflow"], c["status"]) for c in kids] == [
                ("ui_pipeline", "completed"), ("ui_code", "completed")]  # fmt: skip
            assert [r["kind"] for r in parent["timeline"]] == ["child", "child"]
            for c in kids:
                mine = (await http.get(f"/ui/api/executions/{c['id']}")).json()
                assert mine["execution"]["parent_id"] == "parent-1"


async def test_the_workers_page_data_names_queues_and_tasks(sqlite_url):
    async with (
        Engine(sqlite_url, workflows=WORKFLOWS) as engine,
        serving(engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        d = (await http.get("/ui/api/workers")).json()
    assert d["dispatch"] == "local" and d["workers"] == [] and d["tasks"] == []


async def test_with_a_token_every_ui_call_needs_it_but_the_pages_do_not(sqlite_url):
    async with (
        Engine(sqlite_url, workflows=WORKFLOWS) as engine,
        serving(engine, token="t0k") as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for path in ("/ui/api/executions", "/ui/api/approvals", "/ui/api/workers",
                     "/ui/api/executions/x", "/ui/api/executions/x/events"):  # fmt: skip
            answer = await http.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"]["type"] == "Unauthorized"
        ok = await http.get("/ui/api/executions", headers={"Authorization": "Bearer t0k"})
        assert ok.status_code == 200
        shell = await http.get("/")
        assert shell.status_code == 200 and 'data-token-needed="yes"' in shell.text
        # with a token, whether an id exists is not told to whoever asks
        assert (await http.get("/executions/nope")).status_code == 200
        assert (await http.get("/ui/static/common.js")).status_code == 200
        assert (await http.get("/ui/static/nothing.js")).status_code == 404


def test_cerebelum_ui_serves_the_pages_and_steers_executions(tmp_path):
    db = f"sqlite:///{tmp_path}/ui.db"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerebelum", "ui", "tests.integration.ui_workflows", "--db", db,
         "--port", str(port)],
        cwd=ROOT, env=environment(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "<title>Executions" in httpx.get(url + "/").text
        start = {"workflow": "ui_review", "input": {}, "id": "r1"}
        assert httpx.post(f"{url}/v1/executions", json=start).status_code == 201
        approve = {"name": "manager"}
        while httpx.post(f"{url}/v1/executions/r1/approve", json=approve).status_code != 202:
            time.sleep(0.05)
        done = httpx.get(f"{url}/v1/executions/r1/result?wait=10").json()
        assert done["status"] == "completed"
        # a page left open on a waiting execution does not keep the server from stopping
        start["id"] = "r2"
        assert httpx.post(f"{url}/v1/executions", json=start).status_code == 201
        opened = threading.Event()

        def follow() -> None:
            with httpx.stream("GET", f"{url}/ui/api/executions/r2/events", timeout=30) as events:
                opened.set()
                for _ in events.iter_lines():
                    pass

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert opened.wait(10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)  # well before the stream's own end (60 s)
    assert proc.returncode == 0 and "Traceback" not in err, err
    reader.join(10)
    assert not reader.is_alive()  # the stream was ended by the server


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_cerebelum_ui_refuses_to_listen_beyond_loopback_without_a_token(tmp_path, host):
    done = subprocess.run(
        [sys.executable, "-m", "cerebelum", "ui", "--db", f"{tmp_path}/x.db", "--host", host],
        cwd=ROOT, env=environment(None), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "without a token" in done.stderr
