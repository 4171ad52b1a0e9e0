"""The HTTP API over an engine: ``cerebelum server``, and :class:`cerebelum.Client` calls it.

- :func:`create_app`: a Starlette app around an open :class:`~cerebelum.Engine`.
- :func:`serve`: open an engine, serve it with uvicorn until SIGINT/SIGTERM, close it.

The request and response bodies are the Structs of :mod:`cerebelum.server.messages`;
``GET /openapi.json`` describes them (``docs/openapi.json`` is its committed copy).
"""

from ._app import create_app
from ._serve import serve

__all__ = ["create_app", "serve"]
