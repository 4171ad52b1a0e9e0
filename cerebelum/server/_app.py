"""The HTTP API: a Starlette app around a running :class:`~cerebelum.Engine`.

Every handler checks what it is given before the engine sees it, so that a wrong
request is answered with a 4xx naming the field and writes nothing; the engine's own
refusals (an unknown id, a request that does not fit the execution's state) keep
their class name in the error body, so that :class:`cerebelum.Client` raises the same
exception the engine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cerebelum import errors, protocol
from cerebelum.engine import (
    Engine,
    ExecutionError,
    ExecutionInfo,
    ExecutionResult,
    ExecutionStatus,
    check_id,
)
from cerebelum.serde import decode_json, encode

from . import messages as m

__all__ = ["create_app"]

logger = logging.getLogger("cerebelum.server")

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]

#: The longest a result long-poll waits, in seconds; the default when ``wait`` is not given.
MAX_WAIT = 60.0
DEFAULT_WAIT = 30.0
MAX_LIMIT = 1000

_TERMINAL = ("completed", "failed", "cancelled")
_encoder = msgspec.json.Encoder()
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:required|unknown) field `(?P<field>[^`]+)`")


class HTTPError(Exception):
    """A refusal of the server's own, before the engine sees the request."""

    def __init__(
        self, status: int, type_: str, message: str, *, field: str | None = None, **ids: str
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field, self.ids = (
            status,
            type_,
            message,
            field,
            ids,
        )


def _json(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status, media_type="application/json")


def _error(status: int, type_: str, message: str, field: str | None = None, **ids: Any) -> Response:
    detail = m.ErrorDetail(
        type=type_,
        message=message,
        execution_id=ids["execution_id"]
        if isinstance(ids.get("execution_id"), str)
        else msgspec.UNSET,
        workflow=ids["workflow"] if isinstance(ids.get("workflow"), str) else msgspec.UNSET,
        field=field if field is not None else msgspec.UNSET,
    )
    return _json(m.ErrorBody(error=detail), status)


def _status_of(exc: errors.CerebelumError) -> int:
    """The HTTP status of an engine's refusal."""
    if isinstance(
        exc,
        errors.ExecutionNotFoundError | errors.WorkflowNotFoundError | errors.UnknownWorkerError,
    ):
        return 404
    if isinstance(exc, errors.SerializationError):
        return 422
    if isinstance(exc, errors.StoreUnavailableError):
        return 503
    if isinstance(
        exc,
        errors.InvalidRequestError | errors.ExecutionStuckError | errors.VersionMismatchError,
    ):
        return 409  # it does not fit the execution's state
    return 500


def _endpoint(token: str | None) -> Callable[[Handler], Handler]:
    """Wrap a handler: the token check, and every error as a JSON body."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if token is not None and not _authorized(request, token):
                return _error(
                    401, "Unauthorized", "a valid 'Authorization: Bearer <token>' is needed"
                )
            try:
                return await handler(request)
            except HTTPError as exc:
                return _error(exc.status, exc.type, exc.message, exc.field, **exc.ids)
            except errors.CerebelumError as exc:
                status = _status_of(exc)
                if status == 500:
                    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
                ids = {k: getattr(exc, k, None) for k in ("execution_id", "workflow")}
                return _error(status, type(exc).__name__, exc.message, None, **ids)
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return _error(500, "InternalError", "the server failed; its log says why")

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


async def _closed(request: Request) -> None:
    """Return when the client has closed the connection (its body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def _body(request: Request, type_: type[T]) -> T:
    """The request's JSON body as a ``type_``; a 422 naming the field when it is not one."""
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at, named = _AT.search(text), _FIELD.search(text)
        field = at["path"] if at else named["field"] if named else None
        raise HTTPError(422, "InvalidRequestError", f"invalid {type_.__name__}: {text}",
                        field=field or None) from None  # fmt: skip
    except msgspec.DecodeError as exc:
        raise HTTPError(422, "InvalidRequestError", f"the body is not JSON: {exc}") from None


def _execution_id(request: Request) -> str:
    eid = request.path_params["id"]
    try:
        check_id(eid)
    except errors.InvalidRequestError as exc:
        raise HTTPError(400, "InvalidRequestError", exc.message, field="id") from None
    return str(eid)


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN included
        raise HTTPError(422, "InvalidRequestError",
                        f"{name} is a number from {low:g} to {high:g}, not {text!r}", field=name)  # fmt: skip
    return value


# --- views -------------------------------------------------------------------------------


def _error_view(error: ExecutionError | None) -> m.ExecutionErrorView | None:
    if error is None:
        return None
    return m.ExecutionErrorView(kind=error.kind, step=error.step, message=error.message,
                                traceback=error.traceback, data=error.data)  # fmt: skip


def _execution_view(info: ExecutionInfo) -> m.ExecutionView:
    steps = [
        m.StepView(
            name=s.name,
            status=s.status,
            attempts=s.attempts,
            started_at=s.started_at,
            finished_at=s.finished_at,
            duration=s.duration,
        )
        for s in info.steps
    ]
    return m.ExecutionView(
        id=info.id, workflow=info.workflow, version=info.version, kind=info.kind,
        status=info.status, created_at=info.created_at, updated_at=info.updated_at,
        output=info.output, error=_error_view(info.error), owner=info.owner,
        waiting_for=info.waiting_for, steps=steps,
    )  # fmt: skip


def _result_view(result: ExecutionResult) -> m.ResultView:
    # the output as the engine reads it (a declared type, maybe), back to plain JSON
    output = decode_json(encode(result.output, f"the output of execution {result.id!r}"))
    return m.ResultView(id=result.id, workflow=result.workflow, status=result.status,
                        output=output, error=_error_view(result.error))  # fmt: skip


# --- the app -----------------------------------------------------------------------------


def create_app(
    engine: Engine, *, token: str | None = None, worker_token: str | None = None
) -> Starlette:
    """The HTTP API over ``engine``, which must be open while the app serves.

    Args:
        engine: the engine that runs the executions (opened and closed by the caller).
        token: when set, every client request (``/v1/executions...``) needs
            ``Authorization: Bearer <token>``.
        worker_token: the same for the worker endpoints (``/v1/worker/...``).
    """
    api = _endpoint(token)
    public = _endpoint(None)
    for_workers = _endpoint(worker_token)

    async def register(request: Request) -> Response:
        return _json(engine.register_worker(await _body(request, protocol.Register)))

    async def poll(request: Request) -> Response:
        ask = await _body(request, protocol.Poll)
        # a worker that stops cuts its long poll: the connection's end ends the poll, and
        # the tasks handed to it go back, instead of waiting out a lease nobody holds
        left = asyncio.ensure_future(_closed(request))
        try:
            tasks = await engine.poll_tasks(ask, left)
            if left.done() and tasks:
                await engine.give_back(ask.worker_id, tasks)
                tasks = []
        finally:
            left.cancel()
        return _json(protocol.PollResponse(tasks=tasks))

    async def heartbeat(request: Request) -> Response:
        return _json(await engine.heartbeat_task(await _body(request, protocol.Heartbeat)))

    async def report(request: Request) -> Response:
        return _json(await engine.report(await _body(request, protocol.Report)))

    async def start(request: Request) -> Response:
        body = await _body(request, m.StartRequest)
        wf = engine.workflow(body.workflow)  # WorkflowNotFoundError: 404
        if body.id is not None:
            try:
                check_id(body.id)
            except errors.InvalidRequestError as exc:
                raise HTTPError(422, "InvalidRequestError", exc.message, field="id") from None
        args: tuple[Any, ...]
        if wf.kind == "graph":
            # `args: [x]` is `input: x`, as engine.start(wf, x): a client that knows only
            # the workflow's name can start it either way
            field = ("kwargs" if body.kwargs else "args" if len(body.args) > 1 else
                     "input" if body.args and body.input is not msgspec.UNSET else None)  # fmt: skip
            if field is not None:
                raise HTTPError(422, "InvalidRequestError",
                                f"graph workflow {wf.name!r} takes one input (`input`, or "
                                f"`args` of one item), not `{field}`",
                                field=field, workflow=wf.name)  # fmt: skip
            args = tuple(body.args) if body.input is msgspec.UNSET else (body.input,)
        else:
            if body.input is not msgspec.UNSET:
                raise HTTPError(422, "InvalidRequestError",
                                f"code workflow {wf.name!r} takes `args` and `kwargs`, not `input`",
                                field="input", workflow=wf.name)  # fmt: skip
            args = tuple(body.args)
        before = await engine.store.get(body.id) if body.id is not None else None
        existed = before is not None
        try:
            handle = await engine.start(wf, *args, id=body.id, queue=body.queue,
                                        priority=body.priority, dedup_id=body.dedup_id,
                                        **body.kwargs)  # fmt: skip
        except errors.InvalidRequestError as exc:
            if existed or isinstance(exc, errors.DuplicateError):
                raise  # the id belongs to another workflow, the dedup id is live: 409
            if body.queue is not None and "queue" in exc.message:
                raise HTTPError(422, "InvalidRequestError", exc.message, field="queue") from None
            field = "kwargs" if body.kwargs and not body.args else "args"
            raise HTTPError(422, "InvalidRequestError", exc.message, field=field,
                            workflow=wf.name) from None  # fmt: skip
        status = before.status if before is not None else "running"
        done = None
        if body.wait > 0:
            with contextlib.suppress(TimeoutError):
                done = _result_view(await engine.result(handle.id, timeout=body.wait))
                status = done.status
        return _json(m.Started(id=handle.id, workflow=wf.name, status=status, result=done),
                     200 if existed else 201)  # fmt: skip

    async def list_(request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in ExecutionStatus.__members__.values():
            known = ", ".join(s.value for s in ExecutionStatus)
            raise HTTPError(422, "InvalidRequestError",
                            f"{status!r} is not a status; the statuses are {known}", field="status")  # fmt: skip
        workflow = request.query_params.get("workflow") or None
        limit = _number(request, "limit", 100, 1, MAX_LIMIT)
        if limit != int(limit):
            raise HTTPError(422, "InvalidRequestError", "limit is a whole number", field="limit")
        infos = await engine.list(status, workflow, int(limit))
        return _json(m.ExecutionList(executions=[_execution_view(i) for i in infos]))

    async def status(request: Request) -> Response:
        return _json(_execution_view(await engine.status(_execution_id(request))))

    async def history(request: Request) -> Response:
        eid = _execution_id(request)
        events: Any = await engine.history(eid)  # Structs, encoded as the objects the type says
        return _json(m.History(id=eid, events=events))

    async def tasks(request: Request) -> Response:
        infos = await engine.tasks(_execution_id(request))
        return _json(m.TaskList(tasks=[m.TaskView(**vars(i)) for i in infos]))

    async def result(request: Request) -> Response:
        eid = _execution_id(request)
        wait = _number(request, "wait", DEFAULT_WAIT, 0, MAX_WAIT)
        if wait == 0:  # look once: a timeout of 0 would give up before the first read
            info = await engine.status(eid)
            if info.status not in _TERMINAL:
                return _json(m.Pending(id=eid, status=info.status), 202)
        try:
            # The engine answers every waiter of an execution it does not run with one
            # shared read per poll, and wakes the waiters of its own runs on commit: a
            # long-poll costs no reads of its own.
            done = await engine.result(eid, timeout=max(wait, 0.001))
        except TimeoutError:
            info = await engine.status(eid)
            return _json(m.Pending(id=eid, status=info.status), 202)
        return _json(_result_view(done))

    def request_endpoint(kind: str) -> Handler:
        async def send(request: Request) -> Response:
            eid = _execution_id(request)
            if kind in ("approve", "reject"):
                a = await _body(request, m.ApprovalRequest)
                await getattr(engine, kind)(eid, a.name, a.data)
                name = a.name
            elif kind == "signal":
                s = await _body(request, m.SignalRequest)
                await engine.signal(eid, s.name, s.payload)
                name = s.name
            else:
                c = await _body(request, m.CancelRequest)
                await engine.cancel(eid, c.reason)
                name = ""
            return _json(m.Accepted(id=eid, request=kind, name=name), 202)

        send.__name__ = kind
        return send

    async def migrate(request: Request) -> Response:
        eid = _execution_id(request)
        await _body(request, m.MigrateRequest)
        version = await engine.migrate(eid)
        return _json(m.Migrated(id=eid, version=version))

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def openapi(request: Request) -> Response:
        from ._openapi import openapi_document

        return _json(openapi_document())

    async def metrics(request: Request) -> Response:
        # read-only, but it names workflows and queues: behind the client token, as /v1 is
        if engine.metrics is None:
            raise HTTPError(404, "NotFound", "this engine keeps no metrics: open it with "
                            "Engine(metrics=True) (cerebelum server does)")  # fmt: skip
        from cerebelum.observe._metrics import CONTENT_TYPE

        return Response(await engine.metrics_text(), media_type=CONTENT_TYPE)

    routes = [
        Route("/v1/executions", api(start), methods=["POST"]),
        Route("/v1/executions", api(list_), methods=["GET"]),
        Route("/v1/executions/{id:path}/history", api(history), methods=["GET"]),
        Route("/v1/executions/{id:path}/result", api(result), methods=["GET"]),
        Route("/v1/executions/{id:path}/tasks", api(tasks), methods=["GET"]),
        *(
            Route(
                f"/v1/executions/{{id:path}}/{kind}", api(request_endpoint(kind)), methods=["POST"]
            )
            for kind in ("approve", "reject", "signal", "cancel")
        ),
        Route("/v1/executions/{id:path}/migrate", api(migrate), methods=["POST"]),
        Route("/v1/executions/{id:path}", api(status), methods=["GET"]),
        Route("/v1/worker/register", for_workers(register), methods=["POST"]),
        Route("/v1/worker/poll", for_workers(poll), methods=["POST"]),
        Route("/v1/worker/heartbeat", for_workers(heartbeat), methods=["POST"]),
        Route("/v1/worker/report", for_workers(report), methods=["POST"]),
        Route("/healthz", public(healthz), methods=["GET"]),
        Route("/openapi.json", public(openapi), methods=["GET"]),
        Route("/metrics", api(metrics), methods=["GET"]),
    ]
    from cerebelum.ui import ui_routes  # the web UI: its pages, and its data under /ui/api

    routes += ui_routes(engine, api, token)
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "NotFound", f"no such endpoint: {request.method} {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}")
