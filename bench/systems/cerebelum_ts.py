"""Cerebelum with its steps on one TypeScript worker (workers/typescript): ``cerebelum
server`` and one ``node bench/ts/worker.mjs`` process on loopback, driven over HTTP by
:class:`cerebelum.Client`.

The workflows are those of the Python rows (``graph_two``, ``graph_chain`` of
``bench.systems.cerebelum``): the TypeScript worker hosts their steps by their task
names, so that the server, the store and the client are the same as in the row with one
Python worker, and only the worker differs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from .cerebelum import available as _available
from .cerebelum import versions  # noqa: F401 - the same versions
from .cerebelum_remote import Session, serving_with

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "workers" / "typescript"
WORKER = ROOT / "bench" / "ts" / "worker.mjs"
#: What is measured (the graph workflows' latency, throughput and chain).
WORKLOADS = ("latency", "throughput", "chain")


def available(store: str) -> str | None:
    if shutil.which("node") is None:
        return "not installed: node"
    if not (PACKAGE / "dist" / "index.js").exists():
        return "not built: cd workers/typescript && npm ci && npm run build"
    return _available(store)


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    node = shutil.which("node") or "node"
    async with serving_with("graph", db_url, lambda url: [[node, str(WORKER), url]]) as s:
        yield s
