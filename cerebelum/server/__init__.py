"""The HTTP API over an engine: ``cerebelum server``, and :class:`cerebelum.Client` calls it.

- :func:`create_app`: a Starlette app around an open :class:`~cerebelum.Engine`.
- :func:`check_bind`: refuse a non-loopback address without a token.
- :func:`serve`: open an engine, serve it with uvicorn until SIGINT/SIGTERM, close it.
- :func:`serving`: serve an open engine on a free loopback port inside this process, for
  as long as an ``async with`` lasts (tests of code that uses a ``Client``).

The request and response bodies are the Structs of :mod:`cerebelum.server.messages`;
``GET /openapi.json`` describes them (``docs/openapi.json`` is its committed copy).
"""

from typing import Any

__all__ = ["check_bind", "create_app", "serve", "serving"]


def __getattr__(name: str) -> Any:
    # loaded on first use, so that the client can read .messages without Starlette
    if name == "create_app":
        from ._app import create_app

        return create_app
    if name in ("check_bind", "serve", "serving"):
        from . import _serve

        return getattr(_serve, name)
    raise AttributeError(f"module 'cerebelum.server' has no attribute {name!r}")
