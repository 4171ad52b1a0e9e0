"""How long one page of the executions list takes with 100,000 executions in the store.

The web UI's executions page reads ``Store.list`` a page at a time by keyset
(``created_at``, ``id``). This fills a fresh SQLite file and a fresh PostgreSQL database
with executions (a bulk insert of rows, no engine), then times a page of 50 with each
filter the page offers, first and deep (the page after the 50,000th execution)::

    python -m bench.listing [--count 100000] [--stores sqlite,postgres]

PostgreSQL: ``BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``
(a database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from typing import Any

from cerebelum.store import open_store

STATUSES = ["completed"] * 80 + ["failed"] * 10 + ["waiting"] * 6 + ["running"] * 4
WORKFLOWS = [f"workflow_{i}" for i in range(20)]
T0 = 1_700_000_000.0


def rows(count: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(7)
    out = []
    for i in range(count):
        at = T0 + i * 0.01
        status = rnd.choice(STATUSES)
        out.append((f"{uuid.UUID(int=rnd.getrandbits(128)).hex}", rnd.choice(WORKFLOWS), "v1",
                    "graph", status, b"{}", None, None, None, None, at, at + 1.0))  # fmt: skip
    return out


COLUMNS = ("id", "workflow", "version", "kind", "status", "inputs", "output", "error",
           "parent_id", "owner", "created_at", "updated_at")  # fmt: skip


async def fill(store: Any, url: str, data: list[tuple[Any, ...]]) -> None:
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        with db:
            db.executemany(f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES "
                           f"({', '.join('?' * len(COLUMNS))})", data)  # fmt: skip
        db.execute("ANALYZE")
        db.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(url)
        await conn.copy_records_to_table("executions", records=data, columns=COLUMNS)
        await conn.execute("ANALYZE executions")
        await conn.close()


async def timed(call: Any, repeat: int = 20) -> tuple[float, int]:
    """The median time of ``call`` in milliseconds, and how many rows it gave."""
    await call()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        found = await call()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), len(found)


async def measure(url: str, count: int) -> list[tuple[str, float, int]]:
    data = rows(count)
    store = open_store(url)
    await store.connect()
    try:
        await fill(store, url, data)
        ordered = sorted(data, key=lambda r: (r[10], r[0]), reverse=True)
        deep = (ordered[count // 2][10], ordered[count // 2][0])
        prefix = ordered[count // 3][0][:4]
        cases = {
            "no filter, first page": {},
            "no filter, page after the 50,000th": {"before": deep},
            "status=failed": {"status": "failed"},
            "status=waiting, deep": {"status": "waiting", "before": deep},
            "workflow=workflow_3": {"workflow": "workflow_3"},
            "workflow + status=running": {"workflow": "workflow_3", "status": "running"},
            f"id prefix {prefix!r}": {"id_prefix": prefix},
        }
        out = []
        for name, kw in cases.items():
            ms, n = await timed(lambda kw=kw: store.list(limit=50, **kw))
            out.append((name, ms, n))
        return out
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    for kind in args.stores.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results = await measure(f"sqlite:///{tmp}/listing.db", args.count)
        else:
            import asyncpg

            base = os.environ.get(
                "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            )
            name = f"bench_listing_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(base)
            await admin.execute(f"CREATE DATABASE {name}")
            try:
                results = await measure(base.rsplit("/", 1)[0] + f"/{name}", args.count)
            finally:
                await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
                await admin.close()
        print(f"\n{kind}, {args.count:,} executions, pages of 50 (median of 20):")
        for name, ms, n in results:
            print(f"  {name:<40} {ms:7.2f} ms  ({n} rows)")


if __name__ == "__main__":
    asyncio.run(main())
