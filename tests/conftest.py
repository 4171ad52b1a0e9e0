"""Fixtures shared by every test folder: a fresh store per test, on SQLite and PostgreSQL.

``store_url`` is parametrized over both stores. The PostgreSQL server is
``$CEREBELUM_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
When it does not answer, its tests are skipped locally and fail under ``CI=true``.
Each PostgreSQL test gets a database of its own, copied from a template migrated once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_URL = (
    os.environ.get("CEREBELUM_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEMPLATE = f"cerebelum_test_template_{os.getpid()}"  # one per run: runs may overlap


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class PostgresServer:
    """The test server: a migrated template database, copied once per test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []

    async def _admin(self):
        import asyncpg

        return await asyncpg.connect(self.url, timeout=5)

    async def prepare(self) -> None:
        from cerebelum.store.postgres import PostgresStore

        conn = await self._admin()
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        async with PostgresStore(with_database(self.url, TEMPLATE)):
            pass  # brings the template's schema up to date

    async def fresh(self) -> str:
        name = f"cerebelum_test_{uuid.uuid4().hex[:12]}"
        conn = await self._admin()
        try:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        finally:
            await conn.close()
        self.made.append(name)
        return with_database(self.url, name)

    async def drop(self, name: str) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL test server, or a skip (a failure under ``CI=true``) without one."""
    server = PostgresServer(POSTGRES_URL)
    try:
        asyncio.run(server.prepare())
    except Exception as exc:  # refused, timed out, bad credentials, no driver
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(reason)
    yield server
    asyncio.run(server.drop(TEMPLATE))


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, migrated PostgreSQL database for this test, dropped afterwards."""
    url = asyncio.run(postgres_server.fresh())
    yield url
    asyncio.run(postgres_server.drop(urlsplit(url).path.lstrip("/")))


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'cerebelum.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request):
    """A fresh store: a SQLite file, then a PostgreSQL database."""
    return request.getfixturevalue(f"{request.param}_url")
