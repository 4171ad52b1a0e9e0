"""DBOS (the ``dbos`` package): async workflows and steps, on SQLite or PostgreSQL.

The same shapes as Cerebelum's code workflows: two steps, ten in a chain, and n
steps gathered in one workflow. DBOS launches inside this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from typing import Any


def available(store: str) -> str | None:
    return None if importlib.util.find_spec("dbos") else "not installed"


class Session:
    def __init__(self, flows: dict[str, Any]) -> None:
        self.flows = flows

    async def run(self, kind: str, n: int) -> Any:
        from dbos import DBOS

        handle = await DBOS.start_workflow_async(self.flows[kind], n)
        return await handle.get_result()


@contextlib.asynccontextmanager
async def session(flavour: str, db_url: str, counts: dict[str, int]) -> AsyncIterator[Session]:
    from dbos import DBOS, DBOSConfig

    url = db_url if db_url.startswith("postgresql://") else f"sqlite:///{db_url}"
    config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING",
                          "console_log_level": "WARNING"}  # fmt: skip
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config=config)

    @DBOS.step()
    async def plus_one(x: int) -> int:
        return x + 1

    @DBOS.step()
    async def same(i: int) -> int:
        return i

    @DBOS.workflow()
    async def two(x: int) -> int:
        return await plus_one(await plus_one(x))

    @DBOS.workflow()
    async def chain(x: int) -> int:
        for _ in range(10):
            x = await plus_one(x)
        return x

    @DBOS.workflow()
    async def fanout(width: int) -> int:
        return sum(await asyncio.gather(*(same(i) for i in range(width))))

    DBOS.launch()
    try:
        yield Session({"two": two, "chain": chain, "fanout": fanout})
    finally:
        DBOS.destroy(destroy_registry=True)
