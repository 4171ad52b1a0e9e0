"""The ``cerebelum server`` and ``cerebelum worker`` commands: the processes that run.

They live here, registered on :func:`cerebelum.cli.main`, so that the command module
holds the commands that look and steer and this one those that serve.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from cerebelum.cli import _db_option, _fail, _load_workflow_module, _run, _Settings, main
from cerebelum.errors import CerebelumError

__all__ = ["server", "worker"]


def _observing(fn: Any) -> Any:
    """The options both processes take: how they log, whether they trace."""
    fn = click.option(
        "--traces", is_flag=True, default=False,
        help="Make OpenTelemetry spans (pip install 'cerebelum[otel]'); see docs/observability.md.",
    )(fn)  # fmt: skip
    return click.option(
        "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
        help="Log lines as text, or as one JSON object a line.",
    )(fn)  # fmt: skip


def _tracer(traces: bool, service: str) -> Any:
    if not traces:
        return False
    from cerebelum.observe._tracing import process_provider

    try:
        return process_provider(service)
    except CerebelumError as exc:
        _fail(str(exc), 2)


@main.command()
@click.argument("modules", nargs=-1, metavar="[MODULE...]")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="CEREBELUM_TOKEN",
    default=None,
    show_envvar=True,
    help="The bearer token every client request must carry; needed off loopback.",
)
@click.option(
    "--worker-token",
    envvar="CEREBELUM_WORKER_TOKEN",
    default=None,
    show_envvar=True,
    help="The bearer token workers must carry; needed off loopback.",
)
@click.option(
    "--dispatch",
    type=click.Choice(["workers", "local"]),
    default="workers",
    show_default=True,
    help="Who runs the steps and activities: 'cerebelum worker' processes, or the server itself.",
)
@click.option(
    "--task-lease",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a task stays a worker's without a heartbeat before another worker gets it.",
)
@click.option(
    "--lease", type=click.FloatRange(min=0, min_open=True), default=15.0, show_default=True,
    help="Seconds after which another server takes over the executions of a silent one.",
)  # fmt: skip
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve HTTPS with this certificate (PEM), through uvicorn.",
)
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The certificate's private key (PEM).")  # fmt: skip
@_observing
@_db_option
@click.pass_obj
def server(settings: _Settings, modules: tuple[str, ...], host: str, port: int,
           token: str | None, worker_token: str | None, dispatch: str,
           task_lease: float, lease: float, ssl_certfile: str | None,
           ssl_keyfile: str | None, log_format: str, traces: bool) -> None:  # fmt: skip
    """Serve the HTTP API (docs/server.md) until SIGINT or SIGTERM.

    Imports the MODULEs (or path/to/file.py) that define the workflows and opens an
    engine on the store; clients start and steer executions over HTTP, and `cerebelum
    worker` processes run their steps and activities (docs/workers.md), unless
    `--dispatch local` has the server run them itself. It binds 127.0.0.1 unless told
    otherwise, and refuses any other address without tokens.
    """
    from cerebelum.server import check_bind, serve

    token = token or settings.token
    try:
        check_bind(host, token or None, worker_token or None, dispatch)
    except CerebelumError as exc:
        _fail(str(exc), 2)
    if (ssl_certfile is None) != (ssl_keyfile is None):
        _fail("--ssl-certfile and --ssl-keyfile go together", 2)
    tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile} if ssl_certfile else {}
    tracing = _tracer(traces, "cerebelum-server")
    for module_name in modules:
        _load_workflow_module(module_name)
    _run(settings, serve(settings.db, host=host, port=port, token=token or None,
                         worker_token=worker_token or None, dispatch=dispatch,
                         task_lease=task_lease, lease=lease, tracing=tracing,
                         log_format=log_format, **tls))  # fmt: skip


@main.command()
@click.argument("modules", nargs=-1, required=True, metavar="MODULE...")
@click.option(
    "--server",
    "url",
    envvar="CEREBELUM_SERVER",
    default="http://127.0.0.1:8080",
    show_default=True,
    show_envvar=True,
    help="The server that hands out the tasks.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    default=("default",),
    show_default=True,
    help="A queue to take tasks from (again for more).",
)
@click.option(
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many tasks it runs at once.",
)
@click.option("--token", envvar="CEREBELUM_WORKER_TOKEN", default=None, show_envvar=True,
              help="The server's worker token.")  # fmt: skip
@_observing
@click.pass_obj
def worker(settings: _Settings, modules: tuple[str, ...], url: str, queues: tuple[str, ...],
           concurrency: int, token: str | None, log_format: str, traces: bool) -> None:  # fmt: skip
    """Run the steps and activities a server hands out (docs/workers.md).

    Imports the MODULEs (or path/to/file.py) that define the workflows' steps and the
    @activity functions, registers them with the server, and runs the tasks it is
    given until SIGINT or SIGTERM; then it takes no more, finishes those it holds and
    hands their results over before it exits.
    """
    import logging
    import signal

    from cerebelum.observe import configure_logging
    from cerebelum.worker import Worker

    configure_logging(log_format)
    tracing = _tracer(traces, "cerebelum-worker")
    for module_name in modules:
        _load_workflow_module(module_name)

    async def work() -> None:
        runner = Worker(url, queues=list(queues), concurrency=concurrency, token=token,
                        tracing=tracing)  # fmt: skip
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.stop)
        logging.getLogger("cerebelum.worker").info(
            "cerebelum worker %s for %s: %d steps, %d activities, queues %s", runner.id, url,
            len(runner.hosts["steps"]), len(runner.hosts["activities"]), ", ".join(queues),
        )  # fmt: skip
        await runner.run()

    _run(settings, work())
