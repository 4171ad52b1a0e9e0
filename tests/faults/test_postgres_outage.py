"""Engines under load while their PostgreSQL server goes away and comes back.

Two engine processes, 1,000 graph workflows each, on a server this test started; the
server is restarted (``pg_ctl restart -m immediate``) or has every engine backend
terminated, twice, mid-run. Every execution must complete, once: a commit whose answer
was lost is read back rather than dropped or recorded twice, and no driver error
reaches a caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from cerebelum.store import open_store

ROOT = Path(__file__).resolve().parents[2]
PER_ENGINE = 1000

pytestmark = pytest.mark.timeout(300)


def spawn(url: str, prefix: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.pg_engine", url, str(PER_ENGINE), prefix, str(log)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def runs(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def wait_for_runs(log: Path, count: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120
    while len(runs(log)) < count:
        assert all(p.poll() is None for p in procs), "an engine process ended early"
        assert time.monotonic() < deadline, f"fewer than {count} step runs after 120 s"
        time.sleep(0.01)


async def migrate(url: str) -> None:
    async with open_store(url):  # once, before the engines race to
        pass


async def terminate_backends(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("outage", ["restart", "terminate"])
def test_two_engines_ride_out_a_postgres_that_goes_away_twice(own_postgres, tmp_path, outage):
    url = own_postgres.url
    asyncio.run(migrate(url))
    log = tmp_path / "steps.log"
    procs = [spawn(url, f"e{k}", log) for k in range(2)]
    try:
        for after in (400, 1600):
            wait_for_runs(log, after, procs)
            if outage == "restart":
                own_postgres.restart()
            else:
                asyncio.run(terminate_backends(url))
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for (out, err), p in zip(outs, procs, strict=True):
        assert p.returncode == 0, err[-3000:]
        report = json.loads(out.splitlines()[-1])
        assert report["errors"] == [] and report["completed"] == PER_ENGINE, (report, err[:5000])
    asyncio.run(check_histories(url, log))


async def check_histories(url: str, log: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        statuses = Counter(r[0] for r in await conn.fetch("SELECT status FROM executions"))
        events = await conn.fetch(
            "SELECT execution_id, seq, type, data FROM events ORDER BY execution_id, seq"
        )
    finally:
        await conn.close()
    assert statuses == {"completed": 2 * PER_ENGINE}
    by_execution: dict[str, list[tuple[int, str, bytes]]] = {}
    for r in events:
        by_execution.setdefault(r[0], []).append((r[1], r[2], bytes(r[3])))
    assert len(by_execution) == 2 * PER_ENGINE
    started: Counter[tuple[str, str]] = Counter()
    for eid, history in by_execution.items():
        assert [seq for seq, _, _ in history] == list(range(1, len(history) + 1)), eid
        types = Counter(t for _, t, _ in history)
        assert types["ExecutionStarted"] == 1 and types["ExecutionCompleted"] == 1, eid
        assert types["StepCompleted"] == 2, (eid, types)
        for _, t, data in history:
            if t == "StepStarted":
                started[(eid, json.loads(data)["step"])] += 1
    ran: Counter[tuple[str, str]] = Counter()
    keys: dict[tuple[str, str], set[str]] = {}
    for eid, name, _attempt, key in runs(log):
        ran[(eid, name)] += 1
        keys.setdefault((eid, name), set()).add(key)
    # every run of a step is a recorded start (a start may have no run: cut off first),
    # and every run of a step used the same idempotency key
    assert all(ran[k] <= started[k] for k in ran), [k for k in ran if ran[k] > started[k]][:5]
    assert all(len(v) == 1 for v in keys.values())
    assert len(ran) == 4 * PER_ENGINE
