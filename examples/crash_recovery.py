"""Kill -9 in the middle of a workflow, start again, and watch it carry on where it was.

This script runs itself twice. The first run is a child process that starts a
three-step workflow and is killed with SIGKILL while the second step is running. The
second run (this process) opens an engine on the same SQLite file: it claims the
unfinished execution, folds its history and decides again. The first step, whose
completion is recorded, does not run again; the second, in flight at the kill, runs
again with the same idempotency key; the third runs once.

Every step appends a line to a log file, so what ran, and how often, is visible.

Run it: ``python examples/crash_recovery.py`` (a store in a temporary folder).
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cerebelum import Engine, step, workflow


def log(context, what):
    with open(os.environ["CRASH_DEMO_LOG"], "a") as f:
        f.write(f"pid {os.getpid()} {context.step} attempt {context.attempt} "
                f"key {context.idempotency_key} {what}\n")  # fmt: skip


@step
async def export_rows(context, inputs):
    log(context, "done")
    return {"rows": 1000}


@step
async def upload(context, export_rows):
    log(context, "started")
    await asyncio.sleep(float(os.environ.get("CRASH_DEMO_UPLOAD_SECONDS", "0.1")))
    log(context, "done")
    return {"uploaded": export_rows["rows"]}


@step
async def notify(context, upload):
    log(context, "done")
    return f"{upload['uploaded']} rows uploaded"


@workflow
def nightly_export(wf):
    wf.timeline(export_rows >> upload >> notify)


async def doomed_run(db):
    """The child process: start the execution and hang in `upload` until killed."""
    async with Engine(db) as engine:
        handle = await engine.start(nightly_export, {"day": "2030-01-01"}, id="export-2030-01-01")
        await handle.result()


async def recover(db):
    async with Engine(db) as engine:  # claims the execution the dead process left
        result = await engine.result("export-2030-01-01", timeout=10)
        print(f"after the restart: {result.status}, output {result.output!r}")
        history = await engine.history(result.id)
        started = [f"{e.step}#{e.attempt}" for e in history if e.type == "StepStarted"]
        print(f"steps started, as the history records them: {', '.join(started)}")


def main():
    folder = Path(tempfile.mkdtemp(prefix="cerebelum-crash-"))
    db = f"sqlite:///{folder / 'crash.db'}"
    log_file = folder / "steps.log"
    os.environ["CRASH_DEMO_LOG"] = str(log_file)
    env = {**os.environ, "CRASH_DEMO_UPLOAD_SECONDS": "60"}  # the first upload hangs
    child = subprocess.Popen([sys.executable, __file__, "--doomed", db], env=env)
    deadline = time.monotonic() + 20
    while "upload attempt 1 key export-2030-01-01:upload started" not in (
        log_file.read_text() if log_file.exists() else ""
    ):
        if time.monotonic() > deadline or child.poll() is not None:
            child.kill()
            sys.exit("the child process did not reach the upload step")
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    print(f"killed process {child.pid} with SIGKILL during 'upload'")

    asyncio.run(recover(db))
    print("the step log:")
    for line in log_file.read_text().splitlines():
        pid, rest = line.split(" ", 2)[1:]
        print(f"  {'killed process ' if int(pid) == child.pid else 'second process'}  {rest}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--doomed"]:
        asyncio.run(doomed_run(sys.argv[2]))
    else:
        main()
