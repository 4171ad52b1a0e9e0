"""A real ``cerebelum server`` process for the tests that talk to one over HTTP.

``running_server`` starts ``python -m cerebelum server tests.integration.server_workflows``
on a free port, waits for ``/healthz``, and stops it with SIGTERM at the end: it must
exit 0, with no traceback on stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def command(db: str, *args: str, module: str = FLOWS, dispatch: str = "local") -> list[str]:
    return [sys.executable, "-m", "cerebelum", "server", module, "--db", db, "--dispatch",
            dispatch, *args]  # fmt: skip


def environment(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBELUM_")}
    env["PYTHONPATH"] = str(ROOT)
    if token is not None:
        env["CEREBELUM_TOKEN"] = token
    return env


@contextmanager
def running_server(
    db: str, token: str | None = None, module: str = FLOWS, dispatch: str = "local"
) -> Iterator[str]:
    """A server process on ``db`` with ``module``'s workflows; its URL. Stopped with
    SIGTERM: it must exit 0 with no traceback."""
    port = free_port()
    proc = subprocess.Popen(
        command(db, "--port", str(port), module=module, dispatch=dispatch), cwd=ROOT,
        env=environment(token),
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


class Process:
    """A ``cerebelum server`` or ``cerebelum worker`` process a test starts, kills, restarts."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args, self.env = args, env
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: nothing of it runs on."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.communicate(timeout=20)

    def stop(self, timeout: float = 30) -> str:
        """SIGTERM; it must exit 0 without a traceback. Its stderr."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err, err
        return err

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=20)


def wait_healthy(url: str, proc: Process, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.proc is not None
        if proc.proc.poll() is not None:
            pytest.fail(f"the server exited {proc.proc.returncode}: {proc.proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not answer /healthz"
        time.sleep(0.05)


def server_process(db: str, module: str, port: int, *args: str,
                   env: dict[str, str] | None = None) -> tuple[Process, str]:  # fmt: skip
    """A server that hands its steps to workers; its URL once it answers."""
    argv = [sys.executable, "-m", "cerebelum", "server", module, "--db", db,
            "--port", str(port), *args]  # fmt: skip
    proc = Process(argv, env or environment(None))
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


def worker_process(url: str, module: str, *args: str, env: dict[str, str] | None = None) -> Process:
    argv = [sys.executable, "-m", "cerebelum", "worker", module, "--server", url, *args]
    return Process(argv, env or environment(None))


def runs(scratch: Path) -> list[tuple[str, str, str, int, int]]:
    """The runs the workers' steps logged in ``scratch``: one ``(who, name, key, attempt,
    pid)`` per line, ``who`` saying what or which language."""
    log = scratch / "runs.log"
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        who, name, key, attempt, pid = line.split()
        out.append((who, name, key, int(attempt), int(pid)))
    return out


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``predicate()`` holds (a TimeoutError after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
