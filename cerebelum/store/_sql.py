"""Named queries and numbered migrations, kept in ``.sql`` files beside this module.

A query file holds sections headed ``-- name --``; a migration is
``migrations/NNNN_what.sql``, applied in order and recorded in ``cerebelum_migrations``.
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["migrations", "queries", "schema"]

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def _read(dialect: str, name: str) -> str:
    return resources.files("cerebelum.store").joinpath("sql", dialect, name).read_text()


def queries(dialect: str) -> dict[str, str]:
    """The named queries of ``dialect`` (``sqlite`` or ``postgres``)."""
    parts = _HEADER.split(_read(dialect, "queries.sql"))
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration of ``dialect``, in order."""
    folder = resources.files("cerebelum.store").joinpath("sql", dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return sorted(found)


def schema(dialect: str) -> str:
    """The whole current schema, as ``schema.sql`` states it."""
    return _read(dialect, "schema.sql")
