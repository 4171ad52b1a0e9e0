"""Engines on the same machine: a dead one's executions are taken over at once.

An engine that dies stops heartbeating, and another takes its executions over once the
lease has run out (15 s by default). When the dead engine ran on this machine, in this
process namespace, there is no need to wait: its pid is gone, and that is certain.
Each engine registers its host, pid and pid namespace; a neighbour whose pid no longer
exists is released on the spot.

Only the same pid namespace counts: two containers can share a host name, and a pid
that is missing in one may be alive in the other.
"""

from __future__ import annotations

import os
import socket

__all__ = ["describe_self", "gone"]


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # not Linux, or no /proc: no fast path
        return ""


_HOST = socket.gethostname()
_PIDNS = _pid_namespace()


def describe_self() -> str:
    """What an engine registers about its process: ``pid=.. host=.. pidns=..``."""
    return f"pid={os.getpid()} host={_HOST} pidns={_PIDNS}"


def gone(info: str) -> bool:
    """Whether the engine registered with ``info`` was a process here that no longer exists."""
    fields = dict(part.partition("=")[::2] for part in info.split())
    if not _PIDNS or fields.get("host") != _HOST or fields.get("pidns") != _PIDNS:
        return False
    try:
        pid = int(fields.get("pid", ""))
    except ValueError:
        return False
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user
        return False
    return False
