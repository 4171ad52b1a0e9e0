"""Python and TypeScript in one workflow: a ``cerebelum server``, a Python worker and the
TypeScript worker (workers/typescript), all real processes.

The workflow (tests/integration/remote_workflows.py) alternates between the languages:
reserve (Python) >> charge_card (TypeScript) >> ship (Python) >> send_receipt
(TypeScript). The TypeScript worker (tests/integration/ts/worker.mjs) logs each run
to a file, so that the test sees which process ran what, with which key and attempt.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cerebelum import Client
from tests.integration.servers import (
    ROOT,
    Process,
    environment,
    free_port,
    runs,
    server_process,
    until,
    wait_healthy,
)
from tests.integration.typescript import node, typescript_example, typescript_worker

FLOWS = "tests.integration.remote_workflows"
TS_WORKER = Path(__file__).resolve().parent / "ts" / "worker.mjs"
LEASE = "1.5"  # seconds: the task a killed worker held is offered again soon after


@pytest.fixture(scope="module")
def built():
    return typescript_worker()


def start(procs, store_url, env):
    server, url = server_process(store_url, FLOWS, free_port(), "--task-lease", LEASE, env=env)
    python = Process([sys.executable, "-m", "cerebelum", "worker", FLOWS, "--server", url], env)
    procs += [server, python]
    return server, python, url


def ts_worker(procs, url, env) -> Process:
    proc = Process([node(), str(TS_WORKER), url], env)
    procs.append(proc)
    return proc


def show(url: str, execution_id: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "cerebelum", "show", execution_id, "--server", url],
        cwd=ROOT, env=environment(None), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_steps_alternate_between_python_and_typescript_through_a_sigkill(
    built, store_url, env, procs, scratch
):
    server, python, url = start(procs, store_url, env)
    async with Client(url) as client:
        # no TypeScript worker yet: the step it hosts waits, and `show` says so
        first = await client.start("purchase", {"order": "A-0", "amount": 0}, id="p-0")
        async with asyncio.timeout(30):
            while [t.name for t in await client.tasks(first.id)] != ["charge_card"]:
                await asyncio.sleep(0.05)
        assert (await client.status(first.id)).status == "running"
        shown = show(url, first.id)
        assert "step 'charge_card' on queue 'payments', attempt 1: waiting for a worker" in shown
        assert "no connected worker hosts it on that queue" in shown

        ts = ts_worker(procs, url, env)
        held = await client.start("purchase", {"order": "A-H", "amount": 7, "hold": True}, id="p-h")
        others = [
            await client.start("purchase", {"order": f"A-{i}", "amount": 10 * i}, id=f"p-{i}")
            for i in range(1, 9)
        ]
        declined = await client.start("purchase", {"order": "A-D", "amount": 5000}, id="p-d")
        refused = await client.start("purchase", {"order": "A-R", "amount": -1}, id="p-r")
        # the held charge is running on the TypeScript worker: kill it there
        await until(lambda: any(r[1] == "charge_card" and r[2] == "p-h:charge_card"
                                for r in runs(scratch)))  # fmt: skip
        killed = ts.pid
        ts.kill()
        (Path(scratch) / "release-A-H").touch()
        ts.start()  # the same command again: a new process
        for i, h in enumerate([first, *others]):
            result = await h.result(timeout=60)
            amount = 10 * i
            assert (result.status, result.output) == (
                "completed", {"receipt": f"A-{i}:{amount}"}
            ), result.error  # fmt: skip
        result = await held.result(timeout=60)
        assert result.output == {"receipt": "A-H:7"}
        assert (await declined.result(timeout=60)).output == {"refunded": 5000}
        assert (await refused.result(timeout=60)).output == {"refunded": -1}

        history = await client.history(declined.id)
        (failed,) = [e for e in history if e.type == "StepFailed"]
        assert failed.error["kind"] == "error" and failed.error["name"] == "payment_failed"
        assert failed.error["data"] == {"limit": 1000, "amount": 5000}
        (failed,) = [e for e in await client.history(refused.id) if e.type == "StepFailed"]
        assert (failed.error["name"], failed.error["message"]) == (
            "CardDeclined",
            "card refused for A-R",
        )
        assert "Error" in failed.error["bases"] and "worker.mjs" in failed.error["traceback"]
        assert failed.error["cause"]["name"] == "RangeError"

        started = {
            e.step: e.worker for e in await client.history(held.id) if e.type == "StepStarted"
        }
        assert started["reserve"] != started["charge_card"]  # two languages, two workers

    ran = runs(scratch)
    held_runs = [
        (attempt, pid) for lang, name, key, attempt, pid in ran if key == "p-h:charge_card"
    ]
    # killed mid-step: offered again after the lease, same key, same attempt, new process
    assert held_runs == [(1, killed), (1, ts.pid)] and ts.pid != killed
    # a step ran again only where the killed process held it: once there, once after
    by_key: dict[str, list[tuple[str, int, int]]] = {}
    for lang, _, key, attempt, pid in ran:
        by_key.setdefault(key, []).append((lang, attempt, pid))
    for key, got in by_key.items():
        assert [a for _, a, _ in got] == [1] * len(got), key
        assert len(got) == 1 or [p for _, _, p in got] == [killed, ts.pid], (key, got)
    names = Counter(key.partition(":")[2] for key in by_key)
    assert names == {"reserve": 12, "charge_card": 12, "ship": 10, "send_receipt": 10}
    assert {lang for lang, name, *_ in ran if name in ("reserve", "ship")} == {"py"}
    assert {lang for lang, name, *_ in ran if name in ("charge_card", "send_receipt")} == {"ts"}
    assert {pid for lang, *_, pid in ran if lang == "py"} == {python.pid}
    ts.stop()
    python.stop()
    server.stop()


async def test_a_code_workflow_calls_a_typescript_activity_by_name(
    built, sqlite_url, env, procs, scratch
):
    server, python, url = start(procs, sqlite_url, env)
    ts = ts_worker(procs, url, env)
    async with Client(url) as client:
        result = await client.execute("thumbnails", "https://x/a.png", 300, id="thumb-1")
        assert (result.status, result.output) == (
            "completed",
            {"thumbnail": "https://x/a.png?w=300"},
        )
    assert [(lang, name, key) for lang, name, key, _, _ in runs(scratch)] == [
        ("ts", "resize_image", "thumb-1:0")
    ]
    ts.stop()
    python.stop()
    server.stop()


async def test_sigterm_lets_the_typescript_worker_finish_and_report_what_it_holds(
    built, sqlite_url, env, procs, scratch
):
    server, python, url = start(procs, sqlite_url, env)
    ts = ts_worker(procs, url, env)
    async with Client(url) as client:
        held = await client.start("purchase", {"order": "A-T", "amount": 3, "hold": True})
        await until(lambda: any(r[1] == "charge_card" for r in runs(scratch)))
        assert ts.proc is not None
        ts.proc.terminate()  # SIGTERM: it stops taking tasks, finishes the one it holds
        await asyncio.sleep(0.5)
        assert ts.proc.poll() is None  # still draining
        (Path(scratch) / "release-A-T").touch()
        _, err = ts.proc.communicate(timeout=30)  # it exits by itself once the result is in
        assert ts.proc.returncode == 0, err
        await until(lambda: any(r[1] == "ship" for r in runs(scratch)))
        # the charge was reported by the stopped worker: it never ran again
        assert [r[1] for r in runs(scratch) if r[0] == "ts"] == ["charge_card"]
        ts.start()  # a worker for the receipt
        assert (await held.result(timeout=60)).output == {"receipt": "A-T:3"}
    assert os.path.exists(scratch / "runs.log")
    ts.stop()
    python.stop()
    server.stop()


async def test_a_typescript_result_held_while_the_server_is_down_is_handed_over_after_its_restart(
    built, sqlite_url, env, procs, scratch
):
    server, url = server_process(sqlite_url, FLOWS, free_port(), "--task-lease", "30", env=env)
    python = Process([sys.executable, "-m", "cerebelum", "worker", FLOWS, "--server", url], env)
    procs += [server, python]
    ts = ts_worker(procs, url, env)
    async with Client(url) as client:
        await client.start("purchase", {"order": "A-S", "amount": 4, "hold": True}, id="p-s")
        await until(lambda: any(r[1] == "charge_card" for r in runs(scratch)))
    server.kill()
    (scratch / "release-A-S").touch()  # the step ends while nobody can take its result
    await asyncio.sleep(1.0)  # the worker tries, fails, keeps the result and backs off
    server.start()
    wait_healthy(url, server)
    async with Client(url) as client:  # it registers again and hands the result over
        result = await client.result("p-s", timeout=60)
    assert (result.status, result.output) == ("completed", {"receipt": "A-S:4"})
    assert [r[1] for r in runs(scratch) if r[0] == "ts"] == ["charge_card", "send_receipt"]
    ts.stop(), python.stop(), server.stop()


def test_the_typescript_example_runs_and_prints_what_it_promises(tmp_path):
    example = typescript_example()
    env = {**environment(None), "CEREBELUM_DB": f"sqlite:///{tmp_path / 'example.db'}"}
    # in a session of its own: if it hangs, its server and workers go down with it
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", str(example / "payments.py")], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=50)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"payments.py did not end within 50 s:\n{stdout}\n{stderr}")
    assert proc.returncode == 0 and stderr == "", stderr
    for expected in (
        ": 120 paid'}",
        "charge_card   ran in TypeScript",
        "ship          ran in Python",
        "(5000) -> completed: {'refunded': 5000",
        "refund        ran in Python",
        "thumbnail -> https://example.com/cat.png?width=300",
    ):
        assert expected in stdout, f"{expected!r} not in:\n{stdout}"
