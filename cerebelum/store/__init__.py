"""Stores: where executions and their histories live.

``open_store(url)`` picks the implementation from the URL: a path or ``sqlite:///...``
gives the embedded SQLite store, ``postgresql://...`` the PostgreSQL one.
"""

from __future__ import annotations

import os
import re

from cerebelum.errors import StoreError

from ._base import ExecutionRecord, InboxItem, Store, StoredBlueprint, TaskCounts, TaskRow, Write

__all__ = [
    "DEFAULT_URL",
    "ExecutionRecord",
    "InboxItem",
    "Store",
    "StoredBlueprint",
    "TaskCounts",
    "TaskRow",
    "Write",
    "default_url",
    "open_store",
]

DEFAULT_URL = "sqlite:///cerebelum.db"


def default_url() -> str:
    """``$CEREBELUM_DB``, else ``cerebelum.db`` in the current folder."""
    return os.environ.get("CEREBELUM_DB") or DEFAULT_URL


def open_store(url: str | os.PathLike[str] | Store | None = None) -> Store:
    """The store for ``url`` (not connected yet); ``None`` means :func:`default_url`."""
    if isinstance(url, Store):
        return url
    url = os.fspath(url) if url else default_url()
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme and scheme.group(1).lower() not in ("sqlite", "memory"):
        from .postgres import mask_url

        raise StoreError(
            f"{mask_url(url)}: no store takes {scheme.group(1)!r} URLs; the stores are SQLite"
            " (a file path, sqlite:///relative.db, sqlite:////absolute.db, sqlite://:memory:)"
            " and PostgreSQL (postgresql://user@host:5432/db)",
            url=mask_url(url),
        )
    from .sqlite import SQLiteStore

    return SQLiteStore(url)
