"""``python -m bench.takeover``: how long until a live engine finishes a SIGKILLed one's work.

Two engines share one PostgreSQL database. Engine A (a process of its own) starts N
two-step workflows and is killed with SIGKILL while every one of them is inside its
second step. Engine B, in this process, has a caller waiting on ``result()`` for each
of them all along. The figure is the time from the kill until B has every result.

Two cases:

- ``same host``: A runs as a sibling process; B sees its pid is gone and takes over at once.
- ``other host``: A runs in a pid namespace of its own (``unshare --pid``, root only), as
  an engine on another machine would; B must wait for A's lease (default 15 s) to end.

    python -m bench.takeover [--count 1000] [--lease 15] [--out bench/results/takeover.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from cerebelum import Engine, step, workflow

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@step
async def first(ctx, inputs):
    return inputs


@step
async def second(ctx, first):
    if os.environ.get("TAKEOVER_HANG"):  # engine A: stay inside the step until killed
        Path(os.environ["TAKEOVER_HANG"], ctx.execution_id).touch()
        await asyncio.sleep(3600)
    return first


@workflow
def takeover_flow(wf):
    wf.timeline(first >> second)


async def run_a(url: str, count: int, lease: float) -> None:
    async with Engine(url, workflows=[takeover_flow], lease=lease) as engine:
        for i in range(count):
            await engine.start(takeover_flow, i, id=f"t-{i}")
        await asyncio.sleep(3600)


async def measure(url: str, count: int, lease: float, other_host: bool) -> dict:
    marks = Path(f"/tmp/takeover-{uuid.uuid4().hex[:8]}")
    marks.mkdir()
    cmd = [sys.executable, "-m", "bench.takeover", "--engine-a", url, str(count), str(lease)]
    if other_host:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
    env = {**os.environ, "TAKEOVER_HANG": str(marks), "PYTHONPATH": str(ROOT)}
    a = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        async with Engine(url, workflows=[takeover_flow], lease=lease) as b:
            while len(os.listdir(marks)) < count:
                assert a.poll() is None, "engine A ended early"
                await asyncio.sleep(0.05)
            waits = [asyncio.create_task(b.result(f"t-{i}")) for i in range(count)]
            await asyncio.sleep(1.0)  # the callers are waiting
            killed = time.monotonic()
            os.killpg(a.pid, signal.SIGKILL)
            a.wait()
            results = await asyncio.gather(*waits)
            took = time.monotonic() - killed
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
            a.wait()
        shutil.rmtree(marks, ignore_errors=True)
    assert [r.output for r in results] == list(range(count))
    return {"case": "other host" if other_host else "same host", "count": count,
            "lease_s": lease, "takeover_s": round(took, 2)}  # fmt: skip


async def fresh_database() -> tuple[str, str]:
    name = f"cerebelum_takeover_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return name, PG.rsplit("/", 1)[0] + "/" + name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def main(count: int, lease: float, out: Path | None) -> None:
    rows = []
    cases = [False] + ([True] if os.geteuid() == 0 and shutil.which("unshare") else [])
    for other_host in cases:
        name, url = await fresh_database()
        try:
            rows.append(await measure(url, count, lease, other_host))
        finally:
            await drop_database(name)
        print(json.dumps(rows[-1]), flush=True)
    if out is not None:
        out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--engine-a"]:
        asyncio.run(run_a(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--lease", type=float, default=15.0)
        parser.add_argument("--out", type=Path)
        args = parser.parse_args()
        asyncio.run(main(args.count, args.lease, args.out))
