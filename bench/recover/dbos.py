"""DBOS: async workflows of two steps; the process running DBOS is the one killed.

"Ran again": before DBOS launches again, the steps whose output DBOS had recorded are
read from its system database; a run of one of them logged after the restart is a
completed step that ran again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

from . import STEP_SECONDS, expected, log_run, logged_runs

PHASE = {"value": "start"}
FOLDER = {"value": "."}


@DBOS.step()
async def slow_plus_one(x: int) -> int:
    log_run(FOLDER["value"], f"{PHASE['value']} {DBOS.workflow_id} {DBOS.step_id}")
    await asyncio.sleep(STEP_SECONDS)
    return x + 1


@DBOS.workflow()
async def recover_two(x: int) -> int:
    return await slow_plus_one(await slow_plus_one(x))


def _launch(url: str, phase: str, folder: str) -> None:
    PHASE["value"], FOLDER["value"] = phase, folder
    db = url if url.startswith("postgresql://") else f"sqlite:///{url}"
    config: DBOSConfig = {"name": "bench-recover", "system_database_url": db,
                          "log_level": "WARNING", "console_log_level": "WARNING"}  # fmt: skip
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config=config)
    DBOS.launch()


async def _recorded_steps(url: str) -> tuple[set[tuple[str, str]], int]:
    """(workflow id, step id) of every recorded step output; workflows still pending."""
    steps = "SELECT workflow_uuid, function_id FROM {s}operation_outputs WHERE error IS NULL"
    pending = "SELECT count(*) FROM {s}workflow_status WHERE status = 'PENDING'"
    if url.startswith("postgresql://"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(steps.format(s="dbos."))
            left = await conn.fetchval(pending.format(s="dbos."))
        finally:
            await conn.close()
    else:
        with sqlite3.connect(url) as conn:
            rows = conn.execute(steps.format(s="")).fetchall()
            left = conn.execute(pending.format(s="")).fetchone()[0]
    return {(str(w), str(f)) for w, f in rows}, left


async def start(flavour: str, url: str, n: int, folder: str) -> None:
    _launch(url, "start", folder)
    sem = asyncio.Semaphore(100)  # started 100 at a time, as the other systems are

    async def one(i: int) -> None:
        async with sem:
            with SetWorkflowID(f"r{i}"):
                await DBOS.start_workflow_async(recover_two, i)

    await asyncio.gather(*(one(i) for i in range(n)))
    print("STARTED", flush=True)
    await asyncio.sleep(3600)


async def resume(flavour: str, url: str, n: int, folder: str) -> dict[str, Any]:
    done_before, pending = await _recorded_steps(url)
    t = time.perf_counter()
    _launch(url, "resume", folder)
    try:
        handles = [await DBOS.retrieve_workflow_async(f"r{i}") for i in range(n)]
        outputs = await asyncio.gather(*(h.get_result() for h in handles))
        seconds = time.perf_counter() - t
    finally:
        DBOS.destroy(destroy_registry=True)
    wrong = [f"r{i}" for i, out in enumerate(outputs) if out != expected(i)]
    again: dict[str, list[str]] = {}
    matched = 0
    for phase, wf, step_id in logged_runs(folder):
        matched += phase == "start" and (wf, step_id) in done_before
        if phase == "resume" and (wf, step_id) in done_before:
            again.setdefault(wf, []).append(step_id)
    if done_before and not matched:  # the log's step ids are not DBOS's: the check is void
        raise AssertionError("no recorded step matches a logged run: cannot check re-runs")
    return {"seconds": seconds, "wrong": wrong, "ran_again": again,
            "in_flight_at_kill": pending}  # fmt: skip
