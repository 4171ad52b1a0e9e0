"""The ``cerebelum`` command, run as a real process against real stores."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cerebelum import Engine
from cerebelum import events as ev
from cerebelum.store import open_store
from tests.integration import cli_workflows as cw

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests.integration.cli_workflows"


def cli(
    db: str | None, *args: str, cwd: Path = ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CEREBELUM_DB"}
    return subprocess.run(
        [sys.executable, "-m", "cerebelum", *(["--db", db] if db else []), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **env},
    )


async def acli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command from another process, while this one's event loop (its engine) runs."""
    return await asyncio.to_thread(cli, db, *args)


def last_json(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout.splitlines()[-1])


async def inbox_and_history(url: str, execution_id: str) -> tuple[int, list[ev.Event]]:
    async with open_store(url) as store:
        history = await store.history(execution_id)
        rec = await store.get(execution_id)
        # nobody owns it after the CLI's engine stopped: look at the inbox as its next owner
        runnable = {rec.workflow: rec.version}
        return len(await store.receive("probe", 1e12, 1.0, 100, runnable)), history


async def test_run_show_list_then_approve_and_a_later_engine_finishes(store_url):
    started = cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 40}', "--id", "x1")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == [  # stdout is the JSON alone
        '{"id": "x1", "status": "waiting", "waiting_for": "approval \'manager\'"}'
    ]
    assert "waiting for approval 'manager'" in started.stderr

    listed = cli(store_url, "list", "--json")
    assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["waiting"]
    shown = cli(store_url, "show", "x1").stdout
    assert "status   waiting\nwaiting  for approval 'manager'\n" in shown
    assert re.search(r"^\s+5  \S+  ApprovalRequested\s+step=\"manager\"", shown, re.M), shown

    approved = cli(store_url, "approve", "x1", "manager", "--data", '"fine"')
    assert approved.returncode == 0, approved.stderr
    assert "approve 'manager' sent to execution x1" in approved.stdout
    finished = cli(store_url, "run", f"{FLOWS}:expense", "--id", "x1")
    assert finished.returncode == 0, finished.stderr
    result = last_json(finished)
    assert result["status"] == "completed"
    assert result["output"] == {"booked": 40, "approved": True, "note": "fine"}

    shown = json.loads(cli(store_url, "show", "x1", "--json").stdout)
    assert {s["name"]: s["status"] for s in shown["steps"]} == {
        "draft": "completed", "manager": "approved", "escalate": "skipped", "book": "completed"
    }  # fmt: skip
    book = next(s for s in shown["steps"] if s["name"] == "book")
    assert book["duration"] >= 0 and book["finished_at"] >= book["started_at"]
    assert shown["inputs"] == {"amount": 40} and shown["output"] == result["output"]
    assert shown["history"][-1]["type"] == "ExecutionCompleted"
    text = cli(store_url, "show", "x1").stdout
    assert 'output   {"booked": 40, "approved": true, "note": "fine"}' in text
    assert re.search(r"│ book\s+│ completed\s+│ 1\s+│ .* ms", text), text


async def test_approve_and_cancel_reach_an_engine_running_in_another_process(store_url):
    # This process runs the engine (and holds the SQLite file's engine lock) all along.
    async with Engine(store_url, workflows=[cw.expense], poll_interval=0.05) as engine:
        approved = await engine.start(cw.expense, {"amount": 3}, id="live-1")
        cancelled = await engine.start(cw.expense, {"amount": 4}, id="live-2")
        for eid in ("live-1", "live-2"):
            while (await engine.status(eid)).status != "waiting":
                await asyncio.sleep(0.01)

        listed = await acli(store_url, "list", "--status", "waiting", "--json")
        assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == {
            "live-1", "live-2"
        }  # fmt: skip
        sent = await acli(store_url, "approve", "live-1", "manager", "--data", '{"by": "ann"}')
        assert sent.returncode == 0, sent.stderr
        stop = await acli(store_url, "cancel", "live-2", "--reason", "changed plans")
        assert stop.returncode == 0, stop.stderr

        result = await approved.result(timeout=10)
        assert result.output == {"booked": 3, "approved": True, "note": {"by": "ann"}}
        gone = await cancelled.result(timeout=10)
        assert gone.status == "cancelled"
        assert (await engine.history("live-2"))[-1].reason == "changed plans"

        late = await acli(store_url, "approve", "live-1", "manager")
        assert late.returncode == 1
        assert "execution 'live-1' is completed: nothing waits for approve" in late.stderr
        shown = await acli(store_url, "show", "live-1")
        assert shown.returncode == 0 and "status   completed" in shown.stdout
        if store_url.startswith("sqlite"):  # one engine per SQLite file: a second is refused
            second = await acli(store_url, "run", f"{FLOWS}:expense", "--input", "{}")
            assert second.returncode == 1
            assert "is in use by another engine process (pid " in second.stderr
            assert second.stderr.count("\n") == 1


async def test_a_request_that_does_not_fit_is_refused_and_writes_nothing(store_url):
    ran = cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 5}', "--id", "x2")
    assert ran.returncode == 0, ran.stderr
    before = await inbox_and_history(store_url, "x2")
    wrong = cli(store_url, "approve", "x2", "director")
    assert wrong.returncode == 1
    assert wrong.stderr == (
        "error: execution 'x2' is not waiting for approval 'director' (it waits for: 'manager')\n"
    )
    unknown = cli(store_url, "cancel", "nope")
    assert unknown.returncode == 1 and "no execution has the id 'nope'" in unknown.stderr
    signal = cli(store_url, "signal", "x2", "go")
    assert signal.returncode == 1 and "takes approvals, not signals" in signal.stderr
    bad_data = cli(store_url, "approve", "x2", "manager", "--data", "{oops")
    assert bad_data.returncode == 2 and "--data is not JSON" in bad_data.stderr
    assert await inbox_and_history(store_url, "x2") == before == (0, before[1])


async def test_reject_and_cancel_reach_the_next_engine_through_the_inbox(store_url):
    cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 7}', "--id", "r1")
    cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 8}', "--id", "r2")
    cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 9}', "--id", "c1")
    assert cli(store_url, "approve", "r1", "manager", "--reject").returncode == 0
    assert cli(store_url, "reject", "r2", "manager", "--data", '"no"').returncode == 0
    assert cli(store_url, "cancel", "c1", "--reason", "changed plans").returncode == 0
    for eid in ("r1", "r2"):
        rejected = cli(store_url, "run", f"{FLOWS}:expense", "--id", eid)
        assert last_json(rejected).get("output", {}).get("approved") is False, rejected.stdout
    cancelled = cli(store_url, "run", f"{FLOWS}:expense", "--id", "c1")
    assert cancelled.returncode == 1
    assert last_json(cancelled)["status"] == "cancelled"
    listed = [json.loads(x) for x in cli(store_url, "list", "--json").stdout.splitlines()]
    assert {r["id"]: r["status"] for r in listed} == {
        "r1": "completed", "r2": "completed", "c1": "cancelled"
    }  # fmt: skip


def test_list_filters_and_limits(sqlite_url):
    cli(sqlite_url, "run", f"{FLOWS}:doubled", "--input", "1", "--id", "d1")
    cli(sqlite_url, "run", f"{FLOWS}:doubled", "--input", "2", "--id", "d2")
    cli(sqlite_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 1}', "--id", "e1")

    def ids(*args: str) -> list[str]:
        done = cli(sqlite_url, "list", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["id"] for line in done.stdout.splitlines()]

    assert ids() == ["e1", "d2", "d1"]  # newest first
    assert ids("--workflow", "doubled") == ["d2", "d1"]
    assert ids("--status", "waiting") == ["e1"]
    assert ids("--limit", "1") == ["e1"]
    table = cli(sqlite_url, "list").stdout
    assert re.search(r"│ e1\s+│ expense\s+│ waiting\s+│ \d\d:\d\d:\d\d", table), table
    bad = cli(sqlite_url, "list", "--status", "done")
    assert bad.returncode == 2 and "'done' is not one of" in bad.stderr


def test_run_of_a_code_workflow_prints_its_output_or_what_it_waits_for(sqlite_url):
    done = cli(sqlite_url, "run", f"{FLOWS}:doubled", "--input", "21")
    assert done.returncode == 0, done.stderr
    assert last_json(done)["output"] == 42
    waiting = cli(sqlite_url, "run", f"{FLOWS}:waits_for_go", "--input", "1", "--id", "s1")
    assert last_json(waiting) == {"id": "s1", "status": "waiting", "waiting_for": "signal 'go'"}
    assert "waiting  for signal 'go'" in cli(sqlite_url, "show", "s1").stdout
    assert cli(sqlite_url, "signal", "s1", "go", "--data", '"now"').returncode == 0
    resumed = cli(sqlite_url, "run", f"{FLOWS}:waits_for_go", "--id", "s1")
    assert last_json(resumed)["output"] == {"x": 1, "go": "now"}


def test_run_and_show_name_the_signal_the_approval_and_the_timer_awaited(sqlite_url):
    def run() -> str:
        done = cli(sqlite_url, "run", f"{FLOWS}:waits_in_turn", "--id", "t1")
        assert done.returncode == 0, done.stderr
        waits = last_json(done)["waiting_for"]
        assert f"waiting for {waits};" in done.stderr
        shown = cli(sqlite_url, "show", "t1")
        assert f"waiting  for {waits}\n" in shown.stdout
        assert json.loads(cli(sqlite_url, "show", "t1", "--json").stdout)["waiting_for"] == waits
        return waits

    day = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"signal 'go' \(times out {day}\)", run())
    assert cli(sqlite_url, "signal", "t1", "go", "--data", "1").returncode == 0
    assert run() == "approval 'legal'"
    assert cli(sqlite_url, "approve", "t1", "legal").returncode == 0
    assert re.fullmatch(rf"a sleep \(until {day}\)", run())


def test_detach_records_the_execution_and_the_next_engine_runs_it(sqlite_url):
    detached = cli(sqlite_url, "run", f"{FLOWS}:doubled", "--input", "4", "--id", "bg", "--detach")
    assert detached.returncode == 0, detached.stderr
    assert last_json(detached)["id"] == "bg"
    resumed = cli(sqlite_url, "run", f"{FLOWS}:doubled", "--id", "bg")
    assert last_json(resumed)["output"] == 8


def test_a_failed_execution_exits_1_with_its_error(sqlite_url):
    failed = cli(sqlite_url, "run", f"{FLOWS}:expense", "--input", "{}", "--id", "f1")
    assert failed.returncode == 1
    assert last_json(failed)["status"] == "failed"
    shown = cli(sqlite_url, "show", "f1")
    assert "status   failed" in shown.stdout
    assert "error    exception KeyError at step 'draft': 'amount'" in shown.stdout
    assert "Traceback (most recent call last)" in shown.stdout  # the step's, as recorded


def test_the_store_comes_from_db_anywhere_or_the_environment_or_the_cwd(tmp_path):
    there = tmp_path / "there.db"
    ran = cli(None, "run", f"{FLOWS}:doubled", "--input", "1", "--id", "a", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "cerebelum.db").exists()  # the default: ./cerebelum.db
    ran = cli(None, "run", f"{FLOWS}:doubled", "--input", "2", "--id", "b", "--db", str(there))
    assert ran.returncode == 0, ran.stderr
    via_env = cli(None, "list", "--json", CEREBELUM_DB=str(there))
    assert [json.loads(line)["id"] for line in via_env.stdout.splitlines()] == ["b"]
    # after the command's name, --db wins over the one given before it
    overridden = cli(str(there), "show", "a", "--db", str(tmp_path / "cerebelum.db"))
    assert overridden.returncode == 0 and "doubled" in overridden.stdout


def test_graph_prints_mermaid_and_refuses_code_workflows(sqlite_url):
    drawn = cli(None, "graph", f"{FLOWS}:expense")
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n1_manager{{"approval: manager"}}' in lines
    assert "    n0_draft --> n1_manager" in lines
    assert '    n0_draft -->|"amount=0"| n2_escalate' in lines
    assert "    n3_book --> finish" in lines and "    n2_escalate --> finish" in lines
    code = cli(None, "graph", f"{FLOWS}:doubled")
    assert code.returncode == 2 and "is a code workflow" in code.stderr
    assert "no static graph" in code.stderr


def test_the_graph_in_the_docs_is_what_the_command_prints():
    drawn = cli(None, "graph", "examples/quickstart.py:user_onboarding")
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout in (ROOT / "docs" / "cli.md").read_text()


def broken_module(tmp_path: Path) -> str:
    (tmp_path / "broken.py").write_text("x = 1\nraise RuntimeError('no config')\n")
    return str(tmp_path / "broken.py")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "no_such_module:wf"], 2, "cannot import 'no_such_module'"),
        (["run", f"{FLOWS}:draft"], 2, "is StepDef, not a @workflow"),
        (["run", f"{FLOWS}:missing"], 2, f"{FLOWS}:missing is nothing, not a @workflow"),
        (["run", "BROKEN:wf"], 2, "RuntimeError: no config (BROKEN, line 2)"),
        (["graph", "no_such_module:wf"], 2, "cannot import 'no_such_module'"),
        (["run", f"{FLOWS}:expense", "--input", "{bad"], 2, "--input is not JSON"),
        (["run", f"{FLOWS}:expense", "--input", '{"amount": NaN}'], 2, "NaN is not JSON"),
        (["run", f"{FLOWS}:expense", "--input", '{"amount": 1e999}'], 2, "1e999 is not JSON"),
        (["run", "expense"], 2, "is not MODULE:WORKFLOW"),
        (["show", "nope"], 1, "no store at"),
        (["list"], 1, "does not exist"),
        (["approve", "x", "manager"], 1, "does not exist"),
        (["cancel", "x"], 1, "does not exist"),
    ],
)
def test_bad_input_is_one_line_naming_what_is_wrong_and_creates_nothing(
    tmp_path, args, code, message
):
    db = tmp_path / "never.db"
    broken = broken_module(tmp_path)
    got = cli(str(db), *[a.replace("BROKEN", broken) for a in args])
    assert got.returncode == code, got.stderr
    assert got.stderr.startswith("error: ") and got.stderr.count("\n") == 1, got.stderr
    assert message.replace("BROKEN", broken) in got.stderr
    assert got.stdout == ""
    assert not db.exists()


def test_an_unreachable_or_unreadable_store_is_one_line(tmp_path):
    down = cli("postgresql://nobody@127.0.0.1:1/nothing", "list")
    assert down.returncode == 1
    assert down.stderr.startswith("error: cannot connect to the PostgreSQL store postgresql://")
    assert "Traceback" not in down.stderr
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("not a database, just text\n" * 100)
    unreadable = cli(str(not_a_db), "show", "x1")
    assert unreadable.returncode == 1 and unreadable.stderr.count("\n") == 1
    assert "file is not a database" in unreadable.stderr
    assert not_a_db.read_text() == "not a database, just text\n" * 100


@pytest.mark.parametrize("command", [("list",), ("run", f"{FLOWS}:expense")])
def test_a_corrupted_sqlite_file_or_a_foreign_url_is_one_line_naming_it(tmp_path, command):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(16384))
    for db, named in [
        (str(garbage), str(garbage)),
        ("mysql://root:s3cret@127.0.0.1/app", "mysql://root:***@127.0.0.1/app"),
        (f"sqlite:///{tmp_path}/new.db?foo=1", "no option 'foo'"),
    ]:
        done = cli(db, *command)
        assert done.returncode != 0 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
        assert named in done.stderr and "s3cret" not in done.stderr
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    "url",
    ["postgresql://app:s3/cret@127.0.0.1:1/x", "postgresql://app@127.0.0.1:1/x?password=s3cret"],
)
def test_a_postgresql_password_never_reaches_the_terminal(url):
    done = cli(url, "list")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "127.0.0.1:1/x" in done.stderr and "cret" not in done.stderr + done.stdout
