"""Resurrection: engine processes killed with SIGKILL at several points, then restarted.

Each test checks the same two things from the step log and the history:
- every run of a step is in the history (a StepStarted with the same key and attempt
  for each logged start; a StepStarted may have no run when the kill came first), and
- no step ran again after its completion was recorded (no StepStarted after its
  StepCompleted in the same pass), while the step in flight ran again with the same
  idempotency key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cerebelum import events as ev
from cerebelum.store import open_store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def spawn(db: str, log: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.crashy", db, str(log), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRASHY_LEASE": "1", **env},
    )


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reaps it and closes its pipes
    assert proc.returncode == -signal.SIGKILL


def finish(db: str, log: Path) -> None:
    proc = spawn(db, log, "resume")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "DONE" in out, err


async def histories(db: str) -> dict[str, list[ev.Event]]:
    store = open_store(db)
    await store.connect()
    try:
        return {r.id: await store.history(r.id) for r in await store.list(limit=100_000)}
    finally:
        await store.close()


def check(db: str, log: Path, expect_status: str = "completed") -> dict[str, list[ev.Event]]:
    hist = asyncio.run(histories(db))
    runs = [tuple(line.split()[1:]) for line in lines(log) if line.startswith("start ")]
    recorded: set[tuple[str, str]] = set()
    for eid, events in hist.items():
        assert isinstance(events[-1], ev.ExecutionCompleted), (eid, events[-1])
        done: set[str] = set()
        for e in events:
            if isinstance(e, ev.StepStarted):
                assert e.step not in done, f"{eid}: step {e.step} ran again after it completed"
                recorded.add((f"{eid}:{e.step}", str(e.attempt)))
            elif isinstance(e, ev.StepCompleted):
                done.add(e.step)
    assert len(runs) == len(set(runs)), "each attempt runs once"
    assert set(runs) <= recorded, "every run of a step is recorded"
    return hist


def test_killed_inside_a_step_the_step_runs_again_with_the_same_key(store_url, tmp_path):
    db, log = store_url, tmp_path / "steps.log"
    Path(str(log) + ".hang").touch()
    proc = spawn(db, log, "start", "1")
    wait_for(lambda: "start x-0:b 1" in lines(log))
    kill(proc)
    Path(str(log) + ".hang").unlink()
    finish(db, log)
    hist = check(db, log)
    assert lines(log) == [
        "start x-0:a 1", "end x-0:a 1",
        "start x-0:b 1",                    # killed here
        "start x-0:b 2", "end x-0:b 2",     # run again, same key
        "start x-0:c 1", "end x-0:c 1",
    ]  # fmt: skip
    assert bytes(hist["x-0"][-1].output) == b"3"


def test_killed_right_after_starting(store_url, tmp_path):
    db, log = store_url, tmp_path / "steps.log"
    proc = spawn(db, log, "start", "20", CRASHY_DELAY="0.05")
    wait_for(lambda: any(line.startswith("start") for line in lines(log)))
    kill(proc)
    finish(db, log)
    hist = check(db, log)
    assert len(hist) >= 1
    assert all(bytes(h[-1].output) == str(int(h[0].inputs) + 3).encode() for h in hist.values())


def test_killed_at_random_moments_again_and_again(store_url, tmp_path):
    """Many kills while 30 executions run: between commits, inside steps, anywhere."""
    db, log = store_url, tmp_path / "steps.log"
    proc = spawn(db, log, "start", "30", CRASHY_DELAY="0.1")
    wait_for(lambda: any(line.startswith("start x-29:") for line in lines(log)))
    kills = 0
    for pause in (0.15, 0.05, 0.3, 0.02, 0.1, 0.2, 0.07):
        time.sleep(pause)
        if proc.poll() is not None:
            break
        kill(proc)
        kills += 1
        proc = spawn(db, log, "resume", CRASHY_DELAY="0.1")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "DONE" in out, err
    assert kills >= 3
    hist = check(db, log)
    assert len(hist) == 30


def test_killed_during_a_wait_the_timer_fires_once_after_restart(store_url, tmp_path):
    db, log = store_url, tmp_path / "steps.log"
    proc = spawn(db, log, "start", "3", CRASHY_WORKFLOW="sleepy")
    wait_for(lambda: sum(1 for line in lines(log) if line.startswith("end") and ":a " in line) == 3)
    time.sleep(0.1)  # the wait timers are committed with the steps' results
    kill(proc)
    time.sleep(1.2)  # the timers fall due while no engine runs (and, on PostgreSQL, its lease ends)
    finish(db, log)
    hist = check(db, log)
    for events in hist.values():
        fired = [e for e in events if isinstance(e, ev.TimerFired)]
        assert [f.timer for f in fired] == ["wait:wait_1s"]
    assert sum(1 for line in lines(log) if line.startswith("start") and "after_wait" in line) == 3


def test_a_code_workflow_killed_inside_an_activity_is_rebuilt_from_its_journal(store_url, tmp_path):
    db, log = store_url, tmp_path / "steps.log"
    Path(str(log) + ".hang").touch()
    proc = spawn(db, log, "start", "1", CRASHY_WORKFLOW="coded")
    wait_for(lambda: any(line.startswith("start x-0:1:b 1") for line in lines(log)))
    kill(proc)
    Path(str(log) + ".hang").unlink()
    finish(db, log)
    assert lines(log) == [
        "body",
        "start x-0:0:a 1", "end x-0:0:a 1",
        "start x-0:1:b 1",                  # killed here
        "body",                             # the body runs again from the top ...
        "start x-0:1:b 2", "end x-0:1:b 2",  # ... 'a' comes from the journal; 'b' runs again
        "start x-0:2:c 1", "end x-0:2:c 1",
    ]  # fmt: skip
    events = asyncio.run(histories(db))["x-0"]
    assert bytes(events[-1].output) == b"3"
    started = [(e.position, e.attempt) for e in events if isinstance(e, ev.ActivityStarted)]
    assert started == [(0, 1), (1, 1), (1, 2), (2, 1)]


def test_on_postgres_a_running_engine_takes_over_from_a_killed_one(postgres_url, tmp_path):
    """Two engine processes share one database; the survivor finishes the dead one's work."""
    db, log = postgres_url, tmp_path / "steps.log"
    Path(str(log) + ".hang").touch()
    first = spawn(db, log, "start", "5")
    wait_for(
        lambda: sum(1 for line in lines(log) if line.startswith("start") and ":b " in line) == 5
    )
    second = spawn(db, log, "resume")  # alive beside the first; takes nothing while it lives
    time.sleep(1.5)
    assert second.poll() is None
    assert not [line for line in lines(log) if ":b 2" in line]
    Path(str(log) + ".hang").unlink()
    kill(first)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and "DONE" in out, err
    check(db, log)
    for i in range(5):
        assert f"start x-{i}:b 2" in lines(log) and f"end x-{i}:c 1" in lines(log)


def test_on_postgres_a_dead_engine_on_the_same_machine_is_taken_over_before_its_lease(
    postgres_url, tmp_path
):
    """Its pid is gone: the survivor need not wait ten minutes of lease."""
    db, log = postgres_url, tmp_path / "steps.log"
    Path(str(log) + ".hang").touch()
    first = spawn(db, log, "start", "5", CRASHY_LEASE="600")
    wait_for(
        lambda: sum(1 for line in lines(log) if line.startswith("start") and ":b " in line) == 5
    )
    second = spawn(db, log, "resume", CRASHY_LEASE="600")
    time.sleep(1.5)
    assert second.poll() is None and not [line for line in lines(log) if ":b 2" in line]
    Path(str(log) + ".hang").unlink()
    kill(first)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and "DONE" in out, err
    assert "its process is gone" in err
    check(db, log)
