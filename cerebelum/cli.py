"""The ``cerebelum`` command: run, look at and steer executions from a shell.

Every command that touches a store takes ``--db URL``, before or after the command's
name (default ``$CEREBELUM_DB``, else ``./cerebelum.db``). ``run``, ``list``, ``show``,
``approve``, ``reject``, ``signal``, ``cancel`` and ``migrate`` take ``--server URL`` instead (default
``$CEREBELUM_SERVER``; ``--token``, default ``$CEREBELUM_TOKEN``): they go through
:class:`cerebelum.Client` to a ``cerebelum server`` and print what the store would have
told them. ``run`` starts an engine; the
others use the store directly, so they work beside a running engine, including the
one engine a SQLite file allows: ``approve``, ``reject``, ``signal`` and ``cancel`` are
checked against the history and left in the store's inbox for the engine that runs
the execution (``migrate`` too, when an engine holds the execution). A command that cannot do what it is asked prints one line on stderr,
exits 2 (a wrong argument) or 1 (anything else), and writes nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from cerebelum import __version__
from cerebelum.errors import CerebelumError, ExecutionNotFoundError, InvalidRequestError
from cerebelum.serde import encode
from cerebelum.store import Store, default_url, open_store

__all__ = ["main"]

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)

#: ``run`` returns when the execution waits on an approval, a signal, or a timer further off.
_PATIENCE = 30.0
_STATUSES = ("running", "waiting", "completed", "failed", "cancelled", "stuck")


@dataclass
class _Settings:
    db: str
    traceback: bool = False
    #: The server's URL, when the command goes through ``cerebelum server`` instead.
    server: str | None = None
    token: str | None = None
    #: Given on the command line, not taken from the environment (or the default).
    db_given: bool = False
    server_given: bool = False

    def remote(self) -> str | None:
        """The server to go through, or ``None`` for the store; both given is an error."""
        if self.server is None:
            return None
        if self.db_given and self.server_given:
            _fail(f"--db {self.db} and --server {self.server} were both given: use one", 2)
        return None if self.db_given else self.server


# --- helpers -----------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _run(settings: _Settings, coro: Awaitable[T]) -> T:
    """Run ``coro``; an error becomes one line on stderr and exit code 1."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except CerebelumError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; what was recorded stays in the store, the next engine goes on", 130)
    except Exception as exc:  # a bug, or a store error not wrapped yet: still one line
        if settings.traceback:
            traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc} (--traceback shows where)")


def _json_arg(text: str | None, option: str) -> Any:
    if text is None:
        return None

    def finite(token: str) -> float:
        value = float(token)
        if value in (float("inf"), float("-inf")) or value != value:
            raise ValueError(f"{token} is not JSON (numbers are finite)")
        return value

    def constant(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        return json.loads(text, parse_float=finite, parse_constant=constant)
    except ValueError as exc:  # JSONDecodeError included
        _fail(f"{option} is not JSON: {exc}", 2)


def _load_workflow(ref: str) -> Any:
    """The workflow named by ``module:workflow`` or ``path/to/file.py:workflow``."""
    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        _fail(f"{ref!r} is not MODULE:WORKFLOW (e.g. myapp.flows:onboarding)", 2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = _import(module_name)
    except ModuleNotFoundError as exc:
        _fail(f"cannot import {module_name!r}: {exc}", 2)
    except Exception as exc:  # the module itself is broken: say where
        _fail(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}{_where(exc)}", 2)
    wf = getattr(module, attr, None)
    if getattr(wf, "kind", None) not in ("graph", "code"):
        found = "nothing" if wf is None else type(wf).__name__
        _fail(f"{module_name}:{attr} is {found}, not a @workflow", 2)
    return wf


def _import(module_name: str) -> Any:
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    path = Path(module_name)
    if not path.is_file():
        _fail(f"cannot import {module_name!r}: no such file", 2)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _where(exc: Exception) -> str:
    """The line of the user's code the error came from (its message may not say)."""
    if isinstance(exc, SyntaxError):
        return ""  # its message has the file and the line
    ours = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(("<", ours)) and "importlib" not in f.filename
    ]
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


async def _with_store(url: str, call: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store at ``url`` for one call; a SQLite file that is not there is an error."""
    store = open_store(url)
    path = getattr(store, "path", None)
    if path is not None and path != ":memory:" and not os.path.exists(path):
        raise CerebelumError(f"no store at {store.url}: the file {path} does not exist")
    async with store:
        return await call(store)


async def _with_client(settings: _Settings, url: str, call: Callable[[Any], Awaitable[T]]) -> T:
    """Call the server at ``url`` once, through :class:`cerebelum.Client`.

    Its refusals are reworded to name the server, as the store's name the store.
    """
    from cerebelum.client import Client

    async with Client(url, settings.token) as client:
        try:
            return await call(client)
        except ExecutionNotFoundError as exc:
            raise ExecutionNotFoundError(f"{exc.message} on the server at {client.url}") from exc
        except CerebelumError as exc:
            if getattr(exc, "status_code", None) != 401:
                raise
            why = ("the token given is not its token" if settings.token
                   else "it needs a token (--token or $CEREBELUM_TOKEN)")  # fmt: skip
            raise CerebelumError(f"the server at {client.url} answered 401: {why}") from exc


def _from_server(info: Any, history: list[Any] | None = None) -> Any:
    """An execution as the server shows it, as the store's row (``show`` prints either).

    Its inputs and parent are those its history began with.
    """
    from cerebelum import events as ev
    from cerebelum.store import ExecutionRecord

    started = next((e for e in history or () if isinstance(e, ev.ExecutionStarted)), None)
    inputs = bytes(started.inputs) if started is not None else b"null"
    output = None if info.output is None else encode(info.output, "the output")
    return ExecutionRecord(
        id=info.id, workflow=info.workflow, version=info.version, kind=info.kind,
        status=info.status, inputs=inputs, output=output,
        error=None if info.error is None else info.error.data,
        parent_id=None if started is None else started.parent_id, owner=info.owner,
        created_at=info.created_at.timestamp(), updated_at=info.updated_at.timestamp(),
        waiting_for=info.waiting_for,
    )  # fmt: skip


def _when(ts: float | datetime | None, *, short: bool = False) -> str:
    if ts is None:
        return "-"
    if isinstance(ts, float):
        ts = datetime.fromtimestamp(ts, UTC)
    local = ts.astimezone()
    if short and local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--db`` after the command's name too: ``cerebelum list --db URL``."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            settings = ctx.ensure_object(_Settings)
            settings.db, settings.db_given = value, True

    return click.option(
        "--db",
        metavar="URL",
        expose_value=False,
        callback=remember,
        help="The store (overrides the one given before the command).",
    )(command)


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--server URL`` and ``--token`` after the command's name too."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            settings = ctx.ensure_object(_Settings)
            if param.name == "server":
                settings.server, settings.server_given = value, True
            else:
                settings.token = value

    command = click.option(
        "--token", metavar="TOKEN", expose_value=False, callback=remember,
        help="The server's bearer token (overrides the one given before the command).",
    )(command)  # fmt: skip
    return click.option(
        "--server", metavar="URL", expose_value=False, callback=remember,
        help="Go through this Cerebelum server instead of the store.",
    )(command)  # fmt: skip


# --- the commands ------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="CEREBELUM_DB",
    default=None,
    metavar="URL",
    help="The store: a SQLite path or sqlite:///..., or postgresql://... "
    "[default: $CEREBELUM_DB, else ./cerebelum.db]",
)
@click.option(
    "--server",
    envvar="CEREBELUM_SERVER",
    default=None,
    metavar="URL",
    help="Go through this Cerebelum server instead of the store (list, show, approve, "
    "reject, signal, cancel) [default: $CEREBELUM_SERVER]",
)
@click.option(
    "--token", envvar="CEREBELUM_TOKEN", default=None, metavar="TOKEN",
    help="The server's bearer token [default: $CEREBELUM_TOKEN]",
)  # fmt: skip
@click.option("--traceback", "show_traceback", is_flag=True, help="Print tracebacks of bugs.")
@click.version_option(__version__, prog_name="cerebelum")
@click.pass_context
def main(ctx: click.Context, db: str | None, server: str | None, token: str | None,
         show_traceback: bool) -> None:  # fmt: skip
    """Cerebelum: durable workflows. Run, inspect and steer executions."""
    given = click.core.ParameterSource.COMMANDLINE
    ctx.obj = _Settings(
        db or default_url(), show_traceback, server=server or None, token=token or None,
        db_given=bool(db) and ctx.get_parameter_source("db") == given,
        server_given=bool(server) and ctx.get_parameter_source("server") == given,
    )  # fmt: skip


@main.command()
@click.argument("workflow_ref", metavar="MODULE:WORKFLOW")
@click.option("--input", "input_json", metavar="JSON", help="The input, as JSON.")
@click.option(
    "--id", "execution_id", help="The execution's id; if it exists, go on with that execution."
)
@click.option("--detach", "--no-wait", is_flag=True, help="Return once the execution is recorded.")
@_db_option
@_server_options
@click.pass_obj
def run(settings: _Settings, workflow_ref: str, input_json: str | None,
        execution_id: str | None, detach: bool) -> None:  # fmt: skip
    """Start an execution and run it until it ends or waits.

    Prints the outcome as JSON. It returns when the execution ends (exit code 0 when
    completed, 1 when failed or cancelled), or waits on an approval, a signal or a
    timer more than 30 s away (exit code 0): the next engine on the store goes on.
    With --server the server runs it (MODULE: may be left out: the server knows the
    workflow by name), and the command returns when it ends or waits.
    """
    args = () if input_json is None else (_json_arg(input_json, "--input"),)
    url = settings.remote()
    if url is not None:
        name = workflow_ref.rpartition(":")[2]
        outcome = _run(settings, _with_client(
            settings, url, lambda c: _run_remote(c, name, args, execution_id, detach)))  # fmt: skip
    else:
        wf = _load_workflow(workflow_ref)
        outcome = _run(settings, _run_execution(settings.db, wf, args, execution_id, detach))
    out.print(_dump(outcome), markup=False)
    sys.exit(0 if outcome["status"] in ("completed", "waiting", "running") else 1)


async def _run_remote(
    client: Any, name: str, args: tuple[Any, ...], execution_id: str | None, detach: bool
) -> dict[str, Any]:
    """``run`` through a server: it runs the execution; this waits until it ends or waits."""
    handle = await client.start(name, *args, id=execution_id)
    click.echo(f"execution {handle.id} of {handle.workflow} on the server at {client.url}",
               err=True)  # fmt: skip
    while not detach:
        try:
            result = await handle.result(timeout=0.5)
        except TimeoutError:
            info = await handle.status()
            if info.status != "waiting":
                continue
            click.echo("it waits; the server goes on with it", err=True)
            return {"id": handle.id, "status": "waiting", "waiting_for": info.waiting_for}
        error = None if result.error is None else result.error.data
        return {"id": result.id, "status": result.status, "output": result.output,
                "error": error}  # fmt: skip
    return {"id": handle.id, "status": (await handle.status()).status}


async def _run_execution(
    db: str, wf: Any, args: tuple[Any, ...], execution_id: str | None, detach: bool
) -> dict[str, Any]:
    from cerebelum.engine import Engine

    async with Engine(db) as engine:
        handle = await _existing(engine, execution_id, wf)
        if handle is None:
            handle = await engine.start(wf, *args, id=execution_id)
        elif args:
            click.echo(f"execution {handle.id} exists: --input is not used", err=True)
        click.echo(f"execution {handle.id} of {wf.name} on {engine.store.url}", err=True)
        if detach:
            info = await engine.status(handle.id)
            return {"id": handle.id, "status": info.status}
        while True:
            try:
                result = await handle.result(timeout=0.2)
            except TimeoutError:
                waits = await _waits(engine, handle.id, wf)
                if waits is None:
                    continue
                click.echo(f"waiting for {waits}; the next engine on the store goes on", err=True)
                return {"id": handle.id, "status": "waiting", "waiting_for": waits}
            error = None if result.error is None else result.error.data
            return {"id": result.id, "status": result.status, "output": result.output,
                    "error": error}  # fmt: skip


async def _existing(engine: Any, execution_id: str | None, wf: Any) -> Any:
    """The handle of execution ``execution_id`` when it exists: ``run --id`` goes on with it.

    Looked up before starting, so that going on with a code workflow needs no input again.
    """
    from cerebelum.engine import Handle

    if execution_id is None:
        return None
    try:
        info = await engine.status(execution_id)
    except ExecutionNotFoundError:
        return None
    if info.workflow != wf.name:
        raise InvalidRequestError(
            f"execution {execution_id!r} exists and runs workflow {info.workflow!r}, "
            f"not {wf.name!r}",
            execution_id=execution_id,
        )
    return Handle(engine, execution_id)


async def _waits(engine: Any, execution_id: str, wf: Any) -> str | None:
    """What a waiting execution waits for, when ``run`` should leave it; else ``None``.

    The status, the inbox and the history are separate reads; an engine may commit
    between them (take an approval, say). The history is read before and after the
    others, and when it grew the answer is ``None``: look again.
    """
    history = await engine.history(execution_id)
    info = await engine.status(execution_id)
    if info.status != "waiting" or info.owner is None:
        return None  # runs, or this engine has not claimed it yet
    # The inbox as its owner sees it: this engine, or one that has not let it go yet
    # (a PostgreSQL engine that died holds it until its lease runs out).
    inbox = await engine.store.receive(  # an endless lease: every engine counts as alive
        info.owner, engine.clock.timestamp(), 1e12, 10_000, {wf.name: wf.version}
    )
    if any(item.execution_id == execution_id for item in inbox):
        return None  # a request (an approval, say) is about to wake it
    if len(await engine.history(execution_id)) != len(history):
        return None
    awaited = _awaited(wf.kind, execution_id, history)
    if not awaited:
        return None
    # an approval or a signal needs someone; a timer only time, worth waiting when close
    if all(word == "until" for _, _, word in awaited):
        next_at = min(due for _, due, _ in awaited if due is not None)
        if next_at - engine.clock.timestamp() <= _PATIENCE:
            return None
    return _describe_waits(awaited)


def _awaited(
    kind: str, execution_id: str, history: list[Any]
) -> list[tuple[str, float | None, str]]:
    """What a waiting execution waits on: ``(what, due or None, "until" | "times out")``.

    Read from the history alone, so that ``show`` can say it without the workflow's code:
    each approval and signal by name, each timer by what it is for.
    """
    from cerebelum import events as ev
    from cerebelum.engine._code_state import fold_code
    from cerebelum.engine._requests import waiting_approvals

    timers: dict[str, float] = {}
    for e in history:
        if isinstance(e, ev.TimerStarted):
            timers[e.timer] = e.fire_at
        elif isinstance(e, ev.TimerFired):
            timers.pop(e.timer, None)
        elif isinstance(e, ev.ApprovalResolved):
            timers.pop(f"approval:{e.step}", None)
    signals: dict[str, str] = {}
    if kind == "code":
        state = fold_code(history, execution_id)
        timers = dict(state.timers)
        signals = {str(p): c.name for p, c in state.commands.items()
                   if c.kind == "signal" and not c.settled}  # fmt: skip
    awaited: list[tuple[str, float | None, str]] = []
    for name, where in waiting_approvals(history).items():
        awaited.append((f"approval {name!r}", timers.pop(f"approval:{where}", None), "times out"))
    for where, name in signals.items():
        awaited.append((f"signal {name!r}", timers.pop(f"signal:{where}", None), "times out"))
    for timer, due in sorted(timers.items(), key=lambda t: t[1]):
        what, _, name = timer.partition(":")
        label = {"sleep": "a sleep", "wait": f"wait {name!r}", "retry": "a retry"}.get(what, what)
        if what == "retry" and kind == "graph":
            label = f"a retry of {name!r}"
        awaited.append((label, due, "until"))
    return awaited


def _describe_waits(awaited: list[tuple[str, float | None, str]]) -> str:
    """``approval 'manager' (times out 2030-01-03 00:00:00), signal 'go'``."""
    return ", ".join(
        what if due is None else f"{what} ({word} {_when(due)})" for what, due, word in awaited
    )


def _send(settings: _Settings, execution_id: str, kind: str, name: str, value: Any) -> None:
    """Check a request against the stored history, then leave it in the store's inbox.

    Through a server, its engine does both.
    """
    from cerebelum.engine._requests import send_request

    raw = encode(value, f"the data of {kind} {name!r}")

    async def send(store: Store) -> None:
        await send_request(store, execution_id, kind, name, raw, time.time())

    async def ask(client: Any) -> None:
        if kind == "cancel":
            await client.cancel(execution_id, value)
        else:  # the server checks it against the history, as send_request does here
            await getattr(client, kind)(execution_id, name, value)

    url = settings.remote()
    _run(
        settings,
        _with_store(settings.db, send) if url is None else _with_client(settings, url, ask),
    )
    what = f"{kind} {name!r}" if name else kind
    click.echo(f"{what} sent to execution {execution_id}; its engine takes it from the inbox")


@main.command()
@click.argument("execution_id", metavar="ID")
@click.argument("name", metavar="NAME")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--data", metavar="JSON", help="Data for the next step, as JSON.")
@_db_option
@_server_options
@click.pass_obj
def approve(settings: _Settings, execution_id: str, name: str, reject: bool,
            data: str | None) -> None:  # fmt: skip
    """Approve (or --reject) the approval NAME an execution waits on."""
    value = _json_arg(data, "--data")
    _send(settings, execution_id, "reject" if reject else "approve", name, value)


@main.command()
@click.argument("execution_id", metavar="ID")
@click.argument("name", metavar="NAME")
@click.option("--data", metavar="JSON", help="Data for the next step, as JSON.")
@_db_option
@_server_options
@click.pass_obj
def reject(settings: _Settings, execution_id: str, name: str, data: str | None) -> None:
    """Reject the approval NAME an execution waits on (same as approve --reject)."""
    _send(settings, execution_id, "reject", name, _json_arg(data, "--data"))


@main.command()
@click.argument("execution_id", metavar="ID")
@click.argument("name", metavar="NAME")
@click.option("--data", metavar="JSON", help="The signal's payload, as JSON.")
@_db_option
@_server_options
@click.pass_obj
def signal(settings: _Settings, execution_id: str, name: str, data: str | None) -> None:
    """Send signal NAME to a code workflow; it is kept until the workflow takes it."""
    _send(settings, execution_id, "signal", name, _json_arg(data, "--data"))


@main.command()
@click.argument("execution_id", metavar="ID")
@click.option("--reason", default="", help="Why; recorded in the history.")
@_db_option
@_server_options
@click.pass_obj
def cancel(settings: _Settings, execution_id: str, reason: str) -> None:
    """Cancel an execution and its children."""
    _send(settings, execution_id, "cancel", "", reason)


@main.command()
@click.argument("execution_id", metavar="ID")
@click.option(
    "--module", "module_name", metavar="MODULE",
    help="The module (or path/to/file.py) that defines the workflow as it is now "
    "(not with --server: the server's is the current one).",
)  # fmt: skip
@_db_option
@_server_options
@click.pass_obj
def migrate(settings: _Settings, execution_id: str, module_name: str | None) -> None:
    """Move an execution onto the current version of its graph workflow.

    For an execution waiting for a version no engine runs: you say that the change is
    safe for it. Refused when a step it went through is gone (or became another kind
    of node). Recorded in its history, with where it was done from.
    """
    from cerebelum import events as ev
    from cerebelum.dsl._workflow import lookup_workflow
    from cerebelum.engine._migrate import describe_version, migrate_from_outside, operator

    url = settings.remote()
    if url is not None:
        if module_name is not None:
            _fail("--module is for a store: through a server, the server's code is the "
                  "current version", 2)  # fmt: skip
        version = _run(settings, _with_client(settings, url, lambda c: c.migrate(execution_id)))
        click.echo(f"execution {execution_id} runs version {describe_version(version)} "
                   f"of the server at {url}")  # fmt: skip
        return
    if module_name is None:
        _fail("migrate needs --module MODULE (the workflow as it is now), or --server URL", 2)
    _load_workflow_module(module_name)

    async def move(store: Store) -> tuple[str, str, Any]:
        rec = await store.get(execution_id)
        if rec is None:
            raise ExecutionNotFoundError(f"no execution has the id {execution_id!r} in {store.url}")
        wf = lookup_workflow(rec.workflow)
        done = await migrate_from_outside(store, wf, execution_id, operator(), time.time())
        last = (await store.history(execution_id))[-1] if done == "moved" else None
        before = rec.version
        if isinstance(last, ev.ExecutionMigrated):
            before = describe_version(last.from_version, last.from_label)
        return done, before, wf

    done, before, wf = _run(settings, _with_store(settings.db, move))
    to = describe_version(wf.version, wf.label)
    if done == "sent":
        click.echo(f"migrate sent to execution {execution_id}; the engine that holds it "
                   f"moves it to version {to}")  # fmt: skip
    else:
        click.echo(f"execution {execution_id} of {wf.name} moved from version {before} to {to}")


def _load_workflow_module(module_name: str) -> None:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        _import(module_name)
    except ModuleNotFoundError as exc:
        _fail(f"cannot import {module_name!r}: {exc}", 2)
    except Exception as exc:  # the module itself is broken: say where
        _fail(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}{_where(exc)}", 2)


@main.command()
@click.argument("workflow_ref", metavar="MODULE:WORKFLOW")
def graph(workflow_ref: str) -> None:
    """Print a graph workflow as a Mermaid flowchart."""
    from cerebelum.dsl.mermaid import to_mermaid

    wf = _load_workflow(workflow_ref)
    if wf.kind != "graph":
        _fail(
            f"{workflow_ref}: {wf.name!r} is a code workflow; its steps are decided by its "
            "code as it runs, so it has no static graph to draw",
            2,
        )
    click.echo(to_mermaid(wf.blueprint), nl=False)


from cerebelum import _cli_inspect, _cli_processes  # noqa: E402, F401 - their commands
from cerebelum.ui import _cli as _cli_ui  # noqa: E402, F401 - `cerebelum ui`

if __name__ == "__main__":  # pragma: no cover
    main()
