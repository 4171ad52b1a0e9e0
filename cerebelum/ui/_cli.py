"""``cerebelum ui``: the web UI (and the HTTP API) over a store, with no workers.

For an embedded store that an application's engine does not hold right now: the
command opens an engine of its own (``dispatch="local"``), so that an approval or a
cancel given in the UI takes effect at once, and the steps that follow run in it.
"""

from __future__ import annotations

import click

from cerebelum.cli import _db_option, _fail, _load_workflow_module, _run, _Settings, main
from cerebelum.errors import CerebelumError

__all__ = ["ui"]


@main.command()
@click.argument("modules", nargs=-1, metavar="[MODULE...]")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="CEREBELUM_TOKEN",
    default=None,
    show_envvar=True,
    help="The bearer token the UI (and every API call) must give; needed off loopback.",
)
@_db_option
@click.pass_obj
def ui(settings: _Settings, modules: tuple[str, ...], host: str, port: int,
       token: str | None) -> None:  # fmt: skip
    """Serve the web UI (docs/ui.md) on the store until SIGINT or SIGTERM.

    Imports the MODULEs (or path/to/file.py) that define the workflows, so that the
    executions an approval, a signal or a cancel wakes go on here at once; without them
    the UI shows everything and a request waits in the store for an engine that runs
    the workflow. On SQLite this engine holds the file while it serves.
    """
    from cerebelum.server import check_bind, serve

    token = token or settings.token or None
    try:
        check_bind(host, token, None, "local")
    except CerebelumError as exc:
        _fail(str(exc), 2)
    for module_name in modules:
        _load_workflow_module(module_name)
    _run(settings, serve(settings.db, host=host, port=port, token=token, dispatch="local"))
