"""Temporal: the dev server and the worker are killed together, then both started again.

The dev server comes back on the same ports and database file. Activities that were in
flight are retried once their start-to-close timeout (10 s) runs out, as Temporal does.
"Ran again": an activity whose completion the history timestamps before the restart,
with a run logged after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from bench.systems._temporal_flows import RecoverTwo, slow_plus_one
from bench.systems.temporal import dev_server, free_ports

from . import expected, logged_runs

QUEUE = "bench-recover"


def _worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[RecoverTwo], activities=[slow_plus_one],
                  max_concurrent_activities=200, max_concurrent_workflow_tasks=200)  # fmt: skip


async def start(flavour: str, url: str, n: int, folder: str) -> None:
    os.environ.update(BENCH_RECOVER_DIR=folder, BENCH_RECOVER_PHASE="start")
    ports = free_ports()
    (Path(folder) / "ports.json").write_text(json.dumps(ports))
    async with dev_server(ports, str(Path(folder) / "temporal.db")) as (address, _):
        client = await Client.connect(address)
        async with _worker(client):
            sem = asyncio.Semaphore(100)

            async def one(i: int) -> None:
                async with sem:
                    await client.start_workflow(RecoverTwo.run, i, id=f"r{i}", task_queue=QUEUE)

            await asyncio.gather(*(one(i) for i in range(n)))
            print("STARTED", flush=True)
            await asyncio.sleep(3600)


def _completed_before(history: Any, restart: float) -> tuple[set[str], bool]:
    """Activity ids whose completion was recorded before ``restart``; was the run open then."""
    scheduled: dict[int, str] = {}
    done: set[str] = set()
    open_at_restart = True
    for e in history.events:
        when = e.event_time.ToSeconds() + e.event_time.nanos / 1e9
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_id
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and when < restart:
            done.add(scheduled[e.activity_task_completed_event_attributes.scheduled_event_id])
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            open_at_restart = when >= restart
    return done, open_at_restart


async def resume(flavour: str, url: str, n: int, folder: str) -> dict[str, Any]:
    os.environ.update(BENCH_RECOVER_DIR=folder, BENCH_RECOVER_PHASE="resume")
    ports = json.loads((Path(folder) / "ports.json").read_text())
    restart, t = time.time(), time.perf_counter()
    async with dev_server(ports, str(Path(folder) / "temporal.db")) as (address, _):
        client = await Client.connect(address)
        async with _worker(client):
            handles = [client.get_workflow_handle(f"r{i}") for i in range(n)]
            outputs = await asyncio.gather(*(h.result() for h in handles))
            seconds = time.perf_counter() - t
            wrong = [f"r{i}" for i, out in enumerate(outputs) if out != expected(i)]
            done: dict[str, set[str]] = {}
            in_flight = 0
            for h in handles:
                done[h.id], was_open = _completed_before(await h.fetch_history(), restart)
                in_flight += was_open
    again: dict[str, list[str]] = {}
    matched = 0
    for phase, wf, activity_id in logged_runs(folder):
        matched += phase == "start" and activity_id in done.get(wf, ())
        if phase == "resume" and activity_id in done.get(wf, ()):
            again.setdefault(wf, []).append(activity_id)
    if any(done.values()) and not matched:  # the log's ids are not the history's
        raise AssertionError("no recorded activity matches a logged run: cannot check re-runs")
    return {"seconds": seconds, "wrong": wrong, "ran_again": again,
            "in_flight_at_kill": in_flight}  # fmt: skip
