"""Cerebelum with its steps on remote workers: ``cerebelum server`` and two
``cerebelum worker`` processes on loopback, driven over HTTP by :class:`cerebelum.Client`.

The server and the workers import the workflows of ``bench.systems.cerebelum``; the
server hands every step and activity to the workers (``--dispatch workers``). The
flavour ``graph-1`` runs one worker instead of two (beside the TypeScript worker's
row, bench/systems/cerebelum_ts.py). What is
measured is the client's view: start, then the result's long-poll, per workflow.
The fan-out and recovery workloads are left out here: the fan-out's width is built at
run time in the embedded session, and recovery is measured on the embedded engine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from cerebelum import Client

from .cerebelum import available, versions  # noqa: F401 - the same checks and versions

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "bench.systems.cerebelum"
#: What is measured with remote workers (see above).
WORKLOADS = ("latency", "throughput", "chain")
WORKERS = 2


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    def __init__(self, client: Client, kind: str, procs: list[subprocess.Popen[bytes]]) -> None:
        self.client = client
        self.flows = {"two": f"{kind}_two", "chain": f"{kind}_chain"}
        self.procs = procs

    async def run(self, kind: str, n: int) -> Any:
        if kind not in self.flows:
            raise NotImplementedError(f"{kind} is not measured with remote workers")
        result = await self.client.execute(self.flows[kind], n)
        if result.status != "completed":
            raise AssertionError(f"{kind} execution {result.id} {result.status}: {result.error}")
        return result.output

    def extra(self) -> dict[str, Any]:
        """The resident memory of the server and the workers too (they are other processes)."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):  # the peak, in kB
                        total += int(line.split()[1]) / 1024
        return {"processes_peak_rss_mb": round(total, 1)}


def python_workers(url: str, n: int) -> list[list[str]]:
    """The commands of ``n`` Python workers for the server at ``url``."""
    worker = [sys.executable, "-m", "cerebelum", "worker", FLOWS, "--server", url]
    return [[*worker, "--concurrency", "100"] for _ in range(n)]


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    kind, _, count = flavour.partition("-")
    async with serving_with(
        kind, db_url, lambda url: python_workers(url, int(count or WORKERS))
    ) as s:
        yield s


@contextlib.asynccontextmanager
async def serving_with(
    kind: str, db_url: str, workers: Callable[[str], list[list[str]]]
) -> AsyncIterator[Session]:
    """A server on ``db_url`` and the worker processes ``workers(url)`` gives; a session
    that runs ``kind`` workflows through them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port = _port()
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "cerebelum"]
    procs = [subprocess.Popen([*cli, "server", FLOWS, "--db", db_url, "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL)]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        for argv in workers(url):
            procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
        async with Client(url) as client:
            yield Session(client, kind, procs)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
