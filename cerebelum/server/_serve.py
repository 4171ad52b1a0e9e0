"""Serve the HTTP API with uvicorn until SIGINT or SIGTERM, then close the engine."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

from cerebelum.errors import CerebelumError

from ._app import create_app

__all__ = ["check_bind", "serve", "serving"]

logger = logging.getLogger("cerebelum.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_bind(host: str, token: str | None, worker_token: str | None = None,
               dispatch: str = "local") -> None:  # fmt: skip
    """Refuse to listen beyond this machine without tokens.

    Raises:
        CerebelumError: ``host`` is not a loopback address and there is no client token
            (or, where workers run the steps, no worker token).
    """
    if is_loopback(host):
        return
    if not token:
        raise CerebelumError(
            f"refusing to listen on {host} without a token: anyone who reaches it could "
            "start, approve and cancel executions; set CEREBELUM_TOKEN (clients then send "
            "'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )
    if dispatch == "workers" and not worker_token:
        raise CerebelumError(
            f"refusing to listen on {host} without a worker token: anyone who reaches it "
            "could take tasks and report results; set CEREBELUM_WORKER_TOKEN (workers then "
            "send it as their bearer token), or bind 127.0.0.1"
        )


async def serve(
    store: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    worker_token: str | None = None,
    workflows: list[Any] | None = None,
    dispatch: str = "workers",
    task_lease: float = 30.0,
    lease: float = 15.0,
    metrics: Any = True,
    tracing: Any = False,
    log_format: str | None = None,
    **uvicorn_options: Any,
) -> None:
    """Open an engine on ``store``, serve its HTTP API until SIGINT/SIGTERM, close it.

    Args:
        store: the engine's store (a URL, a path, a Store; default the SQLite file).
        host: the address to listen on; anything but loopback needs a token.
        port: the port.
        token: the bearer token every ``/v1`` request must carry (default
            ``$CEREBELUM_TOKEN``; none when that is unset or empty).
        worker_token: the bearer token of the worker endpoints (default
            ``$CEREBELUM_WORKER_TOKEN``).
        workflows: the workflows the engine runs (default: every one defined).
        dispatch: ``"workers"``: steps and activities are tasks for ``cerebelum worker``
            processes; ``"local"``: the server runs them itself.
        task_lease: seconds a task stays a worker's without a heartbeat.
        lease: seconds after its last heartbeat when another server (on PostgreSQL) takes
            this one's executions over.
        metrics: keep Prometheus metrics, served at ``/metrics`` (docs/observability.md).
        tracing: make OpenTelemetry spans (``True``: the global tracer provider).
        log_format: ``"text"`` or ``"json"``: log to stderr in that format, uvicorn's
            lines too (default: leave logging as the application set it).
        uvicorn_options: passed to ``uvicorn.Config`` (``ssl_certfile``, ``ssl_keyfile``...).

    Raises:
        CerebelumError: a non-loopback ``host`` without a token (nothing is opened).
    """
    import uvicorn

    from cerebelum.engine import Engine

    token = token if token is not None else (os.environ.get("CEREBELUM_TOKEN") or None)
    if worker_token is None:
        worker_token = os.environ.get("CEREBELUM_WORKER_TOKEN") or None
    check_bind(host, token, worker_token, dispatch)
    if log_format is not None:
        from cerebelum.observe import configure_logging

        configure_logging(log_format)
        uvicorn_options.setdefault("log_config", None)  # its loggers go through ours
    engine = Engine(store, workflows=workflows, dispatch=dispatch, task_lease=task_lease,
                    lease=lease, metrics=metrics, tracing=tracing)  # fmt: skip
    await engine.open()
    try:
        app = create_app(engine, token=token, worker_token=worker_token)
        options = {"log_level": "warning", "access_log": False, **uvicorn_options}
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
        loop = asyncio.get_running_loop()
        exit_now = server.handle_exit

        def handle_exit(sig: int, frame: Any) -> None:
            # uvicorn waits for the requests in progress: answer the workers' polls now
            loop.call_soon_threadsafe(engine.end_polls)
            exit_now(sig, frame)

        server.handle_exit = handle_exit  # type: ignore[method-assign]
        # uvicorn restores the handlers it found and raises the signal that stopped it
        # again once it has shut down: with these in place, that ends here and the
        # engine below is closed, instead of the process dying before it is.
        previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            shown = f"[{host}]" if ":" in host else host
            runs = "workers run the steps" if dispatch == "workers" else "it runs the steps"
            scheme = "https" if uvicorn_options.get("ssl_certfile") else "http"
            banner = (
                f"cerebelum server on {scheme}://{shown}:{port} (store {engine.store.url}; {runs})"
            )
            if log_format is None:
                print(banner, file=sys.stderr, flush=True)
            else:
                logger.info("%s", banner)
            await server.serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        await engine.close()
        logger.info("engine %s closed", engine.id)


@contextlib.asynccontextmanager
async def serving(
    engine: Any, *, token: str | None = None, worker_token: str | None = None
) -> AsyncIterator[str]:
    """Serve the open ``engine`` on a free port of 127.0.0.1 in this process; yields its URL.

    For tests of code that talks to a server through :class:`cerebelum.Client`, or runs
    a :class:`cerebelum.worker.Worker`, without a second process::

        async with Engine() as engine, serving(engine) as url:
            async with Client(url) as client: ...
    """
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(engine, token=token, worker_token=worker_token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="cerebelum-serving")
    try:
        while not server.started:
            if task.done():
                task.result()  # it could not start: say why
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        engine.end_polls()
        server.should_exit = True
        await task
        sock.close()


def _ignore(signum: int, frame: Any) -> None:
    """Nothing: the signal has done its work (uvicorn shut down on it)."""
