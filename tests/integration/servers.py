"""A real ``cerebelum server`` process for the tests that talk to one over HTTP.

``running_server`` starts ``python -m cerebelum server tests.integration.server_workflows``
on a free port, waits for ``/healthz``, and stops it with SIGTERM at the end: it must
exit 0, with no traceback on stderr.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests.integration.server_workflows"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "cerebelum", "server", FLOWS, "--db", db, "--dispatch", "local",
            *args]  # fmt: skip


def environment(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBELUM_")}
    env["PYTHONPATH"] = str(ROOT)
    if token is not None:
        env["CEREBELUM_TOKEN"] = token
    return env


@contextmanager
def running_server(db: str, token: str | None = None) -> Iterator[str]:
    """A server process on ``db``; its URL. Stopped with SIGTERM: it must exit 0."""
    port = free_port()
    proc = subprocess.Popen(
        command(db, "--port", str(port)), cwd=ROOT, env=environment(token),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited {proc.returncode}: {proc.stderr.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /healthz"
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
