"""A PostgreSQL server of the test's own, to stop and restart; never the shared one.

Made with ``initdb`` as the ``postgres`` user in a temporary folder, on a free port,
with its socket in that folder. Needs the PostgreSQL server binaries (``initdb``,
``pg_ctl``) and, when run as root, a ``postgres`` user; without them the tests skip
locally and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnPostgres:
    """A throw-away PostgreSQL server: ``url``, ``restart()``, ``stop()``."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise RuntimeError("initdb and pg_ctl (the PostgreSQL server) are not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="cerebelum-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._user = pwd.getpwnam("postgres")
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)

    def _run(self, *args: str) -> None:
        def demote() -> None:
            if self._user is not None:
                os.setgid(self._user.pw_gid)
                os.setuid(self._user.pw_uid)

        done = subprocess.run(args, preexec_fn=demote, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        if not self.data.exists():
            self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync")  # fmt: skip
        self._run(self.pg_ctl, "-D", str(self.data), "-w", "-l", str(self.folder / "log"),
                  "-o", self._options(), "start")  # fmt: skip

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=100")  # fmt: skip

    def restart(self, mode: str = "immediate") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-w", "-m", mode, "-l",
                  str(self.folder / "log"), "-o", self._options(), "restart")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server started for this test alone."""
    try:
        server = OwnPostgres()
        server.start()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot start a PostgreSQL server of the test's own: {exc}")
        pytest.skip(f"cannot start a PostgreSQL server of the test's own: {exc}")
    try:
        yield server
    finally:
        server.stop()
