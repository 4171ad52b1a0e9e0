"""Workers: what runs steps and activities.

The embedded engine runs them in its own process; a :class:`Worker` (``cerebelum
worker``) runs them for a ``cerebelum server``, in another process or on another machine.
"""

from typing import Any

from ._local import run_step

__all__ = ["Worker", "run_step"]


def __getattr__(name: str) -> Any:
    # loaded on first use: the engine imports this package, and needs no HTTP client
    if name == "Worker":
        from ._remote import Worker

        return Worker
    raise AttributeError(f"module 'cerebelum.worker' has no attribute {name!r}")
