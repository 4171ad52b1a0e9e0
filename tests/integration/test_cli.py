"""The ``cerebelum`` command, run as a real process against real stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cerebelum import events as ev
from cerebelum.store import open_store

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests.integration.cli_flows"


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cerebelum", "--db", db, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


async def inbox_and_history(url: str, execution_id: str) -> tuple[int, list[ev.Event]]:
    async with open_store(url) as store:
        history = await store.history(execution_id)
        rec = await store.get(execution_id)
        # nobody owns it after the CLI's engine stopped: look at the inbox as its next owner
        await store.claim("probe", 1e12, 1.0, 10, {rec.workflow: rec.version})
        return len(await store.receive("probe", 100)), history


async def test_run_waits_for_an_approval_given_from_the_cli_then_finishes(store_url):
    started = cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 40}', "--id", "x1")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.splitlines()[-1]) == {
        "id": "x1", "status": "waiting", "waiting_for": "approval 'manager'"
    }  # fmt: skip

    listed = cli(store_url, "list", "--json")
    assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["waiting"]
    assert "awaiting approval" in cli(store_url, "show", "x1").stdout

    approved = cli(store_url, "approve", "x1", "manager", "--data", '"fine"')
    assert approved.returncode == 0, approved.stderr
    finished = cli(store_url, "run", f"{FLOWS}:expense", "--id", "x1")
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout.splitlines()[-1])
    assert result["status"] == "completed"
    assert result["output"] == {"booked": 40, "approved": True, "note": "fine"}

    shown = json.loads(cli(store_url, "show", "x1", "--json").stdout)
    assert {s["name"]: s["status"] for s in shown["steps"]} == {
        "draft": "completed", "manager": "approved", "escalate": "skipped", "book": "completed"
    }  # fmt: skip
    assert shown["history"][-1]["type"] == "ExecutionCompleted"


async def test_a_request_that_does_not_fit_is_refused_and_writes_nothing(store_url):
    assert (
        cli(
            store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 5}', "--id", "x2"
        ).returncode
        == 0
    )
    before = await inbox_and_history(store_url, "x2")
    wrong = cli(store_url, "approve", "x2", "director")
    assert wrong.returncode == 1
    assert "is not waiting for approval 'director' (it waits for: 'manager')" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    unknown = cli(store_url, "cancel", "nope")
    assert unknown.returncode == 1 and "no execution has the id 'nope'" in unknown.stderr
    signal = cli(store_url, "signal", "x2", "go")
    assert signal.returncode == 1 and "takes approvals, not signals" in signal.stderr
    assert await inbox_and_history(store_url, "x2") == before == (0, before[1])


async def test_reject_and_cancel_reach_the_engine_through_the_inbox(store_url):
    cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 7}', "--id", "r1")
    cli(store_url, "run", f"{FLOWS}:expense", "--input", '{"amount": 8}', "--id", "c1")
    assert cli(store_url, "approve", "r1", "manager", "--reject").returncode == 0
    assert cli(store_url, "cancel", "c1", "--reason", "changed plans").returncode == 0
    rejected = cli(store_url, "run", f"{FLOWS}:expense", "--id", "r1")
    assert json.loads(rejected.stdout.splitlines()[-1])["output"]["approved"] is False
    cancelled = cli(store_url, "run", f"{FLOWS}:expense", "--id", "c1")
    assert cancelled.returncode == 1
    assert json.loads(cancelled.stdout.splitlines()[-1])["status"] == "cancelled"


def test_run_of_a_code_workflow_prints_its_output(sqlite_url):
    done = cli(sqlite_url, "run", f"{FLOWS}:doubled", "--input", "21")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["output"] == 42


def test_graph_prints_mermaid_and_refuses_code_workflows(sqlite_url):
    drawn = cli(sqlite_url, "graph", f"{FLOWS}:expense")
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n1_manager{{"approval: manager"}}' in lines
    assert "    n0_draft -- amount=0 --> n2_escalate" in lines
    code = cli(sqlite_url, "graph", f"{FLOWS}:doubled")
    assert code.returncode == 1 and "code workflow" in code.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "no_such_module:wf"], 2, "cannot import 'no_such_module'"),
        (["run", f"{FLOWS}:draft"], 2, "is StepDef, not a @workflow"),
        (["run", f"{FLOWS}:expense", "--input", "{bad"], 2, "not JSON"),
        (["run", f"{FLOWS}:expense", "--input", '{"amount": NaN}'], 2, "NaN is not JSON"),
        (["run", f"{FLOWS}:expense", "--input", '{"amount": 1e999}'], 2, "1e999 is not JSON"),
        (["run", "expense"], 2, "is not MODULE:WORKFLOW"),
        (["show", "nope"], 1, "no store at"),
        (["list"], 1, "does not exist"),
    ],
)
def test_bad_input_names_what_is_wrong_and_creates_nothing(tmp_path, args, code, message):
    db = tmp_path / "never.db"
    got = cli(str(db), *args)
    assert got.returncode == code, got.stderr
    assert message in got.stderr and "Traceback" not in got.stderr
    assert not db.exists()
