"""The ``cerebelum`` command: run, look at and steer executions from a shell.

Every command takes ``--db URL`` (default ``$CEREBELUM_DB``, else ``./cerebelum.db``).
``run`` starts an engine; the others use the store directly, so they work beside a
running engine, including the one engine a SQLite file allows: ``approve``,
``reject``, ``signal`` and ``cancel`` are checked against the history and left in the
store's inbox for the engine that runs the execution.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from cerebelum.errors import CerebelumError
from cerebelum.serde import decode_json, encode
from cerebelum.store import Store, default_url, open_store

__all__ = ["main"]

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)

#: ``run`` returns when the execution waits on an approval, a signal, or a timer further off.
_PATIENCE = 30.0


# --- helpers -----------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except CerebelumError as exc:
        _fail(str(exc))
        raise AssertionError from exc  # not reached


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
        raise click.BadParameter(f"not JSON: {exc}", param_hint=option) from None


def _load_workflow(ref: str) -> Any:
    """``module:workflow`` or ``path/to/file.py:workflow``."""
    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(f"{ref!r} is not MODULE:WORKFLOW", param_hint="WORKFLOW")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise click.BadParameter(f"no file {module_name}", param_hint="WORKFLOW")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="WORKFLOW"
        ) from None
    wf = getattr(module, attr, None)
    if getattr(wf, "kind", None) not in ("graph", "code"):
        found = "nothing" if wf is None else type(wf).__name__
        raise click.BadParameter(
            f"{module_name}:{attr} is {found}, not a @workflow", param_hint="WORKFLOW"
        )
    return wf


async def _with_store(url: str, call: Callable[[Store], Awaitable[T]]) -> T:
    store = open_store(url)
    path = getattr(store, "path", None)
    if path is not None and path != ":memory:" and not os.path.exists(path):
        raise CerebelumError(f"no store at {store.url}: the file {path} does not exist")
    async with store:
        return await call(store)


def _when(ts: float | datetime | None) -> str:
    if ts is None:
        return "-"
    if isinstance(ts, float):
        ts = datetime.fromtimestamp(ts, UTC)
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


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
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """Cerebelum: durable workflows. Run, inspect and steer executions."""
    ctx.obj = db or default_url()


@main.command()
@click.argument("workflow_ref", metavar="MODULE:WORKFLOW")
@click.option("--input", "input_json", metavar="JSON", help="The input, as JSON.")
@click.option("--id", "execution_id", help="The execution's id (starting it again is a no-op).")
@click.option(
    "--detach", is_flag=True, help="Return once the execution is recorded, without running it."
)
@click.pass_obj
def run(db: str, workflow_ref: str, input_json: str | None, execution_id: str | None,
        detach: bool) -> None:  # fmt: skip
    """Start an execution and run it until it ends or waits.

    It returns when the execution ends, or waits on an approval, a signal or a timer
    more than 30 s away: the next engine on the store goes on with it.
    """
    wf = _load_workflow(workflow_ref)
    args = () if input_json is None else (_json_arg(input_json, "--input"),)
    status = _run(_run_execution(db, wf, args, execution_id, detach))
    sys.exit(0 if status in ("completed", "waiting", "running") else 1)


async def _run_execution(
    db: str, wf: Any, args: tuple[Any, ...], execution_id: str | None, detach: bool
) -> str:
    from cerebelum.engine import Engine

    async with Engine(db) as engine:
        handle = await engine.start(wf, *args, id=execution_id)
        click.echo(f"execution {handle.id} of {wf.name}", err=True)
        if detach:
            return "running"
        while True:
            try:
                result = await handle.result(timeout=0.2)
            except TimeoutError:
                waits = await _waits(engine, handle.id, wf)
                if waits is None:
                    continue
                click.echo(f"waiting for {waits}; any engine on {engine.store.url} goes on")
                out.print(_dump({"id": handle.id, "status": "waiting", "waiting_for": waits}))
                return "waiting"
            out.print(
                _dump(
                    {
                        "id": result.id,
                        "status": result.status,
                        "output": result.output,
                        "error": None if result.error is None else result.error.data,
                    }
                )
            )
            return result.status


async def _waits(engine: Any, execution_id: str, wf: Any) -> str | None:
    """What a waiting execution waits for, when ``run`` should leave it; else ``None``."""
    from cerebelum.engine._code_state import fold_code
    from cerebelum.engine._requests import waiting_approvals
    from cerebelum.engine._state import fold

    info = await engine.status(execution_id)
    if info.status != "waiting":
        return None
    inbox = await engine.store.receive(engine.id, 10_000)
    if any(item.execution_id == execution_id for item in inbox):
        return None  # a request (an approval, say) is about to wake it
    history = await engine.history(execution_id)
    approvals = waiting_approvals(history)
    if approvals:
        return "approval " + ", ".join(repr(a) for a in approvals)
    state = fold_code(history, execution_id) if wf.kind == "code" else fold(wf.blueprint, history)
    next_at = min(state.timers.values(), default=None)
    if next_at is None:
        return "a signal"
    if next_at - engine.clock.timestamp() > _PATIENCE:
        return f"a timer due {_when(next_at)}"
    return None


@main.command(name="list")
@click.option("--status", help="Only executions in this status.")
@click.option("--workflow", help="Only executions of this workflow.")
@click.option("--limit", default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.pass_obj
def list_(db: str, status: str | None, workflow: str | None, limit: int, as_json: bool) -> None:
    """The latest executions, newest first."""
    records = _run(_with_store(db, lambda s: s.list(status, workflow, limit)))
    if as_json:
        for r in records:
            click.echo(_dump({"id": r.id, "workflow": r.workflow, "status": r.status,
                              "created_at": r.created_at, "updated_at": r.updated_at}))  # fmt: skip
        return
    table = Table("workflow", "status", "started", "updated")
    table.add_column("id", no_wrap=True)
    for r in records:
        table.add_row(r.workflow, r.status, _when(r.created_at), _when(r.updated_at), r.id)
    out.print(table)
    if not records:
        click.echo("no executions", err=True)


@main.command()
@click.argument("execution_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
@click.pass_obj
def show(db: str, execution_id: str, as_json: bool) -> None:
    """An execution: status, output or error, steps with timings, history."""
    from cerebelum.engine._results import summarize_steps

    async def read(store: Store) -> Any:
        rec = await store.get(execution_id)
        if rec is None:
            raise CerebelumError(f"no execution has the id {execution_id!r} in {store.url}")
        return rec, await store.history(execution_id)

    rec, history = _run(_with_store(db, read))
    steps = summarize_steps(history)
    output = decode_json(rec.output) if rec.output else None
    if as_json:
        doc = {
            "id": rec.id, "workflow": rec.workflow, "version": rec.version, "kind": rec.kind,
            "status": rec.status, "inputs": decode_json(rec.inputs), "output": output,
            "error": rec.error, "owner": rec.owner,
            "created_at": rec.created_at, "updated_at": rec.updated_at,
            "steps": [{"name": s.name, "status": s.status, "attempts": s.attempts,
                       "duration": s.duration} for s in steps],
            "history": [{"type": type(e).__name__, **_fields(e)} for e in history],
        }  # fmt: skip
        click.echo(_dump(doc))
        return
    out.print(f"[bold]{rec.id}[/]  {rec.workflow} ({rec.kind}, version {rec.version})")
    out.print(f"status   {rec.status}")
    out.print(f"started  {_when(rec.created_at)}   updated {_when(rec.updated_at)}")
    out.print(f"inputs   {_dump(decode_json(rec.inputs))}", markup=False)
    if rec.output:
        out.print(f"output   {_dump(output)}", markup=False)
    if rec.error:
        out.print(f"error    {rec.error.get('kind')}: {rec.error.get('message')}", markup=False)
    if steps:
        table = Table("step", "status", "attempts", "started", "took")
        for s in steps:
            took = f"{s.duration * 1000:.1f} ms" if s.duration is not None else "-"
            table.add_row(s.name, s.status, str(s.attempts), _when(s.started_at), took)
        out.print(table)
    table = Table("seq", "at", "event", "details")
    for e in history:
        fields = {k: v for k, v in _fields(e).items() if k not in ("seq", "at")}
        table.add_row(str(e.seq), _when(e.at), type(e).__name__, _dump(fields)[:200])
    out.print(table)


def _fields(event: Any) -> dict[str, Any]:
    import msgspec

    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(event))
    data.pop("type", None)
    return data


def _request_command(kind: str, help_text: str) -> None:
    @main.command(name=kind, help=help_text)
    @click.argument("execution_id", metavar="ID")
    @click.argument("name", metavar="NAME")
    @click.option("--data", metavar="JSON", help="Data for the next step, as JSON.")
    @click.pass_obj
    def command(db: str, execution_id: str, name: str, data: str | None) -> None:
        _send(db, execution_id, kind, name, _json_arg(data, "--data"))


def _send(db: str, execution_id: str, kind: str, name: str, value: Any) -> None:
    from cerebelum.engine._requests import send_request

    raw = encode(value, f"the data of {kind} {name!r}")
    _run(_with_store(db, lambda s: send_request(s, execution_id, kind, name, raw, time.time())))
    click.echo(f"{kind} {name!r} sent to execution {execution_id}".replace(" ''", ""))


@main.command()
@click.argument("execution_id", metavar="ID")
@click.argument("name", metavar="NAME")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--data", metavar="JSON", help="Data for the next step, as JSON.")
@click.pass_obj
def approve(db: str, execution_id: str, name: str, reject: bool, data: str | None) -> None:
    """Approve (or --reject) the approval NAME an execution waits on."""
    _send(db, execution_id, "reject" if reject else "approve", name, _json_arg(data, "--data"))


_request_command("reject", "Reject the approval NAME an execution waits on.")
_request_command("signal", "Send signal NAME (with --data) to a code workflow.")


@main.command()
@click.argument("execution_id", metavar="ID")
@click.option("--reason", default="", help="Why; recorded in the history.")
@click.pass_obj
def cancel(db: str, execution_id: str, reason: str) -> None:
    """Cancel an execution and its children."""
    _send(db, execution_id, "cancel", "", reason)


@main.command()
@click.argument("workflow_ref", metavar="MODULE:WORKFLOW")
def graph(workflow_ref: str) -> None:
    """Print a graph workflow as a Mermaid flowchart."""
    from cerebelum.dsl.mermaid import to_mermaid

    wf = _load_workflow(workflow_ref)
    if wf.kind != "graph":
        _fail(f"{wf.name} is a code workflow: its steps are its code, it has no static graph")
    click.echo(to_mermaid(wf.blueprint), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
