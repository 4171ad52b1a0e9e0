"""The ``cerebelum list`` and ``cerebelum show`` commands: what executions there are and
what one of them did, read from the store or through a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from cerebelum.cli import (
    _STATUSES,
    _awaited,
    _db_option,
    _describe_waits,
    _dump,
    _from_server,
    _run,
    _server_options,
    _Settings,
    _when,
    _with_client,
    _with_store,
    main,
    out,
)
from cerebelum.errors import CerebelumError
from cerebelum.serde import decode_json
from cerebelum.store import Store

__all__ = ["list_", "show"]


@main.command(name="list")
@click.option("--status", type=click.Choice(_STATUSES), help="Only executions in this status.")
@click.option("--workflow", help="Only executions of this workflow.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many."
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_db_option
@_server_options
@click.pass_obj
def list_(settings: _Settings, status: str | None, workflow: str | None, limit: int,
          as_json: bool) -> None:  # fmt: skip
    """The latest executions, newest first."""
    url = settings.remote()
    if url is None:
        records = _run(
            settings, _with_store(settings.db, lambda s: s.list(status, workflow, limit))
        )
    else:
        infos = _run(
            settings, _with_client(settings, url, lambda c: c.list(status, workflow, limit))
        )
        records = [_from_server(info) for info in infos]
    if as_json:
        for r in records:
            click.echo(_dump({"id": r.id, "workflow": r.workflow, "status": r.status,
                              "waiting_for": r.waiting_for, "created_at": r.created_at,
                              "updated_at": r.updated_at}))  # fmt: skip
        return
    if not records:
        click.echo("no executions", err=True)
        return
    table = Table("id", "workflow", "status", "started", "updated")
    for column in (0, 2, 3, 4):
        table.columns[column].no_wrap = True
    for r in records:
        table.add_row(escape(r.id), escape(r.workflow), _status(r),
                      _when(r.created_at, short=True), _when(r.updated_at, short=True))  # fmt: skip
    out.print(table)


@main.command()
@click.argument("execution_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@_db_option
@_server_options
@click.pass_obj
def show(settings: _Settings, execution_id: str, as_json: bool) -> None:
    """An execution: status, inputs, output or error, steps with timings, the tasks no
    worker has finished, history."""
    from cerebelum.engine._results import TaskInfo, summarize_steps

    async def read(store: Store) -> Any:
        rec = await store.get(execution_id)
        if rec is None:
            raise CerebelumError(f"no execution has the id {execution_id!r} in {store.url}")
        tasks = [TaskInfo.from_row(r) for r in await store.tasks_in_flight([execution_id])]
        return rec, await store.history(execution_id), tasks

    async def ask(client: Any) -> Any:
        info = await client.status(execution_id)
        history = await client.history(execution_id)
        return _from_server(info, history), history, await client.tasks(execution_id)

    url = settings.remote()
    if url is None:
        rec, history, tasks = _run(settings, _with_store(settings.db, read))
    else:
        rec, history, tasks = _run(settings, _with_client(settings, url, ask))
    steps = summarize_steps(history)
    output = decode_json(rec.output) if rec.output else None
    awaited = _awaited(rec.kind, rec.id, history) if rec.status == "waiting" else []
    waiting_for = _describe_waits(awaited) if awaited else None
    if as_json:
        doc = {
            "id": rec.id, "workflow": rec.workflow, "version": rec.version, "kind": rec.kind,
            "status": rec.status, "waiting_for": rec.waiting_for or waiting_for,
            "inputs": decode_json(rec.inputs), "output": output,
            "error": rec.error, "parent_id": rec.parent_id, "owner": rec.owner,
            "created_at": rec.created_at, "updated_at": rec.updated_at,
            "steps": [{"name": s.name, "status": s.status, "attempts": s.attempts,
                       "started_at": _timestamp(s.started_at),
                       "finished_at": _timestamp(s.finished_at),
                       "duration": s.duration} for s in steps],
            "tasks": [{**vars(t), "since": t.since.timestamp(),
                       "lease_until": _timestamp(t.lease_until)} for t in tasks],
            "history": [{"type": type(e).__name__, **_fields(e)} for e in history],
        }  # fmt: skip
        click.echo(_dump(doc))
        return
    _print_execution(rec, output, waiting_for)
    if steps:
        table = Table("step", "status", "attempts", "started", "took")
        for s in steps:
            took = f"{s.duration * 1000:.1f} ms" if s.duration is not None else "-"
            table.add_row(escape(s.name), s.status, str(s.attempts), _when(s.started_at), took)
        out.print(table)
    for t in tasks:
        out.print(f"task     {t.describe()}, since {_when(t.since)}", markup=False)
    out.print("[bold]history[/]")
    for e in history:
        fields = {k: v for k, v in _fields(e).items() if k not in ("seq", "at")}
        details = " ".join(f"{k}={_dump(v)}" for k, v in fields.items())
        at = datetime.fromtimestamp(e.at, UTC).astimezone().strftime("%H:%M:%S.%f")[:-3]
        line = f"{e.seq:>4}  {at}  {type(e).__name__:<20} {details}"
        out.print(line if len(line) <= 240 else line[:239] + "…", markup=False)


def _status(rec: Any) -> str:
    """The status, or what an execution no engine can run waits for."""
    return f"waiting for {rec.waiting_for}" if rec.waiting_for else rec.status


def _print_execution(rec: Any, output: Any, waiting_for: str | None) -> None:
    kind = f"{rec.kind}, version {rec.version}"
    out.print(f"[bold]{escape(rec.id)}[/]  {escape(rec.workflow)} ({kind})")
    out.print(f"status   {rec.status}", markup=False)
    if rec.waiting_for:
        out.print(
            f"         waiting for {rec.waiting_for}: no engine here runs it "
            f"('cerebelum migrate {rec.id} --module ...' moves it to the current version)",
            markup=False,
        )
    elif waiting_for:
        out.print(f"waiting  for {waiting_for}", markup=False)
    out.print(f"started  {_when(rec.created_at)}   updated {_when(rec.updated_at)}")
    if rec.parent_id:
        out.print(f"parent   {rec.parent_id}", markup=False)
    out.print(f"inputs   {_dump(decode_json(rec.inputs))}", markup=False)
    if rec.output:
        out.print(f"output   {_dump(output)}", markup=False)
    if rec.error:
        error = rec.error
        name = f" {error['name']}" if error.get("name") else ""
        where = f" at step {error['step']!r}" if error.get("step") else ""
        out.print(
            f"error    {error.get('kind')}{name}{where}: {error.get('message')}", markup=False
        )
        if error.get("traceback"):
            out.print(str(error["traceback"]).rstrip(), markup=False, style="dim")


def _timestamp(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _fields(event: Any) -> dict[str, Any]:
    import msgspec

    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(event))
    data.pop("type", None)
    return data
