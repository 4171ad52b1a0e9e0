"""The recovery workload: workflows in flight, the engine's processes SIGKILLed, restarted.

    python -m bench.recover start SYSTEM FLAVOUR URL N DIR   start N workflows, print
        STARTED when all are started, and keep running until killed
    python -m bench.recover resume SYSTEM FLAVOUR URL N DIR  start the engine again and
        print, as JSON, the seconds until all N completed, the wrong outputs and the
        steps that ran again after their completion was recorded

Every workflow is two steps of 50 ms (so the kill finds work in flight) that add one
each: workflow ``r{i}`` must return ``i + 2``. ``DIR`` is a folder the two phases share
(step logs, the Temporal server's ports and database).
"""

from __future__ import annotations

import os

STEP_SECONDS = 0.05


def expected(i: int) -> int:
    return i + 2


def log_run(folder: str, line: str) -> None:
    """Append one line to the step log; a SIGKILL does not lose what the kernel has."""
    fd = os.open(os.path.join(folder, "steps.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def logged_runs(folder: str) -> list[list[str]]:
    try:
        with open(os.path.join(folder, "steps.log")) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []
