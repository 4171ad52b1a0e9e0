"""Workers: what runs steps. The embedded engine runs them in its own process."""

from ._local import run_step

__all__ = ["run_step"]
