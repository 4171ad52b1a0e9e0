"""The web UI's routes: its pages, its static files and its data under ``/ui/api``.

The pages are shells with no data in them; the browser fetches the data from
``/ui/api/...`` with the same bearer token as any client (asked for once when the
server wants one, kept in the tab's ``sessionStorage``), and steers executions through
the ``/v1`` endpoints of the API. ``/ui/api`` is the UI's own and is not part of the
OpenAPI document: its shape follows the pages and may change with them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from cerebelum import errors
from cerebelum.engine import Engine, ExecutionStatus, check_id

from . import _views as views
from ._pages import PAGES, page

__all__ = ["ui_routes"]

Handler = Callable[[Request], Awaitable[Response]]

STATIC = Path(__file__).parent / "static"
#: How often an open event stream looks for new events of its execution, in seconds.
STREAM_POLL = 0.5
#: A stream ends after this long (the page opens another): a server that stops is not
#: kept waiting by a page left open.
STREAM_LIFETIME = 60.0
MAX_PAGE = 500
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}  # fmt: skip
#: The UI's files, read once: the pages' scripts and style, shipped in the package.
_STATIC_FILES = {
    p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in _TYPES
}
_encoder = msgspec.json.Encoder()


def _json(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status, media_type="application/json")


def _invalid(message: str, field: str) -> Response:
    body = {"error": {"type": "InvalidRequestError", "message": message, "field": field}}
    return _json(body, 422)


def _listing_query(request: Request) -> dict[str, Any] | Response:
    """The filters of ``/ui/api/executions``, or the 422 that names the one at fault."""
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in ExecutionStatus.__members__.values():
        known = ", ".join(s.value for s in ExecutionStatus)
        return _invalid(f"{status!r} is not a status; the statuses are {known}", "status")
    before = None
    if q.get("before"):
        at, sep, last_id = q["before"].partition(":")
        try:
            before = (float(at), last_id)
        except ValueError:
            sep = ""
        if not sep or before is None or before[0] != before[0]:
            return _invalid(f"before is 'CREATED_AT:ID' (a page's 'next'), not {q['before']!r}",
                            "before")  # fmt: skip
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        return _invalid(f"limit is a whole number from 1 to {MAX_PAGE}, not {q['limit']!r}",
                        "limit")  # fmt: skip
    id_prefix = q.get("id") or None
    for name, value in (("id", id_prefix), ("workflow", q.get("workflow"))):
        if value and ("\x00" in value or len(value) > 1000):
            return _invalid(f"{name} holds a NUL or is longer than 1000 characters", name)
    return {"status": status, "workflow": q.get("workflow") or None, "id_prefix": id_prefix,
            "before": before, "limit": limit}  # fmt: skip


def _execution_id(request: Request) -> str:
    """The id in the path; a 400 naming ``id`` when no execution could have it, as /v1 says."""
    from cerebelum.server._app import HTTPError

    eid = str(request.path_params["id"])
    try:
        check_id(eid)
    except errors.InvalidRequestError as exc:
        raise HTTPError(400, "InvalidRequestError", exc.message, field="id") from None
    return eid


def ui_routes(engine: Engine, api: Callable[[Handler], Handler], token: str | None) -> list[Route]:
    """The UI's routes over ``engine``; ``api`` wraps a data handler (token, errors as JSON)."""

    async def executions(request: Request) -> Response:
        query = _listing_query(request)
        if isinstance(query, Response):
            return query
        return _json(await views.page_of_executions(engine, **query))

    async def execution(request: Request) -> Response:
        return _json(await views.detail(engine, _execution_id(request)))

    async def events(request: Request) -> Response:
        eid = _execution_id(request)
        first = await views.detail(engine, eid)  # ExecutionNotFoundError: a 404 before streaming
        return StreamingResponse(_stream(engine, eid, first), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    async def approvals(request: Request) -> Response:
        return _json({"approvals": await views.approvals(engine), "now": time.time()})

    async def workers(request: Request) -> Response:
        return _json(await views.workers(engine))

    async def static(request: Request) -> Response:
        found = _STATIC_FILES.get(request.path_params["name"])
        if found is None:
            return _json({"error": {"type": "NotFound", "message": "no such file of the UI"}}, 404)
        body, media_type = found
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    async def show_page(request: Request) -> Response:
        name = request.scope["route"].name
        return HTMLResponse(page(name, token_needed=token is not None))

    async def show_execution(request: Request) -> Response:
        eid = str(request.path_params["id"])
        if token is None:  # without a token anyone may look: say at once that it is not there
            try:
                check_id(eid)
                found = await engine.store.get(eid) is not None
            except errors.InvalidRequestError:
                found = False
            if not found:
                return HTMLResponse(page("missing", token_needed=False, missing=eid), 404)
        return HTMLResponse(page("execution", token_needed=token is not None))

    routes = [Route(path, show_page, methods=["GET"], name=name) for name, path in PAGES.items()]
    routes += [
        Route("/executions/{id:path}", show_execution, methods=["GET"], name="execution"),
        Route("/ui/api/executions", api(executions), methods=["GET"]),
        Route("/ui/api/executions/{id:path}/events", api(events), methods=["GET"]),
        Route("/ui/api/executions/{id:path}", api(execution), methods=["GET"]),
        Route("/ui/api/approvals", api(approvals), methods=["GET"]),
        Route("/ui/api/workers", api(workers), methods=["GET"]),
        Route("/ui/static/{name}", static, methods=["GET"]),
    ]
    return routes


async def _stream(engine: Engine, eid: str, first: dict[str, Any]) -> AsyncIterator[bytes]:
    """Server-sent events: the execution as the page shows it, again each time its history
    grows. Between changes it costs one point read (is there an event after the last
    one sent?) per ``STREAM_POLL``; it ends when the execution has ended, after
    ``STREAM_LIFETIME``, or when the server stops."""
    snapshot = first
    started = time.monotonic()
    idle = 0.0
    while True:
        yield _sse(snapshot)
        if snapshot["execution"]["status"] in views.TERMINAL:
            return
        last = snapshot["history"][-1]["seq"] if snapshot["history"] else 0
        while True:
            await asyncio.sleep(STREAM_POLL)
            if not engine.is_open:  # the server is stopping
                return
            if time.monotonic() - started > STREAM_LIFETIME:
                return
            if await engine.store.events_at([(eid, last + 1)]):
                break
            idle += STREAM_POLL
            if idle >= 15:  # a comment keeps proxies from closing a quiet stream
                idle = 0.0
                yield b": still here\n\n"
        snapshot = await views.detail(engine, eid)


def _sse(data: dict[str, Any]) -> bytes:
    return b"event: execution\ndata: " + _encoder.encode(data) + b"\n\n"
